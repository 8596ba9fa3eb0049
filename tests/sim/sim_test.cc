// Fake-quant simulation: producer points, requantize edges seen only by their consumer, quantized
// parameters, the QDQ kernels and the SNR / cosine metrics.
#include <gtest/gtest.h>

#include <cmath>

#include "export/alignment_report.h"
#include "export/qdq_fixture.h"
#include "runtime/executor.h"
#include "sim/fake_quant.h"
#include "sim/metrics.h"
#include "sim/qdq_kernels.h"

namespace qalign {
namespace {

using testing::GraphBuilder;

QdqParams PerTensor(float scale, int64_t zp, DataType dtype = DataType::kUint8) {
  QdqParams p;
  p.scale = {scale};
  p.zero_point = {zp};
  p.dtype = dtype;
  p.quant_min = dtype == DataType::kUint8 ? 0 : -128;
  p.quant_max = dtype == DataType::kUint8 ? 255 : 127;
  return p;
}

std::unique_ptr<Graph> Typed(GraphBuilder& b) { return testing::WithInferredShapes(b); }

TEST(SimTest, RequantizeIsSeenOnlyByItsConsumer) {
  // t = Relu(x) read by two Identity ops; t quantized once at its producer (scale 0.1), and the
  // edge to `b` requantized with scale 0.25.
  GraphBuilder builder;
  Variable* x = builder.Input("x", {1, 64});
  Variable* t = builder.Op("Relu", "relu", {x});
  builder.Output(builder.Op("Identity", "a", {t}));
  builder.Output(builder.Op("Identity", "b", {t}));
  auto graph = Typed(builder);
  QuantPlan plan;
  ActivationPoint producer;
  producer.tensor = graph->FindVariable("relu_out");
  producer.params = PerTensor(0.1f, 0);
  producer.producer_side = true;
  producer.readers = {{graph->FindOperation("a"), 0}};
  ActivationPoint requant;
  requant.tensor = producer.tensor;
  requant.params = PerTensor(0.25f, 0);
  requant.requantize = true;
  requant.readers = {{graph->FindOperation("b"), 0}};
  plan.activations = {producer, requant};

  auto sim = FakeQuantSimulator::Create(*graph, plan);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  EXPECT_EQ((*sim)->inserted_edges(), 1);
  auto inputs = testing::RandomInput(*graph, 5);
  for (float& v : inputs["x"].values<float>()) v *= 3.0f;
  auto out = (*sim)->Run(inputs);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const auto xs = inputs["x"].values<float>();
  const auto a = out->at("a_out").values<float>();
  const auto b = out->at("b_out").values<float>();
  for (size_t i = 0; i < xs.size(); ++i) {
    const float relu = std::max(xs[i], 0.0f);
    const float first = FakeQuantizeValue(relu, 0.1f, 0, 0, 255);
    EXPECT_EQ(a[i], first) << i;
    EXPECT_EQ(b[i], FakeQuantizeValue(first, 0.25f, 0, 0, 255)) << i;
  }
}

TEST(SimTest, ParametersAreQuantizedPerChannel) {
  GraphBuilder builder;
  Variable* x = builder.Input("x", {2, 3});
  Variable* w = builder.RandomParam("w", {2, 3}, 9);
  builder.Output(builder.Op("Mul", "mul", {x, w}));
  auto graph = Typed(builder);
  QuantPlan plan;
  ParameterPoint p;
  p.tensor = graph->FindVariable("w");
  p.params.scale = {0.05f, 0.01f};
  p.params.zero_point = {0, 0};
  p.params.axis = 0;
  p.params.dtype = DataType::kInt8;
  p.params.quant_min = -127;
  p.params.quant_max = 127;
  p.readers = {{graph->FindOperation("mul"), 1}};
  plan.parameters = {p};
  auto sim = FakeQuantSimulator::Create(*graph, plan);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  std::map<std::string, Tensor> inputs;
  inputs["x"] = Tensor::FromVector<float>({2, 3}, {1, 1, 1, 1, 1, 1});
  auto out = (*sim)->Run(inputs);
  ASSERT_TRUE(out.ok());
  const auto wv = graph->FindVariable("w")->data()->values<float>();
  const auto y = out->at("mul_out").values<float>();
  for (size_t i = 0; i < 6; ++i) {
    const float s = i < 3 ? 0.05f : 0.01f;
    EXPECT_EQ(y[i], static_cast<float>(std::nearbyint(wv[i] / s)) * s) << i;
  }
  // The original graph keeps its FP32 weights.
  EXPECT_EQ(graph->FindVariable("w")->data()->values<float>()[0], wv[0]);
}

TEST(SimTest, QdqKernelsMatchTheSharedArithmetic) {
  GraphBuilder builder;
  Variable* x = builder.Input("x", {2, 4});
  Variable* scale = builder.Param("s", Tensor::FromVector<float>({2}, {0.1f, 0.03f}));
  Variable* zp = builder.Param("z", Tensor::FromVector<int8_t>({2}, {3, -5}));
  Variable* q = builder.Op("QuantizeLinear", "q", {x, scale, zp}, {{"axis", Attribute::Int(0)}});
  q->set_dtype(DataType::kInt8);
  Variable* dq = builder.Op("DequantizeLinear", "dq", {q, scale, zp}, {{"axis", Attribute::Int(0)}});
  dq->set_dtype(DataType::kFloat);
  builder.Output(dq);
  auto graph = builder.Build();
  ExecutorOptions options;
  options.registry = &SimKernelRegistry();
  options.num_threads = 1;
  auto exec = Executor::Create(*graph, options);
  ASSERT_TRUE(exec.ok()) << exec.status().ToString();
  std::map<std::string, Tensor> inputs;
  inputs["x"] = Tensor::FromVector<float>({2, 4}, {0.05f, 0.15f, -20.f, 20.f, 0.045f, 0.015f, -9.f, 9.f});
  auto out = (*exec)->Run(inputs);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const auto in = inputs["x"].values<float>();
  const auto y = out->at("dq_out").values<float>();
  for (size_t i = 0; i < 8; ++i) {
    const float s = i < 4 ? 0.1f : 0.03f;
    const int64_t z = i < 4 ? 3 : -5;
    EXPECT_EQ(y[i], FakeQuantizeValue(in[i], s, z, -128, 127)) << i;
  }
  EXPECT_EQ(y[2], (-128 - 3) * 0.1f);  // saturated
}

TEST(SimTest, SimulatedOutputsLieOnTheirGrid) {
  auto q = testing::QuantizeForTest(testing::SmallConvGraph(), "ort-qdq-u8s8", std::nullopt);
  ASSERT_NE(q, nullptr);
  auto sim = FakeQuantSimulator::Create(*q->graph, q->plan);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  auto out = (*sim)->Run(testing::RandomInput(*q->graph, 77));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  for (const Variable* v : q->graph->outputs()) {
    const int p = q->plan.ProducerPoint(v->name());
    ASSERT_GE(p, 0);
    const QdqParams& params = q->plan.activations[static_cast<size_t>(p)].params;
    for (float y : out->at(v->name()).values<float>()) {
      const double steps = y / params.scale[0] + params.zero_point[0];
      EXPECT_NEAR(steps, std::round(steps), 1e-3);
      EXPECT_GE(std::round(steps), params.quant_min);
      EXPECT_LE(std::round(steps), params.quant_max);
    }
  }
}

// A dead branch (a pruned Conv: zero weights, negative bias, then Relu) gives GlobalAveragePool an
// all-zero calibration range, so its scale is tiny (2^-23) and the Gemm's int32 bias scale
// input_scale * weight_scale is too small for biases of a few units. Clamped, they would collapse
// the output (SNR 0 dB); the weight scales are raised instead so the biases fit, and the report's
// notes say so.
TEST(SimTest, BiasAfterADeadInputStillFitsInt32) {
  for (const char* target : {"ort-qdq-u8s8", "tflite-int8", "ppq-default"}) {
    SCOPED_TRACE(target);
    GraphBuilder b;
    Variable* x = b.Input("x", {1, 3, 4, 4});
    Variable* dead = b.Op(
        "Conv", "pruned_conv",
        {x, b.Param("w_zero", Tensor(DataType::kFloat, {4, 3, 1, 1})),
         b.Param("b_negative", Tensor::FromVector<float>({4}, {-1.0f, -1.0f, -1.0f, -1.0f}))});
    Variable* relu = b.Op("Relu", "relu", {dead});
    Variable* pooled = b.Op("GlobalAveragePool", "gap", {relu});
    Variable* flat = b.Op("Flatten", "flatten", {pooled});
    Variable* y = b.Op("Gemm", "fc",
                       {flat, b.RandomParam("fc_w", {4, 3}, 5),
                        b.Param("fc_b", Tensor::FromVector<float>({3}, {5.0f, -3.0f, 8.0f}))});
    b.Output(y);
    auto q = testing::QuantizeForTest(testing::WithInferredShapes(b), target, std::nullopt);
    ASSERT_NE(q, nullptr);
    EXPECT_GT(q->result.derived.raised_weight_channels, 0);
    ASSERT_FALSE(q->result.derived.notes.empty());
    EXPECT_NE(q->result.derived.notes.front().find("fc_b"), std::string::npos)
        << q->result.derived.notes.front();
    const std::string report = AlignmentReportJson(target, q->result.alignment, q->table,
                                                   q->result.violations, &q->result.derived);
    EXPECT_NE(report.find("\"bias_fit\""), std::string::npos);
    EXPECT_NE(report.find("bias 'fc_b'"), std::string::npos) << report;
    auto sim = FakeQuantSimulator::Create(*q->graph, q->plan);
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    auto inputs = testing::RandomInput(*q->graph, 3);
    auto out = (*sim)->Run(inputs);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    // FP32: the pooled input is 0, so the output is the bias.
    const auto values = out->at(y->name()).values<float>();
    ASSERT_EQ(values.size(), 3u);
    EXPECT_NEAR(values[0], 5.0f, 0.1f);
    EXPECT_NEAR(values[1], -3.0f, 0.1f);
    EXPECT_NEAR(values[2], 8.0f, 0.1f);
  }
}

TEST(MetricsTest, SnrAndCosine) {
  ErrorAccumulator e;
  Tensor ref = Tensor::FromVector<float>({4}, {1, -1, 2, -2});
  Tensor x = Tensor::FromVector<float>({4}, {1.1f, -0.9f, 2.1f, -1.9f});
  ASSERT_TRUE(e.Add(ref, x, "t").ok());
  // sum ref^2 = 10, sum err^2 = 0.04: 10 log10(250) = 23.98 dB.
  EXPECT_NEAR(e.SnrDb(), 10 * std::log10(10 / 0.04), 1e-4);
  EXPECT_GT(e.Cosine(), 0.99);
  ErrorAccumulator same;
  ASSERT_TRUE(same.Add(ref, ref, "t").ok());
  EXPECT_TRUE(std::isinf(same.SnrDb()));
  EXPECT_NEAR(same.Cosine(), 1.0, 1e-12);
  ErrorAccumulator scaled;
  Tensor twice = Tensor::FromVector<float>({4}, {2, -2, 4, -4});
  ASSERT_TRUE(scaled.Add(ref, twice, "t").ok());
  EXPECT_NEAR(scaled.Cosine(), 1.0, 1e-12);
  EXPECT_NEAR(scaled.SnrDb(), 0.0, 1e-9);
  EXPECT_FALSE(scaled.Add(ref, Tensor::FromVector<float>({2}, {1, 2}), "t").ok());
}

}  // namespace
}  // namespace qalign
