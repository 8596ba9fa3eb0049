// Quantization schemes: policy flags, rounding, the scheme a group shares, and ComputeParams.
#pragma once

#include <cstdint>
#include <string>

#include "qalign/status.h"

namespace qalign {

enum QuantPolicyFlag : uint32_t {
  kPerTensor = 1u << 0,
  kPerChannel = 1u << 1,
  kSymmetric = 1u << 2,
  kAsymmetric = 1u << 3,
  kLinear = 1u << 4,
  kFloating = 1u << 5,
  kPowerOf2 = 1u << 6,
};

struct QuantPolicy {
  uint32_t flags = kPerTensor | kAsymmetric | kLinear;
  bool Has(QuantPolicyFlag f) const { return (flags & f) != 0; }
  bool operator==(const QuantPolicy&) const = default;
  std::string ToString() const;  // "per_tensor|asymmetric|linear"
};
// "per_tensor", "per_channel", "symmetric", "asymmetric", "linear", "floating", "power_of_2".
const char* PolicyFlagName(QuantPolicyFlag flag);
StatusOr<QuantPolicyFlag> ParsePolicyFlag(const std::string& name);

enum class RoundingMode { kHalfEven, kHalfUp, kHalfAwayFromZero };
const char* RoundingModeName(RoundingMode mode);  // "half_even", "half_up", "half_away_from_zero"
StatusOr<RoundingMode> ParseRoundingMode(const std::string& name);
// Rounds x to an integer the way `mode` says (half_up: ties toward +infinity).
double RoundWith(RoundingMode mode, double x);

// Everything that must be identical for TQCs to share params: bit width, integer range,
// symmetry/granularity/power-of-2 flags and rounding.
struct QuantScheme {
  QuantPolicy policy;
  int num_bits = 8;
  int64_t quant_min = -128;
  int64_t quant_max = 127;
  RoundingMode rounding = RoundingMode::kHalfEven;
  bool operator==(const QuantScheme&) const = default;
  // "int8[-128,127] per_tensor|asymmetric|linear" for messages and reports.
  std::string ToString() const;
};
// Checks that a scheme is self-consistent: exactly one of per_tensor/per_channel, of
// symmetric/asymmetric and of linear/floating; quant_min < quant_max; the range fits num_bits
// and needs all of them (quant_max - quant_min >= 2^(num_bits-1)). The message names the scheme.
Status ValidateScheme(const QuantScheme& scheme);

// Computes (scale, zero_point) for a float range under a scheme, the way a kernel will use them
// (x_q = clamp(round(x / scale) + zero_point, qmin, qmax), x = (x_q - zero_point) * scale):
//   every range is first widened to include 0, so that 0.0 is exactly representable
//   (it quantizes to the integer zero_point);
//   asymmetric: scale = (max - min) / (qmax - qmin), zero_point = round(qmin - min / scale),
//               clamped to [qmin, qmax];
//   symmetric:  zero_point = 0 for signed ranges (qmin < 0) and (qmax + qmin + 1) / 2 for
//               unsigned ones (128 for [0, 255]); scale = max(|min|, |max|) / h with
//               h = min(zero_point - qmin, qmax - zero_point), the largest step count on both
//               sides of zero, so +-max(|min|,|max|) is never clipped. For [-127, 127] this is
//               (qmax - qmin) / 2 = 127; for [-128, 127] and [0, 255] it is 127;
//   power-of-2: scale rounded up to the next power of two (2^ceil(log2(scale))), then the
//               asymmetric zero_point recomputed with that scale.
// A degenerate range (max == min == 0 after widening) and any scale below the smallest normal
// float get kMinScale (2^-23), so 1 / scale stays finite. Fails on NaN/Inf, min > max, an invalid
// scheme or a floating scheme (those have no integer grid).
inline constexpr float kMinScale = 1.1920928955078125e-07f;  // 2^-23
Status ComputeParams(const QuantScheme& scheme, float min, float max, float* scale,
                     int64_t* zero_point);

}  // namespace qalign
