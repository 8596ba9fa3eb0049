// Weight params per channel from the data, then bias params from the input and weight scales.
#include "passes/weight_bias_params.h"

#include <algorithm>
#include <span>
#include <vector>

#include "quant/bias_params.h"

namespace qalign {
namespace {

// Buffers reused from weight to weight: a model has thousands of small weights.
struct WeightScratch {
  std::vector<float> converted, mins, maxs, scales;
  std::vector<int64_t> zero_points;
  std::vector<uint8_t> seen;
};

// Per-channel params of a weight TQC from its tensor's data; returns whether they were derived.
StatusOr<bool> DeriveWeight(TQC* t, QuantConfigTable* table, WeightScratch* s, bool* changed) {
  const Variable* v = t->port.tensor;
  if (!v->is_parameter() || v->data()->rank() == 0) return false;
  const Tensor& data = *v->data();
  // Float data is read in place; other types are converted.
  std::span<const float> values;
  if (data.dtype() == DataType::kFloat) {
    values = data.values<float>();
  } else {
    auto converted = data.AsFloats();
    if (!converted.ok()) return false;
    s->converted = std::move(converted).value();
    values = s->converted;
  }
  const int axis = t->channel_axis < 0 ? 0 : t->channel_axis;
  if (axis >= data.rank()) {
    return InvalidArgumentError(DescribeTqc(*t), ": channel axis ", axis,
                                " out of range for weight shape ", ShapeToString(data.shape()));
  }
  // Element i = (o * channels + c) * inner + k lies in channel c.
  const size_t channels = static_cast<size_t>(data.shape()[axis]);
  size_t inner = 1;
  for (int64_t d = axis + 1; d < data.rank(); ++d) inner *= static_cast<size_t>(data.shape()[d]);
  s->mins.assign(channels, 0.0f);
  s->maxs.assign(channels, 0.0f);
  s->seen.assign(channels, 0);
  for (size_t i = 0; i < values.size(); ++i) {
    const size_t c = (i / inner) % channels;
    const float x = values[i];
    s->mins[c] = s->seen[c] ? std::min(s->mins[c], x) : x;
    s->maxs[c] = s->seen[c] ? std::max(s->maxs[c], x) : x;
    s->seen[c] = 1;
  }
  s->scales.resize(channels);
  s->zero_points.resize(channels);
  for (size_t c = 0; c < channels; ++c) {
    Status status =
        ComputeParams(t->scheme, s->mins[c], s->maxs[c], &s->scales[c], &s->zero_points[c]);
    if (!status.ok()) {
      return InvalidArgumentError(DescribeTqc(*t), " channel ", c, ": ", status.message());
    }
  }
  *changed |= table->SetGroupParams(t, s->scales, s->zero_points);
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
  WeightScratch scratch;
  std::vector<TQC*> biases;
  for (TQC* t : table->all()) {
    if (t->role == TensorRole::kBias) biases.push_back(t);
    if (t->role != TensorRole::kWeight || !t->per_channel() || t->floating() ||
        !IsQuantizedState(t->state) || IsBakedState(t->state) ||
        t->state == QuantState::kOverlapped || t->port.tensor == nullptr) {
      continue;
    }
    QALIGN_ASSIGN_OR_RETURN(bool derived, DeriveWeight(t, table, &scratch, &stats.changed));
    stats.weights += derived ? 1 : 0;
  }
  for (TQC* b : biases) {
    if (!IsQuantizedState(b->state) || IsBakedState(b->state)) continue;
    stats.biases += DeriveBias(b, table, &stats.changed) ? 1 : 0;
  }
  return stats;
}

}  // namespace qalign
