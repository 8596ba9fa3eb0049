// QDQ ONNX export (see qdq_export.h): edits the exporter's FP32 ModelProto by tensor name.
#include "export/qdq_export.h"

#include <onnx/checker.h>
#include <onnx/version_converter/convert.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/file_util.h"
#include "onnx/exporter.h"
#include "onnx/tensor_proto.h"

namespace qalign {
namespace {

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

// The key identifying an op across the proto edits: the name of its first output (SSA names are
// unique; node names may be empty).
std::string OpKey(const Operation& op) {
  for (const Variable* v : op.outputs()) {
    if (v != nullptr) return v->name();
  }
  return "";
}
std::string NodeKey(const onnx::NodeProto& node) {
  for (const std::string& o : node.output()) {
    if (!o.empty()) return o;
  }
  return "";
}

class QdqBuilder {
 public:
  QdqBuilder(const Graph& graph, const QuantPlan& plan, onnx::ModelProto* model)
      : graph_(graph), plan_(plan), model_(model), g_(model->mutable_graph()) {}

  Status Run(QdqExportStats* stats) {
    CollectNames();
    for (int i = 0; i < g_->node_size(); ++i) {
      const std::string key = NodeKey(g_->node(i));
      if (!key.empty()) node_of_key_[key] = i;
    }
    for (const ParameterPoint& p : plan_.parameters) QALIGN_RETURN_IF_ERROR(AddParameter(p, stats));
    // Producer points first, so requantize points can read their outputs.
    std::unordered_map<const Variable*, std::string> producer_out;
    for (const ActivationPoint& p : plan_.activations) {
      if (!p.producer_side) continue;
      QALIGN_ASSIGN_OR_RETURN(std::string out, AddProducerPoint(p));
      producer_out[p.tensor] = out;
      ++stats->activation_pairs;
    }
    for (const ActivationPoint& p : plan_.activations) {
      if (p.producer_side) continue;
      std::string source = p.tensor->name();
      if (p.requantize) {
        auto it = producer_out.find(p.tensor);
        if (it == producer_out.end()) {
          return InternalError("tensor '", p.tensor->name(), "': requantize without producer point");
        }
        source = it->second;
        ++stats->requantize_pairs;
      }
      QALIGN_ASSIGN_OR_RETURN(std::string out, AddQdq(source, p.tensor->name(), p.params, ""));
      QALIGN_RETURN_IF_ERROR(Rewire(p.tensor->name(), p.readers, out));
      ++stats->activation_pairs;
    }
    RemoveUnusedFloatParameters();
    if (uses_microsoft_domain_) ImportMicrosoftDomain();
    return SortNodes();
  }

 private:
  void CollectNames() {
    auto add = [&](const std::string& n) { if (!n.empty()) names_.insert(n); };
    for (const auto& n : g_->node()) {
      add(n.name());
      for (const auto& o : n.output()) add(o);
      for (const auto& i : n.input()) add(i);
    }
    for (const auto& i : g_->initializer()) add(i.name());
    for (const auto& i : g_->input()) add(i.name());
    for (const auto& o : g_->output()) add(o.name());
    for (const auto& v : g_->value_info()) add(v.name());
  }
  std::string Fresh(const std::string& base) {
    std::string name = base;
    for (int k = 1; names_.count(name); ++k) name = base + "_" + std::to_string(k);
    names_.insert(name);
    return name;
  }

  void AddInitializer(const Tensor& t, const std::string& name) {
    *g_->add_initializer() = TensorToProto(t, name);
  }

  // Adds scale / zero point initializers; returns their names.
  std::pair<std::string, std::string> AddScaleZeroPoint(const std::string& base, const QdqParams& p) {
    const std::string scale_name = Fresh(base + "_scale");
    const std::string zp_name = Fresh(base + "_zero_point");
    std::vector<int64_t> shape;
    if (p.per_channel()) shape = {static_cast<int64_t>(p.scale.size())};
    AddInitializer(Tensor::FromVector<float>(shape, p.scale), scale_name);
    Tensor zp(p.dtype, shape);
    for (size_t i = 0; i < p.zero_point.size(); ++i) {
      switch (p.dtype) {
        case DataType::kUint8: zp.data<uint8_t>()[i] = static_cast<uint8_t>(p.zero_point[i]); break;
        case DataType::kInt8: zp.data<int8_t>()[i] = static_cast<int8_t>(p.zero_point[i]); break;
        case DataType::kUint16: zp.data<uint16_t>()[i] = static_cast<uint16_t>(p.zero_point[i]); break;
        case DataType::kInt16: zp.data<int16_t>()[i] = static_cast<int16_t>(p.zero_point[i]); break;
        default: zp.data<int32_t>()[i] = static_cast<int32_t>(p.zero_point[i]); break;
      }
    }
    AddInitializer(zp, zp_name);
    return {scale_name, zp_name};
  }

