// ImportQdqModel: QDQ ONNX -> float-view Graph + QuantConfigTable holding the model's own params.
#include "qdq/qdq_import.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/file_util.h"
#include "onnx/tensor_proto.h"
#include "quant/dispatch.h"

namespace qalign {

bool ImportedParams::SameAs(const ImportedParams& o) const {
  return scale == o.scale && zero_point == o.zero_point;
}

std::string ImportedParams::ToString() const {
  if (scale.size() != 1) return StrCat("per-channel x", scale.size());
  return StrCat("(", scale[0], ", ", zero_point.empty() ? 0 : zero_point[0], ")");
}

bool IsQOperatorType(const std::string& op_type) {
  static const std::unordered_set<std::string> kTypes = {
      "ConvInteger",   "MatMulInteger",        "QGemm",         "DynamicQuantizeLinear",
      "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QAttention", "QEmbedLayerNormalization",
      "QOrderedMatMul"};
  return op_type.rfind("QLinear", 0) == 0 || kTypes.count(op_type) > 0;
}

namespace {

bool IsDefaultOrMs(const std::string& domain) {
  return domain.empty() || domain == "ai.onnx" || domain == "com.microsoft";
}
bool IsQ(const onnx::NodeProto& n) {
  return n.op_type() == "QuantizeLinear" && IsDefaultOrMs(n.domain());
}
bool IsDq(const onnx::NodeProto& n) {
  return n.op_type() == "DequantizeLinear" && IsDefaultOrMs(n.domain());
}

// Integer range of a quantized element type.
bool RangeOf(int32_t elem_type, int64_t* qmin, int64_t* qmax) {
  switch (elem_type) {
    case onnx::TensorProto::INT8: *qmin = -128; *qmax = 127; return true;
    case onnx::TensorProto::UINT8: *qmin = 0; *qmax = 255; return true;
    case onnx::TensorProto::INT16: *qmin = -32768; *qmax = 32767; return true;
    case onnx::TensorProto::UINT16: *qmin = 0; *qmax = 65535; return true;
    case onnx::TensorProto::INT32:
      *qmin = std::numeric_limits<int32_t>::min();
      *qmax = std::numeric_limits<int32_t>::max();
      return true;
    default: return false;
  }
}

class Importer {
 public:
  Importer(const onnx::ModelProto& model, const std::string& base_dir, const std::string& source)
      : model_(model), base_dir_(base_dir), source_(source) {
    const auto& g = model.graph();
    for (int k = 0; k < g.node_size(); ++k) {
      for (const auto& o : g.node(k).output()) {
        if (!o.empty()) producer_[o] = k;
      }
      for (int i = 0; i < g.node(k).input_size(); ++i) {
        if (!g.node(k).input(i).empty()) readers_[g.node(k).input(i)].push_back(k);
      }
    }
    for (const auto& t : g.initializer()) initializer_[t.name()] = &t;
    for (const auto& o : g.output()) graph_outputs_.insert(o.name());
  }

  // A constant's value (initializer or Constant node), nullopt when the name is not constant.
  StatusOr<std::optional<Tensor>> Constant(const std::string& name) const {
    if (auto it = initializer_.find(name); it != initializer_.end()) {
      QALIGN_ASSIGN_OR_RETURN(Tensor t, TensorFromProto(*it->second, base_dir_));
      return std::optional<Tensor>(std::move(t));
    }
    auto p = producer_.find(name);
    if (p == producer_.end()) return std::optional<Tensor>();
    const onnx::NodeProto& n = model_.graph().node(p->second);
    if (n.op_type() != "Constant") return std::optional<Tensor>();
    for (const auto& a : n.attribute()) {
      if (a.name() == "value" && a.has_t()) {
        QALIGN_ASSIGN_OR_RETURN(Tensor t, TensorFromProto(a.t(), base_dir_));
        return std::optional<Tensor>(std::move(t));
      }
    }
    return std::optional<Tensor>();
  }
  bool IsConstant(const std::string& name) const {
    if (initializer_.count(name)) return true;
    auto p = producer_.find(name);
    return p != producer_.end() && model_.graph().node(p->second).op_type() == "Constant";
  }

  std::string Describe(int k) const {
    const auto& n = model_.graph().node(k);
    return StrCat(n.op_type(), " '", n.name().empty() ? StrCat("#", k) : n.name(), "'");
  }

