// MSE observer: the clipping range with the least expected squared quantization error.
//
// The error of a candidate range [a, b] is ExpectedQuantError over the histogram with the
// (scale, zero_point) ComputeParams gives for [a, b] under the TQC's scheme, so rounding, the
// widening to include 0, symmetry and power-of-2 scales are all accounted for. The search is
// SearchClipRange's grid, starting from the min/max range, so the result is never worse than
// minmax under the error model.
#include <algorithm>
#include <cmath>
#include <limits>

#include "calib/observer.h"

namespace qalign {
namespace {

constexpr int kSteps = 100;

// ExpectedQuantError of the params [lo, hi] gives (infinity when it gives none).
double RangeError(const Histogram& histogram, const QuantScheme& scheme, float lo, float hi) {
  float scale = 0.0f;
  int64_t zero_point = 0;
  if (!ComputeParams(scheme, lo, hi, &scale, &zero_point).ok()) {
    return std::numeric_limits<double>::infinity();
  }
  return ExpectedQuantError(histogram, scheme, scale, zero_point);
}

}  // namespace

ClipRange SearchClipRange(double data_lo, double data_hi, bool symmetric,
                          const std::function<double(float lo, float hi)>& error, ClipRange best,
                          double best_error) {
  auto consider = [&](double lo, double hi) {
    const float a = static_cast<float>(lo), b = static_cast<float>(hi);
    const double e = error(a, b);
    if (e < best_error) {
      best_error = e;
      best = ClipRange{a, b};
    }
  };
  // 1. Both ends together, coarse then fine.
  double best_alpha = 1.0;
  for (int j = 1; j <= kSteps; ++j) {
    const double alpha = static_cast<double>(j) / kSteps;
    const double before = best_error;
    consider(alpha * data_lo, alpha * data_hi);
    if (best_error < before) best_alpha = alpha;
  }
  // Two finer sweeps: a long tail (or, for a shared group, a member far wider than the others)
  // can put the optimum at a few percent of the range, where the coarse grid is too coarse.
  for (double step : {0.1 / kSteps, 0.01 / kSteps}) {
    const double center = best_alpha;
    for (int j = -10; j <= 10; ++j) {
      const double alpha = center + j * step;
      const double before = best_error;
      if (alpha > 0 && alpha <= 1) consider(alpha * data_lo, alpha * data_hi);
      if (best_error < before) best_alpha = alpha;
    }
  }
  // 2. Each end alone.
  if (!symmetric) {
    const double fixed_hi = best.max;
    for (int j = 1; j <= kSteps; ++j) consider(data_lo * j / kSteps, fixed_hi);
    const double fixed_lo = best.min;
    for (int j = 1; j <= kSteps; ++j) consider(fixed_lo, data_hi * j / kSteps);
  }
  return best;
}

StatusOr<ClipRange> MseRange(const Histogram& histogram, const QuantScheme& scheme) {
  if (histogram.empty()) return InvalidArgumentError("mse observer: no data observed");
  const ClipRange minmax{static_cast<float>(histogram.data_min()),
                         static_cast<float>(histogram.data_max())};
  if (!(histogram.data_max() > histogram.data_min())) return minmax;
  auto error = [&](float lo, float hi) { return RangeError(histogram, scheme, lo, hi); };
  return SearchClipRange(histogram.data_min(), histogram.data_max(),
                         scheme.policy.Has(kSymmetric), error, minmax,
                         error(minmax.min, minmax.max));
}

StatusOr<ClipRange> AutoRange(const Histogram& histogram, const QuantScheme& scheme) {
  QALIGN_ASSIGN_OR_RETURN(ClipRange minmax, MinMaxRange(histogram));
  QALIGN_ASSIGN_OR_RETURN(ClipRange mse, MseRange(histogram, scheme));
  auto error_of = [&](const ClipRange& r) { return RangeError(histogram, scheme, r.min, r.max); };
  // Long tails: clipping them at least halves the expected error.
  return error_of(mse) <= 0.5 * error_of(minmax) ? mse : minmax;
}

}  // namespace qalign
