// Bias correction removes a planted mean shift exactly: weights built as Wq + d, with Wq on the
// int8 grid of their per-channel scale and d a known rounding error, shift each output channel's
// mean by d (*) E[x]. After correction, the graph with Wq and the corrected bias has the FP32
// graph's mean output per channel on the calibration data (to float rounding), for a depthwise
// Conv, a strided ConvTranspose and a Gemm.
#include "calib/bias_correction.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "calib/calibrator.h"
#include "calib/data_loader.h"
#include "passes/weight_bias_params.h"
#include "quant/dispatch.h"
#include "runtime/executor.h"
#include "testing/graph_builder.h"

namespace qalign {
namespace {

constexpr float kStep = 1.0f / 127.0f;     // per-channel scale: every channel's largest |w| is 1
constexpr float kPlanted = 0.45f * kStep;  // every weight but one per channel rounds down by this

// Per-channel symmetric int8 weights, int32 biases, asymmetric int8 activations.
TargetProfile Profile() {
  TargetProfile p;
  p.name = "bias-correction";
  p.activation.policy.flags = kPerTensor | kAsymmetric | kLinear;
  p.weight.policy.flags = kPerChannel | kSymmetric | kLinear;
  p.weight.quant_min = -127;
  p.weight.quant_max = 127;
  p.bias.policy.flags = kPerChannel | kSymmetric | kLinear;
  p.bias.num_bits = 32;
  p.bias.quant_min = -2147483647LL;
  p.bias.quant_max = 2147483647LL;
  p.quantized_op_types = {"Conv", "ConvTranspose", "Gemm"};
  return p;
}

// A weight of `shape` whose channel (along `axis`) holds 1.0 first and then values j / 127 +
// kPlanted (j seeded in [-100, 100]): quantized, they become exactly j / 127 (and 1.0). With
// `planted` false, the weight is that quantized grid itself.
Tensor PlantedWeight(const std::vector<int64_t>& shape, int axis, bool planted, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> grid(-100, 100);
  Tensor t(DataType::kFloat, shape);
  std::span<float> w = t.values<float>();
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t channels = shape[static_cast<size_t>(axis)];
  std::vector<bool> first(static_cast<size_t>(channels), true);
  for (size_t i = 0; i < w.size(); ++i) {
    const size_t c = static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels);
    const int j = grid(rng);
    if (first[c]) {
      w[i] = 1.0f;
      first[c] = false;
    } else {
      w[i] = static_cast<float>(j) * kStep + (planted ? kPlanted : 0.0f);
    }
  }
  return t;
}

// One op `type` reading x of `x_shape`, the planted weight and a bias: y = type(x, w, b).
struct Case {
  std::string type;
  std::vector<int64_t> x_shape;
  std::vector<int64_t> weight_shape;
  int channel_axis = 0;  // the weight's output-channel axis
  uint32_t seed = 0;
  testing::AttributeList attributes;
  std::vector<float> bias;

