// FixQdqModel (see qdq_fix.h): re-align an imported QDQ model and rewrite its Q/DQ params.
#include "qdq/qdq_fix.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/file_util.h"
#include "export/alignment_report.h"
#include "export/qdq_export.h"
#include "export/quant_plan.h"
#include "onnx/tensor_proto.h"
#include "quant/bias_params.h"

namespace qalign {
namespace {

using json = nlohmann::json;

struct Params {
  std::vector<float> scale;
  std::vector<int64_t> zero_point;
  bool operator==(const Params& o) const {
    return scale == o.scale && zero_point == o.zero_point;
  }
};

bool IsQNode(const onnx::NodeProto& n) { return n.op_type() == "QuantizeLinear"; }
bool IsDqNode(const onnx::NodeProto& n) { return n.op_type() == "DequantizeLinear"; }

void IntRange(DataType t, int64_t* lo, int64_t* hi) {
  switch (t) {
    case DataType::kInt8: *lo = -128; *hi = 127; return;
    case DataType::kInt16: *lo = -32768; *hi = 32767; return;
    case DataType::kUint16: *lo = 0; *hi = 65535; return;
    case DataType::kInt32:
      *lo = std::numeric_limits<int32_t>::min();
      *hi = std::numeric_limits<int32_t>::max();
      return;
    default: *lo = 0; *hi = 255; return;
  }
}

Tensor IntTensor(DataType type, const std::vector<int64_t>& shape, const std::vector<int64_t>& v) {
  Tensor t(type, shape);
  for (size_t i = 0; i < v.size(); ++i) {
    switch (type) {
      case DataType::kInt8: t.data<int8_t>()[i] = static_cast<int8_t>(v[i]); break;
      case DataType::kInt16: t.data<int16_t>()[i] = static_cast<int16_t>(v[i]); break;
      case DataType::kUint16: t.data<uint16_t>()[i] = static_cast<uint16_t>(v[i]); break;
      case DataType::kInt32: t.data<int32_t>()[i] = static_cast<int32_t>(v[i]); break;
      default: t.data<uint8_t>()[i] = static_cast<uint8_t>(v[i]); break;
    }
  }
  return t;
}

double MaxRatio(const std::vector<float>& now, const std::vector<float>& before) {
  double r = 0.0;
  for (size_t i = 0; i < now.size(); ++i) {
    const float b = before[std::min(i, before.size() - 1)];
    if (b > 0.0f) r = std::max(r, static_cast<double>(now[i]) / b);
  }
  return r;
}

class Rewriter {
 public:
  Rewriter(QdqModelView& view, const std::map<int32_t, Params>& final_params, QdqFixResult* result)
      : view_(view), final_(final_params), result_(result), out_(result->model) {
    const auto& g = view.model.graph();
    for (int k = 0; k < g.node_size(); ++k) {
      for (const auto& o : g.node(k).output()) producer_[o] = k;
      for (const auto& i : g.node(k).input()) readers_[i].push_back(k);
      if (!g.node(k).name().empty()) names_.insert(g.node(k).name());
      for (const auto& o : g.node(k).output()) names_.insert(o);
    }
    for (const auto& t : g.initializer()) {
      names_.insert(t.name());
      initializer_[t.name()] = &t;
    }
    for (const auto& i : g.input()) names_.insert(i.name());
  }