  onnx::NodeProto* AddNode(const std::string& type, const std::string& name,
                           const std::vector<std::string>& inputs, const std::string& output,
                           const QdqParams& p) {
    onnx::NodeProto* node = g_->add_node();
    node->set_op_type(type);
    if (IsSixteenBit(p.dtype)) {
      // ONNX QuantizeLinear takes 16-bit types from opset 21 only; ONNX Runtime's contrib ops
      // take them at any opset, so the rest of the model keeps its opset.
      node->set_domain(kMicrosoftDomain);
      uses_microsoft_domain_ = true;
    }
    node->set_name(Fresh(name));
    for (const std::string& i : inputs) node->add_input(i);
    node->add_output(output);
    if (p.per_channel()) {
      onnx::AttributeProto* axis = node->add_attribute();
      axis->set_name("axis");
      axis->set_type(onnx::AttributeProto::INT);
      axis->set_i(p.axis);
    }
    return node;
  }

  // source -> QuantizeLinear -> DequantizeLinear -> returned name (or `output_name` when given).
  StatusOr<std::string> AddQdq(const std::string& source, const std::string& base,
                               const QdqParams& p, const std::string& output_name) {
    auto [scale, zp] = AddScaleZeroPoint(base, p);
    const std::string q = Fresh(base + "_quantized");
    const std::string dq = output_name.empty() ? Fresh(base + "_dequantized") : output_name;
    AddNode("QuantizeLinear", base + "_QuantizeLinear", {source, scale, zp}, q, p);
    AddNode("DequantizeLinear", base + "_DequantizeLinear", {q, scale, zp}, dq, p);
    return dq;
  }

  // Makes input `index` of each reader read `to` instead of `from`.
  Status Rewire(const std::string& from, const std::vector<Reader>& readers, const std::string& to) {
    for (const Reader& r : readers) {
      auto it = node_of_key_.find(OpKey(*r.op));
      onnx::NodeProto* node = it == node_of_key_.end() ? nullptr : g_->mutable_node(it->second);
      if (node != nullptr && r.index < node->input_size() && node->input(r.index) == from) {
        node->set_input(r.index, to);
        continue;
      }
      // The version converter may have put a helper node (e.g. Flatten before a Softmax) between
      // the tensor and the op; rewire the helper nodes that read `from` and belong to no op.
      bool done = false;
      for (int i = 0; i < g_->node_size(); ++i) {
        onnx::NodeProto* n = g_->mutable_node(i);
        if (original_keys().count(NodeKey(*n))) continue;
        for (int k = 0; k < n->input_size(); ++k) {
          if (n->input(k) == from) {
            n->set_input(k, to);
            done = true;
          }
        }
      }
      if (!done) {
        return InternalError(r.op->Describe(), ": input ", r.index, " (tensor '", from,
                             "') not found in the exported model");
      }
    }
    return Status::Ok();
  }

  const std::unordered_set<std::string>& original_keys() {
    if (original_keys_.empty()) {
      for (const Operation* op : graph_.operations()) original_keys_.insert(OpKey(*op));
    }
    return original_keys_;
  }

  StatusOr<std::string> AddProducerPoint(const ActivationPoint& p) {
    const std::string name = p.tensor->name();
    std::string source = name;
    std::string output_name;
    if (p.feeds_graph_output) {
      // Graph outputs keep their names: the producer writes a renamed tensor and the DQ writes
      // the output.
      source = Fresh(name + "_prequant");
      auto it = node_of_key_.find(OpKey(*p.tensor->producer()));
      bool renamed = false;
      for (int i = 0; i < g_->node_size(); ++i) {
        onnx::NodeProto* n = g_->mutable_node(i);
        for (int k = 0; k < n->output_size(); ++k) {
          if (n->output(k) == name) {
            n->set_output(k, source);
            renamed = true;
          }
        }
      }
      (void)it;
      if (!renamed) return InternalError("graph output '", name, "' has no producer in the export");
      // Raw readers (there are none besides the Q node when the producer is quantized).
      output_name = name;
    }
    QALIGN_ASSIGN_OR_RETURN(std::string out, AddQdq(source, name, p.params, output_name));
    if (!p.feeds_graph_output) QALIGN_RETURN_IF_ERROR(Rewire(name, p.readers, out));
    return out;
  }

