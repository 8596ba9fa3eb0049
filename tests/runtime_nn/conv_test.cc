// Conv and ConvTranspose: hand-computed cases check the reference; a seeded sweep of shapes and
// attributes checks the oneDNN kernels against it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
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

Tensor RunReferenceConv(const std::string& type, const Tensor& x, const Tensor& w,
                        AttributeList attrs, const Tensor* b = nullptr) {
  std::vector<std::optional<std::vector<int64_t>>> shapes = {x.shape(), w.shape()};
  if (b) shapes.push_back(b->shape());
  auto one = MakeOp(type, shapes, std::move(attrs));
  auto kernel = type == "Conv" ? CreateConvReference(*one.op) : CreateConvTransposeReference(*one.op);
  EXPECT_TRUE(kernel.ok()) << kernel.status().ToString();
  std::vector<const Tensor*> inputs = {&x, &w};
  if (b) inputs.push_back(b);
  auto y = RunKernel(**kernel, *one.op, inputs);
  EXPECT_TRUE(y.ok()) << y.status().ToString();
  return y.ok() ? std::move(*y) : Tensor();
}

TEST(ConvReferenceTest, PadsAndStridesByHand) {
  // x = 1..9 as 3x3; a 3x3 window of ones with pads 1 and stride 2 sums the 2x2 corners.
  const Tensor x = Floats({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  const Tensor w = Floats({1, 1, 3, 3}, std::vector<float>(9, 1.0f));
  const Tensor y = RunReferenceConv("Conv", x, w, {{"pads", Attribute::Ints({1, 1, 1, 1})},
                                                   {"strides", Attribute::Ints({2, 2})}});
  EXPECT_TRUE(Close(y, Floats({1, 1, 2, 2}, {12, 16, 24, 28})));
  // The same numbers from a 2x2 window without padding.
  const Tensor w2 = Floats({1, 1, 2, 2}, {1, 1, 1, 1});
  EXPECT_TRUE(Close(RunReferenceConv("Conv", x, w2, {}), Floats({1, 1, 2, 2}, {12, 16, 24, 28})));
}

TEST(ConvReferenceTest, AutoPadSameUpperAndLowerByHand) {
  const Tensor x = Floats({1, 1, 4}, {1, 2, 3, 4});
  const Tensor w = Floats({1, 1, 2}, {1, 1});
  // Total padding 1: SAME_UPPER puts it at the end, SAME_LOWER at the beginning.
  EXPECT_TRUE(Close(RunReferenceConv("Conv", x, w, {{"auto_pad", Attribute::String("SAME_UPPER")}}),
                    Floats({1, 1, 4}, {3, 5, 7, 4})));
  EXPECT_TRUE(Close(RunReferenceConv("Conv", x, w, {{"auto_pad", Attribute::String("SAME_LOWER")}}),
                    Floats({1, 1, 4}, {1, 3, 5, 7})));
  EXPECT_TRUE(Close(RunReferenceConv("Conv", x, w, {{"auto_pad", Attribute::String("VALID")}}),
                    Floats({1, 1, 3}, {3, 5, 7})));
}

TEST(ConvReferenceTest, DilationGroupAndBiasByHand) {
  // y[i] = x[i] + 10 * x[i + 2] (dilation 2), per channel (group 2), plus bias.
  const Tensor x = Floats({1, 2, 5}, {1, 2, 3, 4, 5, 10, 20, 30, 40, 50});
  const Tensor w = Floats({2, 1, 2}, {1, 10, 1, 10});
  const Tensor b = Floats({2}, {0.5f, -1.0f});
  const Tensor y = RunReferenceConv(
      "Conv", x, w, {{"dilations", Attribute::Ints({2})}, {"group", Attribute::Int(2)}}, &b);
  EXPECT_TRUE(Close(y, Floats({1, 2, 3}, {31.5f, 42.5f, 53.5f, 309, 419, 529})));
}

TEST(ConvTransposeReferenceTest, StridesPadsAndOutputPaddingByHand) {
  const Tensor x = Floats({1, 1, 3}, {1, 2, 3});
  const Tensor w2 = Floats({1, 1, 2}, {1, 1});
  // Each input scatters into out[2 i + k].
  EXPECT_TRUE(Close(RunReferenceConv("ConvTranspose", x, w2, {{"strides", Attribute::Ints({2})}}),
                    Floats({1, 1, 6}, {1, 1, 2, 2, 3, 3})));
  EXPECT_TRUE(Close(RunReferenceConv("ConvTranspose", x, w2, {}), Floats({1, 1, 4}, {1, 3, 5, 3})));
  EXPECT_TRUE(Close(RunReferenceConv("ConvTranspose", x, w2, {{"pads", Attribute::Ints({1, 0})}}),
                    Floats({1, 1, 3}, {3, 5, 3})));
  EXPECT_TRUE(Close(RunReferenceConv("ConvTranspose", x, w2,
                                     {{"strides", Attribute::Ints({2})},
                                      {"output_padding", Attribute::Ints({1})}}),
                    Floats({1, 1, 7}, {1, 1, 2, 2, 3, 3, 0})));
  // Kernel 3, stride 2: full output [1,1,3,2,5,3,3] of 7.
  const Tensor w3 = Floats({1, 1, 3}, {1, 1, 1});
  EXPECT_TRUE(Close(RunReferenceConv("ConvTranspose", x, w3, {{"strides", Attribute::Ints({2})}}),
                    Floats({1, 1, 7}, {1, 1, 3, 2, 5, 3, 3})));
  // SAME_*: output 3 * 2 = 6, the one unit of padding at the end (UPPER) or beginning (LOWER).
  EXPECT_TRUE(Close(RunReferenceConv("ConvTranspose", x, w3,
                                     {{"strides", Attribute::Ints({2})},
                                      {"auto_pad", Attribute::String("SAME_UPPER")}}),
                    Floats({1, 1, 6}, {1, 1, 3, 2, 5, 3})));
  EXPECT_TRUE(Close(RunReferenceConv("ConvTranspose", x, w3,
                                     {{"strides", Attribute::Ints({2})},
                                      {"auto_pad", Attribute::String("SAME_LOWER")}}),
                    Floats({1, 1, 6}, {1, 3, 2, 5, 3, 3})));
  // output_shape 5 without auto_pad: total padding 2, split 1 / 1.
  EXPECT_TRUE(Close(RunReferenceConv("ConvTranspose", x, w3,
                                     {{"strides", Attribute::Ints({2})},
                                      {"output_shape", Attribute::Ints({5})}}),
                    Floats({1, 1, 5}, {1, 3, 2, 5, 3})));
}

TEST(ConvTransposeReferenceTest, GroupsByHand) {
  // Two groups of one channel each, one output map per group; bias per map.
  const Tensor x = Floats({1, 2, 2}, {1, 2, 3, 4});
  const Tensor w = Floats({2, 1, 2}, {1, 2, -1, 1});
  const Tensor b = Floats({2}, {1, 0});
  const Tensor y = RunReferenceConv("ConvTranspose", x, w, {{"group", Attribute::Int(2)}}, &b);
  // map 0: [1*1, 1*2 + 2*1, 2*2] + 1 = [2, 5, 5]; map 1: [-3, 3 - 4, 4] = [-3, -1, 4].
  EXPECT_TRUE(Close(y, Floats({1, 2, 3}, {2, 5, 5, -3, -1, 4})));
}

const char* kAutoPads[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};

// The fast kernels read QALIGN_NN_CONV_LAYOUT when created: alternate between oneDNN's blocked
// layout and plain NCHW so both code paths are checked (the default times both and keeps one).
void ForceLayout(int trial) {
  setenv("QALIGN_NN_CONV_LAYOUT", trial % 2 == 0 ? "blocked" : "plain", 1);
}

TEST(ConvFastTest, MatchesReferenceOnSeededSweep) {
  std::mt19937 rng(20240501);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int run = 0;
  for (int trial = 0; trial < 80; ++trial) {
    const int rank = pick(1, 2);
    const int64_t batch = pick(1, 2);
    const int group_kind = pick(0, 2);  // 0: dense, 1: group 2, 2: depthwise
    const int64_t cpg = group_kind == 2 ? 1 : pick(1, 5);
    const int64_t group = group_kind == 0 ? 1 : (group_kind == 1 ? 2 : pick(2, 6));
    const int64_t mpg = group_kind == 2 ? pick(1, 2) : pick(1, 5);
    const std::string auto_pad = kAutoPads[pick(0, 3)];
    std::vector<int64_t> x_shape = {batch, cpg * group}, w_shape = {mpg * group, cpg};
    std::vector<int64_t> strides, dilations, pads_begin, pads_end;
    bool valid = true;
    for (int i = 0; i < rank; ++i) {
      const int64_t k = pick(1, 3), s = pick(1, 3), d = pick(1, 2);
      const int64_t in = pick(1, 9);
      const int64_t dk = (k - 1) * d + 1;
      const int64_t pb = pick(0, static_cast<int>(k - 1)), pe = pick(0, static_cast<int>(k - 1));
      if (auto_pad == "VALID" && in < dk) valid = false;
      if (auto_pad == "NOTSET" && in + pb + pe < dk) valid = false;
      x_shape.push_back(in);
      w_shape.push_back(k);
      strides.push_back(s);
      dilations.push_back(d);
      pads_begin.push_back(pb);
      pads_end.push_back(pe);
    }
    if (!valid) continue;
    AttributeList attrs = {{"strides", Attribute::Ints(strides)},
                           {"dilations", Attribute::Ints(dilations)},
                           {"group", Attribute::Int(group)},
                           {"auto_pad", Attribute::String(auto_pad)}};
    if (auto_pad == "NOTSET") {
      std::vector<int64_t> pads = pads_begin;
      pads.insert(pads.end(), pads_end.begin(), pads_end.end());
      attrs.push_back({"pads", Attribute::Ints(pads)});
    }
    const bool has_bias = pick(0, 1) == 1;
    const Tensor x = RandomTensor(x_shape, rng);
    const Tensor w = RandomTensor(w_shape, rng);
    const Tensor b = RandomTensor({mpg * group}, rng);
    std::vector<std::optional<std::vector<int64_t>>> shapes = {x_shape, w_shape};
    std::vector<const Tensor*> inputs = {&x, &w};
    if (has_bias) {
      shapes.push_back(b.shape());
      inputs.push_back(&b);
    }
    auto one = MakeOp("Conv", shapes, attrs);
    ForceLayout(trial);
    EXPECT_TRUE(FastMatchesReference(CreateConvFast, CreateConvReference, *one.op, inputs))
        << "trial " << trial << " x " << ShapeToString(x_shape) << " w " << ShapeToString(w_shape)
        << " group " << group << " auto_pad " << auto_pad << " strides "
        << ShapeToString(strides) << " dilations " << ShapeToString(dilations) << " pads "
        << ShapeToString(pads_begin) << ShapeToString(pads_end) << " layout "
        << std::getenv("QALIGN_NN_CONV_LAYOUT");
    ++run;
  }
  unsetenv("QALIGN_NN_CONV_LAYOUT");
  EXPECT_GT(run, 50);
}

TEST(ConvTransposeFastTest, MatchesReferenceOnSeededSweep) {
  std::mt19937 rng(777);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 60; ++trial) {
    const int rank = pick(1, 2);
    const int64_t batch = pick(1, 2);
    const int64_t group = pick(0, 2) == 0 ? 2 : 1;
    const int64_t cpg = pick(1, 4), mpg = pick(1, 4);
    const int mode = pick(0, 3);  // 0: pads, 1: output_shape, 2: SAME_UPPER, 3: SAME_LOWER
    std::vector<int64_t> x_shape = {batch, cpg * group}, w_shape = {cpg * group, mpg};
    std::vector<int64_t> strides, dilations, pads_begin, pads_end, out_pad, out_shape;
    for (int i = 0; i < rank; ++i) {
      const int64_t k = pick(1, 3), s = pick(1, 3), d = pick(1, 2);
      const int64_t in = pick(1, 6);
      const int64_t dk = (k - 1) * d + 1;
      // output_padding must be smaller than the stride or the dilation.
      const int64_t op = pick(0, static_cast<int>(std::max(s, d) - 1));
      const int64_t pb = pick(0, static_cast<int>(dk - 1)), pe = pick(0, static_cast<int>(dk - 1));
      const int64_t full = s * (in - 1) + op + dk;
      x_shape.push_back(in);
      w_shape.push_back(k);
      strides.push_back(s);
      dilations.push_back(d);
      out_pad.push_back(op);
      pads_begin.push_back(std::min(pb, full - 1 - pe > 0 ? pb : 0));
      pads_end.push_back(pe);
      out_shape.push_back(std::max<int64_t>(1, full - pick(0, static_cast<int>(dk - 1))));
    }
    AttributeList attrs = {{"strides", Attribute::Ints(strides)},
                           {"dilations", Attribute::Ints(dilations)},
                           {"group", Attribute::Int(group)},
                           {"output_padding", Attribute::Ints(out_pad)}};
    bool ok_shape = true;
    if (mode == 0) {
      std::vector<int64_t> pads = pads_begin;
      pads.insert(pads.end(), pads_end.begin(), pads_end.end());
      attrs.push_back({"pads", Attribute::Ints(pads)});
      for (int i = 0; i < rank; ++i) {
        const int64_t dk = (w_shape[2 + i] - 1) * dilations[i] + 1;
        if (strides[i] * (x_shape[2 + i] - 1) + out_pad[i] + dk - pads_begin[i] - pads_end[i] < 1) {
          ok_shape = false;
        }
      }
    } else if (mode == 1) {
      attrs.push_back({"output_shape", Attribute::Ints(out_shape)});
    } else {
      attrs.push_back({"auto_pad", Attribute::String(mode == 2 ? "SAME_UPPER" : "SAME_LOWER")});
      // SAME needs out = in * stride <= the full extent (no negative padding).
      for (int i = 0; i < rank; ++i) {
        const int64_t dk = (w_shape[2 + i] - 1) * dilations[i] + 1;
        if (x_shape[2 + i] * strides[i] > strides[i] * (x_shape[2 + i] - 1) + out_pad[i] + dk) {
          ok_shape = false;
        }
      }
    }
    if (!ok_shape) continue;
    const Tensor x = RandomTensor(x_shape, rng);
    const Tensor w = RandomTensor(w_shape, rng);
    const Tensor b = RandomTensor({mpg * group}, rng);
    auto one = MakeOp("ConvTranspose", {x_shape, w_shape, b.shape()}, attrs);
    // oneDNN has no negative padding: an output extending past the full transposed extent
    // (output_padding larger than the end padding) is left to the reference kernel.
    bool negative_padding = false;
    for (int i = 0; i < rank; ++i) {
      const int64_t in = x_shape[2 + i], s = strides[i];
      const int64_t dk = (w_shape[2 + i] - 1) * dilations[i] + 1;
      const int64_t full = s * (in - 1) + out_pad[i] + dk;
      int64_t pad_end = pads_end[i];
      if (mode == 1 || mode >= 2) {
        const int64_t out = mode == 1 ? out_shape[i] : in * s;
        const int64_t total = full - out;
        pad_end = mode == 2 ? total - total / 2 : total / 2;
      }
      if (pad_end - out_pad[i] < 0) negative_padding = true;
    }
    ForceLayout(trial);
    EXPECT_TRUE(FastMatchesReference(CreateConvTransposeFast, CreateConvTransposeReference,
                                     *one.op, {&x, &w, &b}, negative_padding))
        << "trial " << trial << " x " << ShapeToString(x_shape) << " w " << ShapeToString(w_shape)
        << " group " << group << " mode " << mode << " strides " << ShapeToString(strides)
        << " dilations " << ShapeToString(dilations) << " out_pad " << ShapeToString(out_pad);
  }
  unsetenv("QALIGN_NN_CONV_LAYOUT");
}

TEST(ConvFastTest, CachesPerShapeAndNoticesNewWeights) {
  std::mt19937 rng(99);
  auto one = MakeOp("Conv", {std::vector<int64_t>{1, 8, 6, 6}, std::vector<int64_t>{8, 8, 3, 3}},
                    {{"pads", Attribute::Ints({1, 1, 1, 1})}});
  auto fast = CreateConvFast(*one.op);
  auto reference = CreateConvReference(*one.op);
  ASSERT_TRUE(fast.ok() && reference.ok());
  Tensor w = RandomTensor({8, 8, 3, 3}, rng);
  // Shapes change between runs, and back; the weights change in place between runs.
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{1, 8, 6, 6}, {2, 8, 5, 7}, {1, 8, 6, 6}}) {
    const Tensor x = RandomTensor(shape, rng);
    for (int i = 0; i < 2; ++i) {
      for (float& v : w.values<float>()) v = -v * 0.5f + 0.01f;
      auto got = RunKernel(**fast, *one.op, {&x, &w});
      auto want = RunKernel(**reference, *one.op, {&x, &w});
      ASSERT_TRUE(got.ok() && want.ok());
      EXPECT_TRUE(Close(*got, *want)) << ShapeToString(shape) << " run " << i;
    }
  }
}

