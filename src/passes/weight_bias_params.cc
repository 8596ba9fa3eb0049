// Weight params per channel from the data, then bias params from the input and weight scales.
#include "passes/weight_bias_params.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
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

// A bias is added to the int32 accumulator, so its values must fit the bias's integer range at
// scale input_scale * weight_scale[c]. A nearly dead input (a scale of 1e-13 from an all-zero
// calibration range) or an all-zero weight channel makes that scale so small that the bias would
// be clamped and the output collapse. As TFLite's and ONNX Runtime's quantizers do, the weight
// scale of such a channel is raised until the bias fits: channel c needs
//   weight_scale[c] >= |bias[c]| / (quant_max * input_scale),
// with a margin of one part in a million for float rounding (a per-tensor weight takes the largest
// need of all channels; a power-of-2 scheme rounds up). The weight's zero point stays, so its
// range only widens.
struct BiasOfWeight {
  const TQC* bias = nullptr;
  float input_scale = 0.0f;
  std::vector<float> values;
};

// The bias and input scale a weight's scales must leave room for, when its op has a quantized
// parameter bias and a per-tensor quantized input.
std::optional<BiasOfWeight> FindBiasOfWeight(const TQC& w, QuantConfigTable* table) {
  const OperationQuantConfig* config = table->FindOp(w.port.op);
  if (config == nullptr || config->inputs.size() < 3 || config->inputs[1] != &w) return {};
  const TQC* in = config->inputs[0];
  const TQC* b = config->inputs[2];
  if (in == nullptr || b == nullptr || !IsQuantizedState(in->state) ||
      !IsQuantizedState(b->state) || IsBakedState(b->state) || b->port.tensor == nullptr ||
      !b->port.tensor->is_parameter()) {
    return {};
  }
  const std::vector<float>& in_scale = table->scale(in);
  if (in_scale.size() != 1 || !(in_scale[0] > 0.0f)) return {};
  auto values = b->port.tensor->data()->AsFloats();
  if (!values.ok()) return {};
  return BiasOfWeight{b, in_scale[0], std::move(values).value()};
}

// Raises `scales` (a weight's, one per channel or one for all) so every bias value fits; returns
// how many were raised and adds a note naming the bias when any was.
int64_t RaiseWeightScalesForBias(const TQC& w, const BiasOfWeight& bias, std::vector<float>* scales,
                                 std::vector<std::string>* notes) {
  if (scales->empty()) return 0;
  const double quant_max = static_cast<double>(bias.bias->scheme.quant_max);
  int64_t raised = 0;
  for (size_t c = 0; c < bias.values.size(); ++c) {
    float& scale = (*scales)[std::min(c, scales->size() - 1)];
    const double need = std::fabs(static_cast<double>(bias.values[c])) / quant_max /
                        static_cast<double>(bias.input_scale);
    if (static_cast<double>(scale) >= need) continue;
    float wanted = static_cast<float>(need * (1.0 + 1e-6));
    if (w.scheme.policy.Has(kPowerOf2)) wanted = std::exp2(std::ceil(std::log2(wanted)));
    if (wanted > scale) {
      scale = wanted;
      ++raised;
    }
  }
  if (raised > 0) {
    notes->push_back(StrCat("bias '", bias.bias->port.tensor->name(), "' of ",
                            w.port.op->Describe(), ": raised the weight scale of ", raised,
                            " channel(s) so the bias fits int32 at input scale ",
                            bias.input_scale));
  }
  return raised;
}

// Per-channel params of a weight TQC from its tensor's data; returns whether they were derived.
StatusOr<bool> DeriveWeight(TQC* t, QuantConfigTable* table, WeightScratch* s,
                            DerivedParamsStats* stats) {
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
  if (auto bias = FindBiasOfWeight(*t, table)) {
    stats->raised_weight_channels +=
        RaiseWeightScalesForBias(*t, *bias, &s->scales, &stats->notes);
  }
  stats->changed |= table->SetGroupParams(t, s->scales, s->zero_points);
  return true;
}

// Bias params from its op's input and weight scales; returns whether they were derived. A weight
// whose params did not come from DeriveWeight (per-tensor, from calibration) has its scales raised
// here if its bias does not fit; a BAKED or OVERLAPPED weight keeps its params and the clamp is
// noted.
bool DeriveBias(TQC* b, QuantConfigTable* table, DerivedParamsStats* stats) {
  const OperationQuantConfig* config = table->FindOp(b->port.op);
  if (config == nullptr || config->inputs.size() < 2) return false;
  const TQC* in = config->inputs[0];
  const TQC* w = config->inputs[1];
  if (in == nullptr || w == nullptr || !IsQuantizedState(in->state) ||
      !IsQuantizedState(w->state)) {
    return false;
  }
  const std::vector<float>& in_scale = table->scale(in);
  if (in_scale.size() != 1 || table->scale(w).empty()) return false;
  if (auto bias = FindBiasOfWeight(*w, table)) {
    std::vector<float> w_scales = table->scale(w);
    std::vector<std::string> notes;
    const int64_t raised = RaiseWeightScalesForBias(*w, *bias, &w_scales, &notes);
    if (raised > 0 && (IsBakedState(w->state) || w->state == QuantState::kOverlapped)) {
      stats->notes.push_back(StrCat("bias '", b->port.tensor->name(), "' of ",
                                    b->port.op->Describe(), ": ", raised,
                                    " channel(s) do not fit int32 and are clamped (the weight's "
                                    "params are fixed)"));
    } else if (raised > 0) {
      stats->changed |= table->SetGroupParams(w, w_scales, table->zero_point(w));
      stats->raised_weight_channels += raised;
      stats->notes.insert(stats->notes.end(), notes.begin(), notes.end());
    }
  }
  const std::vector<float>& w_scale = table->scale(w);
  size_t channels = w_scale.size();
  if (const Variable* v = b->port.tensor; v != nullptr && v->is_parameter()) {
    channels = static_cast<size_t>(std::max<int64_t>(v->data()->num_elements(), 1));
  }
  const std::vector<float> scales = BiasScales(in_scale[0], w_scale, channels);
  stats->changed |= table->SetGroupParams(b, scales, std::vector<int64_t>(channels, 0));
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
    QALIGN_ASSIGN_OR_RETURN(bool derived, DeriveWeight(t, table, &scratch, &stats));
    stats.weights += derived ? 1 : 0;
  }
  for (TQC* b : biases) {
    if (!IsQuantizedState(b->state) || IsBakedState(b->state)) continue;
    stats.biases += DeriveBias(b, table, &stats) ? 1 : 0;
  }
  return stats;
}

}  // namespace qalign
