// Observers against closed-form answers on seeded known distributions.
#include "calib/observer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace qalign {
namespace {

QuantScheme Int8Asymmetric() {
  QuantScheme s;
  s.policy.flags = kPerTensor | kAsymmetric | kLinear;
  s.num_bits = 8;
  s.quant_min = -128;
  s.quant_max = 127;
  return s;
}

QuantScheme Int8Symmetric() {
  QuantScheme s = Int8Asymmetric();
  s.policy.flags = kPerTensor | kSymmetric | kLinear;
  return s;
}

QuantScheme Uint8Asymmetric() {
  QuantScheme s = Int8Asymmetric();
  s.quant_min = 0;
  s.quant_max = 255;
  return s;
}

Histogram HistogramOf(const std::vector<float>& values) {
  Histogram h;
  h.Add(values);
  return h;
}

// Mean squared error of fake-quantizing the actual samples (independent of the histogram).
double EmpiricalError(const std::vector<float>& values, const QuantScheme& scheme,
                      const ObservedParams& p) {
  double sum = 0;
  for (float x : values) {
    const double d =
        x - FakeQuantize(x, p.scale, p.zero_point, scheme.quant_min, scheme.quant_max);
    sum += d * d;
  }
  return sum / static_cast<double>(values.size());
}

// 1M Laplacian(0, 1) samples and two far outliers that set the min/max. With int8 over the
// min/max range the rounding error is about (180 / 255)^2 / 12 = 0.042 per value; clipping the
// two outliers near |x| = 10 costs (90^2 + 70^2) / 1e6 = 0.013, so a good clip wins clearly.
std::vector<float> LaplacianWithOutliers() {
  std::mt19937 rng(42);
  std::exponential_distribution<float> exp(1.0f);
  std::bernoulli_distribution sign(0.5);
  std::vector<float> v(1000000);
  for (float& x : v) x = sign(rng) ? exp(rng) : -exp(rng);
  v.push_back(100.0f);
  v.push_back(-80.0f);
  return v;
}

TEST(ObserverTest, ParseNames) {
  EXPECT_EQ(*ParseObserverKind("minmax"), ObserverKind::kMinMax);
  EXPECT_EQ(*ParseObserverKind("percentile"), ObserverKind::kPercentile);
  EXPECT_EQ(*ParseObserverKind("kl"), ObserverKind::kKl);
  EXPECT_EQ(*ParseObserverKind("entropy"), ObserverKind::kKl);
  EXPECT_EQ(*ParseObserverKind("mse"), ObserverKind::kMse);
  EXPECT_EQ(*ParseObserverKind("auto"), ObserverKind::kAuto);
  auto bad = ParseObserverKind("median");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("median"), std::string::npos);
}

TEST(ObserverTest, UniformMinMaxIsExactAndGivesClosedFormParams) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-2.0f, 3.0f);
  std::vector<float> v(50000);
  for (float& x : v) x = dist(rng);
  const float lo = *std::min_element(v.begin(), v.end());
  const float hi = *std::max_element(v.begin(), v.end());
  const Histogram h = HistogramOf(v);
  auto p = ObserveParams(h, Int8Asymmetric(), {ObserverKind::kMinMax});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->range.min, lo);
  EXPECT_EQ(p->range.max, hi);
  // scale = (max - min) / (qmax - qmin), zero_point = round(qmin - min / scale).
  const double scale = (static_cast<double>(hi) - lo) / 255.0;
  EXPECT_NEAR(p->scale, scale, 1e-6);
  EXPECT_EQ(p->zero_point, static_cast<int64_t>(std::nearbyint(-128.0 - lo / scale)));
}

