// Folding BatchNormalization and per-channel Mul/Add/Sub/Div into the Conv before them.
#include "passes/fold_into_conv.h"

#include <cmath>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace qalign {
namespace {

const Tensor* FloatParameter(const Variable* v) {
  if (v == nullptr || !v->is_parameter() || v->data()->dtype() != DataType::kFloat) return nullptr;
  return v->data();
}

// The constant's value for each of `channels` output channels, if it broadcasts per channel
// against an output of rank `rank` (channel axis 1). Shapes align from the right (numpy
// broadcasting), so it must be 1 everywhere except, possibly, C on the axis that lands on axis 1:
// a scalar, [1], [C, 1, 1] or [1, C, 1, 1] for a 4-D output. A 1-D [C] lands on the last axis
// and is refused.
std::optional<std::vector<double>> PerChannel(const Tensor& k, int64_t rank, int64_t channels) {
  const std::vector<int64_t>& shape = k.shape();
  if (static_cast<int64_t>(shape.size()) > rank) return std::nullopt;
  const int64_t offset = rank - static_cast<int64_t>(shape.size());
  bool per_channel = false;
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i) {
    const int64_t axis = offset + i;
    if (shape[static_cast<size_t>(i)] == 1) continue;
    if (axis == 1 && shape[static_cast<size_t>(i)] == channels) {
      per_channel = true;
      continue;
    }
    return std::nullopt;
  }
  const std::span<const float> values = k.values<float>();
  std::vector<double> out(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    out[static_cast<size_t>(c)] = values[per_channel ? static_cast<size_t>(c) : 0];
  }
  return out;
}

// What to do to the filters and biases: W'[c] = w_scale[c] * W[c], b'[c] = b_scale[c] * b[c] +
// b_shift[c].
struct ChannelAffine {
  std::vector<double> w_scale, b_scale, b_shift;
};

std::optional<ChannelAffine> MatchBatchNorm(const Operation& bn, int64_t channels) {
  if (bn.outputs().size() != 1 || bn.inputs().size() != 5) return std::nullopt;
  if (bn.GetInt("training_mode", 0) != 0) return std::nullopt;
  const Tensor* params[4];
  for (size_t i = 0; i < 4; ++i) {
    params[i] = FloatParameter(bn.input(i + 1));
    if (params[i] == nullptr || params[i]->num_elements() != channels) return std::nullopt;
  }
  const double epsilon = bn.GetFloat("epsilon", 1e-5f);
  ChannelAffine a;
  for (int64_t c = 0; c < channels; ++c) {
    const size_t i = static_cast<size_t>(c);
    const double scale = params[0]->values<float>()[i], shift = params[1]->values<float>()[i];
    const double mean = params[2]->values<float>()[i], var = params[3]->values<float>()[i];
    if (!(var + epsilon > 0)) return std::nullopt;
    const double s = scale / std::sqrt(var + epsilon);
    a.w_scale.push_back(s);
    a.b_scale.push_back(s);
    a.b_shift.push_back(shift - s * mean);
  }
  return a;
}

std::optional<ChannelAffine> MatchElementwise(const Operation& op, const Variable* conv_out,
                                              int64_t rank, int64_t channels) {
  if (op.inputs().size() != 2 || op.outputs().size() != 1) return std::nullopt;
  const int conv_index = op.input(0) == conv_out ? 0 : 1;
  if (op.input(static_cast<size_t>(conv_index)) != conv_out) return std::nullopt;
  const Tensor* k = FloatParameter(op.input(static_cast<size_t>(1 - conv_index)));
  if (k == nullptr) return std::nullopt;
  // Only conv - k and conv / k have the Conv on the side that folds.
  if ((op.type() == "Sub" || op.type() == "Div") && conv_index != 0) return std::nullopt;
  std::optional<std::vector<double>> values = PerChannel(*k, rank, channels);
  if (!values) return std::nullopt;
  ChannelAffine a;
  const std::vector<double> ones(static_cast<size_t>(channels), 1.0);
  const std::vector<double> zeros(static_cast<size_t>(channels), 0.0);
  if (op.type() == "Mul") {
    a = {*values, *values, zeros};
  } else if (op.type() == "Div") {
    for (double v : *values) {
      if (v == 0.0 || !std::isfinite(1.0 / v)) return std::nullopt;
      a.w_scale.push_back(1.0 / v);
    }
    a.b_scale = a.w_scale;
    a.b_shift = zeros;
  } else if (op.type() == "Add") {
    a = {ones, ones, *values};
  } else if (op.type() == "Sub") {
    a = {ones, ones, *values};
    for (double& v : a.b_shift) v = -v;
  } else {
    return std::nullopt;
  }
  for (double v : a.w_scale) {
    if (!std::isfinite(v)) return std::nullopt;
  }
  return a;
}

// The weight axis of the output channels: Conv [C_out, C_in/group, k...], ConvTranspose
// [C_in, C_out, k...] (FoldOnce takes ConvTranspose with group 1 only, where that axis holds
// every output channel).
int OutputChannelAxis(const Operation& conv) { return conv.type() == "ConvTranspose" ? 1 : 0; }