  Status AddParameter(const ParameterPoint& p, QdqExportStats* stats) {
    const std::string name = p.tensor->name();
    const std::string what = StrCat("parameter '", name, "'");
    QALIGN_ASSIGN_OR_RETURN(Tensor q, QuantizeParameter(*p.tensor->data(), p.params, what));
    const std::string q_name = Fresh(name + "_quantized");
    AddInitializer(q, q_name);
    auto [scale, zp] = AddScaleZeroPoint(name, p.params);
    const std::string dq = Fresh(name + "_dequantized");
    AddNode("DequantizeLinear", name + "_DequantizeLinear", {q_name, scale, zp}, dq, p.params);
    QALIGN_RETURN_IF_ERROR(Rewire(name, p.readers, dq));
    orphan_candidates_.insert(name);
    if (p.params.dtype == DataType::kInt32) {
      ++stats->bias_initializers;
    } else {
      ++stats->weight_initializers;
    }
    return Status::Ok();
  }

  // A float parameter whose every reader now reads its quantized copy is dropped (initializer or
  // Constant node), so the file does not carry both.
  void RemoveUnusedFloatParameters() {
    std::unordered_set<std::string> used;
    for (const auto& n : g_->node()) {
      for (const auto& i : n.input()) used.insert(i);
    }
    for (const auto& o : g_->output()) used.insert(o.name());
    auto* inits = g_->mutable_initializer();
    for (int i = inits->size() - 1; i >= 0; --i) {
      const std::string& n = inits->Get(i).name();
      if (orphan_candidates_.count(n) && !used.count(n)) inits->DeleteSubrange(i, 1);
    }
    auto* nodes = g_->mutable_node();
    for (int i = nodes->size() - 1; i >= 0; --i) {
      const auto& n = nodes->Get(i);
      if (n.op_type() == "Constant" && n.output_size() == 1 && orphan_candidates_.count(n.output(0)) &&
          !used.count(n.output(0))) {
        nodes->DeleteSubrange(i, 1);
      }
    }
  }

  // Kahn's algorithm over names, ties broken by current position (new nodes sit at the end, so
  // each lands right after what it reads).
  Status SortNodes() {
    const int n = g_->node_size();
    std::unordered_map<std::string, int> producer;
    for (int i = 0; i < n; ++i) {
      for (const auto& o : g_->node(i).output()) {
        if (!o.empty()) producer[o] = i;
      }
    }
    std::vector<std::vector<int>> users(static_cast<size_t>(n));
    std::vector<int> pending(static_cast<size_t>(n), 0);
    for (int i = 0; i < n; ++i) {
      std::set<int> deps;
      std::vector<std::string> reads(g_->node(i).input().begin(), g_->node(i).input().end());
      CollectSubgraphReads(g_->node(i), &reads);
      for (const std::string& in : reads) {
        auto it = producer.find(in);
        if (it != producer.end() && it->second != i) deps.insert(it->second);
      }
      pending[static_cast<size_t>(i)] = static_cast<int>(deps.size());
      for (int d : deps) users[static_cast<size_t>(d)].push_back(i);
    }
    std::set<int> ready;
    for (int i = 0; i < n; ++i) {
      if (pending[static_cast<size_t>(i)] == 0) ready.insert(i);
    }
    std::vector<int> order;
    while (!ready.empty()) {
      const int i = *ready.begin();
      ready.erase(ready.begin());
      order.push_back(i);
      for (int u : users[static_cast<size_t>(i)]) {
        if (--pending[static_cast<size_t>(u)] == 0) ready.insert(u);
      }
    }
    if (static_cast<int>(order.size()) != n) {
      return InternalError("QDQ export: the edited model has a cycle");
    }
    google::protobuf::RepeatedPtrField<onnx::NodeProto> sorted;
    for (int i : order) *sorted.Add() = g_->node(i);
    g_->mutable_node()->Swap(&sorted);
    return Status::Ok();
  }

