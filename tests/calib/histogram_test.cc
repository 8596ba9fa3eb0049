// Histogram: exact counts, growth by re-binning, merging, quantiles.
#include "calib/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

namespace qalign {
namespace {

std::vector<float> Uniform(size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Counts the values in each bin of `h` by brute force.
std::vector<double> BruteCounts(const Histogram& h, const std::vector<float>& values) {
  std::vector<double> counts(static_cast<size_t>(h.num_bins()), 0.0);
  for (float x : values) {
    int i = static_cast<int>(std::floor((x - h.lo()) / h.bin_width()));
    i = std::clamp(i, 0, h.num_bins() - 1);
    counts[static_cast<size_t>(i)] += 1.0;
  }
  return counts;
}

double Sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

TEST(HistogramTest, FirstBatchSetsRangeAndCountsEveryValue) {
  const std::vector<float> values = Uniform(10000, -1.0f, 3.0f, 1);
  Histogram h(256);
  h.Add(values);
  EXPECT_EQ(h.total(), 10000.0);
  EXPECT_DOUBLE_EQ(Sum(h.counts()), 10000.0);
  EXPECT_EQ(h.data_min(), *std::min_element(values.begin(), values.end()));
  EXPECT_EQ(h.data_max(), *std::max_element(values.begin(), values.end()));
  EXPECT_LE(h.lo(), h.data_min());
  EXPECT_GT(h.hi(), h.data_max());
  EXPECT_EQ(h.counts(), BruteCounts(h, values));
}

TEST(HistogramTest, GrowthKeepsEveryOldBinWhole) {
  // After growing, the histogram must equal a brute-force count of all values over its final
  // bins: old bins nest exactly inside new ones, so nothing is smeared.
  std::vector<float> all = Uniform(5000, 0.0f, 1.0f, 2);
  Histogram h(128);
  h.Add(all);
  const double old_width = h.bin_width();
  const std::vector<float> wider = Uniform(5000, -3.0f, 5.0f, 3);
  h.Add(wider);
  all.insert(all.end(), wider.begin(), wider.end());
  EXPECT_EQ(h.total(), 10000.0);
  // Width grew by an integer factor.
  const double k = h.bin_width() / old_width;
  EXPECT_NEAR(k, std::round(k), 1e-6 * k);
  EXPECT_GE(k, 2.0);
  EXPECT_LE(h.lo(), *std::min_element(wider.begin(), wider.end()));
  EXPECT_GT(h.hi(), *std::max_element(wider.begin(), wider.end()));
  const std::vector<double> expected = BruteCounts(h, all);
  double difference = 0;
  for (size_t i = 0; i < expected.size(); ++i) difference += std::fabs(expected[i] - h.counts()[i]);
  EXPECT_LE(difference, 4.0);  // only values within rounding of a bin edge may differ
  EXPECT_EQ(h.data_min(), *std::min_element(all.begin(), all.end()));
  EXPECT_EQ(h.data_max(), *std::max_element(all.begin(), all.end()));
}

TEST(HistogramTest, ParallelAddEqualsSerialAdd) {
  std::vector<float> first = Uniform(600000, -1.0f, 2.0f, 8);
  first[12345] = NAN;
  const std::vector<float> second = Uniform(700000, -4.0f, 1.0f, 9);
  Histogram serial(512), parallel(512);
  serial.Add(first);
  serial.Add(second);
  parallel.AddParallel(first, 4);
  parallel.AddParallel(second, 3);
  EXPECT_EQ(parallel.counts(), serial.counts());
  EXPECT_EQ(parallel.total(), serial.total());
  EXPECT_EQ(parallel.non_finite(), 1);
  EXPECT_EQ(parallel.lo(), serial.lo());
  EXPECT_EQ(parallel.data_min(), serial.data_min());
  EXPECT_EQ(parallel.data_max(), serial.data_max());
}

TEST(HistogramTest, ConstantTensorThenRealData) {
  Histogram h(64);
  const std::vector<float> zeros(100, 0.0f);
  h.Add(zeros);
  EXPECT_EQ(h.total(), 100.0);
  EXPECT_EQ(h.data_min(), 0.0f);
  EXPECT_EQ(h.data_max(), 0.0f);
  const std::vector<float> values = {-2.0f, 7.5f};
  h.Add(values);
  EXPECT_EQ(h.total(), 102.0);
  EXPECT_DOUBLE_EQ(Sum(h.counts()), 102.0);
  EXPECT_LE(h.lo(), -2.0);
  EXPECT_GT(h.hi(), 7.5);
  // The zeros stay together in the bin holding 0.
  const int zero_bin = static_cast<int>(std::floor((0.0 - h.lo()) / h.bin_width()));
  EXPECT_GE(h.counts()[static_cast<size_t>(zero_bin)], 100.0);
}

TEST(HistogramTest, NonFiniteValuesAreSkippedAndCounted) {
  Histogram h(16);
  const std::vector<float> values = {1.0f, NAN, 2.0f, INFINITY, -INFINITY};
  h.Add(values);
  EXPECT_EQ(h.total(), 2.0);
  EXPECT_EQ(h.non_finite(), 3);
  EXPECT_EQ(h.data_max(), 2.0f);
}

TEST(HistogramTest, RunsOfOneValueAndOddLengthsAreCountedExactly) {
  // Long runs of one value (ReLU zeros) and lengths that are not a multiple of the unrolling.
  for (size_t n : {size_t{1}, size_t{3}, size_t{7}, size_t{4099}, size_t{70001}}) {
    std::vector<float> values = Uniform(n, -2.0f, 5.0f, static_cast<uint32_t>(n));
    for (size_t i = 0; i < n; i += 3) values[i] = 0.0f;
    Histogram h(97);
    h.Add(values);
    EXPECT_EQ(h.total(), static_cast<double>(n)) << n;
    EXPECT_EQ(h.counts(), BruteCounts(h, values)) << n;
    EXPECT_EQ(h.data_min(), *std::min_element(values.begin(), values.end())) << n;
    EXPECT_EQ(h.data_max(), *std::max_element(values.begin(), values.end())) << n;
  }
}

TEST(HistogramTest, RangeOnlyKeepsExactExtremesAndSkipsNonFinite) {
  Histogram h = Histogram::RangeOnly();
  EXPECT_FALSE(h.binned());
  EXPECT_EQ(h.num_bins(), 0);
  float lo = INFINITY, hi = -INFINITY;
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    const float f = static_cast<float>(seed);
    const std::vector<float> values = Uniform(1000 * seed + seed, -1.5f * f, 2.0f * f, seed);
    h.AddParallel(values, 2);
    lo = std::min(lo, *std::min_element(values.begin(), values.end()));
    hi = std::max(hi, *std::max_element(values.begin(), values.end()));
    EXPECT_EQ(h.data_min(), lo);
    EXPECT_EQ(h.data_max(), hi);
  }
  EXPECT_EQ(h.total(), 1001.0 + 2002 + 3003 + 4004 + 5005);
  // A batch with NaN and infinities anywhere (inside the unrolled blocks and in the tail).
  std::vector<float> bad = Uniform(37, -1.0f, 1.0f, 9);
  bad[2] = NAN;
  bad[17] = INFINITY;
  bad[36] = -INFINITY;
  bad[5] = 100.0f;
  h.Add(bad);
  EXPECT_EQ(h.non_finite(), 3);
  EXPECT_EQ(h.data_max(), 100.0f);
  EXPECT_EQ(h.data_min(), lo);
  EXPECT_EQ(h.total(), 15015.0 + 34);
  // Merging a binned histogram into it keeps the extremes and the total.
  Histogram binned(64);
  binned.Add(std::vector<float>{-50.0f, 3.0f});
  h.Merge(binned);
  EXPECT_EQ(h.data_min(), -50.0f);
  EXPECT_EQ(h.total(), 15015.0 + 36);
}

TEST(HistogramTest, MergeEqualsAddingEverything) {
  const std::vector<float> a = Uniform(20000, -1.0f, 1.0f, 4);
  const std::vector<float> b = Uniform(20000, 0.5f, 4.0f, 5);
  Histogram ha(512), hb(512), both(512);
  ha.Add(a);
  hb.Add(b);
  both.Add(a);
  both.Add(b);
  ha.Merge(hb);
  EXPECT_EQ(ha.total(), 40000.0);
  EXPECT_NEAR(Sum(ha.counts()), 40000.0, 1e-6);
  EXPECT_EQ(ha.data_min(), both.data_min());
  EXPECT_EQ(ha.data_max(), both.data_max());
  for (double q : {0.1, 0.25, 0.5, 0.75, 0.9}) {
    EXPECT_NEAR(ha.Quantile(q), both.Quantile(q), 0.02) << "q=" << q;
  }
  // Merging into an empty histogram copies.
  Histogram empty(512);
  empty.Merge(hb);
  EXPECT_EQ(empty.total(), hb.total());
  EXPECT_NEAR(empty.Quantile(0.5), hb.Quantile(0.5), 1e-6);
}

TEST(HistogramTest, QuantilesOfUniformData) {
  const std::vector<float> values = Uniform(100000, 0.0f, 10.0f, 6);
  Histogram h;
  h.Add(values);
  for (double q : {0.01, 0.5, 0.9, 0.999}) {
    EXPECT_NEAR(h.Quantile(q), 10.0 * q, 0.05) << "q=" << q;
  }
  EXPECT_EQ(h.Quantile(0.0), h.data_min());
  EXPECT_EQ(h.Quantile(1.0), h.data_max());
}

TEST(HistogramTest, FromCountsRoundTrip) {
  auto h = Histogram::FromCounts(-1.0, 3.0, {0, 2, 6, 0});
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->total(), 8.0);
  EXPECT_DOUBLE_EQ(h->bin_width(), 1.0);
  EXPECT_FLOAT_EQ(h->data_min(), 0.0f);
  EXPECT_FLOAT_EQ(h->data_max(), 2.0f);
  EXPECT_FALSE(Histogram::FromCounts(1.0, 1.0, {1}).ok());
  EXPECT_FALSE(Histogram::FromCounts(0.0, 1.0, {1, -1}).ok());
}

}  // namespace
}  // namespace qalign
