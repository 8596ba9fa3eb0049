// `qalign quantize --optimize-weights` on the real PP-OCR cls model: it optimizes the rounding of
// every quantized Conv / Gemm layer, lowers their summed output error, writes a model `check`
// finds clean, and calibrate + quantize --ranges (a run of its own for the input statistics)
// writes the same model.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cli_runner.h"
#include "testing/cls_cli.h"

namespace qalign {
namespace {

namespace fs = std::filesystem;
using testing::CliResult;
using testing::ClsCommand;
using testing::Plus;
using testing::ReadBytes;
using testing::RunCli;

TEST(OptimizeWeightsCli, WritesAValidClsModel) {
  ASSERT_TRUE(testing::ClsModelExists());
  const std::string dir = testing::MakeScratchDir("owcli");
  ASSERT_FALSE(dir.empty());
  auto with = [](const std::string& command, const std::vector<std::string>& more) {
    return Plus(ClsCommand(command, "tflite-int8"), more);
  };
  const std::string out = dir + "/cls_ow.onnx";
  const std::string report = dir + "/report.json";
  CliResult q = RunCli(with("quantize", {"--calib", "random:10?seed=2", "--optimize-weights",
                                         "--report", report, "-o", out}));
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_NE(q.out.find("weight rounding: "), std::string::npos) << q.out;
  std::ifstream in(report);
  const nlohmann::json rounding = nlohmann::json::parse(in).at("weight_rounding");
  // cls: 53 Convs and one Gemm, all quantized by tflite-int8.
  EXPECT_EQ(rounding.at("layers").get<int64_t>(), 54);
  EXPECT_GT(rounding.at("rounded_otherwise").get<int64_t>(), 0);
  EXPECT_LT(rounding.at("loss_optimized").get<double>(), rounding.at("loss_nearest").get<double>());

  CliResult check = RunCli({"check", out, "--target", "tflite-int8"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("0 violations"), std::string::npos) << check.out;

  // Without the flag the model differs; calibrate + quantize --ranges gives the same bytes.
  const std::string plain = dir + "/cls.onnx";
  ASSERT_EQ(RunCli(with("quantize", {"--calib", "random:10?seed=2", "-o", plain})).exit_code, 0);
  EXPECT_FALSE(ReadBytes(plain) == ReadBytes(out));
  const std::string ranges = dir + "/ranges.json";
  ASSERT_EQ(RunCli(with("calibrate", {"--calib", "random:10?seed=2", "-o", ranges})).exit_code, 0);
  const std::string two_step = dir + "/two_step.onnx";
  CliResult r = RunCli(with("quantize", {"--ranges", ranges, "--calib", "random:10?seed=2",
                                         "--optimize-weights", "-o", two_step}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(ReadBytes(two_step) == ReadBytes(out)) << "calibrate + quantize --ranges differs";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qalign
