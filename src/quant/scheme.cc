// Quantization schemes: flag and rounding names, scheme checks, (scale, zero_point) from a range.
#include "quant/scheme.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qalign {

namespace {

struct PolicyFlagEntry {
  QuantPolicyFlag flag;
  const char* name;
};
// One table for flag names, so ToString and parsing cannot drift apart.
constexpr PolicyFlagEntry kPolicyFlags[] = {
    {kPerTensor, "per_tensor"},  {kPerChannel, "per_channel"}, {kSymmetric, "symmetric"},
    {kAsymmetric, "asymmetric"}, {kLinear, "linear"},          {kFloating, "floating"},
    {kPowerOf2, "power_of_2"},
};

struct RoundingEntry {
  RoundingMode mode;
  const char* name;
};
constexpr RoundingEntry kRoundingModes[] = {
    {RoundingMode::kHalfEven, "half_even"},
    {RoundingMode::kHalfUp, "half_up"},
    {RoundingMode::kHalfAwayFromZero, "half_away_from_zero"},
};

}  // namespace

const char* PolicyFlagName(QuantPolicyFlag flag) {
  for (const auto& entry : kPolicyFlags) {
    if (entry.flag == flag) return entry.name;
  }
  return "unknown";
}

StatusOr<QuantPolicyFlag> ParsePolicyFlag(const std::string& name) {
  for (const auto& entry : kPolicyFlags) {
    if (name == entry.name) return entry.flag;
  }
  return InvalidArgumentError("unknown policy flag '", name,
                              "' (expected per_tensor, per_channel, symmetric, asymmetric, "
                              "linear, floating or power_of_2)");
}

std::string QuantPolicy::ToString() const {
  std::string out;
  for (const auto& entry : kPolicyFlags) {
    if (!Has(entry.flag)) continue;
    if (!out.empty()) out += '|';
    out += entry.name;
  }
  return out.empty() ? "none" : out;
}

const char* RoundingModeName(RoundingMode mode) {
  for (const auto& entry : kRoundingModes) {
    if (entry.mode == mode) return entry.name;
  }
  return "unknown";
}

StatusOr<RoundingMode> ParseRoundingMode(const std::string& name) {
  for (const auto& entry : kRoundingModes) {
    if (name == entry.name) return entry.mode;
  }
  return InvalidArgumentError("unknown rounding mode '", name,
                              "' (expected half_even, half_up or half_away_from_zero)");
}

double RoundWith(RoundingMode mode, double x) {
  switch (mode) {
    case RoundingMode::kHalfEven:
      return std::nearbyint(x);  // the default floating-point environment rounds half to even
    case RoundingMode::kHalfUp:
      return std::floor(x + 0.5);
    case RoundingMode::kHalfAwayFromZero:
      return std::round(x);
  }
  return std::nearbyint(x);
}

std::string QuantScheme::ToString() const {
  return StrCat(quant_min < 0 ? "int" : "uint", num_bits, "[", quant_min, ",", quant_max, "] ",
                policy.ToString());
}