TEST(ObserverTest, GaussianPercentileMatchesAnalyticQuantile) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(500000);
  for (float& x : v) x = dist(rng);
  const Histogram h = HistogramOf(v);
  // Phi^-1(0.999) = 3.0902, Phi^-1(0.9999) = 3.7190.
  auto r999 = PercentileRange(h, 99.9);
  ASSERT_TRUE(r999.ok());
  EXPECT_NEAR(r999->max, 3.0902, 0.05);
  EXPECT_NEAR(r999->min, -3.0902, 0.05);
  auto r9999 = ObserveParams(h, Int8Symmetric(), {ObserverKind::kPercentile});  // default 99.99
  ASSERT_TRUE(r9999.ok());
  EXPECT_NEAR(r9999->range.max, 3.7190, 0.15);
  EXPECT_NEAR(r9999->range.min, -3.7190, 0.15);
  EXPECT_LT(r9999->range.max, h.data_max());
  EXPECT_EQ(r9999->zero_point, 0);
  EXPECT_NEAR(r9999->scale, std::max(-r9999->range.min, r9999->range.max) / 127.0f, 1e-6);
  EXPECT_FALSE(PercentileRange(h, 40.0).ok());
}

TEST(ObserverTest, KlAndMseClipOutliersAndReduceError) {
  const std::vector<float> v = LaplacianWithOutliers();
  const Histogram h = HistogramOf(v);
  for (const QuantScheme& scheme : {Int8Symmetric(), Int8Asymmetric()}) {
    auto minmax = ObserveParams(h, scheme, {ObserverKind::kMinMax});
    auto kl = ObserveParams(h, scheme, {ObserverKind::kKl});
    auto mse = ObserveParams(h, scheme, {ObserverKind::kMse});
    ASSERT_TRUE(minmax.ok() && kl.ok() && mse.ok());
    for (const auto* p : {&*kl, &*mse}) {
      // Well below the outliers, yet above the bulk of the data (|x| < 5 holds 99.3%).
      EXPECT_LT(p->range.max, 0.5f * h.data_max());
      EXPECT_GT(p->range.max, 5.0f);
      EXPECT_GT(p->range.min, 0.5f * h.data_min());
      EXPECT_LT(EmpiricalError(v, scheme, *p), 0.5 * EmpiricalError(v, scheme, *minmax));
    }
    // MSE minimises the modelled error, so it is never worse than minmax under the model.
    EXPECT_LE(ExpectedQuantError(h, scheme, mse->scale, mse->zero_point),
              ExpectedQuantError(h, scheme, minmax->scale, minmax->zero_point));
  }
}

TEST(ObserverTest, KlKeepsTheWholeRangeOfUniformData) {
  // Uniform data has no outliers: clipping only adds error, so KL keeps (nearly) everything.
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(200000);
  for (float& x : v) x = dist(rng);
  auto r = KlRange(HistogramOf(v), Int8Symmetric());
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->max, 0.9f);
  EXPECT_LT(r->min, -0.9f);
}

TEST(ObserverTest, ExpectedErrorMatchesEmpiricalError) {
  std::mt19937 rng(9);
  std::normal_distribution<float> dist(0.5f, 2.0f);
  std::vector<float> v(200000);
  for (float& x : v) x = dist(rng);
  const Histogram h = HistogramOf(v);
  const QuantScheme scheme = Int8Asymmetric();
  for (float clip : {8.0f, 4.0f, 1.0f}) {
    ObservedParams p;
    ASSERT_TRUE(ComputeParams(scheme, -clip, clip, &p.scale, &p.zero_point).ok());
    const double expected = ExpectedQuantError(h, scheme, p.scale, p.zero_point);
    const double empirical = EmpiricalError(v, scheme, p);
    EXPECT_NEAR(expected, empirical, 0.05 * empirical) << "clip=" << clip;
  }
}

