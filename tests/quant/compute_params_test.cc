// ComputeParams against values worked out by hand, plus the property that a range's ends survive
// a quantize/dequantize round trip within half a step.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "quant/quant_config.h"

namespace qalign {
namespace {

QuantScheme Scheme(int64_t qmin, int64_t qmax, uint32_t flags, int bits = 8,
                   RoundingMode rounding = RoundingMode::kHalfEven) {
  QuantScheme s;
  s.policy.flags = flags;
  s.num_bits = bits;
  s.quant_min = qmin;
  s.quant_max = qmax;
  s.rounding = rounding;
  return s;
}
constexpr uint32_t kAsym = kPerTensor | kAsymmetric | kLinear;
constexpr uint32_t kSym = kPerTensor | kSymmetric | kLinear;

struct Params {
  float scale = 0;
  int64_t zero_point = 0;
};
Params Compute(const QuantScheme& scheme, float min, float max) {
  Params p;
  Status status = ComputeParams(scheme, min, max, &p.scale, &p.zero_point);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return p;
}

TEST(ComputeParamsTest, Int8Asymmetric) {
  // [-1, 3]: scale = 4 / 255; zero_point = round(-128 - (-1) / (4/255)) = round(-64.25) = -64.
  Params p = Compute(Scheme(-128, 127, kAsym), -1.0f, 3.0f);
  EXPECT_FLOAT_EQ(p.scale, 4.0f / 255.0f);
  EXPECT_EQ(p.zero_point, -64);
  // Positive-only [2, 10] widens to [0, 10]: scale = 10/255, zero_point = -128.
  p = Compute(Scheme(-128, 127, kAsym), 2.0f, 10.0f);
  EXPECT_FLOAT_EQ(p.scale, 10.0f / 255.0f);
  EXPECT_EQ(p.zero_point, -128);
  // Negative-only [-4, -1] widens to [-4, 0]: zero_point = round(-128 + 255) = 127.
  p = Compute(Scheme(-128, 127, kAsym), -4.0f, -1.0f);
  EXPECT_FLOAT_EQ(p.scale, 4.0f / 255.0f);
  EXPECT_EQ(p.zero_point, 127);
}

TEST(ComputeParamsTest, Uint8Asymmetric) {
  // ReLU6-like [0, 6]: scale = 6/255, zero_point 0.
  Params p = Compute(Scheme(0, 255, kAsym), 0.0f, 6.0f);
  EXPECT_FLOAT_EQ(p.scale, 6.0f / 255.0f);
  EXPECT_EQ(p.zero_point, 0);
  // [-1, 3]: zero_point = round(0 + 63.75) = 64.
  p = Compute(Scheme(0, 255, kAsym), -1.0f, 3.0f);
  EXPECT_FLOAT_EQ(p.scale, 4.0f / 255.0f);
  EXPECT_EQ(p.zero_point, 64);
}

TEST(ComputeParamsTest, RoundingModeDecidesZeroPointTies) {
  // [-126.5, 128.5] over [0, 255]: scale = 255/255 = 1 exactly, zero_point = round(126.5).
  EXPECT_EQ(Compute(Scheme(0, 255, kAsym, 8, RoundingMode::kHalfEven), -126.5f, 128.5f).zero_point,
            126);
  EXPECT_EQ(Compute(Scheme(0, 255, kAsym, 8, RoundingMode::kHalfUp), -126.5f, 128.5f).zero_point,
            127);
  EXPECT_EQ(
      Compute(Scheme(0, 255, kAsym, 8, RoundingMode::kHalfAwayFromZero), -126.5f, 128.5f)
          .zero_point,
      127);
  EXPECT_EQ(RoundWith(RoundingMode::kHalfUp, -2.5), -2.0);
  EXPECT_EQ(RoundWith(RoundingMode::kHalfAwayFromZero, -2.5), -3.0);
  EXPECT_EQ(RoundWith(RoundingMode::kHalfEven, -2.5), -2.0);
  EXPECT_EQ(RoundWith(RoundingMode::kHalfEven, 3.5), 4.0);
}

TEST(ComputeParamsTest, Int8Symmetric) {
  // [-127, 127], range [-2, 5]: scale = 5 / 127, zero_point 0.
  Params p = Compute(Scheme(-127, 127, kSym), -2.0f, 5.0f);
  EXPECT_FLOAT_EQ(p.scale, 5.0f / 127.0f);
  EXPECT_EQ(p.zero_point, 0);
  // [-128, 127], range [-3, 1]: 127 steps on the positive side bound it: scale = 3 / 127.
  p = Compute(Scheme(-128, 127, kSym), -3.0f, 1.0f);
  EXPECT_FLOAT_EQ(p.scale, 3.0f / 127.0f);
  EXPECT_EQ(p.zero_point, 0);
}

TEST(ComputeParamsTest, Uint8SymmetricCentersTheZeroPoint) {
  // [0, 255]: zero_point = (255 + 0 + 1) / 2 = 128; min(128 - 0, 255 - 128) = 127 steps.
  Params p = Compute(Scheme(0, 255, kSym), -1.0f, 2.0f);
  EXPECT_EQ(p.zero_point, 128);
  EXPECT_FLOAT_EQ(p.scale, 2.0f / 127.0f);
}

TEST(ComputeParamsTest, Int32Bias) {
  Params p = Compute(Scheme(INT64_C(-2147483648), 2147483647, kSym, 32), -3.0f, 2.0f);
  EXPECT_EQ(p.zero_point, 0);
  EXPECT_FLOAT_EQ(p.scale, static_cast<float>(3.0 / 2147483647.0));
}

TEST(ComputeParamsTest, PowerOfTwo) {
  // Symmetric [-128, 127], [-1, 1]: 1/127 = 2^-6.99, rounded up to 2^-6 = 1/64.
  Params p = Compute(Scheme(-128, 127, kSym | kPowerOf2), -1.0f, 1.0f);
  EXPECT_EQ(p.scale, 1.0f / 64.0f);
  EXPECT_EQ(p.zero_point, 0);
  // Asymmetric [-1, 3]: 4/255 = 2^-5.99 -> 2^-5 = 1/32; zero_point = round(-128 + 1 * 32) = -96.
  p = Compute(Scheme(-128, 127, kAsym | kPowerOf2), -1.0f, 3.0f);
  EXPECT_EQ(p.scale, 1.0f / 32.0f);
  EXPECT_EQ(p.zero_point, -96);
  // An exact power of two stays: [-127, 127] symmetric, absmax 127/4 -> scale 1/4.
  p = Compute(Scheme(-127, 127, kSym | kPowerOf2), -31.75f, 0.0f);
  EXPECT_EQ(p.scale, 0.25f);
}

TEST(ComputeParamsTest, DegenerateRanges) {
  // [0, 0]: nothing to spread, scale is the floor kMinScale; 0 still maps to zero_point.
  Params p = Compute(Scheme(-128, 127, kAsym), 0.0f, 0.0f);
  EXPECT_EQ(p.scale, kMinScale);
  EXPECT_EQ(p.zero_point, -128);
  p = Compute(Scheme(-127, 127, kSym), 0.0f, 0.0f);
  EXPECT_EQ(p.scale, kMinScale);
  EXPECT_EQ(p.zero_point, 0);
  // [5, 5] widens to [0, 5].
  p = Compute(Scheme(-128, 127, kAsym), 5.0f, 5.0f);
  EXPECT_FLOAT_EQ(p.scale, 5.0f / 255.0f);
  EXPECT_EQ(p.zero_point, -128);
  // A denormal-small range also gets the floor, so 1 / scale stays finite.
  p = Compute(Scheme(-128, 127, kAsym), 0.0f, 1e-40f);
  EXPECT_EQ(p.scale, kMinScale);
}

TEST(ComputeParamsTest, RejectsNonFiniteAndInvertedRangesAndBadSchemes) {
  float scale = -1;
  int64_t zp = -1;
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const QuantScheme s = Scheme(-128, 127, kAsym);
  EXPECT_FALSE(ComputeParams(s, nan, 1.0f, &scale, &zp).ok());
  EXPECT_FALSE(ComputeParams(s, 0.0f, nan, &scale, &zp).ok());
  EXPECT_FALSE(ComputeParams(s, -inf, 1.0f, &scale, &zp).ok());
  EXPECT_FALSE(ComputeParams(s, 0.0f, inf, &scale, &zp).ok());
  // Uncalibrated stats (min = +inf, max = -inf) are refused, not turned into params.
  CalibrationStats empty;
  EXPECT_FALSE(ComputeParams(s, empty.min, empty.max, &scale, &zp).ok());
  Status inverted = ComputeParams(s, 2.0f, 1.0f, &scale, &zp);
  EXPECT_FALSE(inverted.ok());
  EXPECT_NE(inverted.message().find("min is above max"), std::string::npos);
  EXPECT_FALSE(ComputeParams(Scheme(-128, 127, kPerTensor | kAsymmetric | kFloating), 0, 1, &scale,
                             &zp).ok());
  EXPECT_FALSE(ComputeParams(Scheme(10, 5, kAsym), 0, 1, &scale, &zp).ok());
  EXPECT_EQ(scale, -1);  // outputs untouched on failure
  EXPECT_EQ(zp, -1);
}

// For random ranges and schemes: zero_point lies on the grid (so 0.0 is exact), and both ends of
// the range come back from quantize -> dequantize within half a step (nothing is clipped).
TEST(ComputeParamsTest, RandomRangesRoundTripTheirEnds) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> mag(-6.0f, 3.0f);
  std::uniform_int_distribution<int> sign(0, 2);
  const QuantScheme schemes[] = {Scheme(-128, 127, kAsym), Scheme(0, 255, kAsym),
                                 Scheme(-127, 127, kSym), Scheme(-128, 127, kSym),
                                 Scheme(0, 255, kSym), Scheme(-128, 127, kAsym | kPowerOf2),
                                 Scheme(-127, 127, kSym | kPowerOf2)};
  for (int trial = 0; trial < 2000; ++trial) {
    float a = std::pow(10.0f, mag(rng)), b = std::pow(10.0f, mag(rng));
    const int s = sign(rng);
    float lo = s == 0 ? -a : (s == 1 ? std::min(a, b) : -a);
    float hi = s == 0 ? b : (s == 1 ? std::max(a, b) : -std::min(a, a * 0.5f));
    if (lo > hi) std::swap(lo, hi);
    for (const QuantScheme& scheme : schemes) {
      Params p = Compute(scheme, lo, hi);
      ASSERT_GE(p.zero_point, scheme.quant_min);
      ASSERT_LE(p.zero_point, scheme.quant_max);
      for (float x : {lo, hi}) {
        const double q = std::clamp(std::nearbyint(x / p.scale) + static_cast<double>(p.zero_point),
                                    static_cast<double>(scheme.quant_min),
                                    static_cast<double>(scheme.quant_max));
        const double back = (q - static_cast<double>(p.zero_point)) * p.scale;
        EXPECT_LE(std::abs(back - x), 0.5 * p.scale * 1.001 + 1e-7)
            << scheme.ToString() << " range [" << lo << ", " << hi << "] x=" << x;
      }
    }
  }
}

}  // namespace
}  // namespace qalign