  Status Run() {
    QuantConfigTable& table = view_.table;
    // Activation pairs: what the producer side and each consumer want.
    std::map<int, Params> producer_wants;  // Q node -> params
    struct Want {
      int dq = -1, node = -1, input = 0;
      Params params;
      std::string reason;
    };
    std::vector<Want> wants;
    for (const auto& [id, imp] : view_.imported) {
      TQC* t = table.Get(id);
      auto f = final_.find(id);
      if (!IsJoinable(*t) || f == final_.end()) continue;
      const Params& now = f->second;
      if (!t->port.is_input) {
        if (imp.q_node >= 0) producer_wants[imp.q_node] = now;
        continue;
      }
      auto idx = view_.node_index.find(t->port.op->name());
      if (idx == view_.node_index.end() || imp.dq_node < 0) continue;
      wants.push_back({imp.dq_node, idx->second, t->port.index, now, DescribeTqc(*t)});
    }
    std::sort(wants.begin(), wants.end(), [](const Want& a, const Want& b) {
      return std::tie(a.node, a.input) < std::tie(b.node, b.input);
    });
    // Final params per pair (keyed by the Q of activation pairs, the DQ of constants).
    std::map<int, Params> pair_params;
    for (const auto& [q, p] : producer_wants) pair_params[q] = p;
    for (const Want& w : wants) {
      const int key = PairKey(w.dq);
      pair_params.emplace(key, w.params);  // first consumer by node order, unless the producer set it
    }
    // Rewrite the pairs whose params changed.
    for (const auto& [key, p] : pair_params) {
      QALIGN_RETURN_IF_ERROR(RewritePair(key, p));
    }
    // Consumers that must read params their pair does not carry get a requantize pair (or, for a
    // constant, their own DequantizeLinear of re-quantized values).
    std::map<std::pair<int, std::vector<float>>, std::string> added;  // (dq, scale) -> output name
    for (const Want& w : wants) {
      const int key = PairKey(w.dq);
      if (pair_params.at(key) == w.params) continue;
      auto cache_key = std::make_pair(w.dq, w.params.scale);
      std::string source;
      if (auto it = added.find(cache_key); it != added.end()) {
        source = it->second;
      } else {
        QALIGN_ASSIGN_OR_RETURN(source, AddRequantize(w.dq, w.params, w.reason));
        added[cache_key] = source;
      }
      out_.mutable_graph()->mutable_node(w.node)->set_input(w.input, source);
    }
    QALIGN_RETURN_IF_ERROR(RewriteBiases());
    Finish();
    return Status::Ok();
  }

 private:
  // The key of the pair a DQ belongs to: its Q for activations, itself for constants.
  int PairKey(int dq) const {
    const auto& n = view_.model.graph().node(dq);
    auto p = producer_.find(n.input(0));
    if (p != producer_.end() && IsQNode(view_.model.graph().node(p->second))) return p->second;
    return dq;
  }

  std::string Unique(const std::string& base) {
    std::string name = base;
    for (int c = 1; names_.count(name); ++c) name = StrCat(base, "_", c);
    names_.insert(name);
    return name;
  }

  // Current params of a Q or DQ node in the original model.
  Params OriginalParams(int k) const {
    const auto& n = view_.model.graph().node(k);
    Params p;
    auto scale = Constant(n.input(1));
    if (scale) p.scale = *scale->AsFloats();
    if (n.input_size() > 2 && !n.input(2).empty()) {
      auto zp = Constant(n.input(2));
      if (zp) p.zero_point = *zp->AsInt64s();
    }
    if (p.zero_point.empty()) p.zero_point.assign(p.scale.size(), 0);
    return p;
  }
  DataType ZeroPointTypeOf(int k) const {
    const auto& n = view_.model.graph().node(k);
    if (n.input_size() > 2 && !n.input(2).empty()) {
      if (auto zp = Constant(n.input(2))) return zp->dtype();
    }
    if (IsDqNode(n)) {
      if (auto x = Constant(n.input(0))) return x->dtype();
    }
    return DataType::kUint8;
  }

  std::optional<Tensor> Constant(const std::string& name) const {
    if (auto it = initializer_.find(name); it != initializer_.end()) {
      auto t = TensorFromProto(*it->second, DirName(view_.source));
      if (t.ok()) return std::move(t).value();
      return std::nullopt;
    }
    auto p = producer_.find(name);
    if (p == producer_.end()) return std::nullopt;
    for (const auto& a : view_.model.graph().node(p->second).attribute()) {
      if (a.name() == "value" && a.has_t()) {
        auto t = TensorFromProto(a.t(), DirName(view_.source));
        if (t.ok()) return std::move(t).value();
      }
    }
    return std::nullopt;
  }

  // New scale and zero-point initializers; returns their names.
  std::pair<std::string, std::string> AddParamInitializers(const std::string& base,
                                                           const Params& p, DataType zp_type) {
    const std::string scale_name = Unique(base + "_scale_fixed");
    const std::string zp_name = Unique(base + "_zero_point_fixed");
    std::vector<int64_t> shape;
    if (p.scale.size() > 1) shape = {static_cast<int64_t>(p.scale.size())};
    *out_.mutable_graph()->add_initializer() =
        TensorToProto(Tensor::FromVector<float>(shape, p.scale), scale_name);
    *out_.mutable_graph()->add_initializer() =
        TensorToProto(IntTensor(zp_type, shape, p.zero_point), zp_name);
    return {scale_name, zp_name};
  }

