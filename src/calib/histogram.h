// Streaming value histogram with a fixed bin count whose range grows by exact re-binning.
//
// Calibration sees a tensor's values one batch at a time and cannot know the final range in
// advance. The histogram therefore starts on the range of the first batch and, when a later batch
// (or a merged histogram) falls outside it, grows to a wider range in a way that never splits an
// old bin:
//
//   old range [lo, lo + N*w) with N bins of width w;
//   new bin width  w' = k * w for a positive integer k,
//   new lower edge lo' = lo - j * w for a non-negative integer j,
//   so old bin i covers [lo' + (j + i) w, lo' + (j + i + 1) w) and falls entirely inside new
//   bin floor((j + i) / k). Its count moves there unchanged: re-binning loses resolution (the
//   bins get k times wider) but never invents or smears mass.
//   j = ceil((lo - new_min) / w) when the new data extends below lo, else 0;
//   k = ceil((max(hi, new_max) - lo') / (N * w)), the smallest factor that covers the new max.
//
// The exact extremes of every value added are tracked separately from the bins (data_min,
// data_max), so min/max calibration does not depend on the binning at all.
//
// Merging a histogram whose bins do not line up with this one's spreads each of its bins over the
// overlapping bins here in proportion to the overlap (values are assumed uniform within a bin).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "qalign/status.h"

namespace qalign {

class Histogram {
 public:
  static constexpr int kDefaultBins = 2048;

  explicit Histogram(int num_bins = kDefaultBins);
  // A histogram without bins: it tracks only the exact extremes and the count, which is all the
  // minmax observer reads, at the cost of one vectorised scan per batch.
  static Histogram RangeOnly();

  // Rebuilds a histogram from stored bins (e.g. read back from ranges.json). The data extremes are
  // taken as the edges of the outermost non-empty bins unless given.
  static StatusOr<Histogram> FromCounts(double lo, double hi, std::vector<double> counts);
  static StatusOr<Histogram> FromCounts(double lo, double hi, std::vector<double> counts,
                                        float data_min, float data_max);

  // Adds finite values; NaN and Inf are skipped and counted in non_finite() (callers that must
  // reject them check their data first).
  void Add(std::span<const float> values);
  // The same result as Add, with large inputs split over up to `num_threads` threads.
  void AddParallel(std::span<const float> values, int num_threads);
  // Runs body(c) for every c in [0, chunks), possibly concurrently (a thread pool's loop).
  using ChunkRunner =
      std::function<void(size_t chunks, const std::function<void(size_t chunk)>& body)>;
  // The same result as Add, with the values split into `chunks` parts handed to `run`.
  void AddParallel(std::span<const float> values, size_t chunks, const ChunkRunner& run);
  // Adds the counts of `other`, growing this histogram's range to cover it.
  void Merge(const Histogram& other);

  bool empty() const { return total_ == 0.0; }
  // False for RangeOnly() histograms (num_bins() is then 0) and after merging one into another.
  bool binned() const { return !counts_.empty(); }
  int num_bins() const { return static_cast<int>(counts_.size()); }
  // Range covered by the bins: [lo, hi) with hi = lo + num_bins * bin_width.
  double lo() const { return lo_; }
  double hi() const { return lo_ + width_ * static_cast<double>(counts_.size()); }
  double bin_width() const { return width_; }
  double BinLow(int i) const { return lo_ + width_ * i; }
  double BinCenter(int i) const { return lo_ + width_ * (i + 0.5); }
  const std::vector<double>& counts() const { return counts_; }
  double total() const { return total_; }
  int64_t non_finite() const { return non_finite_; }
  // Exact extremes of the finite values added (not rounded to bins).
  float data_min() const { return data_min_; }
  float data_max() const { return data_max_; }

  // The value below which a fraction q (0..1) of the mass lies, interpolating linearly inside the
  // bin where the cumulative count crosses q * total; clamped to [data_min, data_max].
  double Quantile(double q) const;

 private:
  // Widens the bins (see the header comment) so that [new_min, new_max] is covered.
  void GrowToInclude(double new_min, double new_max);
  // Sets the initial range from the first data.
  void Initialize(double data_min, double data_max);
  int BinIndex(double x) const;

  std::vector<double> counts_;
  double lo_ = 0.0;
  double width_ = 0.0;  // 0 until the first data arrives
  double total_ = 0.0;
  int64_t non_finite_ = 0;
  float data_min_ = 0.0f;
  float data_max_ = 0.0f;
};

// Adds `mass`, spread uniformly over [a, b), to bins of width `width` starting at `lo`, each bin
// receiving its share of the overlap. Mass outside the bins goes to the nearest end bin.
// Shared by Histogram::Merge and the observers that fold or re-bin a histogram.
void SpreadUniformMass(std::vector<double>& bins, double lo, double width, double a, double b,
                       double mass);

}  // namespace qalign