  // The scale / zero point (and axis) of a Q or DQ node.
  StatusOr<ImportedParams> ParamsOf(int k) const {
    const auto& n = model_.graph().node(k);
    ImportedParams p;
    if (n.input_size() < 2 || n.input(1).empty()) {
      return InvalidArgumentError(source_, ": ", Describe(k), " has no scale input");
    }
    QALIGN_ASSIGN_OR_RETURN(std::optional<Tensor> scale, Constant(n.input(1)));
    if (!scale) {
      return InvalidArgumentError(source_, ": ", Describe(k), ": scale '", n.input(1),
                                  "' is not a constant; qalign reads static Q/DQ params only");
    }
    QALIGN_ASSIGN_OR_RETURN(p.scale, scale->AsFloats());
    p.elem_type = onnx::TensorProto::UINT8;  // the default when the zero point is omitted
    if (n.input_size() > 2 && !n.input(2).empty()) {
      QALIGN_ASSIGN_OR_RETURN(std::optional<Tensor> zp, Constant(n.input(2)));
      if (!zp) {
        return InvalidArgumentError(source_, ": ", Describe(k), ": zero point '", n.input(2),
                                    "' is not a constant");
      }
      QALIGN_ASSIGN_OR_RETURN(p.zero_point, zp->AsInt64s());
      p.elem_type = static_cast<int32_t>(zp->dtype());
    } else {
      p.zero_point.assign(p.scale.size(), 0);
    }
    if (p.scale.empty() || p.scale.size() != p.zero_point.size()) {
      return InvalidArgumentError(source_, ": ", Describe(k), ": ", p.scale.size(), " scales but ",
                                  p.zero_point.size(), " zero points");
    }
    for (float s : p.scale) {
      if (!(s > 0.0f) || !std::isfinite(s)) {
        return InvalidArgumentError(source_, ": ", Describe(k), ": scale ", s,
                                    " is not a positive finite number");
      }
    }
    for (const auto& a : n.attribute()) {
      if (a.name() == "axis") p.axis = static_cast<int>(a.i());
    }
    if (IsDq(n)) {
      p.dq_node = k;
      // A DQ of a constant: the element type is the constant's.
      if (IsConstant(n.input(0))) {
        QALIGN_ASSIGN_OR_RETURN(std::optional<Tensor> x, Constant(n.input(0)));
        p.elem_type = static_cast<int32_t>(x->dtype());
      }
    } else {
      p.q_node = k;
    }
    return p;
  }