  static void CollectSubgraphReads(const onnx::NodeProto& node, std::vector<std::string>* reads) {
    for (const auto& a : node.attribute()) {
      auto visit = [&](const onnx::GraphProto& sub) {
        for (const auto& n : sub.node()) {
          for (const auto& i : n.input()) reads->push_back(i);
          CollectSubgraphReads(n, reads);
        }
      };
      if (a.has_g()) visit(a.g());
      for (const auto& sub : a.graphs()) visit(sub);
    }
  }

  void ImportMicrosoftDomain() {
    for (const auto& o : model_->opset_import()) {
      if (o.domain() == kMicrosoftDomain) return;
    }
    onnx::OperatorSetIdProto* opset = model_->add_opset_import();
    opset->set_domain(kMicrosoftDomain);
    opset->set_version(1);
  }

  static constexpr const char* kMicrosoftDomain = "com.microsoft";

  const Graph& graph_;
  const QuantPlan& plan_;
  onnx::ModelProto* model_;
  bool uses_microsoft_domain_ = false;
  onnx::GraphProto* g_;
  std::unordered_set<std::string> names_;
  std::unordered_map<std::string, int> node_of_key_;
  std::unordered_set<std::string> original_keys_;
  std::unordered_set<std::string> orphan_candidates_;
};

// Lists the type and shape of every intermediate tensor qalign knows, so the version converter's
// adapters that need shapes (Softmax 12 -> 13 with a non-last axis) have them.
void AddValueInfo(const Graph& graph, const TensorShapes* observed, onnx::ModelProto* model) {
  std::unordered_set<std::string> listed;
  onnx::GraphProto* g = model->mutable_graph();
  for (const auto& v : g->value_info()) listed.insert(v.name());
  for (const auto& v : g->input()) listed.insert(v.name());
  for (const auto& v : g->output()) listed.insert(v.name());
  for (const auto& v : g->initializer()) listed.insert(v.name());
  for (const Variable* v : graph.variables()) {
    if (v->is_parameter() || v->producer() == nullptr || listed.count(v->name())) continue;
    if (v->dtype() == DataType::kUndefined) continue;
    Shape known = v->shape();
    if (observed != nullptr && !known.fully_known()) {
      auto it = observed->find(v->name());
      if (it != observed->end()) known = Shape::Of(it->second);
    }
    if (!known.rank_known) continue;
    onnx::ValueInfoProto* info = g->add_value_info();
    info->set_name(v->name());
    onnx::TypeProto_Tensor* type = info->mutable_type()->mutable_tensor_type();
    type->set_elem_type(static_cast<int32_t>(v->dtype()));
    onnx::TensorShapeProto* shape = type->mutable_shape();
    for (const Dim& d : known.dims) {
      onnx::TensorShapeProto_Dimension* dim = shape->add_dim();
      if (d.known()) {
        dim->set_dim_value(d.value);
      } else if (!d.param.empty()) {
        dim->set_dim_param(d.param);
      }
    }
  }
}

// Rewrites every decomposed HardSwish of the exported graph,
//   x -> Add(x, 3) -> Clip(0, 6) -> Mul(x, .) -> Div(., 6)   (or Mul(., 1/6) last),
// whose interior tensors nothing else reads, into one HardSwish(x) (opset 14) writing the last
// op's output. The interior carries no Q/DQ (activation_patterns.h marks it OVERLAPPED), so the
// two forms compute the same function: x * min(max(x + 3, 0), 6) / 6 = HardSwish(x). Returns how
// many it rewrote; call it at opset 14 or later.
class HardSwishRewriter {
 public:
  explicit HardSwishRewriter(onnx::GraphProto* g) : g_(g) {
    for (const auto& t : g_->initializer()) initializers_[t.name()] = &t;
    for (int i = 0; i < g_->node_size(); ++i) {
      const auto& n = g_->node(i);
      if (n.op_type() == "Constant" && n.output_size() == 1) {
        for (const auto& a : n.attribute()) {
          if (a.name() == "value" && a.has_t()) initializers_[n.output(0)] = &a.t();
        }
      }
      for (const auto& o : n.output()) producer_[o] = i;
      for (const auto& in : n.input()) readers_[in].push_back(i);
    }
    for (const auto& o : g_->output()) graph_outputs_.insert(o.name());
  }

