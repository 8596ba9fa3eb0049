// Weight params per channel from the data, then bias params from the input and weight scales.
#include "passes/weight_bias_params.h"

#include <algorithm>
#include <span>
#include <vector>

#include "quant/bias_params.h"

namespace qalign {
namespace {

// Per-channel params of a weight TQC from its tensor's data; returns whether they were derived.
StatusOr<bool> DeriveWeight(TQC* t, QuantConfigTable* table, bool* changed) {
  const Variable* v = t->port.tensor;
  if (!v->is_parameter() || v->data()->rank() == 0) return false;
  const Tensor& data = *v->data();
  auto values = data.AsFloats();
  if (!values.ok()) return false;
  const int axis = t->channel_axis < 0 ? 0 : t->channel_axis;
  if (axis >= data.rank()) {
    return InvalidArgumentError(DescribeTqc(*t), ": channel axis ", axis,
                                " out of range for weight shape ", ShapeToString(data.shape()));
  }
  // Element i = (o * channels + c) * inner + k lies in channel c.
  const int64_t channels = data.shape()[axis];
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < data.rank(); ++d) inner *= data.shape()[d];
  std::vector<float> mins(static_cast<size_t>(channels)), maxs(static_cast<size_t>(channels));
  std::vector<uint8_t> seen(static_cast<size_t>(channels), 0);
  for (size_t i = 0; i < values->size(); ++i) {
    const size_t c = static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels);
    const float x = (*values)[i];
    mins[c] = seen[c] ? std::min(mins[c], x) : x;
    maxs[c] = seen[c] ? std::max(maxs[c], x) : x;
    seen[c] = 1;
  }
  std::vector<float> scales(static_cast<size_t>(channels));
  std::vector<int64_t> zero_points(static_cast<size_t>(channels));
  for (size_t c = 0; c < scales.size(); ++c) {
    Status s = ComputeParams(t->scheme, mins[c], maxs[c], &scales[c], &zero_points[c]);
    if (!s.ok()) return InvalidArgumentError(DescribeTqc(*t), " channel ", c, ": ", s.message());
  }
  *changed |= table->SetGroupParams(t, scales, zero_points);
  return true;
}

// Bias params from its op's input and weight scales; returns whether they were derived.
bool DeriveBias(TQC* b, QuantConfigTable* table, bool* changed) {
  const OperationQuantConfig* config = table->FindOp(b->port.op);
  if (config == nullptr || config->inputs.size() < 2) return false;
  const TQC* in = config->inputs[0];
  const TQC* w = config->inputs[1];
  if (in == nullptr || w == nullptr || !IsQuantizedState(in->state) ||
      !IsQuantizedState(w->state)) {
    return false;
  }
  const std::vector<float>& in_scale = table->scale(in);
  const std::vector<float>& w_scale = table->scale(w);
  if (in_scale.size() != 1 || w_scale.empty()) return false;
  size_t channels = w_scale.size();
  if (const Variable* v = b->port.tensor; v != nullptr && v->is_parameter()) {
    channels = static_cast<size_t>(std::max<int64_t>(v->data()->num_elements(), 1));
  }
  const std::vector<float> scales = BiasScales(in_scale[0], w_scale, channels);
  *changed |= table->SetGroupParams(b, scales, std::vector<int64_t>(channels, 0));
  return true;
}

}  // namespace

StatusOr<DerivedParamsStats> DeriveWeightAndBiasParams(QuantConfigTable* table) {
  DerivedParamsStats stats;
  std::vector<TQC*> biases;
  for (TQC* t : table->all()) {
    if (t->role == TensorRole::kBias) biases.push_back(t);
    if (t->role != TensorRole::kWeight || !t->per_channel() || t->floating() ||
        !IsQuantizedState(t->state) || IsBakedState(t->state) ||
        t->state == QuantState::kOverlapped || t->port.tensor == nullptr) {
      continue;
    }
    QALIGN_ASSIGN_OR_RETURN(bool derived, DeriveWeight(t, table, &stats.changed));
    stats.weights += derived ? 1 : 0;
  }
  for (TQC* b : biases) {
    if (!IsQuantizedState(b->state) || IsBakedState(b->state)) continue;
    stats.biases += DeriveBias(b, table, &stats.changed) ? 1 : 0;
  }
  return stats;
}

}  // namespace qalign
