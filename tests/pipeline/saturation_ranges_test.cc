// Saturation-aware ranges (passes/saturation_ranges.h) through the pipeline, on graphs built in
// code with given ranges: the closed-form effect on Sigmoid and HardSigmoid, which tensors keep
// their range (a second consumer, a rule group, a graph output), and that every rule still holds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "pipeline/pipeline.h"
#include "quant/target_profile.h"
#include "testing/graph_builder.h"
#include "testing/test_targets.h"

namespace qalign {
namespace {

using testing::GraphBuilder;

struct Outcome {
  QuantConfigTable table;
  QuantizePipelineResult result;
};

// Runs the pipeline on `graph` for `target` with every range given by `ranges` (tensor name ->
// [min, max]), saturation-aware ranges on or off.
void RunPipeline(const Graph& graph, const std::string& target,
         const std::vector<std::pair<std::string, std::pair<float, float>>>& ranges,
         bool saturation, Outcome* out) {
  auto profile = LoadTargetProfile(target);
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  RangeMap map;
  for (const auto& [name, r] : ranges) {
    TensorRange range;
    range.min = r.first;
    range.max = r.second;
    map.ranges[name] = range;
  }
  QuantizePipelineOptions options;
  options.saturation_ranges = saturation;
  auto result = RunQuantizePipeline(
      graph, *profile, options,
      [&map](const std::vector<const Variable*>&) -> StatusOr<RangeMap> { return map; },
      &out->table);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  out->result = std::move(*result);
  EXPECT_TRUE(out->result.violations.empty()) << out->result.violations.front().message;
}

// The producer-side params of `tensor`.
struct Params {
  float scale = 0.0f;
  int64_t zero_point = 0;
  int64_t qmin = 0, qmax = 0;
  float Qdq(float x) const {
    const double q = std::clamp<double>(std::round(x / scale) + static_cast<double>(zero_point),
                                        static_cast<double>(qmin), static_cast<double>(qmax));
    return static_cast<float>((q - static_cast<double>(zero_point)) * scale);
  }
};

Params ParamsOf(Outcome* out, const std::string& tensor) {
  for (TQC* t : out->table.all()) {
    if (t->port.is_input || t->port.tensor == nullptr || t->port.tensor->name() != tensor) continue;
    Params p;
    p.scale = out->table.scale(t).at(0);
    p.zero_point = out->table.zero_point(t).at(0);
    p.qmin = t->scheme.quant_min;
    p.qmax = t->scheme.quant_max;
    return p;
  }
  ADD_FAILURE() << "no producer TQC for " << tensor;
  return {};
}

float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
float HardSigmoid(float x, float alpha, float beta) {
  return std::clamp(alpha * x + beta, 0.0f, 1.0f);
}

// Max and mean squared error of f(QDQ(x)) against f(x) over x on a fine grid of [lo, hi].
template <typename F>
std::pair<double, double> Errors(const Params& p, float lo, float hi, F f) {
  double worst = 0.0, sum = 0.0;
  const int n = 20001;
  for (int i = 0; i < n; ++i) {
    const float x = lo + (hi - lo) * static_cast<float>(i) / static_cast<float>(n - 1);
    const double e = std::fabs(static_cast<double>(f(p.Qdq(x))) - f(x));
    worst = std::max(worst, e);
    sum += e * e;
  }
  return {worst, sum / n};
}

// x -> Add 'a'(x, 0) -> t -> HardSigmoid 'hs' (alpha 0.2, beta 0.5: flat outside [-2.5, 2.5])
// x -> Add 'b'(x, 0) -> u -> Sigmoid 's'
// Both t and u calibrated to [-20, 20] (what an outlier-driven minmax gives).
std::unique_ptr<Graph> GateGraph() {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 16});
  Variable* zero = b.Param("zero", Tensor::FromVector<float>({1}, {0.0f}));
  Variable* t = b.Op("Add", "a", {x, zero});
  b.Output(b.Op("HardSigmoid", "hs", {t},
                {{"alpha", Attribute::Float(0.2f)}, {"beta", Attribute::Float(0.5f)}}));
  Variable* u = b.Op("Add", "b", {x, zero});
  b.Output(b.Op("Sigmoid", "s", {u}));
  return b.Build();
}