  int64_t Run() {
    std::set<int> removed;
    std::map<int, onnx::NodeProto> added;  // by the index of the op it replaces last
    for (int i = 0; i < g_->node_size(); ++i) {
      std::vector<int> chain;
      std::string x, out;
      if (!Match(i, &chain, &x, &out)) continue;
      bool free = true;
      for (int c : chain) free = free && !removed.count(c);
      if (!free) continue;
      removed.insert(chain.begin(), chain.end());
      for (int c : chain) {
        for (const auto& in : g_->node(c).input()) {
          if (initializers_.count(in)) removed_constants_.insert(in);
        }
      }
      onnx::NodeProto hs;
      hs.set_op_type("HardSwish");
      hs.set_name(g_->node(chain.back()).name().empty() ? out + "_hardswish"
                                                        : g_->node(chain.back()).name());
      hs.add_input(x);
      hs.add_output(out);
      added[chain.back()] = std::move(hs);
    }
    if (removed.empty()) return 0;
    // HardSwish takes the place of the chain's last op: after x's producer, before every reader
    // of the output, so the node list stays topologically sorted.
    google::protobuf::RepeatedPtrField<onnx::NodeProto> kept;
    for (int i = 0; i < g_->node_size(); ++i) {
      if (!removed.count(i)) {
        *kept.Add() = g_->node(i);
      } else if (added.count(i)) {
        *kept.Add() = std::move(added[i]);
      }
    }
    g_->mutable_node()->Swap(&kept);
    // The constants 3, 0, 6 (initializers or Constant nodes) that only the rewritten ops read.
    std::unordered_set<std::string> used;
    for (const auto& n : g_->node()) {
      for (const auto& in : n.input()) used.insert(in);
    }
    for (const auto& o : g_->output()) used.insert(o.name());
    auto* inits = g_->mutable_initializer();
    for (int i = inits->size() - 1; i >= 0; --i) {
      const std::string& name = inits->Get(i).name();
      if (removed_constants_.count(name) && !used.count(name)) inits->DeleteSubrange(i, 1);
    }
    auto* nodes = g_->mutable_node();
    for (int i = nodes->size() - 1; i >= 0; --i) {
      const auto& n = nodes->Get(i);
      if (n.op_type() == "Constant" && n.output_size() == 1 &&
          removed_constants_.count(n.output(0)) && !used.count(n.output(0))) {
        nodes->DeleteSubrange(i, 1);
      }
    }
    return static_cast<int64_t>(added.size());
  }

 private:
  std::optional<float> Scalar(const std::string& name) const {
    auto it = initializers_.find(name);
    if (it == initializers_.end()) return std::nullopt;
    auto t = TensorFromProto(*it->second, "");
    if (!t.ok() || t->num_elements() != 1 || t->dtype() != DataType::kFloat) return std::nullopt;
    return t->values<float>()[0];
  }
  static bool Near(std::optional<float> v, double expected) {
    return v.has_value() && std::fabs(*v - expected) <= 1e-6 * std::max(1.0, std::fabs(expected));
  }
  // The single node reading `tensor` (not a graph output), or -1.
  int OnlyReader(const std::string& tensor) const {
    if (graph_outputs_.count(tensor)) return -1;
    auto it = readers_.find(tensor);
    return it != readers_.end() && it->second.size() == 1 ? it->second[0] : -1;
  }
  bool IsOp(int i, const char* type, int inputs) const {
    return i >= 0 && g_->node(i).op_type() == type && g_->node(i).input_size() == inputs &&
           g_->node(i).output_size() == 1 &&
           (g_->node(i).domain().empty() || g_->node(i).domain() == "ai.onnx");
  }

  bool Match(int add, std::vector<int>* chain, std::string* x, std::string* out) const {
    if (!IsOp(add, "Add", 2)) return false;
    const auto& a = g_->node(add);
    if (Near(Scalar(a.input(1)), 3.0)) {
      *x = a.input(0);
    } else if (Near(Scalar(a.input(0)), 3.0)) {
      *x = a.input(1);
    } else {
      return false;
    }
    const int clip = OnlyReader(a.output(0));
    if (!IsOp(clip, "Clip", 3) || g_->node(clip).input(0) != a.output(0) ||
        !Near(Scalar(g_->node(clip).input(1)), 0.0) || !Near(Scalar(g_->node(clip).input(2)), 6.0)) {
      return false;
    }
    const int mul = OnlyReader(g_->node(clip).output(0));
    if (!IsOp(mul, "Mul", 2)) return false;
    const auto& m = g_->node(mul);
    const std::string& gate = g_->node(clip).output(0);
    if (!((m.input(0) == gate && m.input(1) == *x) || (m.input(1) == gate && m.input(0) == *x))) {
      return false;
    }
    const int last = OnlyReader(m.output(0));
    if (last < 0 || g_->node(last).input(0) != m.output(0)) return false;
    const bool divide = IsOp(last, "Div", 2) && Near(Scalar(g_->node(last).input(1)), 6.0);
    const bool multiply = IsOp(last, "Mul", 2) && Near(Scalar(g_->node(last).input(1)), 1.0 / 6.0);
    if (!divide && !multiply) return false;
    *chain = {add, clip, mul, last};
    *out = g_->node(last).output(0);
    return true;
  }

