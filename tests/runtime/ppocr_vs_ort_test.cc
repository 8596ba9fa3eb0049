// The three PP-OCR models in qalign's executor against ONNX Runtime on seeded random inputs.
// Error norm: max |qalign - ort| / max |ort| over each output, required <= 1e-4.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "onnx/importer.h"
#include "runtime/executor.h"
#include "testing/ort_runner.h"

namespace qalign {
namespace {

struct ModelCase {
  const char* file;
  std::vector<int64_t> shape;
};

double RelativeMaxError(const Tensor& got, const Tensor& want) {
  double max_diff = 0, max_ref = 0;
  const float* a = got.data<float>();
  const float* b = want.data<float>();
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::abs(a[i] - b[i])));
    max_ref = std::max(max_ref, static_cast<double>(std::abs(b[i])));
  }
  return max_ref > 0 ? max_diff / max_ref : max_diff;
}

class PpocrVsOrtTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(PpocrVsOrtTest, MatchesOnnxRuntime) {
  const ModelCase& c = GetParam();
  const std::string path = std::string(QALIGN_MODEL_DIR) + "/" + c.file;
  ImportOptions options;
  auto probe = ImportOnnxModel(path);
  ASSERT_TRUE(probe.ok()) << probe.status().ToString() << " (run scripts/fetch_models.sh)";
  ASSERT_EQ((*probe)->inputs().size(), 1u);
  const std::string input_name = (*probe)->inputs()[0]->name();
  options.input_shapes[input_name] = c.shape;
  auto graph = ImportOnnxModel(path, options);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();

  Tensor input(DataType::kFloat, c.shape);
  std::mt19937 rng(20261129);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& x : input.values<float>()) x = dist(rng);

  auto ex = Executor::Create(**graph);
  ASSERT_TRUE(ex.ok()) << ex.status().ToString();
  auto ours = (*ex)->Run({{input_name, input}});
  ASSERT_TRUE(ours.ok()) << ours.status().ToString();
  auto theirs = testing::RunInOnnxRuntime(path, {{input_name, input}});
  ASSERT_TRUE(theirs.ok()) << theirs.status().ToString();

  for (const Variable* out : (*graph)->outputs()) {
    ASSERT_TRUE(ours->count(out->name()) && theirs->count(out->name())) << out->name();
    const Tensor& a = ours->at(out->name());
    const Tensor& b = theirs->at(out->name());
    ASSERT_EQ(a.shape(), b.shape()) << out->name();
    ASSERT_EQ(a.dtype(), DataType::kFloat);
    const double error = RelativeMaxError(a, b);
    std::printf("%s output '%s' %s: max|qalign-ort|/max|ort| = %.3g, peak live bytes %lld\n",
                c.file, out->name().c_str(), ShapeToString(a.shape()).c_str(), error,
                static_cast<long long>((*ex)->peak_bytes()));
    EXPECT_LE(error, 1e-4) << c.file << " output " << out->name();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, PpocrVsOrtTest,
    ::testing::Values(ModelCase{"ch_PP-OCRv4_det_infer.onnx", {1, 3, 640, 640}},
                      ModelCase{"ch_PP-OCRv4_rec_infer.onnx", {1, 3, 48, 320}},
                      ModelCase{"ch_ppocr_mobile_v2.0_cls_infer.onnx", {1, 3, 48, 192}}),
    [](const ::testing::TestParamInfo<ModelCase>& info) {
      return std::string(info.index == 0 ? "det" : info.index == 1 ? "rec" : "cls");
    });

}  // namespace
}  // namespace qalign