// Replaces the Conv's weight and bias with folded copies (new parameters, so a weight another op
// shares is left as it was) and drops the old ones when nothing else uses them.
Status ApplyToConv(Graph* graph, Operation* conv, const ChannelAffine& a) {
  Variable* w_var = conv->input(1);
  Variable* b_var = conv->input(2);
  const Tensor& w = *w_var->data();
  // Output channel c of element i: W[c, ...] for Conv, W[., c, ...] for ConvTranspose.
  const size_t axis = static_cast<size_t>(OutputChannelAxis(*conv));
  const int64_t channels = w.shape()[axis];
  int64_t inner = 1;
  for (size_t d = axis + 1; d < w.shape().size(); ++d) inner *= w.shape()[d];
  Tensor new_w(DataType::kFloat, w.shape());
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    const double s = a.w_scale[static_cast<size_t>((i / inner) % channels)];
    new_w.values<float>()[i] = static_cast<float>(s * w.values<float>()[i]);
  }
  Tensor new_b(DataType::kFloat, {channels});
  for (int64_t c = 0; c < channels; ++c) {
    const size_t i = static_cast<size_t>(c);
    const double b = b_var != nullptr ? b_var->data()->values<float>()[i] : 0.0;
    new_b.values<float>()[i] = static_cast<float>(a.b_scale[i] * b + a.b_shift[i]);
  }
  QALIGN_ASSIGN_OR_RETURN(Variable * w_new,
                          graph->AddParameter(graph->UniqueName(w_var->name() + "_folded"),
                                              std::move(new_w)));
  const std::string b_name = b_var != nullptr ? b_var->name() : conv->name() + "_bias";
  QALIGN_ASSIGN_OR_RETURN(Variable * b_new,
                          graph->AddParameter(graph->UniqueName(b_name + "_folded"),
                                              std::move(new_b)));
  QALIGN_RETURN_IF_ERROR(graph->SetInput(conv, 1, w_new));
  QALIGN_RETURN_IF_ERROR(graph->SetInput(conv, 2, b_new));
  for (Variable* old : {w_var, b_var}) {
    if (old != nullptr && old->uses().empty() && !old->is_graph_input() &&
        !old->is_graph_output()) {
      QALIGN_RETURN_IF_ERROR(graph->RemoveVariable(old));
    }
  }
  return Status::Ok();
}

// Removes `op` (already bypassed) and the parameters only it used.
Status RemoveFolded(Graph* graph, Operation* op) {
  std::vector<Variable*> inputs = op->inputs();
  QALIGN_RETURN_IF_ERROR(graph->RemoveOperation(op));
  for (Variable* v : inputs) {
    if (v != nullptr && v->is_parameter() && v->uses().empty() && !v->is_graph_input() &&
        !v->is_graph_output()) {
      QALIGN_RETURN_IF_ERROR(graph->RemoveVariable(v));
    }
  }
  return Status::Ok();
}

// One fold on `conv` if its output feeds a foldable op; returns whether it folded.
StatusOr<bool> FoldOnce(Graph* graph, Operation* conv, FoldIntoConvStats* stats,
                        std::unordered_set<const Operation*>* removed) {
  const Tensor* w = FloatParameter(conv->input(1));
  if (w == nullptr || w->rank() < 3 || conv->outputs().size() != 1) return false;
  if (conv->type() == "ConvTranspose" && conv->GetInt("group", 1) != 1) return false;
  const int64_t channels = w->shape()[static_cast<size_t>(OutputChannelAxis(*conv))];
  if (conv->input(2) != nullptr) {
    const Tensor* b = FloatParameter(conv->input(2));
    if (b == nullptr || b->num_elements() != channels) return false;
  }
  Variable* y = conv->output(0);
  if (y == nullptr || y->is_graph_output() || y->uses().size() != 1) return false;
  const Use use = y->uses()[0];
  if (use.implicit() || !use.op->in_default_domain()) return false;
  Operation* next = use.op;
  Variable* z = next->output(0);
  if (z == nullptr || next->outputs().size() != 1) return false;
  std::optional<ChannelAffine> affine;
  const bool batch_norm = next->type() == "BatchNormalization" && use.index == 0;
  if (batch_norm) {
    affine = MatchBatchNorm(*next, channels);
  } else if (next->type() == "Mul" || next->type() == "Add" || next->type() == "Sub" ||
             next->type() == "Div") {
    affine = MatchElementwise(*next, y, w->rank(), channels);
  }
  if (!affine) return false;
  QALIGN_RETURN_IF_ERROR(ApplyToConv(graph, conv, *affine));
  // The Conv now computes what the folded op did, so it takes over that op's output tensor (and
  // its name: per-layer comparisons with the FP32 model stay meaningful); its old output goes.
  removed->insert(next);
  QALIGN_RETURN_IF_ERROR(RemoveFolded(graph, next));
  QALIGN_RETURN_IF_ERROR(graph->SetOutput(conv, 0, z));
  if (!z->shape().rank_known && y->shape().rank_known) z->set_shape(y->shape());
  QALIGN_RETURN_IF_ERROR(graph->RemoveVariable(y));
  ++(batch_norm ? stats->batch_norms : stats->elementwise);
  return true;
}

}  // namespace

StatusOr<FoldIntoConvStats> FoldIntoConv(Graph* graph) {
  FoldIntoConvStats stats;
  // Folding removes only ops that follow a Conv, never a Conv, so one sweep over the Convs, each
  // folding as long as something follows it, reaches the fixed point.
  std::unordered_set<const Operation*> removed;
  for (Operation* op : graph->operations()) {
    if (removed.count(op) != 0) continue;  // a folded Mul/Add/... (freed): never a Conv
    if ((op->type() != "Conv" && op->type() != "ConvTranspose") || !op->in_default_domain()) {
      continue;
    }
    for (;;) {
      QALIGN_ASSIGN_OR_RETURN(bool folded, FoldOnce(graph, op, &stats, &removed));
      if (!folded) break;
    }
  }
  return stats;
}

}  // namespace qalign
