// Streaming histogram: initial range from the first data, growth by integer re-binning, merging.
#include "calib/histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace qalign {

Histogram::Histogram(int num_bins) : counts_(static_cast<size_t>(std::max(num_bins, 1)), 0.0) {}

Histogram Histogram::RangeOnly() {
  Histogram h(1);
  h.counts_.clear();
  return h;
}

StatusOr<Histogram> Histogram::FromCounts(double lo, double hi, std::vector<double> counts) {
  if (counts.empty()) return InvalidArgumentError("histogram has no bins");
  const double width = (hi - lo) / static_cast<double>(counts.size());
  int first = -1, last = -1;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] > 0) {
      if (first < 0) first = static_cast<int>(i);
      last = static_cast<int>(i);
    }
  }
  const float data_min = first < 0 ? static_cast<float>(lo) : static_cast<float>(lo + width * first);
  const float data_max =
      last < 0 ? static_cast<float>(lo) : static_cast<float>(lo + width * (last + 1));
  return FromCounts(lo, hi, std::move(counts), data_min, data_max);
}

StatusOr<Histogram> Histogram::FromCounts(double lo, double hi, std::vector<double> counts,
                                          float data_min, float data_max) {
  if (counts.empty()) return InvalidArgumentError("histogram has no bins");
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(hi > lo)) {
    return InvalidArgumentError("histogram range [", lo, ", ", hi, "] is not a finite, non-empty range");
  }
  Histogram h(static_cast<int>(counts.size()));
  h.lo_ = lo;
  h.width_ = (hi - lo) / static_cast<double>(counts.size());
  for (double c : counts) {
    if (!(c >= 0) || !std::isfinite(c)) return InvalidArgumentError("histogram count ", c, " is not a non-negative number");
    h.total_ += c;
  }
  h.counts_ = std::move(counts);
  h.data_min_ = data_min;
  h.data_max_ = data_max;
  return h;
}

int Histogram::BinIndex(double x) const {
  const double position = (x - lo_) / width_;
  if (!(position > 0)) return 0;
  const double last = static_cast<double>(counts_.size() - 1);
  return static_cast<int>(std::min(std::floor(position), last));
}

void Histogram::Initialize(double data_min, double data_max) {
  double span = data_max - data_min;
  // A constant tensor (often all zeros) still needs bins of positive width; any later data
  // widens them by re-binning.
  if (!(span > 0)) span = std::max(std::fabs(data_min), 1e-6) * 1e-3;
  lo_ = data_min;
  // Divide the span so that data_max lands inside the last bin rather than on its upper edge.
  width_ = span / static_cast<double>(counts_.size()) * (1.0 + 1e-9);
}

void Histogram::GrowToInclude(double new_min, double new_max) {
  if (new_min >= lo_ && new_max < hi()) return;
  const double n = static_cast<double>(counts_.size());
  const double j = new_min < lo_ ? std::ceil((lo_ - new_min) / width_) : 0.0;
  const double new_lo = lo_ - j * width_;
  const double needed_hi = std::max(hi(), new_max);
  double k = std::max(1.0, std::ceil((needed_hi - new_lo) / (n * width_)));
  // Bins are half-open: the new maximum must fall strictly below the upper edge.
  while (new_lo + n * k * width_ <= needed_hi) k += 1.0;
  std::vector<double> grown(counts_.size(), 0.0);
  const size_t last = counts_.size() - 1;
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] == 0.0) continue;
    const double target = std::floor((j + static_cast<double>(i)) / k);
    grown[std::min(static_cast<size_t>(target), last)] += counts_[i];
  }
  counts_ = std::move(grown);
  lo_ = new_lo;
  width_ *= k;
}

