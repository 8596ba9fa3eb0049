// Dispatch: decides, for a graph and a target profile, the role, scheme and state of every port.
#include "quant/dispatch.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "quant/activation_patterns.h"
#include "quant/op_kinds.h"

namespace qalign {

namespace {

// ---------------------------------------------------------------- op kinds (quant/op_kinds.h)

bool ReadsOnlyShape(const std::string& op_type) { return IsOpKind(op_type, kReadsOnlyShape); }

bool IsShapeArithmetic(const std::string& op_type) {
  return IsOpKind(op_type, kShapeArithmetic);
}

bool IsWeightOp(const std::string& t) { return IsOpKind(t, kWeightOp); }

// Integer and bool tensors are shapes, indices or masks.
bool IsIntegerOrBool(DataType t) {
  switch (t) {
    case DataType::kUint8: case DataType::kInt8: case DataType::kUint16: case DataType::kInt16:
    case DataType::kInt32: case DataType::kInt64: case DataType::kUint32: case DataType::kUint64:
    case DataType::kBool:
      return true;
    default:
      return false;
  }
}

// fp32, or not known (shape inference left it open; treated as data).
bool IsQuantizableDtype(DataType t) { return t == DataType::kFloat || t == DataType::kUndefined; }

// ---------------------------------------------------------------- SOI tensors

// Every tensor that is a shape or index: int/bool tensors, Shape/Size outputs and what is
// computed from them until the chain returns to float data (forward), and float tensors used
// only to compute shapes (backward: a Resize scales input computed by Cast -> Div).
StatusOr<std::unordered_set<const Variable*>> FindSoiTensors(const Graph& graph) {
  QALIGN_ASSIGN_OR_RETURN(std::vector<Operation*> order, graph.TopologicalOrder());
  std::unordered_set<const Variable*> soi;
  for (const Variable* v : graph.variables()) {
    if (IsIntegerOrBool(v->dtype())) soi.insert(v);
  }
  // Forward from Shape/Size.
  for (const Operation* op : order) {
    bool derived = ReadsOnlyShape(op->type());
    if (!derived) {
      for (size_t i = 0; i < op->inputs().size(); ++i) {
        const Variable* in = op->inputs()[i];
        if (in == nullptr || IsShapeOperand(op->type(), static_cast<int>(i))) continue;
        if (soi.count(in)) derived = true;
      }
    }
    if (!derived) continue;
    for (const Variable* out : op->outputs()) {
      if (out == nullptr) continue;
      // A float (known) output is data again: ConstantOfShape's zeros, Cast to float, ...
      if (out->dtype() == DataType::kFloat || out->dtype() == DataType::kDouble ||
          out->dtype() == DataType::kFloat16 || out->dtype() == DataType::kBFloat16) {
        if (!ReadsOnlyShape(op->type())) continue;
      }
      soi.insert(out);
    }
  }
  // Backward: float tensors consumed only as shape operands or by shape arithmetic whose outputs
  // are all SOI. In reverse topological order every consumer's outputs are decided before the
  // tensor it reads; parameters (no producer) are decided last.
  auto only_shapes = [&](const Variable* v) {
    if (soi.count(v) || v->is_graph_output() || v->is_graph_input() || v->uses().empty()) {
      return false;
    }
    for (const Use& use : v->uses()) {
      if (use.implicit()) return false;
      if (IsShapeOperand(use.op->type(), use.index)) continue;
      if (!IsShapeArithmetic(use.op->type())) return false;
      for (const Variable* o : use.op->outputs()) {
        if (o != nullptr && !soi.count(o)) return false;
      }
    }
    return true;
  };
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    for (const Variable* out : (*it)->outputs()) {
      if (out != nullptr && only_shapes(out)) soi.insert(out);
    }
  }
  for (const Variable* v : graph.variables()) {
    if (v->producer() == nullptr && only_shapes(v)) soi.insert(v);
  }
  return soi;
}

}  // namespace

int WeightChannelAxis(const Operation& op) {
  const std::string& t = op.type();
  if (t == "Conv") return 0;            // W: [C_out, C_in/group, k...]
  if (t == "ConvTranspose") return 1;   // W: [C_in, C_out/group, k...]
  if (t == "Gemm") return op.GetInt("transB", 0) != 0 ? 0 : 1;  // B: [N,K] or [K,N]
  if (t == "MatMul") {                  // B: [..., K, N]
    const Variable* w = op.input(1);
    if (w != nullptr && w->shape().rank_known && !w->shape().dims.empty()) {
      return static_cast<int>(w->shape().dims.size()) - 1;
    }
    return 1;
  }
  return -1;
}

int64_t DispatchStats::count(QuantState state) const {
  int64_t n = 0;
  for (const auto& row : counts) n += row[static_cast<size_t>(state)];
  return n;
}

int64_t DispatchStats::count(TensorRole role) const {
  int64_t n = 0;
  for (int64_t c : counts[static_cast<size_t>(role)]) n += c;
  return n;
}

std::string DispatchStats::ToString() const {
  std::string out = StrCat("tqcs=", tqcs, " quantized_ops=", quantized_ops, " fp32_ops=", fp32_ops,
                           " fused=", fused_activations);
  for (int r = 0; r < kNumTensorRoles; ++r) {
    out += StrCat(" ", TensorRoleName(static_cast<TensorRole>(r)), "=",
                  count(static_cast<TensorRole>(r)));
  }
  for (int s = 0; s < kNumQuantStates; ++s) {
    const int64_t n = count(static_cast<QuantState>(s));
    if (n != 0) out += StrCat(" ", QuantStateName(static_cast<QuantState>(s)), "=", n);
  }
  return out;
}

