// --optimize-weights through QuantizeModel on a small graph built in code: the exported model
// passes `check` for every built-in target, the summary and report count the layers optimized and
// the loss before and after, an op kept FP32 is not optimized, and bias correction composes with
// it.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "onnx/exporter.h"
#include "qalign/check.h"
#include "qalign/quantize.h"
#include "testing/graph_builder.h"

namespace qalign {
namespace {

namespace fs = std::filesystem;

class OptimizeWeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "qalign_ow_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    // x [1, 4, 8, 8] -> depthwise Conv 3x3 -> Relu -> Conv 1x1 (4 -> 6) -> Flatten -> Gemm.
    testing::GraphBuilder b;
    Variable* x = b.Input("x", {1, 4, 8, 8});
    Variable* dw = b.Op("Conv", "dw",
                        {x, b.RandomParam("dw_w", {4, 1, 3, 3}, 1), b.RandomParam("dw_b", {4}, 2)},
                        {{"group", Attribute::Int(4)}, {"pads", Attribute::Ints({1, 1, 1, 1})}});
    Variable* relu = b.Op("Relu", "relu", {dw});
    Variable* pw =
        b.Op("Conv", "pw",
             {relu, b.RandomParam("pw_w", {6, 4, 1, 1}, 3), b.RandomParam("pw_b", {6}, 4)});
    Variable* flat = b.Op("Flatten", "flat", {pw});
    b.Output(
        b.Op("Gemm", "fc",
             {flat, b.RandomParam("fc_w", {5, 384}, 5, -0.1f, 0.1f), b.RandomParam("fc_b", {5}, 6)},
             {{"transB", Attribute::Int(1)}}));
    model_ = dir_ + "/model.onnx";
    ASSERT_TRUE(SaveOnnxModel(b.graph(), model_).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  QuantizeOptions Options(const std::string& target) const {
    QuantizeOptions o;
    o.model_path = model_;
    o.target = target;
    o.calib_spec = "random:12?seed=3&low=-1&high=1";
    o.holdout = 4;
    o.output_path = dir_ + "/out.onnx";
    o.report_path = dir_ + "/report.json";
    o.quiet = true;
    o.num_threads = 1;
    o.optimize_weights = true;
    return o;
  }

  std::string dir_;
  std::string model_;
};

TEST_F(OptimizeWeightsTest, EveryTargetsExportPassesCheck) {
  for (const char* target :
       {"tflite-int8", "ort-qdq-u8s8", "ort-qdq-u8s8-vnni", "trt-int8", "qnn-u8", "ppq-default"}) {
    SCOPED_TRACE(target);
    const QuantizeOptions o = Options(target);
    auto summary = QuantizeModel(o);
    ASSERT_TRUE(summary.ok()) << summary.status().ToString();
    EXPECT_GE(summary->optimized_layers, 2);  // qnn-u8 does not quantize Gemm
    EXPECT_GT(summary->optimized_weights, 0);
    EXPECT_LE(summary->rounding_loss_optimized, summary->rounding_loss_nearest);
    EXPECT_NE(summary->ToText().find("weight rounding: "), std::string::npos);
    std::ifstream in(o.report_path);
    const nlohmann::json report = nlohmann::json::parse(in);
    EXPECT_EQ(report.at("weight_rounding").at("layers").get<int64_t>(), summary->optimized_layers);
    CheckOptions check;
    check.model_path = o.output_path;
    check.target = target;
    auto checked = CheckModel(check);
    ASSERT_TRUE(checked.ok()) << checked.status().ToString();
    EXPECT_TRUE(checked->violations.empty()) << checked->text;
  }
}

TEST_F(OptimizeWeightsTest, SkipsOpsKeptFp32AndIsOffByDefault) {
  QuantizeOptions o = Options("tflite-int8");
  auto all = QuantizeModel(o);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->optimized_layers, 3);
  o.exclude = {"pw"};
  auto excluded = QuantizeModel(o);
  ASSERT_TRUE(excluded.ok()) << excluded.status().ToString();
  EXPECT_EQ(excluded->optimized_layers, 2);
  o.exclude.clear();
  o.optimize_weights = false;
  auto off = QuantizeModel(o);
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_EQ(off->optimized_layers, -1);
  EXPECT_EQ(off->ToText().find("weight rounding"), std::string::npos);
}

// Bias correction runs after the rounding and corrects the shift of the rounding chosen: with both,
// the model differs from either alone.
TEST_F(OptimizeWeightsTest, ComposesWithBiasCorrection) {
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  QuantizeOptions o = Options("tflite-int8");
  o.output_path = dir_ + "/rounded.onnx";
  ASSERT_TRUE(QuantizeModel(o).ok());
  o.bias_correction = true;
  o.output_path = dir_ + "/both.onnx";
  auto both = QuantizeModel(o);
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_EQ(both->corrected_biases, 3);
  EXPECT_EQ(both->optimized_layers, 3);
  o.optimize_weights = false;
  o.output_path = dir_ + "/corrected.onnx";
  ASSERT_TRUE(QuantizeModel(o).ok());
  EXPECT_NE(read(dir_ + "/both.onnx"), read(dir_ + "/rounded.onnx"));
  EXPECT_NE(read(dir_ + "/both.onnx"), read(dir_ + "/corrected.onnx"));
}

}  // namespace
}  // namespace qalign