namespace {

struct BatchRange {
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
  int64_t finite = 0;
  int64_t non_finite = 0;
};

BatchRange ScanRangeSlow(std::span<const float> values) {
  BatchRange r;
  for (float x : values) {
    if (!std::isfinite(x)) {
      ++r.non_finite;
      continue;
    }
    r.min = std::min(r.min, x);
    r.max = std::max(r.max, x);
    ++r.finite;
  }
  return r;
}

// Extremes of a batch, four floats at a time (SSE2 is part of x86-64). minps returns its second
// operand when the first is NaN, so a NaN never enters a lane. Non-finite values are only
// detected (x - x is 0 for every finite x and NaN for Inf and NaN); a batch holding any is
// scanned again the slow way, which is rare: calibration rejects such tensors.
BatchRange ScanRange(std::span<const float> values) {
  const float* data = values.data();
  const size_t n = values.size();
  float lo = std::numeric_limits<float>::infinity();
  float hi = -std::numeric_limits<float>::infinity();
  bool bad = false;
  size_t i = 0;
#if defined(__SSE2__)
  if (n >= 8) {
    __m128 min0 = _mm_set1_ps(lo), min1 = min0;
    __m128 max0 = _mm_set1_ps(hi), max1 = max0;
    __m128 nonfinite = _mm_setzero_ps();
    const __m128 zero = _mm_setzero_ps();
    for (; i + 8 <= n; i += 8) {
      const __m128 a = _mm_loadu_ps(data + i);
      const __m128 b = _mm_loadu_ps(data + i + 4);
      min0 = _mm_min_ps(a, min0);
      min1 = _mm_min_ps(b, min1);
      max0 = _mm_max_ps(a, max0);
      max1 = _mm_max_ps(b, max1);
      nonfinite = _mm_or_ps(nonfinite, _mm_cmpneq_ps(_mm_sub_ps(a, a), zero));
      nonfinite = _mm_or_ps(nonfinite, _mm_cmpneq_ps(_mm_sub_ps(b, b), zero));
    }
    bad = _mm_movemask_ps(nonfinite) != 0;
    alignas(16) float lanes_min[4], lanes_max[4];
    _mm_store_ps(lanes_min, _mm_min_ps(min0, min1));
    _mm_store_ps(lanes_max, _mm_max_ps(max0, max1));
    for (int l = 0; l < 4; ++l) {
      lo = std::min(lo, lanes_min[l]);
      hi = std::max(hi, lanes_max[l]);
    }
  }
#endif
  for (; i < n; ++i) {
    const float x = data[i];
    bad = bad || !(x - x == 0.0f);
    lo = x < lo ? x : lo;
    hi = x > hi ? x : hi;
  }
  if (bad) return ScanRangeSlow(values);
  BatchRange r;
  r.min = lo;
  r.max = hi;
  r.finite = static_cast<int64_t>(n);
  return r;
}

// Counts values into bins. Runs of equal bins (common: ReLU zeros, saturated values) would make
// every increment wait for the previous one, so four interleaved integer count arrays take turns
// and are summed at the end. Bin i holds [lo + i * width, lo + (i + 1) * width); a position
// truncates to its floor, and values on or beyond an edge land in the first or last bin.
//
// No branch may depend on the value: where a ReLU's zeros and its positive values alternate at
// random, a branch on "position > 0" was guessed wrong half the time and cost six times the
// counting itself (bench/calib_bench, BM_HistogramAddRelu: 7.6 -> 1.6 ns a value). Written as
// max(position, 0.0) the compiler uses a max instruction. NaN and Inf go to a spare slot after
// the last bin, which is dropped.
void BinInto(std::span<const float> values, double lo, double width, std::vector<double>& counts) {
  const double inv_width = 1.0 / width;
  const size_t bins = counts.size();
  const size_t stride = bins + 1;  // the bins and the spare slot
  constexpr size_t kWays = 4;
  std::vector<uint32_t> local(kWays * stride, 0);
  auto slot_of = [&](float x) -> size_t {
    const bool finite = x - x == 0.0f;
    const double position = finite ? (static_cast<double>(x) - lo) * inv_width : 0.0;
    const size_t bin = std::min(static_cast<size_t>(std::max(position, 0.0)), bins - 1);
    return finite ? bin : bins;
  };
  auto flush = [&] {
    for (size_t w = 0; w < kWays; ++w) {
      for (size_t b = 0; b < bins; ++b) counts[b] += static_cast<double>(local[w * stride + b]);
    }
    std::fill(local.begin(), local.end(), 0u);
  };
  const float* data = values.data();
  const size_t n = values.size();
  // Each way's counter sees at most one value in four: flushing every 2^31 values keeps every
  // uint32 count below 2^29.
  constexpr size_t kFlushEvery = size_t{1} << 31;
  size_t i = 0;
  for (size_t since_flush = 0; i + kWays <= n; i += kWays, since_flush += kWays) {
    if (since_flush >= kFlushEvery) {
      flush();
      since_flush = 0;
    }
    for (size_t w = 0; w < kWays; ++w) ++local[w * stride + slot_of(data[i + w])];
  }
  for (; i < n; ++i) ++local[slot_of(data[i])];
  flush();
}

}  // namespace

void Histogram::Add(std::span<const float> values) { AddParallel(values, 1); }

void Histogram::AddParallel(std::span<const float> values, int num_threads) {
  // Chunks of at least 256K values: below that a thread costs more than it saves.
  constexpr size_t kMinChunk = size_t{1} << 18;
  const size_t chunks = std::clamp<size_t>(values.size() / kMinChunk, 1,
                                           static_cast<size_t>(std::max(num_threads, 1)));
  // body(c) for every chunk, chunk 0 on this thread.
  AddParallel(values, chunks, [](size_t n, const std::function<void(size_t)>& body) {
    std::vector<std::thread> threads;
    for (size_t c = 1; c < n; ++c) threads.emplace_back(body, c);
    body(0);
    for (std::thread& t : threads) t.join();
  });
}

