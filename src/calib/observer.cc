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
  }
  return "?";
}

StatusOr<ObserverKind> ParseObserverKind(const std::string& name) {
  if (name == "minmax") return ObserverKind::kMinMax;
  if (name == "percentile") return ObserverKind::kPercentile;
  if (name == "kl" || name == "entropy") return ObserverKind::kKl;
  if (name == "mse") return ObserverKind::kMse;
  return InvalidArgumentError("unknown observer '", name,
                              "' (expected minmax, percentile, kl or mse)");
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
  switch (options.kind) {
    case ObserverKind::kMinMax: return MinMaxRange(histogram);
    case ObserverKind::kPercentile: return PercentileRange(histogram, options.percentile);
    case ObserverKind::kKl: return KlRange(histogram, scheme);
    case ObserverKind::kMse: return MseRange(histogram, scheme);
  }
  return InternalError("unknown observer kind");
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

double ExpectedQuantError(const Histogram& histogram, const QuantScheme& scheme, float scale,
                          int64_t zero_point) {
  if (histogram.empty() || !(scale > 0)) return 0.0;
  const double step = scale;
  // The representable interval: values inside are rounded, values outside are clipped.
  const double q_lo = static_cast<double>(scheme.quant_min - zero_point) * step;
  const double q_hi = static_cast<double>(scheme.quant_max - zero_point) * step;
  const double width = histogram.bin_width();
  constexpr int kPoints = 8;
  double error = 0.0;
  for (int i = 0; i < histogram.num_bins(); ++i) {
    const double count = histogram.counts()[static_cast<size_t>(i)];
    if (count == 0.0) continue;
    const double a = histogram.BinLow(i);
    const double b = a + width;
    double bin_error;
    if (b <= q_lo || a >= q_hi) {
      // Entirely clipped to one edge e: E[(x - e)^2] for x uniform on [a, b)
      //   = (center - e)^2 + width^2 / 12.
      const double edge = b <= q_lo ? q_lo : q_hi;
      const double d = histogram.BinCenter(i) - edge;
      bin_error = d * d + width * width / 12.0;
    } else if (a >= q_lo && b <= q_hi && width > 4.0 * step) {
      // Many quantization steps per bin: rounding error is uniform on [-step/2, step/2].
      bin_error = step * step / 12.0;
    } else {
      bin_error = 0.0;
      for (int p = 0; p < kPoints; ++p) {
        const double x = a + width * (p + 0.5) / kPoints;
        const double d = x - FakeQuantize(static_cast<float>(x), scale, zero_point,
                                          scheme.quant_min, scheme.quant_max);
        bin_error += d * d;
      }
      bin_error /= kPoints;
    }
    error += count * bin_error;
  }
  return error / histogram.total();
}

}  // namespace qalign
