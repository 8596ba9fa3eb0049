// CheckQdqModel (see qdq_check.h).
#include "qdq/qdq_check.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <vector>

#include "quant/bias_params.h"

namespace qalign {
namespace {

using json = nlohmann::json;

bool Close(float a, float b, float rel) {
  return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b)) + 1e-30f;
}

// Same bit width (an 8-bit and a 16-bit tensor never share params, even with equal numbers),
// scales within rounding, equal zero points.
bool SameParams(const TQC& a, const TQC& b) {
  if (a.scheme.num_bits != b.scheme.num_bits) return false;
  if (a.scale.size() != b.scale.size() || a.zero_point != b.zero_point) return false;
  for (size_t i = 0; i < a.scale.size(); ++i) {
    if (!Close(a.scale[i], b.scale[i], 1e-6f)) return false;
  }
  return true;
}

std::string ParamsText(const std::vector<float>& scale, const std::vector<int64_t>& zp) {
  if (scale.size() == 1 && zp.size() == 1) return StrCat("(", scale[0], ", ", zp[0], ")");
  return StrCat("(", scale.size(), " channels)");
}
// The params with their bit width when it is not 8: "(0.01, 3) 16-bit".
std::string PortParamsText(const TQC& t) {
  const std::string params = ParamsText(t.scale, t.zero_point);
  return t.scheme.num_bits == 8 ? params : StrCat(params, " ", t.scheme.num_bits, "-bit");
}

// The node's name as the model has it ("" when the importer had to name it).
std::string ModelNodeName(const QdqModelView& view, const Operation& op) {
  auto it = view.node_index.find(op.name());
  if (it == view.node_index.end()) return op.name();
  return view.model.graph().node(it->second).name();
}

}  // namespace

QdqCheckResult CheckQdqModel(QdqModelView& view, const AlignmentOptions& options) {
  QdqCheckResult result;
  auto port_of = [&view](const TQC& t) {
    QdqCheckPort p;
    p.port = t.port.ToString();
    p.tensor = view.ModelTensorName(t);
    p.scale = t.scale;
    p.zero_point = t.zero_point;
    p.tqc = t.id;
    return p;
  };
  auto has_params = [](const TQC* t) {
    return t != nullptr && t->state == QuantState::kActivated && !t->scale.empty();
  };
  for (Operation* op : view.graph->operations()) {
    const OperationQuantConfig* config = view.table.FindOp(op);
    if (config == nullptr) continue;
    const std::string op_name = ModelNodeName(view, *op);
    const std::string label = StrCat(op->type(), " '", op_name, "'");
    auto rule = ResolveRule(*op, view.profile, options);
    if (rule.ok() && rule->present && rule->kind == RuleKind::kFixedOutput) {
      for (TQC* o : config->outputs) {
        if (!has_params(o) || !IsJoinable(*o)) continue;
        ++result.ops_checked;
        ++result.ports_checked;
        if (o->scale.size() == 1 && o->zero_point.size() == 1 &&
            Close(o->scale[0], rule->fixed_scale, 1e-6f) && o->zero_point[0] == rule->fixed_zero_point) {
          continue;
        }
        QdqCheckViolation v;
        v.rule = RuleKindName(RuleKind::kFixedOutput);
        v.op_type = op->type();
        v.op = op_name;
        v.ports.push_back(port_of(*o));
        v.message = StrCat(label, " ", o->port.ToString(), " (tensor '", view.ModelTensorName(*o),
                           "') has ", ParamsText(o->scale, o->zero_point), " but the target fixes (",
                           rule->fixed_scale, ", ", rule->fixed_zero_point, ")");
        result.violations.push_back(std::move(v));
      }
    } else if (rule.ok() && rule->present && rule->method != AlignMethod::kNone) {
      std::vector<TQC*> members;
      for (TQC* m : RuleMembers(*config, rule->kind)) {
        if (has_params(m)) members.push_back(m);
      }
      if (members.size() >= 2) {
        ++result.ops_checked;
        result.ports_checked += static_cast<int64_t>(members.size());
        bool all_same = true;
        for (size_t i = 1; i < members.size(); ++i) all_same &= SameParams(*members[0], *members[i]);
        if (!all_same) {
          QdqCheckViolation v;
          v.rule = RuleKindName(rule->kind);
          v.op_type = op->type();
          v.op = op_name;
          v.method = AlignMethodName(rule->method);
          std::string parts;
          for (const TQC* m : members) {
            v.ports.push_back(port_of(*m));
            parts += StrCat(parts.empty() ? "" : ", ", m->port.ToString(), " '",
                            view.ModelTensorName(*m), "' ", PortParamsText(*m));
          }
          v.message = StrCat(label, ": ", RuleKindName(rule->kind), " violated: ", parts);
          result.violations.push_back(std::move(v));
        }
      }
    }
    // Bias: scale[c] = input_scale * weight_scale[c], zero point 0.
    if (config->inputs.size() >= 3 && config->inputs[2] != nullptr &&
        config->inputs[2]->role == TensorRole::kBias && has_params(config->inputs[2]) &&
        has_params(config->inputs[0]) && has_params(config->inputs[1]) &&
        config->inputs[0]->scale.size() == 1) {
      const TQC* b = config->inputs[2];
      const TQC* in = config->inputs[0];
      const TQC* w = config->inputs[1];
      ++result.biases_checked;
      const std::vector<float> expected = BiasScales(in->scale[0], w->scale, b->scale.size());
      bool scale_ok = true;
      for (size_t c = 0; scale_ok && c < b->scale.size(); ++c) {
        scale_ok = Close(b->scale[c], expected[c], 1e-5f);
      }
      bool zero_point_ok = true;
      for (int64_t z : b->zero_point) zero_point_ok = zero_point_ok && z == 0;
      if (!scale_ok || !zero_point_ok) {
        QdqCheckViolation v;
        v.rule = "bias";
        v.op_type = op->type();
        v.op = op_name;
        v.ports = {port_of(*in), port_of(*w), port_of(*b)};
        const char* what = !scale_ok ? (zero_point_ok ? "scale is not input_scale * weight_scale"
                                                       : "scale is not input_scale * weight_scale "
                                                         "and its zero point is not 0")
                                     : "zero point is not 0";
        v.message = StrCat(label, ": bias '", view.ModelTensorName(*b), "' ", what, " (input '",
                           view.ModelTensorName(*in), "' scale ", in->scale[0], ", bias ",
                           ParamsText(b->scale, b->zero_point), ")");
        result.violations.push_back(std::move(v));
      }
    }
  }
  return result;
}

