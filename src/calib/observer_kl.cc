// KL (entropy) observer: TensorRT's calibration method, choosing the clipping threshold whose
// quantized distribution loses the least information relative to the original.
//
// The algorithm, in our words:
//  1. Re-bin the signed histogram into H, 2B bins of width A / B over [-A, A] (B = 2048), where
//     A = max(|data_min|, |data_max|).
//  2. For each candidate threshold index i (threshold T_i = i * A / B), the grid the scheme puts on
//     the range that threshold gives: [-T_i, T_i] on a symmetric scheme, [max(data_min, -T_i),
//     min(data_max, T_i)] on an asymmetric one, cut into N = qmax - qmin + 1 levels (256 for
//     int8). The bins [lo, hi) that grid covers are cut into N contiguous groups, one per level.
//     - the reference P is H[lo .. hi) with everything beyond the range (the clipped outliers)
//       added to the end bin on its side, since clipping maps them to the range's end;
//     - the candidate Q models what quantization keeps of H[lo .. hi): each group's total is
//       spread evenly over the bins of the group that were non-empty in H (empty bins stay
//       empty, as quantization cannot create values where there were none), except its point
//       masses, which stay in their bins: quantization maps all of a point mass to one level and
//       loses nothing of it;
//     - both are normalised to sum to 1 and D_i = sum_b P[b] * log(P[b] / Q[b]).
//     A bin where P > 0 but Q = 0 (only an end bin can be such: outliers landed where H was
//     empty) would make D infinite; Q is floored at a small epsilon there, a heavy but finite
//     penalty.
//     The groups follow the signed grid: a negative and a positive value never share a level.
//     TensorRT's method folds the histogram into one of |x| instead, which merges them, and
//     spreads point masses too; on a skewed tensor (a ReLU's zeros shifted by a bias: a point
//     mass at the negative minimum, a long positive tail) the folded point mass lands among the
//     positive values, every coarse level smears it, and the divergence is least at the finest
//     grid, clipping most of the tail (PP-OCRv4 rec then read no character on any target).
//     A point mass is the excess of the bin holding 0 or one of the data's exact extremes over
//     its neighbours' mean (the zeros of a ReLU, values where a Clip saturates, a ReLU's zeros
//     moved by a bias); a smooth density has no such excess.
//  3. The search starts where a level spans one bin: i = N / 2, or N on an asymmetric scheme when
//     the data lies on one side of zero (e.g. after a ReLU). The threshold with the least D_i wins
//     (the smallest i among equals; the search is coarse to fine, see below): the range is
//     [max(data_min, -T), min(data_max, T)].
// Small thresholds lose the outliers (P's end bins grow), large ones lose resolution (each level
// merges many bins, flattening Q); the minimum balances the two.
#include <algorithm>
#include <cmath>
#include <limits>

#include "calib/observer.h"