  StatusOr<std::unique_ptr<QdqModelView>> Run(const TargetProfile& profile,
                                              const ImportOptions& options) {
    const auto& g = model_.graph();
    auto view = std::make_unique<QdqModelView>();
    view->model = model_;
    view->source = source_;
    view->profile = profile;

    // QOperator models are a different format: refuse them up front.
    for (int k = 0; k < g.node_size(); ++k) {
      if (IsQOperatorType(g.node(k).op_type())) {
        return InvalidArgumentError(
            source_, ": ", Describe(k),
            " is a QOperator node; qalign check/fix read QDQ models only (QuantizeLinear / "
            "DequantizeLinear around float ops); export the model in QDQ format");
      }
    }

    // Q nodes: every reader must be a DequantizeLinear.
    std::unordered_map<std::string, std::string> alias;  // removed name -> float-view name
    for (int k = 0; k < g.node_size(); ++k) {
      const auto& n = g.node(k);
      if (!IsQ(n)) continue;
      if (n.output_size() < 1 || n.input_size() < 1) {
        return InvalidArgumentError(source_, ": ", Describe(k), " has no input or output");
      }
      const std::string& out = n.output(0);
      if (graph_outputs_.count(out)) {
        return InvalidArgumentError(source_, ": ", Describe(k), " output '", out,
                                    "' is a graph output (an integer output); not supported");
      }
      for (int r : readers_[out]) {
        if (!IsDq(g.node(r))) {
          return InvalidArgumentError(source_, ": ", Describe(k), " output '", out, "' is read by ",
                                      Describe(r), ", not a DequantizeLinear; not supported");
        }
      }
    }
    // DQ nodes: constants become float initializers, activations alias the Q's input.
    std::vector<onnx::TensorProto> float_constants;
    std::unordered_set<int> removed;
    for (int k = 0; k < g.node_size(); ++k) {
      const auto& n = g.node(k);
      if (IsQ(n)) {
        removed.insert(k);
        continue;
      }
      if (!IsDq(n)) continue;
      removed.insert(k);
      if (n.input_size() < 2 || n.output_size() < 1) {
        return InvalidArgumentError(source_, ": ", Describe(k), " needs x, scale and an output");
      }
      const std::string& x = n.input(0);
      if (IsConstant(x)) {
        QALIGN_ASSIGN_OR_RETURN(ImportedParams p, ParamsOf(k));
        QALIGN_ASSIGN_OR_RETURN(std::optional<Tensor> q, Constant(x));
        QALIGN_ASSIGN_OR_RETURN(Tensor f, Dequantize(*q, p, k));
        float_constants.push_back(TensorToProto(f, n.output(0)));
        ++view->stats.constant_dqs;
        continue;
      }
      auto p = producer_.find(x);
      if (p == producer_.end() || !IsQ(g.node(p->second))) {
        return InvalidArgumentError(source_, ": ", Describe(k), " reads '", x,
                                    "', which is neither a constant nor a QuantizeLinear output; "
                                    "not supported");
      }
      alias[n.output(0)] = g.node(p->second).input(0);
      const auto& qin = g.node(p->second).input(0);
      auto pp = producer_.find(qin);
      if (pp != producer_.end() && IsDq(g.node(pp->second))) {
        ++view->stats.requantize_pairs;
      } else {
        ++view->stats.activation_pairs;
      }
    }
    auto resolve = [&alias](std::string name) {
      for (int guard = 0; guard < 64; ++guard) {
        auto it = alias.find(name);
        if (it == alias.end()) break;
        name = it->second;
      }
      return name;
    };

    // The float view.
    onnx::ModelProto fv = model_;
    onnx::GraphProto* fg = fv.mutable_graph();
    fg->clear_node();
    fg->clear_output();
    fg->clear_value_info();
    std::set<std::string> names;
    for (const auto& n : g.node()) {
      if (!n.name().empty()) names.insert(n.name());
    }
    std::set<std::string> used_names;
    for (int k = 0; k < g.node_size(); ++k) {
      if (removed.count(k)) continue;
      onnx::NodeProto node = g.node(k);
      for (int i = 0; i < node.input_size(); ++i) {
        if (!node.input(i).empty()) node.set_input(i, resolve(node.input(i)));
      }
      std::string name = node.name();
      if (name.empty() || used_names.count(name)) {
        std::string base = StrCat(node.op_type(), "_qalign_", k);
        name = base;
        for (int c = 1; names.count(name) || used_names.count(name); ++c) name = StrCat(base, "_", c);
        node.set_name(name);
      }
      used_names.insert(name);
      view->node_index[name] = k;
      *fg->add_node() = std::move(node);
    }
    for (auto& t : float_constants) *fg->add_initializer() = std::move(t);
    std::set<std::string> outputs_seen;
    for (const auto& o : g.output()) {
      onnx::ValueInfoProto info = o;
      info.set_name(resolve(o.name()));
      if (outputs_seen.insert(info.name()).second) *fg->add_output() = std::move(info);
    }
    for (const auto& vi : g.value_info()) {
      if (alias.count(vi.name())) continue;
      auto p = producer_.find(vi.name());
      if (p != producer_.end() && removed.count(p->second)) continue;
      *fg->add_value_info() = vi;
    }
    QALIGN_ASSIGN_OR_RETURN(view->graph,
                            ImportOnnxModelFromProto(fv, base_dir_, options, source_));
    QALIGN_RETURN_IF_ERROR(DispatchQuantization(*view->graph, profile, &view->table).status());
    QALIGN_RETURN_IF_ERROR(AttachParams(view.get()));
    return view;
  }

 private:
  // (q - zp) * scale, per channel along p.axis when there are several scales.
  StatusOr<Tensor> Dequantize(const Tensor& q, const ImportedParams& p, int k) const {
    QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> ints, q.AsInt64s());
    Tensor f(DataType::kFloat, q.shape());
    auto out = f.values<float>();
    if (p.scale.size() == 1) {
      for (size_t i = 0; i < ints.size(); ++i) {
        out[i] = static_cast<float>(ints[i] - p.zero_point[0]) * p.scale[0];
      }
      return f;
    }
    int axis = p.axis < 0 ? p.axis + static_cast<int>(q.rank()) : p.axis;
    if (axis < 0 || axis >= q.rank() || q.shape()[axis] != static_cast<int64_t>(p.scale.size())) {
      return InvalidArgumentError(source_, ": ", Describe(k), ": ", p.scale.size(),
                                  " scales do not match axis ", p.axis, " of shape ",
                                  ShapeToString(q.shape()));
    }
    int64_t inner = 1;
    for (int64_t d = axis + 1; d < q.rank(); ++d) inner *= q.shape()[d];
    const int64_t channels = q.shape()[axis];
    for (size_t i = 0; i < ints.size(); ++i) {
      const size_t c = static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels);
      out[i] = static_cast<float>(ints[i] - p.zero_point[c]) * p.scale[c];
    }
    return f;
  }

