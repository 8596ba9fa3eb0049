// Observers: turn a tensor's calibration histogram into a clipping range and (scale, zero_point).
//
// Four methods, chosen per TQC (`observer` field) or for a whole run (`--observer`):
//   minmax      the exact extremes of the data.
//   percentile  the p-th and (100 - p)-th percentiles of the data (default p = 99.99), read from
//               the histogram with linear interpolation inside a bin.
//   kl          TensorRT's entropy calibration: the threshold T whose clipped-and-quantized
//               distribution is closest, in KL divergence, to the clipped reference, on the
//               signed grid and with point masses kept whole (observer_kl.cc has the algorithm).
//   mse         the clipping range with the least expected squared quantization error over the
//               histogram, found by a coarse-to-fine search (observer_mse.cc).
//   auto        per tensor, mse where the data has long tails, minmax elsewhere: the mse range
//               when its expected error is at most half the minmax range's (a few outliers
//               stretch the range and coarsen the step of every value), else the minmax range,
//               which clips nothing.
// Every method yields a range inside [data_min, data_max]; (scale, zero_point) then come from
// ComputeParams under the TQC's scheme (bits, integer range, symmetric or not, power-of-2), so
// the range and the params always agree with what a kernel will do.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "calib/histogram.h"
#include "qalign/status.h"
#include "quant/quant_config.h"

namespace qalign {

enum class ObserverKind { kMinMax, kPercentile, kKl, kMse, kAuto };

// "minmax", "percentile", "kl", "mse", "auto".
const char* ObserverKindName(ObserverKind kind);
// Accepts the names above (and "entropy" for kl); an unknown name is an InvalidArgument error.
StatusOr<ObserverKind> ParseObserverKind(const std::string& name);

// The ends of a tensor's range that the observer may not clip: a kept end is the data's minimum
// (maximum) whatever the method chooses, an end not kept stays the method's. Set per tensor
// (calib/observer_choice.h).
struct KeptEnds {
  bool min = false;
  bool max = false;
  bool operator==(const KeptEnds&) const = default;
};

struct ObserverOptions {
  ObserverKind kind = ObserverKind::kMinMax;
  double percentile = 99.99;  // for kPercentile, in (50, 100]
  KeptEnds keep = {};
};

// A clipping range chosen by an observer.
struct ClipRange {
  float min = 0.0f;
  float max = 0.0f;
};

// The range together with the params it gives under a scheme.
struct ObservedParams {
  ClipRange range;
  float scale = 1.0f;
  int64_t zero_point = 0;
};

// Each fails (InvalidArgument) on an empty histogram.
StatusOr<ClipRange> MinMaxRange(const Histogram& histogram);
StatusOr<ClipRange> PercentileRange(const Histogram& histogram, double percentile);
StatusOr<ClipRange> KlRange(const Histogram& histogram, const QuantScheme& scheme);
StatusOr<ClipRange> MseRange(const Histogram& histogram, const QuantScheme& scheme);
StatusOr<ClipRange> AutoRange(const Histogram& histogram, const QuantScheme& scheme);

// Dispatches on options.kind, then applies options.keep.
StatusOr<ClipRange> ChooseRange(const Histogram& histogram, const QuantScheme& scheme,
                                const ObserverOptions& options);
// ChooseRange followed by ComputeParams.
StatusOr<ObservedParams> ObserveParams(const Histogram& histogram, const QuantScheme& scheme,
                                       const ObserverOptions& options);

// Fake quantization of one value: (clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point)
// * scale, rounding half to even.
float FakeQuantize(float x, float scale, int64_t zero_point, int64_t quant_min, int64_t quant_max);

// Expected squared error E[(x - FakeQuantize(x))^2] of the histogram's values under (scale,
// zero_point), with values taken uniform within each bin and the error integrated exactly (O(1)
// per bin). Used by the mse observer and by alignment's `optimal` method.
double ExpectedQuantError(const Histogram& histogram, const QuantScheme& scheme, float scale,
                          int64_t zero_point);

// The grid search the mse observer and the `optimal` method share (observer_mse.cc): improves
// `best`, whose error is `best_error`, with ranges inside [data_lo, data_hi] (data_lo < data_hi):
//  1. both ends shrunk together, [alpha * data_lo, alpha * data_hi] for alpha = 1/C .. 1 (C = 100),
//     then two finer sweeps (steps 1/(10 C), 1/(100 C)) around the best alpha; a symmetric
//     scheme's range depends on max |x| alone, so for it this step is the whole search;
//  2. otherwise the lower end alone, then the upper end alone, on the first grid.
// A candidate replaces the best only when strictly better, so the result is never worse than
// `best`. `error` returns infinity for a range that gives no params.
ClipRange SearchClipRange(double data_lo, double data_hi, bool symmetric,
                          const std::function<double(float lo, float hi)>& error, ClipRange best,
                          double best_error);

// The `optimal` alignment method (observer_shared.cc): the one range [lo, hi] minimizing the
// members' summed expected quantization error, sum of total * ExpectedQuantError, under `scheme`.
// Every range in `candidates` (e.g. the members' union and each member's own range) is tried
// first, so the result is never worse than any of them. When `required` is given, every range the
// search considers is first widened to contain it, so the result is the least-error range that
// keeps those values (a constant member, an end that may not be clipped). Empty members are
// ignored; a member that holds only extremes is an error.
StatusOr<ClipRange> OptimalSharedRange(const std::vector<const Histogram*>& members,
                                       const std::vector<ClipRange>& candidates,
                                       const QuantScheme& scheme,
                                       std::optional<ClipRange> required = std::nullopt);
// The objective above for one range (infinity when the range gives no params).
double SummedQuantError(const std::vector<const Histogram*>& members, const QuantScheme& scheme,
                        float lo, float hi);

}  // namespace qalign
