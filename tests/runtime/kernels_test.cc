// Kernel semantics on small cases whose answers are worked out by hand or by a naive loop here.
#include <gtest/gtest.h>

#include <cmath>

#include "op_runner.h"

namespace qalign::testing {
namespace {

std::vector<float> Floats(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.num_elements());
}
std::vector<int64_t> Ints(const Tensor& t) {
  return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.num_elements());
}

#define RUN_OK(var, expr)                                          \
  auto var##_result = (expr);                                      \
  ASSERT_TRUE(var##_result.ok()) << var##_result.status().ToString(); \
  std::vector<Tensor> var = std::move(var##_result).value()

TEST(KernelsTest, AddBroadcastsChannelBias) {
  Tensor x = RandomF32({2, 3, 4, 5}, 1);
  Tensor b = RandomF32({3, 1, 1}, 2);
  RUN_OK(out, RunOp("Add", {Fed(x), Const(b)}));
  ASSERT_EQ(out[0].shape(), x.shape());
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const int64_t c = (i / 20) % 3;
    ASSERT_FLOAT_EQ(out[0].data<float>()[i], x.data<float>()[i] + b.data<float>()[c]);
  }
}

TEST(KernelsTest, IntegerArithmeticAndComparison) {
  Tensor a = I64({4}, {7, -7, 9, 0});
  Tensor b = I64({4}, {2, 2, 3, 5});
  RUN_OK(div, RunOp("Div", {Fed(a), Fed(b)}));
  EXPECT_EQ(Ints(div[0]), (std::vector<int64_t>{3, -3, 3, 0}));
  RUN_OK(mod, RunOp("Mod", {Fed(a), Fed(b)}));
  EXPECT_EQ(Ints(mod[0]), (std::vector<int64_t>{1, 1, 0, 0}));  // sign of the divisor
  RUN_OK(less, RunOp("Less", {Fed(a), Fed(b)}));
  EXPECT_EQ(less[0].dtype(), DataType::kBool);
  const uint8_t* l = less[0].data<uint8_t>();
  EXPECT_EQ(std::vector<int>(l, l + 4), (std::vector<int>{0, 1, 0, 1}));
}

TEST(KernelsTest, WhereSelectsWithBroadcast) {
  Tensor cond = Tensor::FromVector<bool>({2, 1}, {true, false});
  Tensor x = F32({1, 3}, {1, 2, 3});
  Tensor y = F32({1}, {-1});
  RUN_OK(out, RunOp("Where", {Fed(cond), Fed(x), Fed(y)}));
  EXPECT_EQ(out[0].shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(Floats(out[0]), (std::vector<float>{1, 2, 3, -1, -1, -1}));
}

TEST(KernelsTest, ActivationsMatchTheirFormulas) {
  Tensor x = F32({6}, {-4, -1, -0.25f, 0, 0.5f, 5});
  RUN_OK(hs, RunOp("HardSwish", {Fed(x)}, {}, 1, 14));
  RUN_OK(hsig, RunOp("HardSigmoid", {Fed(x)}, {{"alpha", Attribute::Float(0.25f)}}));
  RUN_OK(leaky, RunOp("LeakyRelu", {Fed(x)}, {{"alpha", Attribute::Float(0.1f)}}));
  RUN_OK(sig, RunOp("Sigmoid", {Fed(x)}));
  RUN_OK(erf, RunOp("Erf", {Fed(x)}));
  for (int i = 0; i < 6; ++i) {
    const double v = x.data<float>()[i];
    EXPECT_NEAR(hs[0].data<float>()[i], v * std::clamp(v / 6 + 0.5, 0.0, 1.0), 1e-6);
    EXPECT_NEAR(hsig[0].data<float>()[i], std::clamp(0.25 * v + 0.5, 0.0, 1.0), 1e-6);
    EXPECT_NEAR(leaky[0].data<float>()[i], v < 0 ? 0.1 * v : v, 1e-6);
    EXPECT_NEAR(sig[0].data<float>()[i], 1 / (1 + std::exp(-v)), 1e-6);
    EXPECT_NEAR(erf[0].data<float>()[i], std::erf(v), 1e-6);
  }
}

TEST(KernelsTest, ClipAttributeAndInputForms) {
  Tensor x = F32({4}, {-3, -0.5f, 0.5f, 3});
  RUN_OK(old, RunOp("Clip", {Fed(x)}, {{"min", Attribute::Float(-1)}, {"max", Attribute::Float(1)}}, 1, 6));
  EXPECT_EQ(Floats(old[0]), (std::vector<float>{-1, -0.5f, 0.5f, 1}));
  RUN_OK(now, RunOp("Clip", {Fed(x), Omitted(), Const(F32({}, {0.0f}))}, {}, 1, 13));
  EXPECT_EQ(Floats(now[0]), (std::vector<float>{-3, -0.5f, 0, 0}));
}

TEST(KernelsTest, SoftmaxAxisSemanticsChangeAtOpset13) {
  Tensor x = RandomF32({2, 3, 4}, 3);
  RUN_OK(s13, RunOp("Softmax", {Fed(x)}, {{"axis", Attribute::Int(1)}}, 1, 13));
  RUN_OK(s11, RunOp("Softmax", {Fed(x)}, {{"axis", Attribute::Int(1)}}, 1, 11));
  const float* p = x.data<float>();
  for (int n = 0; n < 2; ++n) {
    // opset 13: along axis 1 only.
    for (int w = 0; w < 4; ++w) {
      double sum = 0;
      for (int c = 0; c < 3; ++c) sum += std::exp(p[n * 12 + c * 4 + w]);
      for (int c = 0; c < 3; ++c) {
        EXPECT_NEAR(s13[0].data<float>()[n * 12 + c * 4 + w], std::exp(p[n * 12 + c * 4 + w]) / sum, 1e-6);
      }
    }
    // opset 11: over the flattened 12 values.
    double sum = 0;
    for (int k = 0; k < 12; ++k) sum += std::exp(p[n * 12 + k]);
    for (int k = 0; k < 12; ++k) EXPECT_NEAR(s11[0].data<float>()[n * 12 + k], std::exp(p[n * 12 + k]) / sum, 1e-6);
  }
}

TEST(KernelsTest, SliceWithNegativeStepsAndClamping) {
  Tensor x = F32({2, 5}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  RUN_OK(out, RunOp("Slice", {Fed(x), Const(I64({2}, {-1, 100})), Const(I64({2}, {-100, -6})),
                              Const(I64({2}, {1, 0})), Const(I64({2}, {-2, -1}))}));
  // axis 1 from 4 down to (but excluding) -1 step -2 -> 4,2,0; axis 0 from 1 down step -1 -> 1,0
  EXPECT_EQ(out[0].shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(Floats(out[0]), (std::vector<float>{9, 7, 5, 4, 2, 0}));
  RUN_OK(old, RunOp("Slice", {Fed(x)}, {{"starts", Attribute::Ints({1})}, {"ends", Attribute::Ints({3})},
                                        {"axes", Attribute::Ints({1})}}, 1, 9));
  EXPECT_EQ(Floats(old[0]), (std::vector<float>{1, 2, 6, 7}));
}

TEST(KernelsTest, PadModes) {
  Tensor x = F32({1, 3}, {1, 2, 3});
  Tensor pads = I64({4}, {0, 2, 0, 1});
  RUN_OK(c, RunOp("Pad", {Fed(x), Const(pads), Const(F32({}, {9}))}, {}, 1, 13));
  EXPECT_EQ(Floats(c[0]), (std::vector<float>{9, 9, 1, 2, 3, 9}));
  RUN_OK(e, RunOp("Pad", {Fed(x), Const(pads)}, {{"mode", Attribute::String("edge")}}, 1, 13));
  EXPECT_EQ(Floats(e[0]), (std::vector<float>{1, 1, 1, 2, 3, 3}));
  RUN_OK(r, RunOp("Pad", {Fed(x), Const(pads)}, {{"mode", Attribute::String("reflect")}}, 1, 13));
  EXPECT_EQ(Floats(r[0]), (std::vector<float>{3, 2, 1, 2, 3, 2}));
  RUN_OK(old, RunOp("Pad", {Fed(x)}, {{"pads", Attribute::Ints({0, 1, 0, 0})}, {"value", Attribute::Float(5)}}, 1, 7));
  EXPECT_EQ(Floats(old[0]), (std::vector<float>{5, 1, 2, 3}));
}

TEST(KernelsTest, ShapeOpsSqueezeUnsqueezeReshapeFlatten) {
  Tensor x = RandomF32({1, 3, 1, 2}, 4);
  RUN_OK(sq, RunOp("Squeeze", {Fed(x), Const(I64({1}, {-2}))}));
  EXPECT_EQ(sq[0].shape(), (std::vector<int64_t>{1, 3, 2}));
  RUN_OK(sq11, RunOp("Squeeze", {Fed(x)}, {}, 1, 11));
  EXPECT_EQ(sq11[0].shape(), (std::vector<int64_t>{3, 2}));
  RUN_OK(un, RunOp("Unsqueeze", {Fed(x)}, {{"axes", Attribute::Ints({0, -1})}}, 1, 11));
  EXPECT_EQ(un[0].shape(), (std::vector<int64_t>{1, 1, 3, 1, 2, 1}));
  RUN_OK(re, RunOp("Reshape", {Fed(x), Const(I64({3}, {0, -1, 2}))}));
  EXPECT_EQ(re[0].shape(), (std::vector<int64_t>{1, 3, 2}));
  EXPECT_EQ(Floats(re[0]), Floats(x));
  RUN_OK(fl, RunOp("Flatten", {Fed(x)}, {{"axis", Attribute::Int(-1)}}));
  EXPECT_EQ(fl[0].shape(), (std::vector<int64_t>{3, 2}));
}

TEST(KernelsTest, TransposeMatchesNaiveIndexing) {
  Tensor x = RandomF32({2, 3, 4, 5}, 5);
  RUN_OK(out, RunOp("Transpose", {Fed(x)}, {{"perm", Attribute::Ints({0, 2, 3, 1})}}));
  ASSERT_EQ(out[0].shape(), (std::vector<int64_t>{2, 4, 5, 3}));
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int h = 0; h < 4; ++h)
        for (int w = 0; w < 5; ++w)
          ASSERT_EQ(out[0].data<float>()[((n * 4 + h) * 5 + w) * 3 + c],
                    x.data<float>()[((n * 3 + c) * 4 + h) * 5 + w]);
}

TEST(KernelsTest, ConcatThenSplitRoundTrips) {
  Tensor a = RandomF32({2, 1, 3}, 6), b = RandomF32({2, 4, 3}, 7);
  RUN_OK(cat, RunOp("Concat", {Fed(a), Fed(b)}, {{"axis", Attribute::Int(-2)}}));
  EXPECT_EQ(cat[0].shape(), (std::vector<int64_t>{2, 5, 3}));
  RUN_OK(parts, RunOp("Split", {Fed(cat[0]), Const(I64({2}, {1, 4}))}, {{"axis", Attribute::Int(1)}}, 2));
  EXPECT_TRUE(parts[0].BitwiseEqual(a));
  EXPECT_TRUE(parts[1].BitwiseEqual(b));
  RUN_OK(old, RunOp("Split", {Fed(cat[0])}, {{"axis", Attribute::Int(1)}, {"split", Attribute::Ints({1, 4})}}, 2, 11));
  EXPECT_TRUE(old[1].BitwiseEqual(b));
}

TEST(KernelsTest, GatherExpandTileRange) {
  Tensor x = F32({3, 2}, {0, 1, 10, 11, 20, 21});
  RUN_OK(g, RunOp("Gather", {Fed(x), Const(I64({2, 2}, {2, -3, 1, 1}))}));
  EXPECT_EQ(g[0].shape(), (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(Floats(g[0]), (std::vector<float>{20, 21, 0, 1, 10, 11, 10, 11}));
  RUN_OK(e, RunOp("Expand", {Fed(F32({3, 1}, {1, 2, 3})), Const(I64({3}, {2, 1, 2}))}));
  EXPECT_EQ(e[0].shape(), (std::vector<int64_t>{2, 3, 2}));
  EXPECT_EQ(Floats(e[0]), (std::vector<float>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}));
  RUN_OK(t, RunOp("Tile", {Fed(F32({2}, {1, 2})), Const(I64({1}, {3}))}));
  EXPECT_EQ(Floats(t[0]), (std::vector<float>{1, 2, 1, 2, 1, 2}));
  RUN_OK(r, RunOp("Range", {Const(I64({}, {10})), Const(I64({}, {1})), Const(I64({}, {-4}))}));
  EXPECT_EQ(Ints(r[0]), (std::vector<int64_t>{10, 6, 2}));
}

TEST(KernelsTest, ShapeCastConstantOfShape) {
  Tensor x = F32({2, 3, 4}, std::vector<float>(24, 1.5f));
  RUN_OK(s, RunOp("Shape", {Fed(x)}, {{"start", Attribute::Int(-2)}}, 1, 15));
  EXPECT_EQ(Ints(s[0]), (std::vector<int64_t>{3, 4}));
  RUN_OK(c, RunOp("Cast", {Fed(F32({3}, {-1.7f, 0, 2.9f}))}, {{"to", Attribute::Int(7)}}));
  EXPECT_EQ(Ints(c[0]), (std::vector<int64_t>{-1, 0, 2}));
  RUN_OK(k, RunOp("ConstantOfShape", {Const(I64({2}, {2, 2}))},
                  {{"value", Attribute::FromTensor(I64({1}, {7}))}}));
  EXPECT_EQ(Ints(k[0]), (std::vector<int64_t>{7, 7, 7, 7}));
}

TEST(KernelsTest, ReductionsOverAxesAndKeepdims) {
  Tensor x = RandomF32({2, 3, 4}, 8);
  RUN_OK(mean, RunOp("ReduceMean", {Fed(x)}, {{"axes", Attribute::Ints({0, 2})}, {"keepdims", Attribute::Int(0)}}));
  RUN_OK(sum, RunOp("ReduceSum", {Fed(x), Const(I64({1}, {-1}))}));
  RUN_OK(mx, RunOp("ReduceMax", {Fed(x)}, {{"axes", Attribute::Ints({1})}}));
  ASSERT_EQ(mean[0].shape(), (std::vector<int64_t>{3}));
  ASSERT_EQ(sum[0].shape(), (std::vector<int64_t>{2, 3, 1}));
  ASSERT_EQ(mx[0].shape(), (std::vector<int64_t>{2, 1, 4}));
  const float* p = x.data<float>();
  for (int c = 0; c < 3; ++c) {
    double s = 0;
    for (int n = 0; n < 2; ++n) for (int w = 0; w < 4; ++w) s += p[n * 12 + c * 4 + w];
    EXPECT_NEAR(mean[0].data<float>()[c], s / 8, 1e-6);
  }
  for (int n = 0; n < 2; ++n) {
    for (int c = 0; c < 3; ++c) {
      double s = 0;
      for (int w = 0; w < 4; ++w) s += p[n * 12 + c * 4 + w];
      EXPECT_NEAR(sum[0].data<float>()[n * 3 + c], s, 1e-5);
    }
    for (int w = 0; w < 4; ++w) {
      float m = -1e9f;
      for (int c = 0; c < 3; ++c) m = std::max(m, p[n * 12 + c * 4 + w]);
      EXPECT_EQ(mx[0].data<float>()[n * 4 + w], m);
    }
  }
  RUN_OK(all, RunOp("ReduceSum", {Fed(x)}, {{"keepdims", Attribute::Int(0)}}));
  EXPECT_EQ(all[0].rank(), 0);
}

TEST(KernelsTest, LayerNormalizationNormalizesTrailingAxes) {
  Tensor x = RandomF32({2, 3, 4}, 9);
  Tensor scale = RandomF32({4}, 10), bias = RandomF32({4}, 11);
  RUN_OK(out, RunOp("LayerNormalization", {Fed(x), Const(scale), Const(bias)}, {}, 1, 17));
  const float* p = x.data<float>();
  for (int r = 0; r < 6; ++r) {
    double mean = 0, var = 0;
    for (int i = 0; i < 4; ++i) mean += p[r * 4 + i] / 4.0;
    for (int i = 0; i < 4; ++i) var += (p[r * 4 + i] - mean) * (p[r * 4 + i] - mean) / 4.0;
    for (int i = 0; i < 4; ++i) {
      const double want = (p[r * 4 + i] - mean) / std::sqrt(var + 1e-5) * scale.data<float>()[i] + bias.data<float>()[i];
      EXPECT_NEAR(out[0].data<float>()[r * 4 + i], want, 1e-5);
    }
  }
}

TEST(KernelsTest, ResizeNearestModes) {
  Tensor x = F32({1, 1, 1, 4}, {0, 1, 2, 3});
  // Upsample x2, asymmetric + floor: 0 0 1 1 2 2 3 3.
  RUN_OK(up, RunOp("Resize", {Fed(x), Omitted(), Const(F32({4}, {1, 1, 1, 2}))},
                   {{"coordinate_transformation_mode", Attribute::String("asymmetric")},
                    {"nearest_mode", Attribute::String("floor")}}));
  EXPECT_EQ(Floats(up[0]), (std::vector<float>{0, 0, 1, 1, 2, 2, 3, 3}));
  // half_pixel, round_prefer_floor, x2: source (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, ...
  RUN_OK(hp, RunOp("Resize", {Fed(x), Omitted(), Const(F32({4}, {1, 1, 1, 2}))}));
  EXPECT_EQ(Floats(hp[0]), (std::vector<float>{0, 0, 1, 1, 2, 2, 3, 3}));
  // align_corners to 7 outputs: source i * 3 / 6 = 0, .5, 1, 1.5, ... ; round_prefer_ceil.
  RUN_OK(ac, RunOp("Resize", {Fed(x), Omitted(), Omitted(), Const(I64({4}, {1, 1, 1, 7}))},
                   {{"coordinate_transformation_mode", Attribute::String("align_corners")},
                    {"nearest_mode", Attribute::String("round_prefer_ceil")}}));
  EXPECT_EQ(Floats(ac[0]), (std::vector<float>{0, 1, 1, 2, 2, 3, 3}));
  // Upsample (opset 9): floor(i / 2).
  RUN_OK(us, RunOp("Upsample", {Fed(x), Const(F32({4}, {1, 1, 1, 2}))}, {}, 1, 9));
  EXPECT_EQ(Floats(us[0]), (std::vector<float>{0, 0, 1, 1, 2, 2, 3, 3}));
}

TEST(KernelsTest, ResizeBilinearMatchesTheFormula) {
  Tensor x = RandomF32({1, 2, 3, 4}, 12);
  const int oh = 5, ow = 7;
  for (const char* mode : {"half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel"}) {
    RUN_OK(out, RunOp("Resize", {Fed(x), Omitted(), Omitted(), Const(I64({4}, {1, 2, oh, ow}))},
                      {{"mode", Attribute::String("linear")},
                       {"coordinate_transformation_mode", Attribute::String(mode)}}));
    auto src = [&](int o, int in_len, int out_len) {
      const double s = double(out_len) / in_len;
      std::string m = mode;
      double v;
      if (m == "half_pixel" || m == "pytorch_half_pixel") v = (o + 0.5) / s - 0.5;
      else if (m == "align_corners") v = o * double(in_len - 1) / (out_len - 1);
      else v = o / s;
      return std::clamp(v, 0.0, double(in_len - 1));
    };
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < oh; ++i)
        for (int j = 0; j < ow; ++j) {
          const double y = src(i, 3, oh), xx = src(j, 4, ow);
          const int y0 = int(y), x0 = int(xx), y1 = std::min(y0 + 1, 2), x1 = std::min(x0 + 1, 3);
          const double dy = y - y0, dx = xx - x0;
          auto at = [&](int h, int w) { return x.data<float>()[(c * 3 + h) * 4 + w]; };
          const double want = (1 - dy) * ((1 - dx) * at(y0, x0) + dx * at(y0, x1)) +
                              dy * ((1 - dx) * at(y1, x0) + dx * at(y1, x1));
          ASSERT_NEAR(out[0].data<float>()[(c * oh + i) * ow + j], want, 1e-5) << mode;
        }
  }
}

}  // namespace
}  // namespace qalign::testing
