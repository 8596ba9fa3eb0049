// qalign fix's results run in ONNX Runtime: the repaired built model stays as close to FP32 as
// qalign's own aligned export, a requantize pair fix adds runs, and a foreign uint8 model's
// repaired Concat passes both inputs' values through.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "check_fix_fixture.h"
#include "core/file_util.h"
#include "qdq/qdq_fix.h"
#include "runtime/executor.h"
#include "sim/metrics.h"
#include "testing/ort_runner.h"

namespace qalign {
namespace {

using testing::ForeignModel;
using testing::QdqCheckFixTest;
using testing::RescalePair;

TEST_F(QdqCheckFixTest, FixedModelRunsInOnnxRuntimeAsCloseToFp32AsTheAlignedOne) {
  auto view = Import(tampered_);
  ASSERT_NE(view, nullptr);
  auto fixed = FixQdqModel(*view, {});
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  // ONNX Runtime runs the repaired model; its outputs stay close to FP32.
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "/qalign_fixed_pool_concat.onnx";
  ASSERT_TRUE(SaveFixedModel(fixed->model, path, "").ok());
  const std::string aligned_path = dir + "/qalign_aligned_pool_concat.onnx";
  {
    std::string bytes;
    ASSERT_TRUE(aligned_.SerializeToString(&bytes));
    ASSERT_TRUE(WriteFileAtomically(aligned_path, bytes).ok());
  }
  auto exec = Executor::Create(*q_->graph);
  ASSERT_TRUE(exec.ok());
  ErrorAccumulator fixed_err, aligned_err;
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    auto inputs = testing::RandomInput(*q_->graph, seed);
    auto ref = (*exec)->Run(inputs);
    ASSERT_TRUE(ref.ok());
    auto got = testing::RunInOnnxRuntime(path, inputs);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    auto base = testing::RunInOnnxRuntime(aligned_path, inputs);
    ASSERT_TRUE(base.ok()) << base.status().ToString();
    for (const char* out : {"conv3_out", "transpose_out"}) {
      ASSERT_TRUE(fixed_err.Add(ref->at(out), got->at(out), out).ok());
      ASSERT_TRUE(aligned_err.Add(ref->at(out), base->at(out), out).ok());
    }
  }
  std::printf("[ check/fix ] built graph: SNR vs FP32 in ONNX Runtime: fixed %.2f dB, aligned by "
              "qalign %.2f dB\n", fixed_err.SnrDb(), aligned_err.SnrDb());
  EXPECT_GT(fixed_err.SnrDb(), 20.0);
  EXPECT_GT(fixed_err.SnrDb(), aligned_err.SnrDb() - 3.0);
}

TEST_F(QdqCheckFixTest, AddedRequantizePairRunsInOnnxRuntime) {
  onnx::ModelProto model = aligned_;
  RescalePair(&model, "transpose", 1.5f);
  auto view = Import(model);
  ASSERT_NE(view, nullptr);
  QdqFixOptions options;
  options.alignment.force_overlap = false;
  auto fixed = FixQdqModel(*view, options);
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  const std::string path = ::testing::TempDir() + "/qalign_fixed_requant.onnx";
  ASSERT_TRUE(SaveFixedModel(fixed->model, path, "").ok());
  auto got = testing::RunInOnnxRuntime(path, testing::RandomInput(*q_->graph, 5));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->count("transpose_out"), 1u);
}

TEST(QdqForeignModelTest, FixedUint8ModelRunsInOnnxRuntime) {
  onnx::ModelProto model = ForeignModel();
  auto profile = LoadTargetProfile("qnn-u8");
  ASSERT_TRUE(profile.ok());
  auto view = ImportQdqModel(model, ".", *profile, {}, "foreign.onnx");
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  auto fixed = FixQdqModel(**view, {});
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  const std::string path = ::testing::TempDir() + "/qalign_foreign_fixed.onnx";
  ASSERT_TRUE(SaveFixedModel(fixed->model, path, "").ok());
  std::map<std::string, Tensor> inputs;
  Tensor x(DataType::kFloat, {1, 2, 4, 4}), y(DataType::kFloat, {1, 2, 2, 2});
  for (size_t i = 0; i < 32; ++i) x.values<float>()[i] = 0.1f * static_cast<float>(i % 7);
  for (size_t i = 0; i < 8; ++i) y.values<float>()[i] = -2.0f + 0.6f * static_cast<float>(i);
  inputs["x"] = x;
  inputs["y"] = y;
  auto got = testing::RunInOnnxRuntime(path, inputs);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  // The Concat output now covers both inputs' ranges: y's values come through within a step.
  const auto out = got->at("out").values<float>();
  ASSERT_EQ(out.size(), 16u);
  for (size_t i = 0; i < 8; ++i) {
    const float want = std::clamp(y.values<float>()[i], -128 * 0.05f, 127 * 0.05f);
    EXPECT_NEAR(out[8 + i], want, 0.08f) << i;
  }
}

}  // namespace
}  // namespace qalign
