// Mixed precision (src/pipeline/mixed_precision.h): --exclude and --accuracy-budget on small graphs
// built in code, where the op that must stay FP32 is known in closed form, and every alignment rule
// still holds at the FP32 boundaries.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/cli_runner.h"
#include "onnx/exporter.h"
#include "qalign/quantize.h"
#include "testing/graph_builder.h"
#include "testing/test_targets.h"

namespace qalign {
namespace {

namespace fs = std::filesystem;
using testing::CliResult;
using testing::GraphBuilder;
using testing::RunCli;

class MixedPrecisionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "qalign_mixed_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    target_ = dir_ + "/add-only.json";
    ASSERT_TRUE(testing::WriteAddOnlyTarget(target_));
    target16_ = dir_ + "/add-only-16.json";
    ASSERT_TRUE(testing::WriteAddOnlyTarget(target16_, /*int16=*/true));
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The planted graph. x: [1, 64] uniform in [0, 1) (random: data).
  //   y1 = Sub(Add 'big'(x, C), C), C = [1000, 0, ..., 0]
  //   y2 = Add 'small'(x, D), D small
  // Quantizing big's output spends the int8 range on 1000 + x[0]: the step is about 1001 / 255
  // = 3.9, so every other element of x (< 1) rounds to 0 and y1's SNR is about 0 dB. With big in
  // FP32, y1 is exact (Sub is FP32 on this target, and big reads x unquantized), and y2 keeps its
  // 8-bit SNR (about 40 dB). With small in FP32 instead, y1 is still 0 dB. So a budget of 30 dB is
  // met by keeping exactly big in FP32.
  std::string PlantedModel() {
    GraphBuilder b;
    Variable* x = b.Input("x", {1, 64});
    std::vector<float> c(64, 0.0f);
    c[0] = 1000.0f;
    Variable* constant = b.Param("C", Tensor::FromVector<float>({1, 64}, c));
    Variable* d = b.RandomParam("D", {1, 64}, /*seed=*/7, -0.05f, 0.05f);
    Variable* big = b.Op("Add", "big", {x, constant});
    b.Output(b.Op("Sub", "back", {big, constant}));
    b.Output(b.Op("Add", "small", {x, d}));
    const std::string path = dir_ + "/planted.onnx";
    EXPECT_TRUE(SaveOnnxModel(b.graph(), path).ok());
    return path;
  }

  QuantizeOptions Options(const std::string& model) const {
    QuantizeOptions o;
    o.model_path = model;
    o.target = target_;
    o.calib_spec = "random:12?seed=3";
    o.holdout = 4;
    o.output_path = dir_ + "/out.onnx";
    o.report_path = dir_ + "/report.json";
    o.quiet = true;
    o.num_threads = 1;
    return o;
  }

  std::string dir_;
  std::string target_;
  std::string target16_;
};

TEST_F(MixedPrecisionTest, WithoutMixedPrecisionThePlantedOpRuinsItsOutput) {
  auto summary = QuantizeModel(Options(PlantedModel()));
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_LT(summary->outputs.at("back_out").snr_db, 5.0);
  EXPECT_GT(summary->outputs.at("small_out").snr_db, 30.0);
  EXPECT_TRUE(summary->kept_fp32.empty());
}

TEST_F(MixedPrecisionTest, BudgetKeepsExactlyThePlantedOp) {
  QuantizeOptions o = Options(PlantedModel());
  o.accuracy_budget_db = 30.0;
  auto summary = QuantizeModel(o);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  ASSERT_EQ(summary->kept_fp32.size(), 1u);
  EXPECT_EQ(summary->kept_fp32[0].op, "Add 'big'");
  EXPECT_NE(summary->kept_fp32[0].reason.find("accuracy budget"), std::string::npos);
  EXPECT_TRUE(summary->budget_met);
  EXPECT_LT(summary->budget_base_snr_db, 5.0);
  EXPECT_GE(summary->outputs.at("back_out").snr_db, 30.0);
  EXPECT_GE(summary->outputs.at("small_out").snr_db, 30.0);
  EXPECT_EQ(summary->violations, 0);
  // The summary counts it: 'big' moved from quantized to FP32.
  EXPECT_EQ(summary->quantized_ops, 1);
  EXPECT_EQ(summary->fp32_ops, 2);
  EXPECT_NE(summary->ToText().find("1 ops kept FP32"), std::string::npos);
  // The report lists it, with why.
  std::ifstream in(o.report_path);
  std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(report.find("\"fp32_ops\""), std::string::npos);
  EXPECT_NE(report.find("Add 'big'"), std::string::npos);
  EXPECT_NE(report.find("\"met\": true"), std::string::npos);
}

// On a target with a 16-bit scheme the budget keeps 'big' at 16 bits instead of FP32: its output's
// step becomes about 1001 / 65535 = 0.015, so y1's SNR is about 10 log10((1/3) / (0.015^2 / 12))
// = 42 dB, above the 30 dB budget. x, read by both Adds, is one group: small's input goes 16-bit
// with it.
TEST_F(MixedPrecisionTest, BudgetKeepsThePlantedOpAt16BitsWhereTheTargetHasThem) {
  QuantizeOptions o = Options(PlantedModel());
  o.target = target16_;
  o.accuracy_budget_db = 30.0;
  auto summary = QuantizeModel(o);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_TRUE(summary->kept_fp32.empty());
  ASSERT_EQ(summary->kept_int16.size(), 1u);
  EXPECT_EQ(summary->kept_int16[0].op, "Add 'big'");
  EXPECT_NE(summary->kept_int16[0].reason.find("at 16 bits"), std::string::npos);
  EXPECT_TRUE(summary->budget_met);
  EXPECT_LT(summary->budget_base_snr_db, 5.0);
  EXPECT_GE(summary->outputs.at("back_out").snr_db, 30.0);
  EXPECT_GE(summary->outputs.at("small_out").snr_db, 30.0);
  EXPECT_EQ(summary->violations, 0);
  EXPECT_EQ(summary->quantized_ops, 2);  // both Adds stay quantized
  // big's inputs (x, and the constant C, an operand quantized as an activation) and output, and
  // small's input (x's group).
  EXPECT_EQ(summary->ports_at_16_bits, 4);
  EXPECT_NE(summary->ToText().find("0 ops kept FP32, 1 ops at 16 bits"), std::string::npos)
      << summary->ToText();
  std::ifstream in(o.report_path);
  std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(report.find("\"int16_ops\""), std::string::npos);
  EXPECT_NE(report.find("Add 'big'"), std::string::npos);
  // The written model passes check, and its 16-bit pairs are com.microsoft's.
  CliResult check = RunCli({"check", o.output_path, "--target", target16_});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  std::ifstream model(o.output_path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(model)), std::istreambuf_iterator<char>());
  EXPECT_NE(bytes.find("com.microsoft"), std::string::npos);
}

