// MSE observer: the clipping range with the least expected squared quantization error.
//
// The error of a candidate range [a, b] is ExpectedQuantError over the histogram with the
// (scale, zero_point) ComputeParams gives for [a, b] under the TQC's scheme, so rounding, the
// widening to include 0, symmetry and power-of-2 scales are all accounted for. The search:
//  1. shrink both ends together: [alpha * min, alpha * max] for alpha = 1/C .. 1 (C = 100); this
//     alone is the exact search for symmetric schemes, whose range depends only on max |x|;
//  2. around the best alpha, a finer sweep of alpha (step 1/(10 C));
//  3. for asymmetric schemes, the lower end alone, then the upper end alone, on the same grids.
// alpha = 1 (the min/max range) is always a candidate, so the result is never worse than minmax
// under the error model.
#include <algorithm>
#include <cmath>
#include <limits>

#include "calib/observer.h"

namespace qalign {

StatusOr<ClipRange> MseRange(const Histogram& histogram, const QuantScheme& scheme) {
  if (histogram.empty()) return InvalidArgumentError("mse observer: no data observed");
  const double data_min = histogram.data_min();
  const double data_max = histogram.data_max();
  if (!(data_max > data_min)) return ClipRange{histogram.data_min(), histogram.data_max()};

  auto error_of = [&](double lo, double hi) {
    float scale = 0.0f;
    int64_t zero_point = 0;
    if (!ComputeParams(scheme, static_cast<float>(lo), static_cast<float>(hi), &scale, &zero_point)
             .ok()) {
      return std::numeric_limits<double>::infinity();
    }
    return ExpectedQuantError(histogram, scheme, scale, zero_point);
  };

  constexpr int kSteps = 100;
  double best_lo = data_min, best_hi = data_max;
  double best_error = error_of(data_min, data_max);
  auto consider = [&](double lo, double hi) {
    const double e = error_of(lo, hi);
    if (e < best_error) {
      best_error = e;
      best_lo = lo;
      best_hi = hi;
    }
  };

  // 1. Both ends together.
  double best_alpha = 1.0;
  for (int j = 1; j <= kSteps; ++j) {
    const double alpha = static_cast<double>(j) / kSteps;
    const double before = best_error;
    consider(alpha * data_min, alpha * data_max);
    if (best_error < before) best_alpha = alpha;
  }
  // 2. Finer around the best factor.
  const double coarse = best_alpha;
  for (int j = -10; j <= 10; ++j) {
    const double alpha = coarse + static_cast<double>(j) / (10.0 * kSteps);
    if (alpha <= 0 || alpha > 1) continue;
    consider(alpha * data_min, alpha * data_max);
  }
  // 3. Each end alone (asymmetric schemes only: a symmetric range depends on max |x| alone).
  if (!scheme.policy.Has(kSymmetric)) {
    const double fixed_hi = best_hi;
    for (int j = 1; j <= kSteps; ++j) consider(data_min * j / kSteps, fixed_hi);
    const double fixed_lo = best_lo;
    for (int j = 1; j <= kSteps; ++j) consider(fixed_lo, data_max * j / kSteps);
  }
  return ClipRange{static_cast<float>(best_lo), static_cast<float>(best_hi)};
}

StatusOr<ClipRange> AutoRange(const Histogram& histogram, const QuantScheme& scheme) {
  QALIGN_ASSIGN_OR_RETURN(ClipRange minmax, MinMaxRange(histogram));
  QALIGN_ASSIGN_OR_RETURN(ClipRange mse, MseRange(histogram, scheme));
  auto error_of = [&](const ClipRange& r) {
    float scale = 0.0f;
    int64_t zero_point = 0;
    if (!ComputeParams(scheme, r.min, r.max, &scale, &zero_point).ok()) {
      return std::numeric_limits<double>::infinity();
    }
    return ExpectedQuantError(histogram, scheme, scale, zero_point);
  };
  // Long tails: clipping them at least halves the expected error.
  return error_of(mse) <= 0.5 * error_of(minmax) ? mse : minmax;
}

}  // namespace qalign
