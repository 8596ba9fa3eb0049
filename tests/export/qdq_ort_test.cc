// The exported QDQ model in ONNX Runtime equals qalign's fake-quant simulation within one
// quantization step of each output tensor, for small graphs under three targets, with and without
// requantize edges. ONNX Runtime runs with graph optimizations disabled, i.e. the QDQ graph as
// written (DQ -> float op -> Q); its fused integer kernels are a deployment detail that differs
// (x86 u8s8 kernels saturate, double Q/DQ pairs are merged), measured in tests/e2e.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <tuple>

#include "export/qdq_export.h"
#include "export/qdq_fixture.h"
#include "testing/ort_runner.h"

namespace qalign {
namespace {

class QdqOrtTest : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(QdqOrtTest, OnnxRuntimeMatchesSimulation) {
  const auto& [target, force_overlap] = GetParam();
  ::setenv("QALIGN_ORT_OPTIMIZATION", "disabled", 1);
  auto q = testing::QuantizeForTest(testing::SmallConvGraph(), target, force_overlap);
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->result.violations.empty()) << q->result.violations.front().message;
  const std::string path = ::testing::TempDir() + "/qdq_ort_" + target +
                           (force_overlap ? "_overlap" : "_requant") + ".onnx";
  ASSERT_TRUE(SaveQdqModel(*q->graph, q->plan, path, "").ok());
  auto sim = FakeQuantSimulator::Create(*q->graph, q->plan);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  for (uint32_t seed : {101u, 202u}) {
    auto inputs = testing::RandomInput(*q->graph, seed);
    auto ort = testing::RunInOnnxRuntime(path, inputs);
    ASSERT_TRUE(ort.ok()) << ort.status().ToString();
    auto ours = (*sim)->Run(inputs);
    ASSERT_TRUE(ours.ok()) << ours.status().ToString();
    for (const Variable* out : q->graph->outputs()) {
      const int p = q->plan.ProducerPoint(out->name());
      ASSERT_GE(p, 0) << out->name() << " is quantized under every target here";
      const float step = q->plan.activations[static_cast<size_t>(p)].params.scale[0];
      const auto a = ort->at(out->name()).values<float>();
      const auto b = ours->at(out->name()).values<float>();
      ASSERT_EQ(a.size(), b.size());
      double max_diff = 0;
      int64_t exact = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        max_diff = std::max(max_diff, static_cast<double>(std::fabs(a[i] - b[i])));
        exact += a[i] == b[i];
      }
      EXPECT_LE(max_diff, step * 1.0001) << out->name() << " step " << step;
      // Nearly every value is bit-identical: both sides quantize to the same grid.
      EXPECT_GE(exact, static_cast<int64_t>(a.size() * 0.98)) << out->name();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, QdqOrtTest,
                         ::testing::Combine(::testing::Values("tflite-int8", "ort-qdq-u8s8", "qnn-u8"),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           std::string name = std::get<0>(info.param) +
                                              (std::get<1>(info.param) ? "_overlap" : "_requantize");
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace qalign
