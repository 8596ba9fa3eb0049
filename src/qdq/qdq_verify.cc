// VerifyQdqModel (see qdq_verify.h).
#include "qdq/qdq_verify.h"

#include <map>
#include <optional>

#include "onnx/tensor_proto.h"

namespace qalign {
namespace {

struct SeenParams {
  float scale = 0.0f;
  int64_t zero_point = 0;
  std::string where;  // "input 0 'x'"
  bool operator==(const SeenParams& o) const {
    return scale == o.scale && zero_point == o.zero_point;
  }
};

class Verifier {
 public:
  Verifier(const onnx::ModelProto& model, const TargetProfile& profile)
      : model_(model), profile_(profile) {
    for (const auto& n : model.graph().node()) {
      for (const auto& o : n.output()) producer_[o] = &n;
      for (const auto& i : n.input()) readers_[i].push_back(&n);
    }
    for (const auto& t : model.graph().initializer()) init_[t.name()] = &t;
  }

  std::optional<std::vector<float>> Values(const std::string& name) {
    auto it = init_.find(name);
    if (it == init_.end()) {
      auto p = producer_.find(name);
      if (p == producer_.end() || p->second->op_type() != "Constant") return std::nullopt;
      for (const auto& a : p->second->attribute()) {
        if (a.name() == "value" && a.has_t()) {
          auto t = TensorFromProto(a.t(), ".");
          if (!t.ok()) return std::nullopt;
          auto v = t->AsFloats();
          if (!v.ok()) return std::nullopt;
          return *v;
        }
      }
      return std::nullopt;
    }
    auto t = TensorFromProto(*it->second, ".");
    if (!t.ok()) return std::nullopt;
    auto v = t->AsFloats();
    if (!v.ok()) return std::nullopt;
    return *v;
  }

  // Per-tensor params of a Q or DQ node; nullopt when per-channel or int32.
  std::optional<SeenParams> ParamsOf(const onnx::NodeProto& node, const std::string& where) {
    if (node.input_size() < 2) return std::nullopt;
    auto scale = Values(node.input(1));
    if (!scale || scale->size() != 1) return std::nullopt;
    SeenParams p;
    p.scale = (*scale)[0];
    if (node.input_size() > 2 && !node.input(2).empty()) {
      auto zp = Values(node.input(2));
      if (!zp || zp->size() != 1) return std::nullopt;
      p.zero_point = static_cast<int64_t>((*zp)[0]);
    }
    p.where = where;
    return p;
  }

  std::optional<SeenParams> InputParams(const onnx::NodeProto& node, int i) {
    if (i >= node.input_size() || node.input(i).empty()) return std::nullopt;
    auto it = producer_.find(node.input(i));
    if (it == producer_.end() || it->second->op_type() != "DequantizeLinear") return std::nullopt;
    auto p = ParamsOf(*it->second, "input " + std::to_string(i) + " '" + node.input(i) + "'");
    return p;
  }

  std::optional<SeenParams> OutputParams(const onnx::NodeProto& node, int j) {
    if (j >= node.output_size()) return std::nullopt;
    auto it = readers_.find(node.output(j));
    if (it == readers_.end()) return std::nullopt;
    for (const onnx::NodeProto* r : it->second) {
      if (r->op_type() == "QuantizeLinear") {
        return ParamsOf(*r, "output " + std::to_string(j) + " '" + node.output(j) + "'");
      }
    }
    return std::nullopt;
  }

  std::vector<QdqRuleViolation> Run(QdqVerifyStats* stats) {
    std::vector<QdqRuleViolation> out;
    for (const auto& node : model_.graph().node()) {
      if (!node.domain().empty() && node.domain() != "ai.onnx") continue;
      const AlignmentRule* rule = profile_.FindRule(node.op_type());
      if (rule == nullptr) continue;
      const std::string describe = node.op_type() + " '" + node.name() + "'";
      std::vector<SeenParams> ports;
      auto add = [&](std::optional<SeenParams> p) {
        if (p) ports.push_back(*p);
      };
      switch (rule->kind) {
        case RuleKind::kShareInputsAndOutput:
          for (int i = 0; i < node.input_size(); ++i) add(InputParams(node, i));
          for (int j = 0; j < node.output_size(); ++j) add(OutputParams(node, j));
          break;
        case RuleKind::kShareInputOutput:
          add(InputParams(node, 0));
          for (int j = 0; j < node.output_size(); ++j) add(OutputParams(node, j));
          break;
        case RuleKind::kShareInputs:
          for (int i = 0; i < node.input_size(); ++i) add(InputParams(node, i));
          break;
        case RuleKind::kFixedOutput:
          for (int j = 0; j < node.output_size(); ++j) {
            auto p = OutputParams(node, j);
            if (!p) continue;
            ports.push_back(*p);
            if (p->scale != rule->fixed_scale || p->zero_point != rule->fixed_zero_point) {
              out.push_back({describe, describe + " " + p->where + ": params (" +
                                           std::to_string(p->scale) + ", " +
                                           std::to_string(p->zero_point) + ") but the target fixes (" +
                                           std::to_string(rule->fixed_scale) + ", " +
                                           std::to_string(rule->fixed_zero_point) + ")"});
            }
          }
          break;
      }
      if (ports.empty()) continue;
      if (stats) {
        ++stats->ops_checked;
        stats->ports_checked += static_cast<int64_t>(ports.size());
      }
      if (rule->kind == RuleKind::kFixedOutput) continue;
      for (size_t k = 1; k < ports.size(); ++k) {
        if (!(ports[k] == ports[0])) {
          out.push_back({describe, describe + " " + ports[k].where + " has (" +
                                       std::to_string(ports[k].scale) + ", " +
                                       std::to_string(ports[k].zero_point) + ") but " +
                                       ports[0].where + " has (" + std::to_string(ports[0].scale) +
                                       ", " + std::to_string(ports[0].zero_point) + ")"});
          break;
        }
      }
    }
    return out;
  }

 private:
  const onnx::ModelProto& model_;
  const TargetProfile& profile_;
  std::map<std::string, const onnx::NodeProto*> producer_;
  std::map<std::string, std::vector<const onnx::NodeProto*>> readers_;
  std::map<std::string, const onnx::TensorProto*> init_;
};

}  // namespace

std::vector<QdqRuleViolation> VerifyQdqModel(const onnx::ModelProto& model,
                                             const TargetProfile& profile, QdqVerifyStats* stats) {
  return Verifier(model, profile).Run(stats);
}

}  // namespace qalign