TEST(ConvFastTest, DefaultLayoutIsDeterministicBlocked) {
  // Without QALIGN_NN_CONV_LAYOUT the kernel must not pick a layout by timing (results would
  // differ from run to run): it gives exactly what forcing the blocked layout gives, on shapes
  // where both layouts exist (a 3-channel stem, a depthwise and a pointwise conv).
  std::mt19937 rng(5);
  struct Case {
    std::vector<int64_t> x, w;
    int64_t group;
  };
  for (const Case& c : {Case{{1, 3, 33, 31}, {16, 3, 3, 3}, 1}, Case{{1, 32, 20, 20}, {32, 1, 3, 3}, 32},
                        Case{{1, 32, 20, 20}, {48, 32, 1, 1}, 1}}) {
    auto one = MakeOp("Conv", {c.x, c.w},
                      {{"pads", Attribute::Ints({1, 1, 1, 1})}, {"group", Attribute::Int(c.group)}});
    const Tensor x = RandomTensor(c.x, rng);
    const Tensor w = RandomTensor(c.w, rng);
    unsetenv("QALIGN_NN_CONV_LAYOUT");
    auto by_default = CreateConvFast(*one.op);
    setenv("QALIGN_NN_CONV_LAYOUT", "blocked", 1);
    auto blocked = CreateConvFast(*one.op);
    unsetenv("QALIGN_NN_CONV_LAYOUT");
    ASSERT_TRUE(by_default.ok() && blocked.ok());
    for (int run = 0; run < 3; ++run) {
      auto a = RunKernel(**by_default, *one.op, {&x, &w});
      auto b = RunKernel(**blocked, *one.op, {&x, &w});
      ASSERT_TRUE(a.ok() && b.ok());
      ASSERT_EQ(a->byte_size(), b->byte_size());
      EXPECT_EQ(std::memcmp(a->raw_data(), b->raw_data(), a->byte_size()), 0)
          << ShapeToString(c.x) << " run " << run;
    }
  }
}

TEST(ConvFastTest, BadShapesAreErrorsNamingTheOp) {
  auto one = MakeOp("Conv", {std::vector<int64_t>{1, 3, 4, 4}, std::vector<int64_t>{2, 2, 3, 3}});
  auto fast = CreateConvFast(*one.op);
  ASSERT_TRUE(fast.ok());
  const Tensor x(DataType::kFloat, {1, 3, 4, 4});
  const Tensor w(DataType::kFloat, {2, 2, 3, 3});
  auto y = RunKernel(**fast, *one.op, {&x, &w});
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("Conv 'node'"), std::string::npos) << y.status().message();
  EXPECT_NE(y.status().message().find("x1"), std::string::npos) << y.status().message();
}

}  // namespace
}  // namespace qalign::nn
