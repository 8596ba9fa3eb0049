// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool: hand-computed reference cases and a
// seeded fast-vs-reference sweep (pads, strides, dilations, ceil_mode, auto_pad, count_include_pad).
#include <gtest/gtest.h>

#include <random>

#include "nn_test_util.h"

namespace qalign::nn {
namespace {

using qalign::testing::AttributeList;
using testing::Close;
using testing::FastMatchesReference;
using testing::Floats;
using testing::MakeOp;
using testing::RandomTensor;
using testing::RunKernel;

Tensor RunReferencePool(const std::string& type, const Tensor& x, AttributeList attrs) {
  auto one = MakeOp(type, {x.shape()}, std::move(attrs));
  KernelOr kernel = type == "MaxPool"           ? CreateMaxPoolReference(*one.op)
                    : type == "AveragePool"     ? CreateAveragePoolReference(*one.op)
                    : type == "GlobalMaxPool"   ? CreateGlobalMaxPoolReference(*one.op)
                                                : CreateGlobalAveragePoolReference(*one.op);
  EXPECT_TRUE(kernel.ok()) << kernel.status().ToString();
  auto y = RunKernel(**kernel, *one.op, {&x});
  EXPECT_TRUE(y.ok()) << y.status().ToString();
  return y.ok() ? std::move(*y) : Tensor();
}

TEST(PoolReferenceTest, MaxPoolByHand) {
  const Tensor x = Floats({1, 1, 5}, {1, 3, 2, 5, 4});
  const auto k2s2 = [](int64_t ceil) {
    return AttributeList{{"kernel_shape", Attribute::Ints({2})},
                         {"strides", Attribute::Ints({2})},
                         {"ceil_mode", Attribute::Int(ceil)}};
  };
  EXPECT_TRUE(Close(RunReferencePool("MaxPool", x, k2s2(0)), Floats({1, 1, 2}, {3, 5})));
  // ceil_mode keeps the last, partial window.
  EXPECT_TRUE(Close(RunReferencePool("MaxPool", x, k2s2(1)), Floats({1, 1, 3}, {3, 5, 4})));
  EXPECT_TRUE(Close(RunReferencePool("MaxPool", x, {{"kernel_shape", Attribute::Ints({3})},
                                                    {"pads", Attribute::Ints({1, 1})}}),
                    Floats({1, 1, 5}, {3, 3, 5, 5, 5})));
  // Dilation 2: windows {0, 2}, {1, 3}, {2, 4}.
  EXPECT_TRUE(Close(RunReferencePool("MaxPool", x, {{"kernel_shape", Attribute::Ints({2})},
                                                    {"dilations", Attribute::Ints({2})}}),
                    Floats({1, 1, 3}, {2, 5, 4})));
  // SAME_UPPER with stride 2: out = ceil(5 / 2) = 3, total pad 1 at the end.
  EXPECT_TRUE(Close(RunReferencePool("MaxPool", x, {{"kernel_shape", Attribute::Ints({2})},
                                                    {"strides", Attribute::Ints({2})},
                                                    {"auto_pad", Attribute::String("SAME_UPPER")}}),
                    Floats({1, 1, 3}, {3, 5, 4})));
}

TEST(PoolReferenceTest, CeilModeDropsWindowStartingInRightPadding) {
  // in 2, k 1, s 2, pads (0, 2): ceil((2 + 2 - 1) / 2) + 1 = 3 windows, but the third would
  // start at 4 >= in + pad_begin, so ONNX keeps 2.
  const Tensor x = Floats({1, 1, 2}, {7, 8});
  const Tensor y = RunReferencePool("MaxPool", x, {{"kernel_shape", Attribute::Ints({1})},
                                                   {"strides", Attribute::Ints({2})},
                                                   {"pads", Attribute::Ints({0, 2})},
                                                   {"ceil_mode", Attribute::Int(1)}});
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{1, 1, 2}));
}

TEST(PoolReferenceTest, AveragePoolByHand) {
  const Tensor x = Floats({1, 1, 4}, {1, 2, 3, 4});
  const AttributeList k3p1 = {{"kernel_shape", Attribute::Ints({3})},
                              {"pads", Attribute::Ints({1, 1})}};
  EXPECT_TRUE(Close(RunReferencePool("AveragePool", x, k3p1),
                    Floats({1, 1, 4}, {1.5f, 2, 3, 3.5f})));
  AttributeList include = k3p1;
  include.push_back({"count_include_pad", Attribute::Int(1)});
  EXPECT_TRUE(Close(RunReferencePool("AveragePool", x, include),
                    Floats({1, 1, 4}, {1, 2, 3, 7.0f / 3})));
  // ceil_mode: the last window holds only x[4]; the part past the input is not padding, so
  // neither divisor counts it.
  const Tensor x5 = Floats({1, 1, 5}, {1, 2, 3, 4, 5});
  for (int64_t include_pad : {0, 1}) {
    EXPECT_TRUE(Close(RunReferencePool("AveragePool", x5,
                                       {{"kernel_shape", Attribute::Ints({2})},
                                        {"strides", Attribute::Ints({2})},
                                        {"ceil_mode", Attribute::Int(1)},
                                        {"count_include_pad", Attribute::Int(include_pad)}}),
                      Floats({1, 1, 3}, {1.5f, 3.5f, 5})));
  }
}