  void SetParamInputs(int k, const std::string& scale, const std::string& zp) {
    onnx::NodeProto* n = out_.mutable_graph()->mutable_node(k);
    replaced_.insert(n->input(1));
    n->set_input(1, scale);
    if (n->input_size() > 2) {
      replaced_.insert(n->input(2));
      n->set_input(2, zp);
    } else {
      n->add_input(zp);
    }
  }

  // Re-quantizes a constant: float = (q - zp_old) * s_old, q' = Q(float; s_new, zp_new).
  StatusOr<Tensor> Requantize(const Tensor& q, const Params& before, const Params& after,
                              int axis, DataType type) const {
    QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> ints, q.AsInt64s());
    int64_t inner = 1, channels = 1;
    if (std::max(before.scale.size(), after.scale.size()) > 1) {
      const int a = axis < 0 ? axis + static_cast<int>(q.rank()) : axis;
      channels = q.shape()[a];
      for (int64_t d = a + 1; d < q.rank(); ++d) inner *= q.shape()[d];
    }
    int64_t lo = 0, hi = 0;
    IntRange(type, &lo, &hi);
    std::vector<int64_t> out(ints.size());
    for (size_t i = 0; i < ints.size(); ++i) {
      const size_t c = static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels);
      const size_t cb = std::min(c, before.scale.size() - 1);
      const size_t ca = std::min(c, after.scale.size() - 1);
      const float x = static_cast<float>(ints[i] - before.zero_point[cb]) * before.scale[cb];
      out[i] = QuantizeValue(x, after.scale[ca], after.zero_point[ca], lo, hi);
    }
    return IntTensor(type, q.shape(), out);
  }

  Status RewritePair(int key, const Params& p) {
    const auto& g = view_.model.graph();
    const onnx::NodeProto& head = g.node(key);
    const Params before = OriginalParams(key);
    if (before == p) return Status::Ok();
    QdqFixChange change;
    change.old_scale = before.scale;
    change.old_zero_point = before.zero_point;
    change.new_scale = p.scale;
    change.new_zero_point = p.zero_point;
    change.resolution_cost = MaxRatio(p.scale, before.scale);
    change.tensor = head.input(0);
    const DataType zp_type = ZeroPointTypeOf(key);
    if (IsQNode(head)) {
      change.kind = "activation";
      auto [s, z] = AddParamInitializers(head.input(0), p, zp_type);
      SetParamInputs(key, s, z);
      change.nodes.push_back(head.name());
      for (int r : readers_[head.output(0)]) {
        if (!IsDqNode(g.node(r))) continue;
        SetParamInputs(r, s, z);
        change.nodes.push_back(g.node(r).name());
      }
      change.reason = "re-aligned";
    } else {
      change.kind = "constant";
      auto q = Constant(head.input(0));
      if (!q) return InternalError("fix: constant '", head.input(0), "' vanished");
      QALIGN_ASSIGN_OR_RETURN(Tensor requantized,
                              Requantize(*q, before, p, AxisOf(key), q->dtype()));
      const std::string data_name = Unique(head.input(0) + "_fixed");
      *out_.mutable_graph()->add_initializer() = TensorToProto(requantized, data_name);
      auto [s, z] = AddParamInitializers(head.input(0), p, zp_type);
      onnx::NodeProto* n = out_.mutable_graph()->mutable_node(key);
      replaced_.insert(n->input(0));
      n->set_input(0, data_name);
      SetParamInputs(key, s, z);
      change.nodes.push_back(head.name());
      change.reason = "constant operand re-quantized for its group's params";
    }
    result_->changes.push_back(std::move(change));
    return Status::Ok();
  }

  int AxisOf(int k) const {
    for (const auto& a : view_.model.graph().node(k).attribute()) {
      if (a.name() == "axis") return static_cast<int>(a.i());
    }
    return 1;
  }