  // The Q/DQ params the model applies at input `i` of node k (nullopt: not quantized there).
  StatusOr<std::optional<ImportedParams>> InputParams(int k, int i) const {
    const auto& n = model_.graph().node(k);
    if (i >= n.input_size() || n.input(i).empty()) return std::optional<ImportedParams>();
    auto p = producer_.find(n.input(i));
    if (p == producer_.end() || !IsDq(model_.graph().node(p->second))) {
      return std::optional<ImportedParams>();
    }
    QALIGN_ASSIGN_OR_RETURN(ImportedParams params, ParamsOf(p->second));
    const auto& dq = model_.graph().node(p->second);
    if (auto q = producer_.find(dq.input(0)); q != producer_.end() && IsQ(model_.graph().node(q->second))) {
      params.q_node = q->second;
      // The element type of an activation pair is the Q's output type (its zero point's).
      QALIGN_ASSIGN_OR_RETURN(ImportedParams qp, ParamsOf(q->second));
      params.elem_type = qp.elem_type;
    }
    return std::optional<ImportedParams>(std::move(params));
  }

  // The first QuantizeLinear reading output `j` of node k.
  StatusOr<std::optional<ImportedParams>> OutputParams(int k, int j) const {
    const auto& n = model_.graph().node(k);
    if (j >= n.output_size() || n.output(j).empty()) return std::optional<ImportedParams>();
    auto r = readers_.find(n.output(j));
    if (r == readers_.end()) return std::optional<ImportedParams>();
    for (int reader : r->second) {
      if (!IsQ(model_.graph().node(reader))) continue;
      QALIGN_ASSIGN_OR_RETURN(ImportedParams params, ParamsOf(reader));
      return std::optional<ImportedParams>(std::move(params));
    }
    return std::optional<ImportedParams>();
  }

  // The range the params represent under a scheme (see the header).
  static void RangeFromParams(const QuantScheme& scheme, float scale, int64_t zp, float* lo,
                              float* hi) {
    if (scheme.policy.Has(kSymmetric)) {
      const double h = static_cast<double>(std::min(zp - scheme.quant_min, scheme.quant_max - zp));
      *lo = static_cast<float>(-h * scale);
      *hi = static_cast<float>(h * scale);
    } else {
      *lo = static_cast<float>(static_cast<double>(scheme.quant_min - zp) * scale);
      *hi = static_cast<float>(static_cast<double>(scheme.quant_max - zp) * scale);
    }
  }

