// Bias params: derived from the input's and the weight's, never calibrated.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

namespace qalign {

// An integer kernel accumulates x_q * w_q[c] in int32, which represents x * w[c] with scale
// input_scale * weight_scale[c]; the bias is added to that accumulator, so it must be quantized
// with the same scale and zero point 0:
//   bias_scale[c] = input_scale * weight_scale[c],   bias_zero_point[c] = 0.
// A per-tensor weight (one scale) serves every channel; a weight with fewer scales than the bias
// has channels reuses its last scale.
inline std::vector<float> BiasScales(float input_scale, std::span<const float> weight_scales,
                                     size_t channels) {
  std::vector<float> scales(channels);
  for (size_t c = 0; c < channels; ++c) {
    scales[c] = input_scale * weight_scales[std::min(c, weight_scales.size() - 1)];
  }
  return scales;
}

}  // namespace qalign