  // A Q -> DQ pair (or, for a constant, a DQ of re-quantized values) reading `dq`'s source with
  // params `p`; inserted after `dq`; returns the name consumers read.
  StatusOr<std::string> AddRequantize(int dq, const Params& p, const std::string& why) {
    const auto& g = view_.model.graph();
    const onnx::NodeProto& d = g.node(dq);
    const int key = PairKey(dq);
    const DataType zp_type = ZeroPointTypeOf(key);
    QdqFixChange change;
    const Params before = OriginalParams(key);
    change.old_scale = before.scale;
    change.old_zero_point = before.zero_point;
    change.new_scale = p.scale;
    change.new_zero_point = p.zero_point;
    change.resolution_cost = MaxRatio(p.scale, before.scale);
    change.reason = "consumer " + why + " needs params its producer's pair does not carry";
    std::vector<onnx::NodeProto>& after = inserted_[dq];
    if (key == dq) {
      auto q = Constant(d.input(0));
      if (!q) return InternalError("fix: constant '", d.input(0), "' vanished");
      QALIGN_ASSIGN_OR_RETURN(Tensor requantized, Requantize(*q, before, p, AxisOf(dq), q->dtype()));
      const std::string data_name = Unique(d.input(0) + "_fixed");
      *out_.mutable_graph()->add_initializer() = TensorToProto(requantized, data_name);
      auto [s, z] = AddParamInitializers(d.input(0), p, zp_type);
      onnx::NodeProto node;
      node.set_op_type("DequantizeLinear");
      node.set_name(Unique(d.output(0) + "_dq_fixed"));
      node.add_input(data_name);
      node.add_input(s);
      node.add_input(z);
      const std::string out = Unique(d.output(0) + "_fixed");
      node.add_output(out);
      change.kind = "constant";
      change.tensor = d.input(0);
      change.nodes.push_back(node.name());
      after.push_back(std::move(node));
      result_->changes.push_back(std::move(change));
      return out;
    }
    auto [s, z] = AddParamInitializers(d.output(0) + "_requant", p, zp_type);
    onnx::NodeProto qn, dn;
    qn.set_op_type("QuantizeLinear");
    qn.set_name(Unique(d.output(0) + "_requant_q"));
    qn.add_input(d.output(0));
    qn.add_input(s);
    qn.add_input(z);
    const std::string mid = Unique(d.output(0) + "_requant_quantized");
    qn.add_output(mid);
    dn.set_op_type("DequantizeLinear");
    dn.set_name(Unique(d.output(0) + "_requant_dq"));
    dn.add_input(mid);
    dn.add_input(s);
    dn.add_input(z);
    const std::string out = Unique(d.output(0) + "_requant");
    dn.add_output(out);
    change.kind = "requantize_added";
    change.tensor = d.output(0);
    change.nodes = {qn.name(), dn.name()};
    after.push_back(std::move(qn));
    after.push_back(std::move(dn));
    result_->changes.push_back(std::move(change));
    return out;
  }

  // Each int32 bias whose input scale changed: new_scale[c] = input_scale * weight_scale[c].
  Status RewriteBiases() {
    QuantConfigTable& table = view_.table;
    for (Operation* op : view_.graph->operations()) {
      const OperationQuantConfig* config = table.FindOp(op);
      if (config == nullptr || config->inputs.size() < 3) continue;
      TQC* b = config->inputs[2];
      TQC* in = config->inputs[0];
      TQC* w = config->inputs[1];
      if (b == nullptr || in == nullptr || w == nullptr || b->role != TensorRole::kBias) continue;
      auto bi = view_.imported.find(b->id);
      auto wi = view_.imported.find(w->id);
      if (bi == view_.imported.end() || wi == view_.imported.end() ||
          !view_.imported.count(in->id) || !IsJoinable(*in)) {
        continue;
      }
      auto fin = final_.find(in->id);
      if (fin == final_.end()) continue;
      const std::vector<float>& in_scale = fin->second.scale;
      if (in_scale.size() != 1) continue;
      const std::vector<float>& w_scale = wi->second.scale;
      const int d = bi->second.dq_node;
      if (d < 0) continue;
      const Params before = OriginalParams(d);
      auto q = Constant(view_.model.graph().node(d).input(0));
      if (!q || q->rank() > 1) continue;
      const size_t channels = static_cast<size_t>(std::max<int64_t>(q->num_elements(), 1));
      Params p;
      p.scale = BiasScales(in_scale[0], w_scale, w_scale.size() > 1 ? channels : 1);
      p.zero_point.assign(p.scale.size(), 0);
      bool same = p.scale.size() == before.scale.size() && p.zero_point == before.zero_point;
      for (size_t c = 0; same && c < p.scale.size(); ++c) {
        same = std::fabs(p.scale[c] - before.scale[c]) <= 1e-6f * p.scale[c];
      }
      if (same) continue;
      QALIGN_ASSIGN_OR_RETURN(Tensor requantized, Requantize(*q, before, p, 0, DataType::kInt32));
      // The float bias moves by at most half a new step; report how much.
      QdqFixChange change;
      auto old_ints = q->AsInt64s();
      auto new_ints = requantized.AsInt64s();
      for (size_t i = 0; old_ints.ok() && new_ints.ok() && i < old_ints->size(); ++i) {
        const size_t cb = std::min(i, before.scale.size() - 1);
        const size_t ca = std::min(i, p.scale.size() - 1);
        const double old_f = static_cast<double>((*old_ints)[i] - before.zero_point[cb]) * before.scale[cb];
        const double new_f = static_cast<double>((*new_ints)[i]) * p.scale[ca];
        change.bias_max_abs_change = std::max(change.bias_max_abs_change, std::fabs(new_f - old_f));
      }
      const onnx::NodeProto& dn = view_.model.graph().node(d);
      const std::string data_name = Unique(dn.input(0) + "_fixed");
      *out_.mutable_graph()->add_initializer() = TensorToProto(requantized, data_name);
      auto [s, z] = AddParamInitializers(dn.input(0), p, DataType::kInt32);
      onnx::NodeProto* node = out_.mutable_graph()->mutable_node(d);
      replaced_.insert(node->input(0));
      node->set_input(0, data_name);
      SetParamInputs(d, s, z);
      if (p.scale.size() > 1) {
        bool set = false;
        for (auto& a : *node->mutable_attribute()) {
          if (a.name() == "axis") {
            a.set_i(0);
            set = true;
          }
        }
        if (!set) {
          auto* a = node->add_attribute();
          a->set_name("axis");
          a->set_type(onnx::AttributeProto::INT);
          a->set_i(0);
        }
      }
      change.kind = "bias";
      change.tensor = dn.input(0);
      change.nodes.push_back(dn.name());
      change.old_scale = before.scale;
      change.old_zero_point = before.zero_point;
      change.new_scale = p.scale;
      change.new_zero_point = p.zero_point;
      change.resolution_cost = MaxRatio(p.scale, before.scale);
      change.reason = StrCat("re-derived for input scale ", in_scale[0], " of ", op->Describe());
      result_->changes.push_back(std::move(change));
    }
    return Status::Ok();
  }

