// Golden files for the alignment pass on the real PP-OCRv4 models (det, rec, cls) x every
// shipped target, with seeded synthetic ranges: groups, params, states, roots, requantize edges,
// notes, and the derived weight and bias params. Update: QALIGN_UPDATE_GOLDEN=1 ctest -R golden.
#include <gtest/gtest.h>

#include <filesystem>

#include "align_testing.h"
#include "alignment_outcome.h"
#include "onnx/importer.h"
#include "passes/alignment/alignment_pass.h"
#include "quant/dispatch.h"
#include "quant/ranges.h"
#include "quant/target_profile.h"

namespace qalign {
namespace {

struct Model {
  const char* file;
  const char* short_name;
};
const Model kModels[] = {{"ch_PP-OCRv4_det_infer.onnx", "det"},
                         {"ch_PP-OCRv4_rec_infer.onnx", "rec"},
                         {"ch_ppocr_mobile_v2.0_cls_infer.onnx", "cls"}};
const char* const kTargets[] = {"tflite-int8", "ort-qdq-u8s8", "ort-qdq-u8s8-vnni", "trt-int8",
                                "qnn-u8", "ppq-default"};

TEST(AlignmentGoldenModels, PpOcrOnEveryTarget) {
  for (const Model& model : kModels) {
    const std::string path = std::string(QALIGN_MODEL_DIR) + "/" + model.file;
    ASSERT_TRUE(std::filesystem::exists(path)) << path << " is missing: run scripts/fetch_models.sh";
    auto graph = ImportOnnxModel(path);
    ASSERT_TRUE(graph.ok()) << graph.status().ToString();
    const RangeMap ranges = testing::SyntheticRanges(**graph, 2024);
    for (const char* target : kTargets) {
      SCOPED_TRACE(std::string(model.short_name) + " / " + target);
      auto profile = LoadTargetProfile(target);
      ASSERT_TRUE(profile.ok()) << profile.status().ToString();
      QuantConfigTable table;
      ASSERT_TRUE(DispatchQuantization(**graph, *profile, &table).ok());
      ASSERT_TRUE(ApplyRanges(ranges, &table, false).ok());
      auto result = testing::RunAlignmentStep(**graph, *profile, {}, &table);
      ASSERT_TRUE(result.ok()) << result.status().ToString();
      testing::ExpectMatchesGolden(std::string(model.short_name) + "_" + target,
                                   testing::PrintAlignmentOutcome(table, *result));
    }
  }
}

}  // namespace
}  // namespace qalign