namespace qalign {
namespace {

constexpr int kSideBins = 2048;  // B: bins on each side of zero

// The histogram re-binned into 2 * kSideBins bins of width amax / kSideBins over [-amax, amax].
struct SignedBins {
  std::vector<double> all;     // every value
  std::vector<double> points;  // the part of `all` that is point masses (see Rebin)
};

// The bin of `histogram` holding `value`.
int BinOf(const Histogram& histogram, double value) {
  return std::clamp(static_cast<int>(std::floor((value - histogram.lo()) / histogram.bin_width())),
                    0, histogram.num_bins() - 1);
}

// How much `counts[bin]` holds beyond its neighbours' mean: the point mass in that bin, if any.
double ExcessOverNeighbours(const std::vector<double>& counts, int bin) {
  double neighbours = 0.0;
  int count = 0;
  for (int b : {bin - 1, bin + 1}) {
    if (b < 0 || b >= static_cast<int>(counts.size())) continue;
    neighbours += counts[static_cast<size_t>(b)];
    ++count;
  }
  if (count == 0) return 0.0;
  return std::max(0.0, counts[static_cast<size_t>(bin)] - neighbours / count);
}

SignedBins Rebin(const Histogram& histogram, double amax) {
  SignedBins result;
  result.all.assign(2 * kSideBins, 0.0);
  result.points.assign(2 * kSideBins, 0.0);
  const double width = amax / kSideBins;
  const double data_min = histogram.data_min();
  const double data_max = histogram.data_max();
  // The values a point mass sits at: the exact zeros of a ReLU or of padding; the extremes, where
  // a Clip or a ReLU6 saturates, or where a bias moved a ReLU's zeros. Each bin's excess counts
  // once, at the first of these values it holds.
  std::vector<double> point_values = {data_min, data_max};
  if (data_min < 0 && data_max > 0) point_values.push_back(0.0);
  std::vector<double> counts = histogram.counts();
  std::vector<int> point_bins;
  for (double value : point_values) {
    const int bin = BinOf(histogram, value);
    if (std::find(point_bins.begin(), point_bins.end(), bin) != point_bins.end()) continue;
    point_bins.push_back(bin);
    const double excess = ExcessOverNeighbours(histogram.counts(), bin);
    if (!(excess > 0)) continue;
    counts[static_cast<size_t>(bin)] -= excess;
    SpreadUniformMass(result.points, -amax, width, value, value, excess);
    SpreadUniformMass(result.all, -amax, width, value, value, excess);
  }
  for (int i = 0; i < histogram.num_bins(); ++i) {
    const double count = counts[static_cast<size_t>(i)];
    if (count == 0.0) continue;
    // Bins at the ends may reach past the data; the mass lies within the data's extremes.
    const double a = std::max(histogram.BinLow(i), data_min);
    const double b = std::min(histogram.BinLow(i) + histogram.bin_width(), data_max);
    SpreadUniformMass(result.all, -amax, width, a, std::max(a, b), count);
  }
  return result;
}

}  // namespace

StatusOr<ClipRange> KlRange(const Histogram& histogram, const QuantScheme& scheme) {
  if (histogram.empty()) return InvalidArgumentError("kl observer: no data observed");
  if (!histogram.binned()) return ClipRange{histogram.data_min(), histogram.data_max()};
  const double data_min = histogram.data_min();
  const double data_max = histogram.data_max();
  const double amax = std::max(std::fabs(data_min), std::fabs(data_max));
  if (!(amax > 0)) return ClipRange{histogram.data_min(), histogram.data_max()};

  const bool one_sided = data_min >= 0 || data_max <= 0;
  const int64_t span = scheme.quant_max - scheme.quant_min + 1;
  const bool symmetric = scheme.policy.Has(kSymmetric);
  if (span >= 2 * kSideBins) return ClipRange{histogram.data_min(), histogram.data_max()};
  const int levels = static_cast<int>(std::max<int64_t>(2, span));
  const int first_index = (symmetric || !one_sided) ? std::max(1, levels / 2) : levels;

  const SignedBins rebinned = Rebin(histogram, amax);
  const std::vector<double>& bins = rebinned.all;
  const std::vector<double>& points = rebinned.points;
  const double width = amax / kSideBins;
  // below[b] = sum of bins[0 .. b): the mass a range starting at bin b clips on the left.
  std::vector<double> below(2 * kSideBins + 1, 0.0);
  for (int b = 0; b < 2 * kSideBins; ++b) below[b + 1] = below[b] + bins[b];
  const double total = below[2 * kSideBins];
  if (!(total > 0)) return ClipRange{histogram.data_min(), histogram.data_max()};

  // The bins [lo, hi) the grid of threshold index i covers; false when the range it gives is
  // empty (one-sided data lying wholly beyond the threshold). A constant tensor's range is one
  // point, covered by its bin.
  auto grid_bins = [&](int i, int* lo, int* hi) {
    if (symmetric) {
      *lo = kSideBins - i;
      *hi = kSideBins + i;
      return true;
    }
    const double threshold = width * i;
    const double low = std::max(data_min, -threshold);
    const double high = std::min(data_max, threshold);
    if (high < low) return false;
    *lo = std::clamp(static_cast<int>(std::floor(low / width)) + kSideBins, 0, 2 * kSideBins - 1);
    *hi = std::clamp(static_cast<int>(std::ceil(high / width)) + kSideBins, *lo + 1,
                     2 * kSideBins);
    return true;
  };

  constexpr double kEpsilon = 1e-12;
  std::vector<double> q(2 * kSideBins, 0.0);
  // D_i for threshold index i; infinity when the range is empty or holds no data.
  auto divergence_at = [&](int i) {
    int lo = 0, hi = 0;
    if (!grid_bins(i, &lo, &hi)) return std::numeric_limits<double>::infinity();
    const int n = hi - lo;
    // Candidate Q over bins [lo, hi): `levels` groups, each total spread over its non-empty bins.
    for (int g = 0; g < levels; ++g) {
      const int start = lo + static_cast<int>(static_cast<int64_t>(g) * n / levels);
      const int end = lo + static_cast<int>(static_cast<int64_t>(g + 1) * n / levels);
      int non_empty = 0;
      double point_mass = 0.0;
      for (int b = start; b < end; ++b) {
        non_empty += bins[b] > 0 ? 1 : 0;
        point_mass += points[b];
      }
      const double rest = below[end] - below[start] - point_mass;
      const double share = non_empty > 0 ? std::max(0.0, rest) / non_empty : 0.0;
      for (int b = start; b < end; ++b) q[b] = bins[b] > 0 ? share + points[b] : 0.0;
    }
    const double q_total = below[hi] - below[lo];
    if (!(q_total > 0)) return std::numeric_limits<double>::infinity();
    // Reference P: bins[lo, hi) with the clipped mass added to the end bins; sums to `total`.
    const double clipped_low = below[lo];
    const double clipped_high = total - below[hi];
    double divergence = 0.0;
    for (int b = lo; b < hi; ++b) {
      const double p_count = bins[b] + (b == lo ? clipped_low : 0.0) +
                             (b == hi - 1 ? clipped_high : 0.0);
      if (p_count <= 0) continue;
      const double p = p_count / total;
      const double qb = std::max(q[b] / q_total, kEpsilon);
      divergence += p * std::log(p / qb);
    }
    return divergence;
  };
  // Every i costs O(i), so all ~1900 candidates cost ~4M log() calls per tensor. Search a coarse
  // grid (every kStride-th i, and i = B) first, then every i around the best coarse one; D_i
  // varies smoothly with i on real activations, so this finds the same minimum ~10x faster.
  constexpr int kStride = 16;
  int best_index = kSideBins;
  double best_divergence = std::numeric_limits<double>::infinity();
  auto consider = [&](int i) {
    const double d = divergence_at(i);
    if (!std::isfinite(d)) return;  // no data inside the range: never the answer
    if (d < best_divergence || (d == best_divergence && i < best_index)) {
      best_divergence = d;
      best_index = i;
    }
  };
  for (int i = first_index; i < kSideBins; i += kStride) consider(i);
  consider(kSideBins);
  const int coarse = best_index;
  for (int i = std::max(first_index, coarse - kStride + 1);
       i <= std::min(kSideBins, coarse + kStride - 1); ++i) {
    consider(i);
  }
  const double threshold = amax * best_index / kSideBins;
  ClipRange range;
  range.min = static_cast<float>(std::max(data_min, -threshold));
  range.max = static_cast<float>(std::min(data_max, threshold));
  return range;
}

}  // namespace qalign