TEST_F(MixedPrecisionTest, Int16ByNameQuantizesThatOpAt16Bits) {
  QuantizeOptions o = Options(PlantedModel());
  o.target = target16_;
  o.int16 = {"big"};
  auto summary = QuantizeModel(o);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  ASSERT_EQ(summary->kept_int16.size(), 1u);
  EXPECT_EQ(summary->kept_int16[0].reason, "--int16");
  EXPECT_GE(summary->outputs.at("back_out").snr_db, 30.0);
  EXPECT_EQ(summary->violations, 0);
  // Without the 16-bit scheme, --int16 is an error naming the target.
  o.target = target_;
  auto refused = QuantizeModel(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("no 16-bit activation scheme"), std::string::npos)
      << refused.status().message();
  CliResult r = RunCli({"quantize", PlantedModel(), "--target", target16_, "--calib", "random:4",
                        "--int16", "nothing", "--quiet", "-o", dir_ + "/x.onnx"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--int16 'nothing'"), std::string::npos) << r.err;
}

TEST_F(MixedPrecisionTest, ExcludeByNameKeepsThatOpOnly) {
  QuantizeOptions o = Options(PlantedModel());
  o.exclude = {"big"};
  auto summary = QuantizeModel(o);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  ASSERT_EQ(summary->kept_fp32.size(), 1u);
  EXPECT_EQ(summary->kept_fp32[0].op, "Add 'big'");
  EXPECT_EQ(summary->kept_fp32[0].reason, "--exclude");
  EXPECT_GT(summary->outputs.at("back_out").snr_db, 60.0);  // exact up to float rounding
}

TEST_F(MixedPrecisionTest, ExcludeByTypeKeepsEveryOpOfIt) {
  QuantizeOptions o = Options(PlantedModel());
  o.exclude = {"Add"};
  auto summary = QuantizeModel(o);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->kept_fp32.size(), 2u);
  EXPECT_EQ(summary->quantized_ops, 0);
}

TEST_F(MixedPrecisionTest, ExcludeNamingNoOpIsAnErrorNamingIt) {
  QuantizeOptions o = Options(PlantedModel());
  o.exclude = {"big", "nonesuch"};
  auto summary = QuantizeModel(o);
  ASSERT_FALSE(summary.ok());
  EXPECT_NE(summary.status().message().find("'nonesuch'"), std::string::npos);
  EXPECT_FALSE(fs::exists(o.output_path));

  CliResult r = RunCli({"quantize", PlantedModel(), "--target", target_, "--calib", "random:4",
                        "--exclude", "big,nonesuch", "-o", dir_ + "/cli.onnx", "--quiet"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.StderrLines(), 1) << r.err;
  EXPECT_NE(r.err.find("--exclude 'nonesuch'"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ + "/cli.onnx"));
}

// A budget no allowed set of FP32 ops meets (one op at most, and 'small' loses 40 dB's worth of
// the 200 asked for): the best model found is written, the ops that prevent the budget are named,
// exit 0, and 1 with --strict.
TEST_F(MixedPrecisionTest, UnmetBudgetWritesTheBestModelAndNamesTheBlockers) {
  const std::string model = PlantedModel();
  QuantizeOptions o = Options(model);
  o.accuracy_budget_db = 200.0;
  o.max_fp32_ops = 1;
  auto summary = QuantizeModel(o);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_FALSE(summary->budget_met);
  ASSERT_EQ(summary->kept_fp32.size(), 1u);
  EXPECT_EQ(summary->kept_fp32[0].op, "Add 'big'");
  ASSERT_EQ(summary->budget_blockers.size(), 1u);
  EXPECT_NE(summary->budget_blockers[0].find("Add 'small'"), std::string::npos);
  EXPECT_NE(summary->ToText().find("NOT met"), std::string::npos);
  EXPECT_TRUE(fs::exists(o.output_path));

  const std::vector<std::string> args = {"quantize", model, "--target", target_, "--calib",
                                         "random:12?seed=3", "--holdout", "4",
                                         "--accuracy-budget", "200", "--max-fp32-ops", "1",
                                         "--quiet", "-o"};
  std::vector<std::string> plain = args;
  plain.push_back(dir_ + "/plain.onnx");
  CliResult r = RunCli(plain);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("prevented by the quantization of: Add 'small'"), std::string::npos)
      << r.out;
  EXPECT_TRUE(fs::exists(dir_ + "/plain.onnx"));
  std::vector<std::string> strict = args;
  strict.push_back(dir_ + "/strict.onnx");
  strict.push_back("--strict");
  r = RunCli(strict);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--strict"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(dir_ + "/strict.onnx"));
}

// The other bad input: unknown observer and method names are usage errors listing the
// valid ones.
TEST_F(MixedPrecisionTest, UnknownObserverAndMethodNamesListTheValidOnes) {
  const std::string model = PlantedModel();
  CliResult r = RunCli({"quantize", model, "--target", target_, "--calib", "random:4",
                        "--observer", "median", "-o", dir_ + "/o.onnx"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.StderrLines(), 1) << r.err;
  EXPECT_NE(r.err.find("unknown observer 'median'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("minmax"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("mse"), std::string::npos) << r.err;
  r = RunCli({"quantize", model, "--target", target_, "--calib", "random:4", "--align",
              "Add=best", "-o", dir_ + "/o.onnx"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown alignment method 'best'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("large"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ + "/o.onnx"));
}

TEST_F(MixedPrecisionTest, BudgetNeedsEvaluationData) {
  QuantizeOptions o = Options(PlantedModel());
  o.accuracy_budget_db = 30.0;
  o.eval_samples = 0;
  auto summary = QuantizeModel(o);
  ASSERT_FALSE(summary.ok());
  EXPECT_NE(summary.status().message().find("--accuracy-budget"), std::string::npos);
}

// FP32 ops next to rules: a Concat whose input comes from an FP32 Conv, a Concat kept FP32 between
// quantized Convs and a MaxPool. Every rule of the target still holds on the quantized ports (the
// pipeline's verifier and `qalign check` on the written model both find 0 violations).
TEST_F(MixedPrecisionTest, RulesHoldAtFp32Boundaries) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 3, 8, 8});
  Variable* a = b.Op("Conv", "conv_a", {x, b.RandomParam("wa", {4, 3, 3, 3}, 1)},
                     {{"pads", Attribute::Ints({1, 1, 1, 1})}});
  Variable* c = b.Op("Conv", "conv_b", {x, b.RandomParam("wb", {4, 3, 3, 3}, 2, -3.0f, 3.0f)},
                     {{"pads", Attribute::Ints({1, 1, 1, 1})}});
  Variable* cat = b.Op("Concat", "cat", {a, c}, {{"axis", Attribute::Int(1)}});
  Variable* pool = b.Op("MaxPool", "pool", {cat},
                        {{"kernel_shape", Attribute::Ints({2, 2})},
                         {"strides", Attribute::Ints({2, 2})}});
  b.Output(b.Op("Conv", "conv_c", {pool, b.RandomParam("wc", {2, 8, 1, 1}, 3)}));
  const std::string model = dir_ + "/concat.onnx";
  ASSERT_TRUE(SaveOnnxModel(b.graph(), model).ok());

  int run = 0;
  for (const std::string target : {"tflite-int8", "qnn-u8", "trt-int8"}) {
    for (const std::string exclude : {"conv_b", "Concat", "pool", "conv_a,conv_c"}) {
      SCOPED_TRACE(target + " --exclude " + exclude);
      const std::string out = dir_ + "/" + std::to_string(++run) + ".onnx";
      CliResult q = RunCli({"quantize", model, "--target", target, "--calib", "random:6",
                            "--exclude", exclude, "--threads", "1", "--quiet", "-o", out});
      ASSERT_EQ(q.exit_code, 0) << q.err;
      EXPECT_NE(q.out.find("0 violations"), std::string::npos) << q.out;
      EXPECT_NE(q.out.find("ops kept FP32"), std::string::npos) << q.out;
      CliResult check = RunCli({"check", out, "--target", target});
      EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
      EXPECT_NE(check.out.find(": 0 violations"), std::string::npos) << check.out;
    }
  }
}

}  // namespace
}  // namespace qalign