  Status AttachParams(QdqModelView* view) {
    QuantConfigTable& table = view->table;
    for (Operation* op : view->graph->operations()) {
      const OperationQuantConfig* config = table.FindOp(op);
      if (config == nullptr) continue;
      auto idx = view->node_index.find(op->name());
      if (idx == view->node_index.end()) continue;
      const int k = idx->second;
      auto attach = [&](TQC* t, std::optional<ImportedParams> p) {
        if (t == nullptr) return;
        const bool quantized = IsQuantizedState(t->state) && t->state != QuantState::kOverlapped;
        if (!p) {
          if (quantized) {
            t->state = QuantState::kFp32;
            ++view->stats.unquantized_tqcs;
          }
          return;
        }
        if (!quantized) return;  // the target leaves it float; the model's Q/DQ is kept as is
        if (t->role == TensorRole::kActivation && p->per_channel()) {
          view->notes.push_back(StrCat(DescribeTqc(*t), ": per-channel activation params; left as is"));
          t->state = QuantState::kFp32;
          return;
        }
        int64_t qmin = 0, qmax = 0;
        if (t->role != TensorRole::kBias && RangeOf(p->elem_type, &qmin, &qmax) &&
            (qmin != t->scheme.quant_min || qmax != t->scheme.quant_max)) {
          const bool sixteen = p->elem_type == onnx::TensorProto::INT16 ||
                               p->elem_type == onnx::TensorProto::UINT16;
          if (t->role == TensorRole::kActivation && sixteen && view->profile.activation16 &&
              view->profile.activation16->quant_min == qmin &&
              view->profile.activation16->quant_max == qmax) {
            t->scheme = *view->profile.activation16;  // the target's 16-bit scheme
          } else if (t->role == TensorRole::kActivation) {
            if (scheme_mismatches_++ == 0) {
              first_mismatch_ = StrCat(DescribeTqc(*t), ": the model quantizes it to [", qmin,
                                       ", ", qmax, "], the target to [", t->scheme.quant_min,
                                       ", ", t->scheme.quant_max, "]");
            }
            t->scheme.quant_min = qmin;
            t->scheme.quant_max = qmax;
            t->scheme.num_bits = sixteen ? 16 : 8;
          } else {
            t->scheme.quant_min = qmin;
            t->scheme.quant_max = qmax;
          }
        }
        t->scale = p->scale;
        t->zero_point = p->zero_point;
        t->state = QuantState::kActivated;
        if (!p->per_channel()) {
          float lo = 0.0f, hi = 0.0f;
          RangeFromParams(t->scheme, p->scale[0], p->zero_point[0], &lo, &hi);
          t->stats.has_range = true;
          t->stats.min = lo;
          t->stats.max = hi;
        }
        view->imported[t->id] = std::move(*p);
        ++view->stats.imported_tqcs;
      };
      for (size_t i = 0; i < config->inputs.size(); ++i) {
        QALIGN_ASSIGN_OR_RETURN(auto p, InputParams(k, static_cast<int>(i)));
        attach(config->inputs[i], std::move(p));
      }
      for (size_t j = 0; j < config->outputs.size(); ++j) {
        QALIGN_ASSIGN_OR_RETURN(auto p, OutputParams(k, static_cast<int>(j)));
        attach(config->outputs[j], std::move(p));
      }
    }
    if (scheme_mismatches_ > 0) {
      view->notes.push_back(StrCat(scheme_mismatches_, " activation ports use another integer range ",
                                   "than the target's (kept as in the model), first: ",
                                   first_mismatch_));
    }
    // Edges where the model requantizes: the consumer reads params other than its producer's.
    for (const auto& [id, params] : view->imported) {
      const TQC* c = table.Get(id);
      if (!c->port.is_input || c->role != TensorRole::kActivation) continue;
      const Variable* t = c->port.tensor;
      if (t == nullptr || t->producer() == nullptr) continue;
      const OperationQuantConfig* pc = table.FindOp(t->producer());
      if (pc == nullptr) continue;
      const size_t pi = static_cast<size_t>(t->producer_index());
      const TQC* p = pi < pc->outputs.size() ? pc->outputs[pi] : nullptr;
      if (p == nullptr) continue;
      auto it = view->imported.find(p->id);
      if (it != view->imported.end() && !it->second.SameAs(params)) {
        view->requantized_inputs.push_back(id);
      }
    }
    return Status::Ok();
  }

  const onnx::ModelProto& model_;
  std::string base_dir_;
  std::string source_;
  std::unordered_map<std::string, int> producer_;
  std::unordered_map<std::string, std::vector<int>> readers_;
  std::unordered_map<std::string, const onnx::TensorProto*> initializer_;
  std::unordered_set<std::string> graph_outputs_;
  int64_t scheme_mismatches_ = 0;
  std::string first_mismatch_;
};

}  // namespace

std::string QdqModelView::ModelTensorName(const TQC& tqc) const {
  auto idx = node_index.find(tqc.port.op->name());
  if (idx == node_index.end()) return tqc.port.tensor ? tqc.port.tensor->name() : "";
  const auto& n = model.graph().node(idx->second);
  if (tqc.port.is_input) {
    return tqc.port.index < n.input_size() ? n.input(tqc.port.index) : "";
  }
  return tqc.port.index < n.output_size() ? n.output(tqc.port.index) : "";
}

StatusOr<std::unique_ptr<QdqModelView>> ImportQdqModel(const onnx::ModelProto& model,
                                                       const std::string& base_dir,
                                                       const TargetProfile& profile,
                                                       const ImportOptions& options,
                                                       const std::string& source) {
  return Importer(model, base_dir, source).Run(profile, options);
}

StatusOr<std::unique_ptr<QdqModelView>> ImportQdqModelFile(const std::string& path,
                                                           const TargetProfile& profile,
                                                           const ImportOptions& options) {
  QALIGN_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  if (bytes.empty()) return InvalidArgumentError(path, ": empty file, not an ONNX model");
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return InvalidArgumentError(path, ": larger than a protobuf file can be (2 GiB)");
  }
  onnx::ModelProto model;
  google::protobuf::io::ArrayInputStream raw(bytes.data(), static_cast<int>(bytes.size()));
  google::protobuf::io::CodedInputStream coded(&raw);
  coded.SetTotalBytesLimit(std::numeric_limits<int>::max());
  if (!model.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage()) {
    return InvalidArgumentError(path, ": not a valid ONNX model (protobuf parse failed)");
  }
  return ImportQdqModel(model, DirName(path), profile, options, path);
}

}  // namespace qalign