const std::vector<std::pair<std::string, std::pair<float, float>>> kGateRanges = {
    {"x", {-20.0f, 20.0f}}, {"a_out", {-20.0f, 20.0f}}, {"b_out", {-20.0f, 20.0f}},
    {"hs_out", {0.0f, 1.0f}}, {"s_out", {0.0f, 1.0f}}};

TEST(SaturationRanges, HardSigmoidInputIsExactAndFinerThanMinmax) {
  auto graph = GateGraph();
  Outcome minmax, narrowed;
  RunPipeline(*graph, "tflite-int8", kGateRanges, false, &minmax);
  RunPipeline(*graph, "tflite-int8", kGateRanges, true, &narrowed);
  EXPECT_EQ(minmax.result.saturation.narrowed_tensors, 0);
  const Params before = ParamsOf(&minmax, "a_out");
  const Params after = ParamsOf(&narrowed, "a_out");
  // [-2.5, 2.5] with one step (5 / 255) of margin on each side.
  EXPECT_NEAR(after.scale, (5.0f + 10.0f / 255.0f) / 255.0f, 1e-6f);
  EXPECT_NEAR(before.scale, 40.0f / 255.0f, 1e-6f);
  auto hs = [](float v) { return HardSigmoid(v, 0.2f, 0.5f); };
  const auto [worst_before, mse_before] = Errors(before, -20.0f, 20.0f, hs);
  const auto [worst_after, mse_after] = Errors(after, -20.0f, 20.0f, hs);
  // Only rounding inside the interval: at most alpha * step / 2.
  EXPECT_LE(worst_after, 0.2 * after.scale / 2.0 + 1e-6);
  EXPECT_LT(mse_after, mse_before / 10.0);
  EXPECT_LT(worst_after, worst_before);
  // Beyond the interval the output is exactly the saturated one.
  for (float v : {-20.0f, -7.0f, -2.51f, 2.51f, 7.0f, 20.0f}) {
    EXPECT_EQ(hs(after.Qdq(v)), hs(v)) << v;
  }
}

TEST(SaturationRanges, SigmoidErrorIsStrictlySmallerThanMinmax) {
  auto graph = GateGraph();
  Outcome minmax, narrowed;
  RunPipeline(*graph, "tflite-int8", kGateRanges, false, &minmax);
  RunPipeline(*graph, "tflite-int8", kGateRanges, true, &narrowed);
  const Params before = ParamsOf(&minmax, "b_out");
  const Params after = ParamsOf(&narrowed, "b_out");
  // B = ln(2^16 - 1), one step of margin.
  const float bound = std::log(65535.0f);
  EXPECT_NEAR(after.scale, (2.0f * bound) * (1.0f + 2.0f / 255.0f) / 255.0f, 1e-5f);
  const Params out = ParamsOf(&narrowed, "s_out");
  EXPECT_FLOAT_EQ(out.scale, 1.0f / 256.0f);
  EXPECT_EQ(out.zero_point, -128);
  // What the model delivers: the quantized Sigmoid of the quantized input, against Sigmoid(x).
  auto quantized_sigmoid = [&out](float v) { return out.Qdq(Sigmoid(v)); };
  auto exact = [](float v) { return Sigmoid(v); };
  double mse_before = 0.0, mse_after = 0.0, worst_after = 0.0;
  const int n = 20001;
  for (int i = 0; i < n; ++i) {
    const float x = -20.0f + 40.0f * static_cast<float>(i) / static_cast<float>(n - 1);
    const double eb = quantized_sigmoid(before.Qdq(x)) - exact(x);
    const double ea = quantized_sigmoid(after.Qdq(x)) - exact(x);
    mse_before += eb * eb / n;
    mse_after += ea * ea / n;
    worst_after = std::max(worst_after, std::fabs(ea));
  }
  EXPECT_LT(mse_after, 0.75 * mse_before);  // most of what is left is the output's rounding
  // Output rounding (1/512), plus the input's (slope 1/4 times half a step), plus clipping.
  EXPECT_LE(worst_after, 1.0 / 512.0 + 0.25 * after.scale / 2.0 + 1.0 / 65536.0);
  EXPECT_EQ(narrowed.result.saturation.narrowed_tensors, 2);
}

