// KL (entropy) observer: TensorRT's calibration method, choosing the clipping threshold whose
// quantized distribution loses the least information relative to the original.
//
// The algorithm, in our words:
//  1. Fold the signed histogram into a histogram H of |x| with B = 2048 bins over [0, A], where
//     A = max(|data_min|, |data_max|). (Signed bins straddling 0 are split in proportion.)
//  2. The integer grid has L levels on one side of zero: L = (qmax - qmin + 1) / 2 (128 for int8)
//     when the data has both signs or the scheme is symmetric; all qmax - qmin + 1 levels when the
//     scheme is asymmetric and the data lies on one side of zero (e.g. after a ReLU).
//  3. For each candidate threshold index i = L .. B (threshold T_i = i * A / B):
//     - the reference P is H[0 .. i) with everything beyond the threshold (the clipped
//       outliers, sum of H[i .. B)) added to its last bin, since clipping maps them to T_i;
//     - the candidate Q models what quantization keeps of H[0 .. i): the i bins are cut into
//       L contiguous groups (one per integer level), each group's total is spread evenly over
//       the bins of the group that were non-empty in H (empty bins stay empty, as quantization
//       cannot create values where there were none);
//     - both are normalised to sum to 1 and D_i = sum_b P[b] * log(P[b] / Q[b]).
//     A bin where P > 0 but Q = 0 (only the last bin can be such: outliers landed where H was
//     empty) would make D infinite; Q is floored at a small epsilon there, a heavy but finite
//     penalty.
//  4. The threshold with the least D_i wins (the smallest i among equals; the search is coarse
//     to fine, see below): the range is
//     [max(data_min, -T), min(data_max, T)].
// Small thresholds lose the outliers (P's last bin grows), large ones lose resolution (each level
// merges many bins, flattening Q); the minimum balances the two.
#include <algorithm>
#include <cmath>
#include <limits>

#include "calib/observer.h"

namespace qalign {
namespace {

constexpr int kFoldBins = 2048;

// Histogram of |x| with kFoldBins bins over [0, amax].
std::vector<double> FoldAbsolute(const Histogram& histogram, double amax) {
  std::vector<double> folded(kFoldBins, 0.0);
  const double fold_width = amax / kFoldBins;
  const double data_min = histogram.data_min();
  const double data_max = histogram.data_max();
  for (int i = 0; i < histogram.num_bins(); ++i) {
    const double count = histogram.counts()[static_cast<size_t>(i)];
    if (count == 0.0) continue;
    // Bins at the ends may reach past the data; the mass lies within the data's extremes.
    const double a = std::max(histogram.BinLow(i), data_min);
    const double b = std::min(histogram.BinLow(i) + histogram.bin_width(), data_max);
    if (!(b > a)) {
      SpreadUniformMass(folded, 0.0, fold_width, std::fabs(a), std::fabs(a), count);
      continue;
    }
    const double length = b - a;
    if (a < 0) {  // negative part [a, min(b, 0)) folds onto [max(-b, 0), -a)
      const double end = std::min(b, 0.0);
      SpreadUniformMass(folded, 0.0, fold_width, -end, -a, count * (end - a) / length);
    }
    if (b > 0) {  // positive part [max(a, 0), b)
      const double start = std::max(a, 0.0);
      SpreadUniformMass(folded, 0.0, fold_width, start, b, count * (b - start) / length);
    }
  }
  return folded;
}

}  // namespace

StatusOr<ClipRange> KlRange(const Histogram& histogram, const QuantScheme& scheme) {
  if (histogram.empty()) return InvalidArgumentError("kl observer: no data observed");
  const double data_min = histogram.data_min();
  const double data_max = histogram.data_max();
  const double amax = std::max(std::fabs(data_min), std::fabs(data_max));
  if (!(amax > 0)) return ClipRange{histogram.data_min(), histogram.data_max()};

  const bool one_sided = data_min >= 0 || data_max <= 0;
  const int64_t span = scheme.quant_max - scheme.quant_min + 1;
  const bool symmetric = scheme.policy.Has(kSymmetric);
  const int levels = static_cast<int>(
      std::max<int64_t>(2, (symmetric || !one_sided) ? span / 2 : span));
  if (levels >= kFoldBins) return ClipRange{histogram.data_min(), histogram.data_max()};

  const std::vector<double> folded = FoldAbsolute(histogram, amax);
  // beyond[i] = sum of folded[i .. B): the mass a threshold at bin i clips.
  std::vector<double> beyond(kFoldBins + 1, 0.0);
  for (int i = kFoldBins - 1; i >= 0; --i) beyond[i] = beyond[i + 1] + folded[i];
  const double total = beyond[0];
  if (!(total > 0)) return ClipRange{histogram.data_min(), histogram.data_max()};

  constexpr double kEpsilon = 1e-12;
  std::vector<double> q(kFoldBins, 0.0);
  // D_i for threshold index i; infinity when nothing lies below the threshold.
  auto divergence_at = [&](int i) {
    // Candidate Q over bins [0, i): L groups, each total spread over its non-empty bins.
    double q_total = 0.0;
    for (int g = 0; g < levels; ++g) {
      const int start = static_cast<int>(static_cast<int64_t>(g) * i / levels);
      const int end = static_cast<int>(static_cast<int64_t>(g + 1) * i / levels);
      double group_sum = 0.0;
      int non_empty = 0;
      for (int b = start; b < end; ++b) {
        group_sum += folded[b];
        if (folded[b] > 0) ++non_empty;
      }
      const double share = non_empty > 0 ? group_sum / non_empty : 0.0;
      for (int b = start; b < end; ++b) q[b] = folded[b] > 0 ? share : 0.0;
      q_total += group_sum;
    }
    if (!(q_total > 0)) return std::numeric_limits<double>::infinity();
    // Reference P: folded[0, i) with the clipped mass added to bin i - 1; sums to `total`.
    double divergence = 0.0;
    for (int b = 0; b < i; ++b) {
      const double p_count = folded[b] + (b == i - 1 ? beyond[i] : 0.0);
      if (p_count <= 0) continue;
      const double p = p_count / total;
      const double qb = std::max(q[b] / q_total, kEpsilon);
      divergence += p * std::log(p / qb);
    }
    return divergence;
  };
  // Every i costs O(i), so all 1920 candidates cost ~2M log() calls per tensor. Search a coarse
  // grid (every kStride-th i, and i = B) first, then every i around the best coarse one; D_i
  // varies smoothly with i on real activations, so this finds the same minimum ~10x faster.
  constexpr int kStride = 16;
  int best_index = kFoldBins;
  double best_divergence = std::numeric_limits<double>::infinity();
  auto consider = [&](int i) {
    const double d = divergence_at(i);
    if (d < best_divergence || (d == best_divergence && i < best_index)) {
      best_divergence = d;
      best_index = i;
    }
  };
  for (int i = levels; i < kFoldBins; i += kStride) consider(i);
  consider(kFoldBins);
  const int coarse = best_index;
  for (int i = std::max(levels, coarse - kStride + 1);
       i <= std::min(kFoldBins, coarse + kStride - 1); ++i) {
    consider(i);
  }
  const double threshold = amax * best_index / kFoldBins;
  ClipRange range;
  range.min = static_cast<float>(std::max(data_min, -threshold));
  range.max = static_cast<float>(std::min(data_max, threshold));
  return range;
}

}  // namespace qalign
