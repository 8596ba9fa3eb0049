// The three PP-OCR models in qalign's executor against ONNX Runtime on seeded random inputs.
// Error norm: max |qalign - ort| / max |ort| over each output, required <= 1e-4. Inputs are
// seeded synthetic text images (see SyntheticTextImage).
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

// A seeded stand-in for a document photo, normalized as PP-OCR does ((v / 255 - mean) / std):
// a light, slightly noisy page with dark stroke glyphs in text lines. Uniform noise alone makes
// the detector answer ~0 everywhere (max probability ~1e-4), which would measure nothing but
// the two runtimes' sigmoid rounding; strokes make it answer ~1 on the lines.
Tensor SyntheticTextImage(const std::vector<int64_t>& shape, uint32_t seed) {
  const int64_t channels = shape[1], height = shape[2], width = shape[3];
  std::vector<float> gray(height * width);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> noise(-12.0f, 12.0f);
  for (float& v : gray) v = 235.0f + noise(rng);
  const int64_t glyph_h = std::max<int64_t>(12, height / 16), glyph_w = glyph_h * 3 / 4;
  std::uniform_int_distribution<int> coin(0, 3);
  for (int64_t top = glyph_h / 2; top + glyph_h < height; top += glyph_h * 2) {
    int64_t left = glyph_w / 2 + coin(rng) * glyph_w;
    const int64_t line_end = width - glyph_w / 2 - coin(rng) * glyph_w * 2;
    for (; left + glyph_w < line_end; left += glyph_w + glyph_w / 4) {
      // Each glyph: a few horizontal and vertical strokes, 2-3 px thick.
      for (int s = 0; s < 4; ++s) {
        const bool horizontal = coin(rng) < 2;
        const int64_t thick = 2 + coin(rng) % 2;
        const int64_t pos = (horizontal ? glyph_h : glyph_w) * (1 + coin(rng)) / 5;
        for (int64_t y = 0; y < glyph_h; ++y)
          for (int64_t x = 0; x < glyph_w; ++x) {
            const int64_t along = horizontal ? y : x;
            if (along >= pos && along < pos + thick) gray[(top + y) * width + left + x] = 25.0f;
          }
      }
    }
  }
  const float mean[3] = {0.485f, 0.456f, 0.406f}, stddev[3] = {0.229f, 0.224f, 0.225f};
  Tensor t(DataType::kFloat, shape);
  float* p = t.data<float>();
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < height * width; ++i)
      p[c * height * width + i] = (gray[i] / 255.0f - mean[c % 3]) / stddev[c % 3];
  return t;
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

  const Tensor input = SyntheticTextImage(c.shape, 20261129);

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
    double max_ref = 0;
    for (float v : b.values<float>()) max_ref = std::max(max_ref, static_cast<double>(std::abs(v)));
    std::printf("%s output '%s' %s: max|qalign-ort|/max|ort| = %.3g (max|ort| = %.3g), "
                "peak live bytes %lld\n",
                c.file, out->name().c_str(), ShapeToString(a.shape()).c_str(), error, max_ref,
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