TEST(SaturationRanges, SigmoidWithAFloatOutputClipsBelowTwoToTheMinus16) {
  // add-only: the Sigmoid's output stays float.
  const std::string target = ::testing::TempDir() + "qalign_saturation_add_only.json";
  ASSERT_TRUE(testing::WriteAddOnlyTarget(target));
  auto graph = GateGraph();
  Outcome minmax, narrowed;
  RunPipeline(*graph, target, kGateRanges, false, &minmax);
  RunPipeline(*graph, target, kGateRanges, true, &narrowed);
  const Params before = ParamsOf(&minmax, "b_out");
  const Params after = ParamsOf(&narrowed, "b_out");
  const float bound = std::log(65535.0f);  // ln(2^16 - 1)
  EXPECT_NEAR(after.scale, (2.0f * bound) * (1.0f + 2.0f / 255.0f) / 255.0f, 1e-5f);
  const auto [worst_before, mse_before] = Errors(before, -20.0f, 20.0f, Sigmoid);
  const auto [worst_after, mse_after] = Errors(after, -20.0f, 20.0f, Sigmoid);
  EXPECT_LT(mse_after, mse_before);
  EXPECT_LT(worst_after, worst_before);
  // Clipping alone: the Sigmoid of the grid's top against Sigmoid(20) differs by < 2^-16.
  EXPECT_LT(std::fabs(Sigmoid(after.Qdq(20.0f)) - Sigmoid(20.0f)), 1.0 / 65536.0);
}

TEST(SaturationRanges, ReluAndHardSwishNarrowOnlyTheirFlatEnd) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 16});
  Variable* zero = b.Param("zero", Tensor::FromVector<float>({1}, {0.0f}));
  b.Output(b.Op("Relu", "r", {b.Op("Add", "a", {x, zero})}));
  b.Output(b.Op("HardSwish", "h", {b.Op("Add", "b", {x, zero})}));
  auto graph = b.Build();
  Outcome out;
  RunPipeline(*graph, "tflite-int8",
      {{"x", {-10.0f, 10.0f}}, {"a_out", {-5.0f, 10.0f}}, {"b_out", {-10.0f, 10.0f}},
       {"r_out", {0.0f, 10.0f}}, {"h_out", {-0.375f, 10.0f}}},
      true, &out);
  // Relu: [0, 10] exactly (0 is always on the grid, no margin).
  const Params relu = ParamsOf(&out, "a_out");
  EXPECT_NEAR(relu.scale, 10.0f / 255.0f, 1e-6f);
  EXPECT_EQ(relu.zero_point, -128);
  // HardSwish: [-3 - step, 10], step = 13 / 255 before the margin.
  const Params hswish = ParamsOf(&out, "b_out");
  EXPECT_NEAR(hswish.scale, (13.0f + 13.0f / 255.0f) / 255.0f, 1e-5f);
  EXPECT_EQ(out.result.saturation.narrowed_tensors, 2);
}

TEST(SaturationRanges, TensorWithANonSaturatingConsumerKeepsItsRange) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 16});
  Variable* zero = b.Param("zero", Tensor::FromVector<float>({1}, {0.0f}));
  Variable* t = b.Op("Add", "a", {x, zero});
  b.Output(b.Op("HardSigmoid", "hs", {t}));
  b.Output(b.Op("Mul", "m", {t, t}));
  // A graph output read by a Sigmoid keeps its range too.
  Variable* u = b.Op("Add", "b", {x, zero});
  b.Output(u);
  b.Output(b.Op("Sigmoid", "s", {u}));
  auto graph = b.Build();
  Outcome out;
  RunPipeline(*graph, "tflite-int8",
      {{"x", {-20.0f, 20.0f}}, {"a_out", {-20.0f, 20.0f}}, {"b_out", {-20.0f, 20.0f}},
       {"hs_out", {0.0f, 1.0f}}, {"m_out", {0.0f, 400.0f}}, {"s_out", {0.0f, 1.0f}}},
      true, &out);
  EXPECT_EQ(out.result.saturation.narrowed_tensors, 0);
  EXPECT_NEAR(ParamsOf(&out, "a_out").scale, 40.0f / 255.0f, 1e-6f);
  EXPECT_NEAR(ParamsOf(&out, "b_out").scale, 40.0f / 255.0f, 1e-6f);
}