TEST(ObserverTest, SymmetricVersusAsymmetricParams) {
  // ReLU-like data in [0, 6].
  std::vector<float> v;
  for (int i = 0; i <= 600; ++i) v.push_back(0.01f * i);
  const Histogram h = HistogramOf(v);
  auto asym_u8 = ObserveParams(h, Uint8Asymmetric(), {ObserverKind::kMinMax});
  ASSERT_TRUE(asym_u8.ok());
  EXPECT_NEAR(asym_u8->scale, 6.0 / 255.0, 1e-6);  // the whole grid spans [0, 6]
  EXPECT_EQ(asym_u8->zero_point, 0);
  auto asym_i8 = ObserveParams(h, Int8Asymmetric(), {ObserverKind::kMinMax});
  ASSERT_TRUE(asym_i8.ok());
  EXPECT_NEAR(asym_i8->scale, 6.0 / 255.0, 1e-6);
  EXPECT_EQ(asym_i8->zero_point, -128);
  auto sym = ObserveParams(h, Int8Symmetric(), {ObserverKind::kMinMax});
  ASSERT_TRUE(sym.ok());
  EXPECT_NEAR(sym->scale, 6.0 / 127.0, 1e-6);  // half the grid is wasted on negatives
  EXPECT_EQ(sym->zero_point, 0);

  // Two-sided data [-1, 4]: symmetric takes max |x|.
  const std::vector<float> w = {-1.0f, 0.5f, 4.0f};
  auto sym2 = ObserveParams(HistogramOf(w), Int8Symmetric(), {ObserverKind::kMinMax});
  ASSERT_TRUE(sym2.ok());
  EXPECT_NEAR(sym2->scale, 4.0 / 127.0, 1e-6);

  // Power-of-2: the scale is the next power of two at or above the plain one.
  QuantScheme pow2 = Int8Symmetric();
  pow2.policy.flags |= kPowerOf2;
  auto p2 = ObserveParams(h, pow2, {ObserverKind::kMinMax});
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(p2->scale, std::exp2(std::ceil(std::log2(6.0 / 127.0))));
}

TEST(ObserverTest, KlOnOneSidedDataUsesTheFullUnsignedGrid) {
  // Exponential data (one-sided) with an outlier: the asymmetric scheme quantizes only [0, T].
  std::mt19937 rng(11);
  std::exponential_distribution<float> exp(1.0f);
  std::vector<float> v(200000);
  for (float& x : v) x = exp(rng);
  v.push_back(60.0f);
  const Histogram h = HistogramOf(v);
  auto r = KlRange(h, Uint8Asymmetric());
  ASSERT_TRUE(r.ok());
  EXPECT_GE(r->min, 0.0f);
  EXPECT_LT(r->max, 30.0f);
  EXPECT_GT(r->max, 4.0f);
}

// A skewed tensor as an affine map of a ReLU makes (PP-OCRv4 rec's p2o.Add.103): a point mass at
// its negative minimum, -1/8, and a uniform density on [0, 1]. Every bin of width 1/2048 is its
// own; with no clipping, each level's cell holds either the point mass alone (its other bins are
// empty) or part of the uniform density, so the quantized distribution keeps every bin's share
// and the divergence is exactly 0; any threshold below 1 moves mass into the end bins, a
// divergence above 0. So KL keeps the data's range [-1/8, 1] on either grid. (Folding |x| put
// the point mass at 1/8 among the positive values, where each coarse level smears it over its
// bins: KL then clipped the positive side at 0.126, just past the point mass.)
TEST(ObserverTest, KlKeepsASkewedTensorWithAPointMassWhole) {
  std::vector<double> counts(4096, 0.0);  // bins of 1/2048 over [-1, 1]
  counts[1792] = 2048.0;                  // [-1/8, -1/8 + 1/2048): the point mass
  for (size_t i = 2048; i < 4096; ++i) counts[i] = 1.0;
  auto planted = Histogram::FromCounts(-1.0, 1.0, counts, -0.125f, 1.0f);
  ASSERT_TRUE(planted.ok());
  for (const QuantScheme& scheme : {Int8Symmetric(), Int8Asymmetric()}) {
    auto r = KlRange(*planted, scheme);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->min, -0.125f);
    EXPECT_EQ(r->max, 1.0f);
  }
}

// A ReLU's output: 3000 exact zeros, a dense part on [0, 1/8) (one value per bin of 1/2048) and
// a thin tail on [1/8, 1] (0.01 per bin). Quantization keeps a point mass whole (every zero stays
// 0, a grid point), and each level of the unclipped grid (16 bins, or 8 on the unsigned one)
// holds an even density, so with no clipping the divergence is exactly 0 and KL keeps [0, 1].
// Spread over their level with the values next to them, the zeros made every coarse grid look
// lossy, and KL clipped the whole tail away, at 1/8 (rec's first ReLU: at 2.1 of 27, and rec
// then read no character).
TEST(ObserverTest, KlKeepsTheRangeOfReluZerosAndATail) {
  std::vector<double> counts(2048, 0.01);  // bins of 1/2048 over [0, 1]
  for (size_t i = 0; i < 256; ++i) counts[i] = 1.0;
  counts[0] += 3000.0;
  auto relu = Histogram::FromCounts(0.0, 1.0, counts, 0.0f, 1.0f);
  ASSERT_TRUE(relu.ok());
  for (const QuantScheme& scheme : {Int8Symmetric(), Int8Asymmetric(), Uint8Asymmetric()}) {
    auto r = KlRange(*relu, scheme);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->min, 0.0f);
    EXPECT_EQ(r->max, 1.0f);
  }
}