TEST(PoolReferenceTest, GlobalPoolsByHand) {
  const Tensor x = Floats({1, 2, 2, 2}, {1, 2, 3, 4, -1, -2, -3, -8});
  EXPECT_TRUE(Close(RunReferencePool("GlobalAveragePool", x, {}), Floats({1, 2, 1, 1}, {2.5f, -3.5f})));
  EXPECT_TRUE(Close(RunReferencePool("GlobalMaxPool", x, {}), Floats({1, 2, 1, 1}, {4, -1})));
}

const char* kAutoPads[] = {"NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};

TEST(PoolFastTest, MatchesReferenceOnSeededSweep) {
  std::mt19937 rng(4242);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int run = 0;
  for (int trial = 0; trial < 120; ++trial) {
    const bool max = pick(0, 1) == 1;
    const int rank = pick(1, 2);
    const std::string auto_pad = kAutoPads[pick(0, 4)];
    const bool ceil_mode = pick(0, 1) == 1;
    const bool include_pad = !max && pick(0, 1) == 1;
    std::vector<int64_t> x_shape = {pick(1, 2), pick(1, 4)};
    std::vector<int64_t> kernel, strides, dilations, pads_begin, pads_end;
    bool valid = true;
    for (int i = 0; i < rank; ++i) {
      const int64_t k = pick(1, 3), s = pick(1, 3), d = max ? pick(1, 2) : 1;
      const int64_t in = pick(1, 9);
      // Pads smaller than the kernel, so every window touches the input.
      const int64_t pb = pick(0, static_cast<int>(k - 1)), pe = pick(0, static_cast<int>(k - 1));
      const int64_t dk = (k - 1) * d + 1;
      if (auto_pad == "VALID" && in < dk) valid = false;
      if (auto_pad == "NOTSET" && in + pb + pe < dk) valid = false;
      x_shape.push_back(in);
      kernel.push_back(k);
      strides.push_back(s);
      dilations.push_back(d);
      pads_begin.push_back(pb);
      pads_end.push_back(pe);
    }
    if (!valid) continue;
    AttributeList attrs = {{"kernel_shape", Attribute::Ints(kernel)},
                           {"strides", Attribute::Ints(strides)},
                           {"auto_pad", Attribute::String(auto_pad)},
                           {"ceil_mode", Attribute::Int(ceil_mode)}};
    if (max) attrs.push_back({"dilations", Attribute::Ints(dilations)});
    if (!max) attrs.push_back({"count_include_pad", Attribute::Int(include_pad)});
    if (auto_pad == "NOTSET") {
      std::vector<int64_t> pads = pads_begin;
      pads.insert(pads.end(), pads_end.begin(), pads_end.end());
      attrs.push_back({"pads", Attribute::Ints(pads)});
    }
    const Tensor x = RandomTensor(x_shape, rng);
    auto one = MakeOp(max ? "MaxPool" : "AveragePool", {x_shape}, attrs);
    // Average-including-pad with a ceil_mode window past the padding is left to the reference.
    const bool allow_fallback = include_pad && ceil_mode;
    const auto result =
        max ? FastMatchesReference(CreateMaxPoolFast, CreateMaxPoolReference, *one.op, {&x})
            : FastMatchesReference(CreateAveragePoolFast, CreateAveragePoolReference, *one.op,
                                   {&x}, allow_fallback);
    EXPECT_TRUE(result) << "trial " << trial << (max ? " MaxPool" : " AveragePool") << " x "
                        << ShapeToString(x_shape) << " kernel " << ShapeToString(kernel)
                        << " strides " << ShapeToString(strides) << " dilations "
                        << ShapeToString(dilations) << " pads " << ShapeToString(pads_begin)
                        << ShapeToString(pads_end) << " auto_pad " << auto_pad << " ceil "
                        << ceil_mode << " include_pad " << include_pad;
    ++run;
  }
  EXPECT_GT(run, 80);
}

TEST(PoolFastTest, GlobalPoolsMatchReference) {
  std::mt19937 rng(5);
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{1, 3, 7}, {2, 5, 4, 6}, {1, 2, 3, 3, 3}, {1, 4, 1, 1}, {1, 2, 33, 17}}) {
    const Tensor x = RandomTensor(shape, rng);
    auto one = MakeOp("GlobalAveragePool", {shape});
    EXPECT_TRUE(FastMatchesReference(CreateGlobalAveragePoolFast,
                                     CreateGlobalAveragePoolReference, *one.op, {&x}))
        << ShapeToString(shape);
    auto two = MakeOp("GlobalMaxPool", {shape});
    EXPECT_TRUE(FastMatchesReference(CreateGlobalMaxPoolFast, CreateGlobalMaxPoolReference,
                                     *two.op, {&x}))
        << ShapeToString(shape);
  }
}

TEST(PoolFastTest, MaxPoolIndicesOutputIsAClearError) {
  auto one = MakeOp("MaxPool", {std::vector<int64_t>{1, 1, 4, 4}},
                    {{"kernel_shape", Attribute::Ints({2, 2})}}, 13, 2);
  auto fast = CreateMaxPoolFast(*one.op);
  ASSERT_FALSE(fast.ok());
  EXPECT_EQ(fast.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(fast.status().message().find("MaxPool 'node'"), std::string::npos);
  EXPECT_NE(fast.status().message().find("Indices"), std::string::npos);
}

}  // namespace
}  // namespace qalign::nn