  // Inserts the new nodes after the DQ they read, and drops initializers nothing reads any more.
  void Finish() {
    onnx::GraphProto* g = out_.mutable_graph();
    if (!inserted_.empty()) {
      google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
      nodes.Swap(g->mutable_node());
      for (int k = 0; k < nodes.size(); ++k) {
        *g->add_node() = std::move(*nodes.Mutable(k));
        if (auto it = inserted_.find(k); it != inserted_.end()) {
          for (auto& n : it->second) *g->add_node() = std::move(n);
        }
      }
    }
    if (replaced_.empty()) return;
    std::unordered_set<std::string> read;
    for (const auto& n : g->node()) {
      for (const auto& i : n.input()) read.insert(i);
    }
    for (const auto& o : g->output()) read.insert(o.name());
    google::protobuf::RepeatedPtrField<onnx::TensorProto> inits;
    inits.Swap(g->mutable_initializer());
    for (auto& t : inits) {
      if (replaced_.count(t.name()) && !read.count(t.name())) continue;
      *g->add_initializer() = std::move(t);
    }
  }

  QdqModelView& view_;
  const std::map<int32_t, Params>& final_;  // params per imported TQC after the fix
  QdqFixResult* result_;
  onnx::ModelProto& out_;
  std::unordered_map<std::string, int> producer_;
  std::unordered_map<std::string, std::vector<int>> readers_;
  std::unordered_map<std::string, const onnx::TensorProto*> initializer_;
  std::set<std::string> names_;
  std::unordered_set<std::string> replaced_;
  std::map<int, std::vector<onnx::NodeProto>> inserted_;
};

json ViolationsJson(const QdqCheckResult& r) {
  json a = json::array();
  for (const auto& v : r.violations) {
    json ports = json::array();
    for (const auto& p : v.ports) {
      ports.push_back({{"port", p.port}, {"tensor", p.tensor}, {"scale", p.scale},
                       {"zero_point", p.zero_point}});
    }
    a.push_back({{"rule", v.rule}, {"op_type", v.op_type}, {"op", v.op}, {"method", v.method},
                 {"message", v.message}, {"ports", ports}});
  }
  return a;
}

}  // namespace

