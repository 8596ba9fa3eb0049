// The exported QDQ model in ONNX Runtime equals qalign's fake-quant simulation within one
// quantization step of each output tensor, for small graphs under three targets, with and without
// requantize edges. ONNX Runtime runs with graph optimizations disabled, i.e. the QDQ graph as
// written (DQ -> float op -> Q); its fused integer kernels are a deployment detail that differs
// (x86 u8s8 kernels saturate, double Q/DQ pairs are merged), measured in tests/e2e.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <tuple>

#include "export/qdq_export.h"
#include "export/qdq_fixture.h"
#include "testing/ort_runner.h"

namespace qalign {
namespace {

// Writes `q`'s QDQ model to `path` and runs it in ONNX Runtime (graph optimizations disabled) and
// in qalign's fake-quant simulation on a random input of each seed: every output agrees within
// one quantization step of its grid, and nearly every value bit for bit (both sides quantize to
// the same grid).
void ExpectOrtMatchesSimulation(const testing::QuantizedModel& q, const std::string& path,
                                std::initializer_list<uint32_t> seeds) {
  ::setenv("QALIGN_ORT_OPTIMIZATION", "disabled", 1);
  ASSERT_TRUE(SaveQdqModel(*q.graph, q.plan, path, "").ok());
  auto sim = FakeQuantSimulator::Create(*q.graph, q.plan);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  for (uint32_t seed : seeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto inputs = testing::RandomInput(*q.graph, seed);
    auto ort = testing::RunInOnnxRuntime(path, inputs);
    ASSERT_TRUE(ort.ok()) << ort.status().ToString();
    auto ours = (*sim)->Run(inputs);
    ASSERT_TRUE(ours.ok()) << ours.status().ToString();
    for (const Variable* out : q.graph->outputs()) {
      const int p = q.plan.ProducerPoint(out->name());
      ASSERT_GE(p, 0) << out->name() << " is quantized under every target here";
      const float step = q.plan.activations[static_cast<size_t>(p)].params.scale[0];
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
      EXPECT_GE(exact, static_cast<int64_t>(a.size() * 0.98)) << out->name();
    }
  }
}

class QdqOrtTest : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(QdqOrtTest, OnnxRuntimeMatchesSimulation) {
  const auto& [target, force_overlap] = GetParam();
  auto q = testing::QuantizeForTest(testing::SmallConvGraph(), target, force_overlap);
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->result.violations.empty()) << q->result.violations.front().message;
  const std::string path = ::testing::TempDir() + "/qdq_ort_" + target +
                           (force_overlap ? "_overlap" : "_requant") + ".onnx";
  ExpectOrtMatchesSimulation(*q, path, {101u, 202u});
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

// 16-bit activations: qnn-u8 with conv2 (and so its groups: x, conv2_out, and with force_overlap
// relu1_out and concat_out) at 16 bits, exported as com.microsoft QuantizeLinear / DequantizeLinear with uint16 zero points
// at opset 13. ONNX Runtime's contrib kernels give the simulation's numbers within one step of
// each output's grid, nearly all bit for bit.
TEST(QdqOrt16BitTest, OnnxRuntimeRunsMicrosoft16BitQdqAsSimulated) {
  for (bool force_overlap : {true, false}) {
    SCOPED_TRACE(force_overlap ? "force_overlap" : "no force_overlap");
    auto q = testing::QuantizeForTest(testing::SmallConvGraph(), "qnn-u8", force_overlap,
                                      "random:4?seed=7&low=-1&high=1", {"conv2"});
    ASSERT_NE(q, nullptr);
    ASSERT_TRUE(q->result.violations.empty()) << q->result.violations.front().message;
    // conv2's output is 16-bit either way; without force_overlap the Concat and the Add read it
    // through requantize edges (to their own 8-bit groups), with it they are 16-bit too.
    const int conv2 = q->plan.ProducerPoint("conv2_out");
    ASSERT_GE(conv2, 0);
    ASSERT_EQ(q->plan.activations[static_cast<size_t>(conv2)].params.dtype, DataType::kUint16);
    const int concat = q->plan.ProducerPoint("concat_out");
    ASSERT_GE(concat, 0);
    EXPECT_EQ(q->plan.activations[static_cast<size_t>(concat)].params.dtype,
              force_overlap ? DataType::kUint16 : DataType::kUint8);
    if (!force_overlap) {
      EXPECT_GT(q->plan.requantizes(), 0);
    }
    const std::string path = ::testing::TempDir() + "/qdq_ort_16bit_" +
                             (force_overlap ? "overlap" : "requant") + ".onnx";
    ExpectOrtMatchesSimulation(*q, path, {303u, 404u});
  }
}

}  // namespace
}  // namespace qalign