  // `planted` selects W (true) or Wq (false).
  std::unique_ptr<Graph> Build(bool planted, const std::vector<float>& bias_values) const {
    testing::GraphBuilder b;
    Variable* x = b.Input("x", x_shape);
    Variable* w = b.Param("w", PlantedWeight(weight_shape, channel_axis, planted, seed));
    Variable* c = b.Param(
        "b", Tensor::FromVector<float>({static_cast<int64_t>(bias_values.size())}, bias_values));
    b.Output(b.Op(type, "op", {x, w, c}, attributes));
    return b.Build();
  }
};

// A depthwise Conv, a strided ConvTranspose and a Gemm with alpha, beta and transB.
std::vector<Case> Cases() {
  return {
      {"Conv", {2, 4, 7, 6}, {4, 1, 3, 3}, 0, 1,
       {{"group", Attribute::Int(4)},
        {"pads", Attribute::Ints({1, 1, 1, 1})},
        {"strides", Attribute::Ints({2, 1})}},
       {0.1f, -0.2f, 0.3f, 0.0f}},
      {"ConvTranspose", {2, 3, 5, 4}, {3, 2, 2, 3}, 1, 2,
       {{"strides", Attribute::Ints({2, 2})}, {"pads", Attribute::Ints({0, 1, 0, 1})}},
       {0.5f, -0.5f}},
      {"Gemm", {3, 5}, {6, 5}, 0, 3,
       {{"transB", Attribute::Int(1)},
        {"alpha", Attribute::Float(0.5f)},
        {"beta", Attribute::Float(2.0f)}},
       {1, 2, 3, 4, 5, 6}},
  };
}

// Mean of the graph's single output per channel (axis 1) over the samples.
std::vector<double> ChannelMeans(const Graph& graph, const CalibrationDataset& data) {
  auto executor = Executor::Create(graph, ExecutorOptions{});
  EXPECT_TRUE(executor.ok());
  std::vector<double> sums;
  double count = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    auto sample = data.Load(i);
    EXPECT_TRUE(sample.ok());
    auto out = (*executor)->Run(std::move(*sample));
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    const Tensor& y = out->begin()->second;
    const int64_t channels = y.shape()[1];
    int64_t inner = 1;
    for (size_t d = 2; d < y.shape().size(); ++d) inner *= y.shape()[d];
    sums.resize(static_cast<size_t>(channels), 0.0);
    std::span<const float> v = y.values<float>();
    for (size_t k = 0; k < v.size(); ++k) {
      sums[static_cast<size_t>((static_cast<int64_t>(k) / inner) % channels)] += v[k];
    }
    count += static_cast<double>(y.num_elements() / channels);
  }
  for (double& s : sums) s /= count;
  return sums;
}

TEST(BiasCorrection, RemovesAPlantedMeanShiftExactly) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.type);
    std::unique_ptr<Graph> graph = c.Build(true, c.bias);
    // Inputs with a non-zero mean, so the planted weight error shifts the outputs' means.
    auto data = OpenCalibrationData("random:3?low=0.5&high=1.5&seed=11", ModelInputSpecs(*graph));
    ASSERT_TRUE(data.ok()) << data.status().ToString();
    const std::vector<double> fp32 = ChannelMeans(*graph, **data);

    BiasCorrection correction(*graph);
    ASSERT_EQ(correction.ObservedInputs().size(), 1u);
    CalibrationOptions options;
    options.progress = ProgressMode::kQuiet;
    options.num_threads = 1;
    options.tensor_hook = [&](const Variable& v, const Tensor& t) { correction.Observe(v, t); };
    ASSERT_TRUE(RunCalibration(*graph, {}, **data, options).ok());
    QuantConfigTable table;
    ASSERT_TRUE(DispatchQuantization(*graph, Profile(), &table).ok());
    ASSERT_TRUE(DeriveWeightAndBiasParams(&table).ok());
    auto stats = correction.Apply(&table);
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    EXPECT_EQ(stats->corrected, 1);
    EXPECT_GT(stats->max_shift, 0.001);

    std::span<const float> corrected = graph->FindVariable("b")->data()->values<float>();
    const std::vector<float> corrected_bias(corrected.begin(), corrected.end());
    const std::vector<double> uncorrected = ChannelMeans(*c.Build(false, c.bias), **data);
    const std::vector<double> fixed = ChannelMeans(*c.Build(false, corrected_bias), **data);
    ASSERT_EQ(fp32.size(), fixed.size());
    for (size_t ch = 0; ch < fp32.size(); ++ch) {
      SCOPED_TRACE(ch);
      EXPECT_GT(std::abs(uncorrected[ch] - fp32[ch]), 0.001);  // the planted shift
      EXPECT_NEAR(fixed[ch], fp32[ch], 2e-6);                  // removed
    }
  }
}

// An op whose bias another op shares is left alone, and counted.
TEST(BiasCorrection, LeavesASharedBiasAlone) {
  testing::GraphBuilder b;
  Variable* x = b.Input("x", {1, 2, 4, 4});
  Variable* w = b.Param("w", PlantedWeight({2, 2, 1, 1}, 0, true, 4));
  Variable* c = b.Param("b", Tensor::FromVector<float>({2}, {1, 2}));
  Variable* y1 = b.Op("Conv", "conv1", {x, w, c});
  b.Output(b.Op("Conv", "conv2", {y1, w, c}));
  auto graph = b.Build();
  BiasCorrection correction(*graph);
  EXPECT_TRUE(correction.ObservedInputs().empty());
}

}  // namespace
}  // namespace qalign