StatusOr<QdqFixResult> FixQdqModel(QdqModelView& view, const QdqFixOptions& options,
                                   const ImportOptions& import_options) {
  QdqFixResult result;
  result.before = CheckQdqModel(view, options.alignment);
  std::unordered_set<int32_t> flagged;
  for (const auto& v : result.before.violations) {
    for (const auto& p : v.ports) flagged.insert(p.tqc);
  }
  // Snapshot of the imported params, before the pass moves them.
  std::map<int32_t, Params> imported;
  for (const auto& [id, p] : view.imported) imported[id] = Params{p.scale, p.zero_point};

  AlignmentOptions align = options.alignment;
  for (const AlignmentRule& rule : view.profile.rules) {
    if (rule.kind != RuleKind::kFixedOutput) align.method_by_op_type.emplace(rule.op_type, AlignMethod::kLarge);
  }
  align.requantize_on_scheme_mismatch = true;
  auto aligned = RunAlignmentPass(*view.graph, view.profile, align, &view.table);
  if (!aligned.ok()) {
    return Status(aligned.status().code(), view.source + ": " + aligned.status().message());
  }
  result.alignment = std::move(aligned).value();

  // Groups with no flagged member keep every member's own params exactly (the pass may have
  // merged a producer with a consumer the model requantizes, or moved params by a rounding step);
  // the others take the group's new params.
  std::map<int32_t, Params> final_params;
  for (const std::vector<TQC*>& group : view.table.Groups()) {
    bool clean = true;
    for (const TQC* m : group) clean = clean && !flagged.count(m->id);
    for (const TQC* m : group) {
      auto it = imported.find(m->id);
      if (it == imported.end()) continue;
      if (clean || !IsJoinable(*m)) {
        final_params[m->id] = it->second;
      } else {
        final_params[m->id] = Params{view.table.scale(m), view.table.zero_point(m)};
      }
    }
  }
  result.alignment_report_json =
      AlignmentReportJson(view.profile.name, result.alignment, view.table, {});

  result.model = view.model;
  Rewriter rewriter(view, final_params, &result);
  QALIGN_RETURN_IF_ERROR(rewriter.Run());

  // Re-import the repaired model and check it again.
  QALIGN_ASSIGN_OR_RETURN(auto again, ImportQdqModel(result.model, DirName(view.source),
                                                     view.profile, import_options, view.source));
  result.after = CheckQdqModel(*again, options.alignment);
  return result;
}

std::string FixReportJson(const QdqModelView& view, const QdqFixResult& result,
                          const std::string& output_path) {
  json root;
  root["model"] = view.source;
  root["output"] = output_path;
  root["target"] = view.profile.name;
  json changes = json::array();
  int64_t activations = 0, requantizes = 0, constants = 0, biases = 0;
  double worst = 1.0;
  for (const QdqFixChange& c : result.changes) {
    json j = {{"kind", c.kind},
              {"tensor", c.tensor},
              {"nodes", c.nodes},
              {"old", {{"scale", c.old_scale}, {"zero_point", c.old_zero_point}}},
              {"new", {{"scale", c.new_scale}, {"zero_point", c.new_zero_point}}},
              {"resolution_cost", c.resolution_cost},
              {"reason", c.reason}};
    if (c.kind == "bias") j["bias_max_abs_change"] = c.bias_max_abs_change;
    changes.push_back(std::move(j));
    activations += c.kind == "activation";
    requantizes += c.kind == "requantize_added";
    constants += c.kind == "constant";
    biases += c.kind == "bias";
    if (c.kind != "bias") worst = std::max(worst, c.resolution_cost);
  }
  root["changes"] = std::move(changes);
  root["violations_before"] = ViolationsJson(result.before);
  root["violations_after"] = ViolationsJson(result.after);
  json alignment = json::parse(result.alignment_report_json, nullptr, false);
  if (!alignment.is_discarded()) root["alignment"] = std::move(alignment);
  root["summary"] = {{"violations_before", result.before.violations.size()},
                     {"violations_after", result.after.violations.size()},
                     {"activation_pairs_changed", activations},
                     {"requantize_pairs_added", requantizes},
                     {"constants_requantized", constants},
                     {"biases_rederived", biases},
                     {"worst_resolution_cost", worst}};
  return root.dump(2) + "\n";
}

Status SaveFixedModel(const onnx::ModelProto& model, const std::string& path,
                      const std::string& input_path) {
  if (SameFile(path, input_path)) {
    return InvalidArgumentError(path, ": refusing to overwrite the input model");
  }
  QALIGN_RETURN_IF_ERROR(CheckOnnxModel(model, path));
  std::string bytes;
  if (!model.SerializeToString(&bytes)) {
    return InternalError(path, ": could not serialize the repaired model");
  }
  return WriteFileAtomically(path, bytes, input_path);
}

}  // namespace qalign