std::string CheckReportJson(const QdqModelView& view, const QdqCheckResult& result) {
  json root;
  root["model"] = view.source;
  root["target"] = view.profile.name;
  json violations = json::array();
  for (const QdqCheckViolation& v : result.violations) {
    json j;
    j["rule"] = v.rule;
    j["op_type"] = v.op_type;
    j["op"] = v.op;
    j["method"] = v.method;
    j["message"] = v.message;
    json ports = json::array();
    for (const QdqCheckPort& p : v.ports) {
      ports.push_back({{"port", p.port}, {"tensor", p.tensor}, {"scale", p.scale},
                       {"zero_point", p.zero_point}});
    }
    j["ports"] = std::move(ports);
    violations.push_back(std::move(j));
  }
  root["violations"] = std::move(violations);
  root["summary"] = {{"violations", result.violations.size()},
                     {"ops_checked", result.ops_checked},
                     {"ports_checked", result.ports_checked},
                     {"biases_checked", result.biases_checked},
                     {"activation_pairs", view.stats.activation_pairs},
                     {"requantize_pairs", view.stats.requantize_pairs},
                     {"constant_dqs", view.stats.constant_dqs}};
  root["notes"] = view.notes;
  return root.dump(2) + "\n";
}

std::string CheckReportText(const QdqModelView& view, const QdqCheckResult& result) {
  std::string out;
  for (const QdqCheckViolation& v : result.violations) {
    out += StrCat("violation [", v.rule, "] ", v.message, "\n");
  }
  out += StrCat(view.source, " for ", view.profile.name, ": ", result.violations.size(),
                " violations (", result.ops_checked, " rule ops, ", result.ports_checked,
                " ports, ", result.biases_checked, " biases checked; ", view.stats.activation_pairs,
                " activation Q/DQ pairs, ", view.stats.requantize_pairs, " requantize pairs, ",
                view.stats.constant_dqs, " constant DQs)\n");
  return out;
}

}  // namespace qalign
