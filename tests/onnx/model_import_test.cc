// Import of the real PP-OCR models: counts as read, Constant folding, shapes, parameters.
#include <gtest/gtest.h>

#include <filesystem>
#include <numeric>
#include <string>

#include "ir/verifier.h"
#include "onnx/importer.h"

namespace qalign {
namespace {

std::string ModelPath(const std::string& file) {
  const std::string path = std::string(QALIGN_MODEL_DIR) + "/" + file;
  EXPECT_TRUE(std::filesystem::exists(path)) << path << " is missing; run scripts/fetch_models.sh";
  return path;
}

int64_t TotalNodes(const ModelInfo& info) {
  int64_t total = 0;
  for (const auto& [type, count] : info.source_op_counts) total += count;
  return total;
}

TEST(ModelImportTest, DetModelCountsAsReadAndFoldsConstants) {
  auto graph = ImportOnnxModel(ModelPath("ch_PP-OCRv4_det_infer.onnx"));
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const Graph& g = **graph;
  EXPECT_EQ(TotalNodes(g.info()), 672);
  EXPECT_EQ(g.info().source_op_counts.at("Constant"), 342);
  // Every Constant became a parameter: the graph holds the other 330 ops.
  EXPECT_EQ(static_cast<int64_t>(g.num_operations()), 672 - 342);
  int constant_params = 0;
  for (const Variable* v : g.variables()) {
    if (v->is_parameter() && v->origin() == Variable::Origin::kConstantNode) ++constant_params;
  }
  EXPECT_EQ(constant_params, 342);
  for (const Operation* op : g.operations()) EXPECT_NE(op->type(), "Constant");
  EXPECT_TRUE(VerifyGraph(g).ok());
  EXPECT_GT(g.ParameterCount(), 0);
  EXPECT_GE(g.ParameterBytes(), 4 * g.ParameterCount() / 2);
}

TEST(ModelImportTest, InputShapeFixesDynamicDimsAndInferenceReachesTheOutput) {
  ImportOptions options;
  auto probe = ImportOnnxModel(ModelPath("ch_PP-OCRv4_det_infer.onnx"),
                               {.input_shapes = {}, .infer_shapes = false});
  ASSERT_TRUE(probe.ok()) << probe.status().ToString();
  const std::string input = (*probe)->inputs().at(0)->name();
  EXPECT_FALSE((*probe)->inputs()[0]->shape().fully_known());

  options.input_shapes[input] = {1, 3, 640, 640};
  auto graph = ImportOnnxModel(ModelPath("ch_PP-OCRv4_det_infer.onnx"), options);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ((*graph)->inputs()[0]->shape().ToString(), "[1,3,640,640]");
  const Variable* out = (*graph)->outputs().at(0);
  ASSERT_TRUE(out->shape().fully_known()) << out->shape().ToString();
  // The det head predicts a probability map at input resolution.
  EXPECT_EQ(out->shape().ToString(), "[1,1,640,640]");
  // Most intermediate tensors get a full shape from ONNX shape inference.
  int known = 0, total = 0;
  for (const Operation* op : (*graph)->operations()) {
    for (const Variable* v : op->outputs()) {
      if (!v) continue;
      ++total;
      known += v->shape().fully_known() ? 1 : 0;
    }
  }
  EXPECT_GT(known, total * 9 / 10) << known << " of " << total;
}

TEST(ModelImportTest, RecAndClsImport) {
  for (const char* file : {"ch_PP-OCRv4_rec_infer.onnx", "ch_ppocr_mobile_v2.0_cls_infer.onnx"}) {
    auto graph = ImportOnnxModel(ModelPath(file));
    ASSERT_TRUE(graph.ok()) << graph.status().ToString();
    EXPECT_EQ((*graph)->inputs().size(), 1u) << file;
    EXPECT_GE((*graph)->outputs().size(), 1u) << file;
    EXPECT_GT((*graph)->num_operations(), 10u) << file;
    EXPECT_TRUE(VerifyGraph(**graph).ok()) << file;
  }
}

}  // namespace
}  // namespace qalign