  onnx::GraphProto* g_;
  std::unordered_map<std::string, const onnx::TensorProto*> initializers_;
  std::unordered_map<std::string, int> producer_;
  std::unordered_map<std::string, std::vector<int>> readers_;
  std::unordered_set<std::string> graph_outputs_;
  std::unordered_set<std::string> removed_constants_;
};

bool HasDecomposedHardSwish(const onnx::ModelProto& model) {
  onnx::ModelProto copy;
  *copy.mutable_graph() = model.graph();
  return HardSwishRewriter(copy.mutable_graph()).Run() > 0;
}

int64_t DefaultOpset(const onnx::ModelProto& model) {
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") return o.version();
  }
  return 0;
}

}  // namespace

Status CheckOnnxModel(const onnx::ModelProto& model, const std::string& what) {
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return InvalidArgumentError(what, ": ONNX checker: ", FirstLine(e.what()));
  }
  return Status::Ok();
}

StatusOr<onnx::ModelProto> ExportQdqModel(const Graph& graph, const QuantPlan& plan,
                                          QdqExportStats* stats,
                                          const TensorShapes* observed_shapes,
                                          const QdqExportOptions& options) {
  QdqExportStats local;
  if (stats == nullptr) stats = &local;
  *stats = QdqExportStats{};
  QALIGN_ASSIGN_OR_RETURN(onnx::ModelProto model, ExportOnnxModel(graph));
  stats->source_opset = DefaultOpset(model);
  auto convert = [&](int64_t to) -> Status {
    try {
      model = onnx::version_conversion::ConvertVersion(model, static_cast<int>(to));
    } catch (const std::exception& e) {
      return UnimplementedError("QDQ export: converting opset ", DefaultOpset(model), " to ", to,
                                " failed: ", FirstLine(e.what()));
    }
    if (model.ir_version() < 7) model.set_ir_version(7);
    return Status::Ok();
  };
  if (stats->source_opset < kQdqMinOpset) {
    // ONNX's converter rewrites the ops whose signature changed up to 13.
    AddValueInfo(graph, observed_shapes, &model);
    QALIGN_RETURN_IF_ERROR(convert(kQdqMinOpset));
  }
  // HardSwish exists from opset 14 on: convert that far only when there is one to write (after
  // the step to 13, where Clip's bounds are inputs the pattern can read).
  if (options.hardswish_op && DefaultOpset(model) < 14 && HasDecomposedHardSwish(model)) {
    QALIGN_RETURN_IF_ERROR(convert(14));
  }
  stats->opset = DefaultOpset(model);
  QdqBuilder builder(graph, plan, &model);
  QALIGN_RETURN_IF_ERROR(builder.Run(stats));
  if (options.hardswish_op && stats->opset >= 14) {
    stats->hardswish_ops = HardSwishRewriter(model.mutable_graph()).Run();
  }
  model.set_producer_name("qalign");
  QALIGN_RETURN_IF_ERROR(CheckOnnxModel(model, "QDQ export"));
  return model;
}

Status SaveQdqModel(const Graph& graph, const QuantPlan& plan, const std::string& path,
                    const std::string& protect_input_path, QdqExportStats* stats,
                    const TensorShapes* observed_shapes, const QdqExportOptions& options) {
  QALIGN_ASSIGN_OR_RETURN(onnx::ModelProto model,
                          ExportQdqModel(graph, plan, stats, observed_shapes, options));
  std::string bytes;
  if (!model.SerializeToString(&bytes)) return IoError(path, ": cannot serialize the QDQ model");
  return WriteFileAtomically(path, bytes, protect_input_path);
}

}  // namespace qalign