StatusOr<DispatchStats> DispatchQuantization(const Graph& graph, const TargetProfile& profile,
                                             QuantConfigTable* table) {
  if (table->size() != 0) {
    return FailedPreconditionError("dispatch needs an empty quantization table, this one holds ",
                                   table->size(), " TQCs");
  }
  QALIGN_ASSIGN_OR_RETURN(auto soi, FindSoiTensors(graph));
  // An Add / Sub of a constant: one input a parameter, the other not.
  auto IsConstantShift = [](const Operation& op) {
    if (op.type() != "Add" && op.type() != "Sub") return false;
    int parameters = 0, activations = 0;
    for (const Variable* v : op.inputs()) {
      if (v == nullptr) continue;
      ++(v->is_parameter() ? parameters : activations);
    }
    return parameters == 1 && activations == 1;
  };
  DispatchStats stats;

  auto create = [&](Operation* op, bool is_input, int index, Variable* v, bool quantized) {
    Port port{op, is_input, index, v};
    TensorRole role = TensorRole::kActivation;
    QuantState state = QuantState::kInitial;
    QuantScheme scheme = profile.activation;
    int axis = -1;
    const std::string& type = op->type();
    if ((is_input && IsShapeOperand(type, index)) || soi.count(v) ||
        (!is_input && ReadsOnlyShape(type))) {
      role = TensorRole::kShape;
      state = QuantState::kSoi;
      scheme = QuantScheme();
    } else if (!IsQuantizableDtype(v->dtype()) || !quantized ||
               (is_input && IsFloatAttributeOperand(type, index))) {
      state = QuantState::kFp32;
    } else if (is_input && index == 1 && IsWeightOp(type) && v->is_parameter()) {
      role = TensorRole::kWeight;
      scheme = profile.WeightSchemeFor(type);
      if (scheme.policy.Has(kPerChannel)) axis = WeightChannelAxis(*op);
    } else if (is_input && index == 2 && IsWeightOp(type) && type != "MatMul" &&
               v->is_parameter() &&
               (v->data()->rank() <= 1 || (v->data()->rank() == 2 && v->data()->shape()[0] == 1))) {
      role = TensorRole::kBias;
      scheme = profile.bias;
      if (!profile.quantize_bias) state = QuantState::kFp32;
      if (scheme.policy.Has(kPerChannel)) axis = v->data()->rank() - 1;
      if (axis < 0) axis = 0;
    }
    TQC* tqc = table->Create(port, role, scheme, state);
    tqc->channel_axis = axis;
    return tqc;
  };

  for (Operation* op : graph.operations()) {
    const bool quantized = op->in_default_domain() && profile.Quantizes(op->type()) &&
                           (profile.quantize_constant_adds || !IsConstantShift(*op));
    ++(quantized ? stats.quantized_ops : stats.fp32_ops);
    // Every port gets its slot, so the op's config has one entry per input and output.
    table->ForOp(op);
    for (size_t i = 0; i < op->inputs().size(); ++i) {
      if (Variable* v = op->inputs()[i]) create(op, true, static_cast<int>(i), v, quantized);
    }
    for (size_t i = 0; i < op->outputs().size(); ++i) {
      if (Variable* v = op->outputs()[i]) create(op, false, static_cast<int>(i), v, quantized);
    }
  }

  // Fusion: Conv/Gemm/MatMul -> Relu/Clip keeps one quantization point, after the activation.
  if (profile.fuse_activations) {
    for (Operation* op : graph.operations()) {
      if (!IsWeightOp(op->type())) continue;
      const OperationQuantConfig* producer = table->FindOp(op);
      Variable* out = op->output(0);
      if (producer == nullptr || out == nullptr || producer->outputs.empty()) continue;
      if (out->is_graph_output() || out->uses().size() != 1) continue;
      const Use& use = out->uses()[0];
      if (use.implicit() || use.index != 0) continue;
      if (!IsOpKind(use.op->type(), kFusableActivation)) continue;
      const OperationQuantConfig* consumer = table->FindOp(use.op);
      TQC* conv_out = producer->outputs[0];
      TQC* act_in = consumer != nullptr && !consumer->inputs.empty() ? consumer->inputs[0] : nullptr;
      if (conv_out == nullptr || act_in == nullptr) continue;
      if (conv_out->state != QuantState::kInitial || act_in->state != QuantState::kInitial) continue;
      if (conv_out->role != TensorRole::kActivation || act_in->role != TensorRole::kActivation) {
        continue;
      }
      conv_out->state = QuantState::kOverlapped;
      act_in->state = QuantState::kOverlapped;
      ++stats.fused_activations;
    }
    stats.fused_hardswish = FuseDecomposedHardSwish(graph, table);
  }
  // A Relu / Clip no Conv, Gemm or MatMul absorbed runs in float when the target has no integer
  // kernel for it alone (ONNX Runtime): quantizing it would put a Q -> DQ before and after a
  // float op, between two float ops when its producer is float too.
  if (!profile.standalone_activations) {
    for (Operation* op : graph.operations()) {
      if (!IsOpKind(op->type(), kFusableActivation)) continue;
      const OperationQuantConfig* config = table->FindOp(op);
      if (config == nullptr || config->inputs.empty() || config->inputs[0] == nullptr ||
          config->inputs[0]->state == QuantState::kOverlapped) {
        continue;
      }
      for (const auto* list : {&config->inputs, &config->outputs}) {
        for (TQC* t : *list) {
          if (t != nullptr && t->state == QuantState::kInitial) t->state = QuantState::kFp32;
        }
      }
    }
  }

  for (const TQC* tqc : table->all()) {
    ++stats.counts[static_cast<size_t>(tqc->role)][static_cast<size_t>(tqc->state)];
    ++stats.tqcs;
  }
  return stats;
}

}  // namespace qalign