void Histogram::AddParallel(std::span<const float> values, size_t chunks,
                            const ChunkRunner& run) {
  chunks = std::clamp<size_t>(chunks, 1, std::max<size_t>(values.size(), 1));
  const size_t chunk_size = (values.size() + chunks - 1) / chunks;
  auto chunk = [&](size_t c) {
    const size_t begin = std::min(values.size(), c * chunk_size);
    return values.subspan(begin, std::min(chunk_size, values.size() - begin));
  };

  std::vector<BatchRange> ranges(chunks);
  run(chunks, [&](size_t c) { ranges[c] = ScanRange(chunk(c)); });
  BatchRange batch;
  for (const BatchRange& r : ranges) {
    batch.min = std::min(batch.min, r.min);
    batch.max = std::max(batch.max, r.max);
    batch.finite += r.finite;
    batch.non_finite += r.non_finite;
  }
  non_finite_ += batch.non_finite;
  if (batch.finite == 0) return;
  if (!binned()) {
    data_min_ = total_ == 0.0 ? batch.min : std::min(data_min_, batch.min);
    data_max_ = total_ == 0.0 ? batch.max : std::max(data_max_, batch.max);
    total_ += static_cast<double>(batch.finite);
    return;
  }
  if (total_ == 0.0 && width_ == 0.0) {
    Initialize(batch.min, batch.max);
    data_min_ = batch.min;
    data_max_ = batch.max;
  } else {
    GrowToInclude(batch.min, batch.max);
    data_min_ = std::min(data_min_, batch.min);
    data_max_ = std::max(data_max_, batch.max);
  }
  if (chunks == 1) {
    BinInto(values, lo_, width_, counts_);
  } else {
    // Each chunk counts into its own bins; the sums of whole counts are exact in any order.
    std::vector<std::vector<double>> local(chunks, std::vector<double>(counts_.size(), 0.0));
    run(chunks, [&](size_t c) { BinInto(chunk(c), lo_, width_, local[c]); });
    for (const auto& l : local) {
      for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += l[i];
    }
  }
  total_ += static_cast<double>(batch.finite);
}

void Histogram::Merge(const Histogram& other) {
  non_finite_ += other.non_finite_;
  if (other.empty()) return;
  if (!binned() || !other.binned()) {
    // Without bins on either side only the extremes and the total can be combined.
    data_min_ = empty() ? other.data_min_ : std::min(data_min_, other.data_min_);
    data_max_ = empty() ? other.data_max_ : std::max(data_max_, other.data_max_);
    total_ += other.total_;
    counts_.clear();
    return;
  }
  if (empty() && width_ == 0.0) {
    Initialize(other.lo(), other.hi());
    // Same span and bin count as `other` when the counts match: the bins line up exactly.
    width_ = (other.hi() - other.lo()) / static_cast<double>(counts_.size());
    data_min_ = other.data_min_;
    data_max_ = other.data_max_;
  } else {
    GrowToInclude(other.lo(), other.hi() - other.width_ * 1e-6);
    data_min_ = std::min(data_min_, other.data_min_);
    data_max_ = std::max(data_max_, other.data_max_);
  }
  for (int i = 0; i < other.num_bins(); ++i) {
    const double c = other.counts_[static_cast<size_t>(i)];
    if (c == 0.0) continue;
    SpreadUniformMass(counts_, lo_, width_, other.BinLow(i), other.BinLow(i) + other.width_, c);
  }
  total_ += other.total_;
}

double Histogram::Quantile(double q) const {
  if (empty()) return 0.0;
  if (!binned()) return q < 0.5 ? data_min_ : data_max_;
  q = std::clamp(q, 0.0, 1.0);
  const double target = q * total_;
  double cumulative = 0.0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    const double c = counts_[i];
    if (c > 0 && cumulative + c >= target) {
      const double fraction = (target - cumulative) / c;
      const double x = lo_ + width_ * (static_cast<double>(i) + fraction);
      return std::clamp(x, static_cast<double>(data_min_), static_cast<double>(data_max_));
    }
    cumulative += c;
  }
  return data_max_;
}

void SpreadUniformMass(std::vector<double>& bins, double lo, double width, double a, double b,
                       double mass) {
  if (bins.empty() || mass == 0.0) return;
  const double n = static_cast<double>(bins.size());
  const double hi = lo + width * n;
  auto bin_of = [&](double x) {
    const double position = (x - lo) / width;
    if (!(position > 0)) return size_t{0};
    return static_cast<size_t>(std::min(std::floor(position), n - 1));
  };
  if (!(b > a)) {
    bins[bin_of(a)] += mass;
    return;
  }
  const double density = mass / (b - a);
  if (a < lo) bins.front() += density * (std::min(b, lo) - a);
  if (b > hi) bins.back() += density * (b - std::max(a, hi));
  const double from = std::max(a, lo);
  const double to = std::min(b, hi);
  if (!(to > from)) return;
  const size_t first = bin_of(from);
  const size_t last = bin_of(to);
  for (size_t i = first; i <= last; ++i) {
    const double bin_lo = lo + width * static_cast<double>(i);
    const double overlap = std::min(to, bin_lo + width) - std::max(from, bin_lo);
    if (overlap > 0) bins[i] += density * overlap;
  }
}

}  // namespace qalign