TEST(SaturationRanges, TensorOfARuleGroupKeepsItsRangeAndTheRule) {
  // Concat's inputs and output share params on tflite-int8: its output, read only by a Sigmoid,
  // stays in the group with the group's range, so the rule holds exactly as without narrowing.
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 16});
  Variable* zero = b.Param("zero", Tensor::FromVector<float>({1}, {0.0f}));
  Variable* p = b.Op("Add", "p", {x, zero});
  Variable* q = b.Op("Add", "q", {x, zero});
  Variable* c = b.Op("Concat", "c", {p, q}, {{"axis", Attribute::Int(1)}});
  b.Output(b.Op("Sigmoid", "s", {c}));
  b.Output(b.Op("Mul", "m", {p, p}));
  auto graph = b.Build();
  const std::vector<std::pair<std::string, std::pair<float, float>>> ranges = {
      {"x", {-20.0f, 20.0f}}, {"p_out", {-20.0f, 20.0f}}, {"q_out", {-20.0f, 20.0f}},
      {"c_out", {-20.0f, 20.0f}}, {"s_out", {0.0f, 1.0f}}, {"m_out", {0.0f, 400.0f}}};
  Outcome on, off;
  RunPipeline(*graph, "tflite-int8", ranges, true, &on);
  RunPipeline(*graph, "tflite-int8", ranges, false, &off);
  EXPECT_EQ(on.result.saturation.narrowed_tensors, 0);
  for (const char* tensor : {"p_out", "q_out", "c_out"}) {
    EXPECT_EQ(ParamsOf(&on, tensor).scale, ParamsOf(&off, tensor).scale) << tensor;
    EXPECT_EQ(ParamsOf(&on, tensor).zero_point, ParamsOf(&off, tensor).zero_point) << tensor;
  }
  EXPECT_EQ(on.result.alignment.counters.groups, off.result.alignment.counters.groups);
}

TEST(SaturationRanges, IntervalsInClosedForm) {
  GraphBuilder b(13);
  Variable* x = b.Input("x", {1, 4});
  Variable* lo = b.Param("lo", Tensor::FromVector<float>({}, {-1.0f}));
  Variable* hi = b.Param("hi", Tensor::FromVector<float>({}, {6.0f}));
  b.Output(b.Op("Clip", "clip", {x, lo, hi}));
  b.Output(b.Op("Clip", "clip_open", {x, lo}));
  b.Output(b.Op("Clip", "clip_dynamic", {x, x}));
  b.Output(b.Op("HardSigmoid", "neg", {x}, {{"alpha", Attribute::Float(-0.5f)}}));
  b.Output(b.Op("Tanh", "tanh", {x}));
  b.Output(b.Op("Exp", "exp", {x}));
  auto graph = b.Build();
  auto op = [&graph](const std::string& name) -> const Operation& {
    for (const Operation* o : graph->operations()) {
      if (o->name() == name) return *o;
    }
    throw std::runtime_error("no op " + name);
  };
  float a = 0.0f, c = 0.0f;
  ASSERT_TRUE(SaturationInterval(op("clip"), 8, &a, &c));
  EXPECT_EQ(a, -1.0f);
  EXPECT_EQ(c, 6.0f);
  ASSERT_TRUE(SaturationInterval(op("clip_open"), 8, &a, &c));
  EXPECT_EQ(a, -1.0f);
  EXPECT_TRUE(std::isinf(c));
  EXPECT_FALSE(SaturationInterval(op("clip_dynamic"), 8, &a, &c));
  // alpha -0.5, beta 0.5: 1 at x = -1, 0 at x = 1.
  ASSERT_TRUE(SaturationInterval(op("neg"), 8, &a, &c));
  EXPECT_FLOAT_EQ(a, -1.0f);
  EXPECT_FLOAT_EQ(c, 1.0f);
  ASSERT_TRUE(SaturationInterval(op("tanh"), 8, &a, &c));
  EXPECT_NEAR(c, 0.5 * std::log(65535.0), 1e-5);
  EXPECT_NEAR(std::tanh(c), 1.0 - 2.0 / 65536.0, 1e-6);  // within 2^-15 of its limit
  EXPECT_FALSE(SaturationInterval(op("exp"), 8, &a, &c));
}

}  // namespace
}  // namespace qalign