TEST(ObserverTest, KlKeepsAConstantTensor) {
  // One value: every threshold below it clips all the data, so the range is the value itself.
  const Histogram h = HistogramOf(std::vector<float>(1000, 5.0f));
  for (const QuantScheme& scheme : {Int8Symmetric(), Int8Asymmetric(), Uint8Asymmetric()}) {
    auto r = KlRange(h, scheme);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->min, 5.0f);
    EXPECT_EQ(r->max, 5.0f);
  }
}

TEST(ObserverTest, KlOfAHistogramWithoutBinsIsTheDataRange) {
  // RangeOnly holds the extremes alone (ChooseRange refuses it for kl; KlRange keeps them).
  Histogram h = Histogram::RangeOnly();
  h.Add(std::vector<float>{-1.0f, 0.5f, 2.0f});
  auto r = KlRange(h, Int8Symmetric());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->min, -1.0f);
  EXPECT_EQ(r->max, 2.0f);
}

// A planted distribution with a known optimum: unit mass uniform on [-1, 1] and eps at +-50. On
// the symmetric int8 grid a range [-T, T] (1 <= T <= 50) costs the rounding error of the core,
// (T / 127)^2 / 12, plus the clipping of the outliers, eps (50 - T)^2; the derivative vanishes at
//   T* = 50 eps / (1 / (12 * 127^2) + eps),
// which is 5 for eps = 5 / (45 * 12 * 127^2). mse (and auto, since clipping cuts the error about
// 50 times) find it; on the core alone, nothing is worth clipping and auto keeps minmax.
TEST(ObserverTest, MseAndAutoFindThePlantedOptimum) {
  const double eps = 5.0 / (45.0 * 12.0 * 127.0 * 127.0);
  std::vector<double> counts(10000, 0.0);  // bins of 0.01 over [-50, 50]
  for (int i = 4900; i < 5100; ++i) counts[static_cast<size_t>(i)] = 1.0 / 200.0;
  counts.front() = counts.back() = eps / 2.0;
  auto planted = Histogram::FromCounts(-50.0, 50.0, counts, -50.0f, 50.0f);
  ASSERT_TRUE(planted.ok());
  const double t_star = 50.0 * eps / (1.0 / (12.0 * 127.0 * 127.0) + eps);
  ASSERT_NEAR(t_star, 5.0, 1e-9);
  for (ObserverKind kind : {ObserverKind::kMse, ObserverKind::kAuto}) {
    SCOPED_TRACE(ObserverKindName(kind));
    ObserverOptions options;
    options.kind = kind;
    auto range = ChooseRange(*planted, Int8Symmetric(), options);
    ASSERT_TRUE(range.ok());
    EXPECT_NEAR(range->max, t_star, 0.1);
    EXPECT_NEAR(range->min, -t_star, 0.1);
  }
  auto core = Histogram::FromCounts(-1.0, 1.0, std::vector<double>(200, 1.0), -1.0f, 1.0f);
  ASSERT_TRUE(core.ok());
  auto kept = AutoRange(*core, Int8Symmetric());
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->min, -1.0f);
  EXPECT_EQ(kept->max, 1.0f);
}

TEST(ObserverTest, EmptyHistogramIsAnError) {
  Histogram h;
  for (ObserverKind kind :
       {ObserverKind::kMinMax, ObserverKind::kPercentile, ObserverKind::kKl, ObserverKind::kMse}) {
    auto p = ObserveParams(h, Int8Asymmetric(), {kind});
    EXPECT_FALSE(p.ok()) << ObserverKindName(kind);
  }
}

}  // namespace
}  // namespace qalign