Status ValidateScheme(const QuantScheme& scheme) {
  const QuantPolicy& p = scheme.policy;
  auto exactly_one = [&](QuantPolicyFlag a, QuantPolicyFlag b) { return p.Has(a) != p.Has(b); };
  if (!exactly_one(kPerTensor, kPerChannel)) {
    return InvalidArgumentError("scheme ", scheme.ToString(),
                                ": needs exactly one of per_tensor and per_channel");
  }
  if (!exactly_one(kSymmetric, kAsymmetric)) {
    return InvalidArgumentError("scheme ", scheme.ToString(),
                                ": needs exactly one of symmetric and asymmetric");
  }
  if (!exactly_one(kLinear, kFloating)) {
    return InvalidArgumentError("scheme ", scheme.ToString(),
                                ": needs exactly one of linear and floating");
  }
  if (scheme.num_bits < 2 || scheme.num_bits > 32) {
    return InvalidArgumentError("scheme ", scheme.ToString(), ": num_bits ", scheme.num_bits,
                                " is outside [2, 32]");
  }
  if (scheme.quant_min >= scheme.quant_max) {
    return InvalidArgumentError("scheme ", scheme.ToString(), ": quant_min ", scheme.quant_min,
                                " must be below quant_max ", scheme.quant_max);
  }
  // A signed range must fit [-2^(b-1), 2^(b-1) - 1], an unsigned one [0, 2^b - 1]; and it must
  // need all b bits, or num_bits misdescribes it (e.g. [0, 15] is a 4-bit range, not 8).
  const int64_t b = scheme.num_bits;
  const int64_t lo = scheme.quant_min < 0 ? -(int64_t{1} << (b - 1)) : 0;
  const int64_t hi = scheme.quant_min < 0 ? (int64_t{1} << (b - 1)) - 1 : (int64_t{1} << b) - 1;
  if (scheme.quant_min < lo || scheme.quant_max > hi) {
    return InvalidArgumentError("scheme ", scheme.ToString(), ": range [", scheme.quant_min, ", ",
                                scheme.quant_max, "] does not fit in ", b, " bits ([", lo, ", ", hi,
                                "])");
  }
  if (scheme.quant_max - scheme.quant_min < (int64_t{1} << (b - 1))) {
    return InvalidArgumentError("scheme ", scheme.ToString(), ": range [", scheme.quant_min, ", ",
                                scheme.quant_max, "] needs fewer than num_bits ", b, " bits");
  }
  return Status::Ok();
}

namespace {

// The body of ComputeParams once its inputs are checked. *raw_scale is the scale before the
// conversion to float, for the message when float cannot hold it (then it returns false).
bool ComputeCheckedParams(const QuantScheme& scheme, float min, float max, double* raw_scale,
                          float* scale, int64_t* zero_point) {
  // Widen to include 0 so that 0.0 (padding, ReLU's floor) quantizes without error.
  const double lo = std::min(0.0, static_cast<double>(min));
  const double hi = std::max(0.0, static_cast<double>(max));
  const double qmin = static_cast<double>(scheme.quant_min);
  const double qmax = static_cast<double>(scheme.quant_max);
  const bool symmetric = scheme.policy.Has(kSymmetric);

  double s = 0.0;
  int64_t zp = 0;
  if (symmetric) {
    // zero_point in the middle of the grid; the step count to the nearer end bounds the scale.
    zp = scheme.quant_min < 0 ? 0 : (scheme.quant_max + scheme.quant_min + 1) / 2;
    const double steps = std::min(static_cast<double>(zp) - qmin, qmax - static_cast<double>(zp));
    s = std::max(-lo, hi) / steps;
  } else {
    s = (hi - lo) / (qmax - qmin);
  }
  // Degenerate ([0, 0]) or so small that 1 / scale would overflow: use the floor.
  if (!(s >= std::numeric_limits<float>::min())) s = kMinScale;
  if (scheme.policy.Has(kPowerOf2)) s = std::exp2(std::ceil(std::log2(s)));
  if (!symmetric) {
    const double z = RoundWith(scheme.rounding, qmin - lo / s);
    zp = static_cast<int64_t>(std::clamp(z, qmin, qmax));
  }
  *raw_scale = s;
  const float s32 = static_cast<float>(s);
  if (!std::isfinite(s32) || !std::isfinite(1.0f / s32)) return false;
  *scale = s32;
  *zero_point = zp;
  return true;
}

}  // namespace

Status ComputeParams(const QuantScheme& scheme, float min, float max, float* scale,
                     int64_t* zero_point) {
  if (!std::isfinite(min) || !std::isfinite(max)) {
    return InvalidArgumentError("cannot compute quantization params of range [", min, ", ", max,
                                "]: it is not finite");
  }
  if (min > max) {
    return InvalidArgumentError("cannot compute quantization params of range [", min, ", ", max,
                                "]: min is above max");
  }
  QALIGN_RETURN_IF_ERROR(ValidateScheme(scheme));
  if (scheme.policy.Has(kFloating)) {
    return InvalidArgumentError("scheme ", scheme.ToString(),
                                " is floating-point: it has no integer scale and zero point");
  }
  double s = 0.0;
  if (!ComputeCheckedParams(scheme, min, max, &s, scale, zero_point)) {
    return InvalidArgumentError("range [", min, ", ", max, "] under ", scheme.ToString(),
                                " gives scale ", s, ", which float cannot hold");
  }
  return Status::Ok();
}

}  // namespace qalign
