// Observer names, minmax and percentile ranges, fake quantization and the expected-error model.
#include "calib/observer.h"

#include <algorithm>
#include <cmath>

namespace qalign {

const char* ObserverKindName(ObserverKind kind) {
  switch (kind) {
    case ObserverKind::kMinMax: return "minmax";
    case ObserverKind::kPercentile: return "percentile";
    case ObserverKind::kKl: return "kl";
    case ObserverKind::kMse: return "mse";
    case ObserverKind::kAuto: return "auto";
  }
  return "?";
}

StatusOr<ObserverKind> ParseObserverKind(const std::string& name) {
  if (name == "minmax") return ObserverKind::kMinMax;
  if (name == "percentile") return ObserverKind::kPercentile;
  if (name == "kl" || name == "entropy") return ObserverKind::kKl;
  if (name == "mse") return ObserverKind::kMse;
  if (name == "auto") return ObserverKind::kAuto;
  return InvalidArgumentError("unknown observer '", name,
                              "' (expected minmax, percentile, kl, mse or auto)");
}

StatusOr<ClipRange> MinMaxRange(const Histogram& histogram) {
  if (histogram.empty()) return InvalidArgumentError("minmax observer: no data observed");
  return ClipRange{histogram.data_min(), histogram.data_max()};
}

StatusOr<ClipRange> PercentileRange(const Histogram& histogram, double percentile) {
  if (histogram.empty()) return InvalidArgumentError("percentile observer: no data observed");
  if (!(percentile > 50.0 && percentile <= 100.0)) {
    return InvalidArgumentError("percentile ", percentile, " is not in (50, 100]");
  }
  // Both tails are clipped: the upper bound leaves (100 - p)% of the mass above it, the lower
  // bound the same fraction below it.
  const double q = percentile / 100.0;
  const float lo = static_cast<float>(histogram.Quantile(1.0 - q));
  const float hi = static_cast<float>(histogram.Quantile(q));
  return ClipRange{std::min(lo, hi), std::max(lo, hi)};
}

StatusOr<ClipRange> ChooseRange(const Histogram& histogram, const QuantScheme& scheme,
                                const ObserverOptions& options) {
  if (options.kind != ObserverKind::kMinMax && !histogram.binned() && !histogram.empty()) {
    return InvalidArgumentError(ObserverKindName(options.kind),
                                " observer needs a binned histogram, this one holds only extremes");
  }
  StatusOr<ClipRange> range = InternalError("unknown observer kind");
  switch (options.kind) {
    case ObserverKind::kMinMax: range = MinMaxRange(histogram); break;
    case ObserverKind::kPercentile: range = PercentileRange(histogram, options.percentile); break;
    case ObserverKind::kKl: range = KlRange(histogram, scheme); break;
    case ObserverKind::kMse: range = MseRange(histogram, scheme); break;
    case ObserverKind::kAuto: range = AutoRange(histogram, scheme); break;
  }
  if (range.ok() && options.keep.min) range->min = std::min(range->min, histogram.data_min());
  if (range.ok() && options.keep.max) range->max = std::max(range->max, histogram.data_max());
  return range;
}

StatusOr<ObservedParams> ObserveParams(const Histogram& histogram, const QuantScheme& scheme,
                                       const ObserverOptions& options) {
  QALIGN_ASSIGN_OR_RETURN(ClipRange range, ChooseRange(histogram, scheme, options));
  ObservedParams params;
  params.range = range;
  QALIGN_RETURN_IF_ERROR(
      ComputeParams(scheme, range.min, range.max, &params.scale, &params.zero_point));
  return params;
}

float FakeQuantize(float x, float scale, int64_t zero_point, int64_t quant_min,
                   int64_t quant_max) {
  // nearbyint rounds half to even in the default floating-point environment.
  double q = std::nearbyint(static_cast<double>(x) / scale) + static_cast<double>(zero_point);
  q = std::clamp(q, static_cast<double>(quant_min), static_cast<double>(quant_max));
  return static_cast<float>((q - static_cast<double>(zero_point)) * scale);
}

namespace {

// H(u) = integral from -1/2 to u of (t - round(t))^2 dt: the squared rounding error on a unit
// grid, integrated. Over each whole period it adds 1/12; within a period, with r = u + 1/2 -
// floor(u + 1/2), it adds the integral of tau^2 from -1/2 to r - 1/2 = ((r - 1/2)^3 + 1/8) / 3.
double IntegratedRoundingError(double u) {
  const double shifted = u + 0.5;
  const double periods = std::floor(shifted);
  const double r = shifted - periods - 0.5;
  return periods / 12.0 + (r * r * r + 0.125) / 3.0;
}

}  // namespace

double ExpectedQuantError(const Histogram& histogram, const QuantScheme& scheme, float scale,
                          int64_t zero_point) {
  if (histogram.empty() || !(scale > 0)) return 0.0;
  // Values are taken uniform within each bin, and the error is integrated exactly:
  //   x < q_lo (clipped):     (x - q_lo)^2, integral (x - q_lo)^3 / 3
  //   x > q_hi (clipped):     (x - q_hi)^2, integral (x - q_hi)^3 / 3
  //   q_lo <= x <= q_hi:      rounding to the grid step * Z (zero_point is an integer, so the
  //                           grid points are integer multiples of step), integral
  //                           step^3 * H(x / step) with H above.
  // (Ties round either way; they have no weight in an integral.)
  const double step = scale;
  const double q_lo = static_cast<double>(scheme.quant_min - zero_point) * step;
  const double q_hi = static_cast<double>(scheme.quant_max - zero_point) * step;
  const double width = histogram.bin_width();
  const double step3 = step * step * step;
  auto cube = [](double v) { return v * v * v; };
  double error = 0.0;
  for (int i = 0; i < histogram.num_bins(); ++i) {
    const double count = histogram.counts()[static_cast<size_t>(i)];
    if (count == 0.0) continue;
    const double a = histogram.BinLow(i);
    const double b = a + width;
    double integral = 0.0;
    if (a < q_lo) integral += (cube(std::min(b, q_lo) - q_lo) - cube(a - q_lo)) / 3.0;
    if (b > q_hi) integral += (cube(b - q_hi) - cube(std::max(a, q_hi) - q_hi)) / 3.0;
    const double lo = std::max(a, q_lo), hi = std::min(b, q_hi);
    if (hi > lo) {
      integral += step3 * (IntegratedRoundingError(hi / step) - IntegratedRoundingError(lo / step));
    }
    error += count * integral / width;
  }
  return error / histogram.total();
}

}  // namespace qalign
