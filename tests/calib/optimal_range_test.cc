// The `optimal` alignment method's search (OptimalSharedRange): over 200 seeded random sets of
// member histograms, its summed group error is never worse than `large` (the union of the
// members' ranges) or `output` (one member's range), nor, under a required range, than its
// unconstrained optimum widened to it; and it finds a closed-form optimum.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "calib/observer.h"

namespace qalign {
namespace {

QuantScheme Scheme(int64_t quant_min, int64_t quant_max, uint32_t symmetry) {
  QuantScheme s;
  s.policy.flags = kPerTensor | symmetry | kLinear;
  s.num_bits = 8;
  s.quant_min = quant_min;
  s.quant_max = quant_max;
  return s;
}

// One member: a random distribution (Gaussian, Laplace with long tails, uniform, or a ReLU'd
// Gaussian), a random location, scale and size.
Histogram RandomMember(std::mt19937& rng) {
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  const int kind = static_cast<int>(rng() % 4);
  const float center = (unit(rng) - 0.5f) * 4.0f;
  const float spread = 0.05f + unit(rng) * 3.0f;
  const int n = 500 + static_cast<int>(rng() % 5000);
  std::normal_distribution<float> gauss(center, spread);
  std::exponential_distribution<float> expo(1.0f / spread);
  std::vector<float> values(static_cast<size_t>(n));
  for (float& v : values) {
    switch (kind) {
      case 0:
        v = gauss(rng);
        break;
      case 1:
        v = center + (unit(rng) < 0.5f ? -1.0f : 1.0f) * expo(rng);
        break;
      case 2:
        v = center + (unit(rng) - 0.5f) * spread;
        break;
      default:
        v = std::max(0.0f, gauss(rng));
        break;
    }
  }
  Histogram h(512);  // fewer bins than calibration's 2048: 200 searches stay quick
  h.Add(values);
  return h;
}

TEST(OptimalSharedRange, NeverWorseThanLargeOrOutputOver200RandomGroups) {
  std::mt19937 rng(20261207);
  const QuantScheme schemes[] = {Scheme(-128, 127, kAsymmetric), Scheme(0, 255, kAsymmetric),
                                 Scheme(-128, 127, kSymmetric)};
  int strictly_better = 0;
  for (int trial = 0; trial < 200; ++trial) {
    SCOPED_TRACE(trial);
    const QuantScheme& scheme = schemes[trial % 3];
    const int num_members = 2 + static_cast<int>(rng() % 4);
    std::vector<Histogram> histograms;
    for (int m = 0; m < num_members; ++m) histograms.push_back(RandomMember(rng));
    std::vector<const Histogram*> members;
    std::vector<ClipRange> candidates(1);  // the union first, then each member's range
    for (const Histogram& h : histograms) {
      members.push_back(&h);
      candidates.push_back({h.data_min(), h.data_max()});
    }
    candidates[0] = candidates[1];
    for (const Histogram& h : histograms) {
      candidates[0].min = std::min(candidates[0].min, h.data_min());
      candidates[0].max = std::max(candidates[0].max, h.data_max());
    }
    auto best = OptimalSharedRange(members, candidates, scheme);
    ASSERT_TRUE(best.ok()) << best.status().message();
    const double optimal = SummedQuantError(members, scheme, best->min, best->max);
    const double large = SummedQuantError(members, scheme, candidates[0].min, candidates[0].max);
    // Member 0 plays the output of a Concat.
    const double output = SummedQuantError(members, scheme, candidates[1].min, candidates[1].max);
    ASSERT_TRUE(std::isfinite(optimal));
    EXPECT_LE(optimal, large);
    EXPECT_LE(optimal, output);
    if (optimal < 0.99 * std::min(large, output)) ++strictly_better;
    // Member 1's whole range required (as a constant's or an unclippable end's would be): the
    // result keeps it and is never worse than the unconstrained optimum widened to it.
    const ClipRange required = candidates[2];
    auto kept = OptimalSharedRange(members, candidates, scheme, required);
    ASSERT_TRUE(kept.ok()) << kept.status().message();
    EXPECT_LE(kept->min, required.min);
    EXPECT_GE(kept->max, required.max);
    EXPECT_LE(SummedQuantError(members, scheme, kept->min, kept->max),
              SummedQuantError(members, scheme, std::min(best->min, required.min),
                               std::max(best->max, required.max)));
  }
  // The search does more than pick a candidate: most random groups gain at least 1 %.
  EXPECT_GT(strictly_better, 100);
}

// Two members uniform on [0, 1] and [0, 1] + one on [0, 100] with mass 1e-9: the tiny member's
// clipping costs almost nothing, so the shared range is [0, ~1], where the error is the
// rounding error of [0, 1] alone, step^2 / 12 per value (step = 1 / 255 on uint8).
TEST(OptimalSharedRange, IgnoresANegligibleWideMember) {
  const QuantScheme scheme = Scheme(0, 255, kAsymmetric);
  auto a = Histogram::FromCounts(0.0, 1.0, std::vector<double>(1000, 1.0));
  auto b = Histogram::FromCounts(0.0, 100.0, std::vector<double>(1000, 1e-12));
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<const Histogram*> members = {&*a, &*b};
  auto best = OptimalSharedRange(members, {{0.0f, 100.0f}}, scheme);
  ASSERT_TRUE(best.ok());
  EXPECT_NEAR(best->max, 1.0f, 0.02f);
  const double step = best->max / 255.0;
  EXPECT_NEAR(SummedQuantError(members, scheme, best->min, best->max), 1000.0 * step * step / 12.0,
              0.05 * 1000.0 * step * step / 12.0);
}

// Identical members: the shared optimum is the single tensor's (the mse observer's) optimum.
TEST(OptimalSharedRange, IdenticalMembersShareTheMseObserversRange) {
  std::mt19937 rng(7);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> values(20000);
  for (float& v : values) v = gauss(rng);
  Histogram h;
  h.Add(values);
  const QuantScheme scheme = Scheme(-128, 127, kSymmetric);
  auto mse = MseRange(h, scheme);
  auto best = OptimalSharedRange({&h, &h, &h}, {}, scheme);
  ASSERT_TRUE(mse.ok() && best.ok());
  // Its search has one finer sweep than the observer's: the same optimum, or a hair better.
  const double shared = SummedQuantError({&h}, scheme, best->min, best->max);
  const double single = SummedQuantError({&h}, scheme, mse->min, mse->max);
  EXPECT_LE(shared, single);
  EXPECT_NEAR(shared, single, 1e-3 * single);
  EXPECT_LT(best->max, h.data_max());  // a Gaussian's tails are clipped
}

// A required value changes the optimum, not only the end it moves. The data: 10,000 values over
// [0, 1] and half a value spread over (1, 6]. Alone, the optimum keeps most of the tail (its
// clipping error outweighs the rounding it saves). With -4 required the range is wider, so each
// unit of tail kept costs more rounding: the constrained optimum keeps less of it, and has less
// error than the unconstrained optimum widened to -4 afterwards.
TEST(OptimalSharedRange, SearchesUnderARequiredRange) {
  const QuantScheme scheme = Scheme(0, 255, kAsymmetric);
  std::vector<double> counts(600, 0.001);  // (1, 6]
  for (size_t i = 0; i < 100; ++i) counts[i] = 100.0;  // [0, 1]
  auto h = Histogram::FromCounts(0.0, 6.0, counts);
  ASSERT_TRUE(h.ok());
  const std::vector<const Histogram*> members = {&*h};
  auto alone = OptimalSharedRange(members, {}, scheme);
  auto constrained = OptimalSharedRange(members, {}, scheme, ClipRange{-4.0f, -4.0f});
  ASSERT_TRUE(alone.ok() && constrained.ok());
  EXPECT_FLOAT_EQ(constrained->min, -4.0f);
  EXPECT_LT(constrained->max, alone->max - 0.2f);
  const double widened_after = SummedQuantError(members, scheme, -4.0f, alone->max);
  EXPECT_LT(SummedQuantError(members, scheme, constrained->min, constrained->max),
            0.99 * widened_after);
  // A required range the optimum already holds changes nothing.
  auto inside = OptimalSharedRange(members, {}, scheme, ClipRange{0.1f, 0.5f});
  ASSERT_TRUE(inside.ok());
  EXPECT_FLOAT_EQ(inside->min, alone->min);
  EXPECT_FLOAT_EQ(inside->max, alone->max);
}

TEST(OptimalSharedRange, RefusesHistogramsThatHoldOnlyExtremes) {
  Histogram extremes = Histogram::RangeOnly();
  const std::vector<float> values = {-1.0f, 2.0f};
  extremes.Add(values);
  EXPECT_FALSE(OptimalSharedRange({&extremes}, {}, Scheme(-128, 127, kAsymmetric)).ok());
}

}  // namespace
}  // namespace qalign
