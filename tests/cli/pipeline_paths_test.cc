// calibrate, align and quantize run the same steps on the same tensors: on the real PP-OCR cls
// model, `calibrate` then `align --ranges` finds the groups a single `quantize` finds, and
// `calibrate` then `quantize --ranges` writes the model a single `quantize` writes, byte for byte.
//
// Every run uses --threads 1: the executor's multi-threaded kernels are not bit-reproducible from
// run to run (the last bit of a sum depends on the split), and these tests compare exactly.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "cli/cli_runner.h"
#include "testing/cls_cli.h"

namespace qalign {
namespace {

namespace fs = std::filesystem;
using testing::CliResult;
using testing::Plus;
using testing::ReadBytes;
using testing::RunCli;

struct Job {
  std::string target;
  std::string observer;
};
void PrintTo(const Job& job, std::ostream* os) { *os << job.target << " " << job.observer; }

class PipelinePathsTest : public ::testing::TestWithParam<Job> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::ClsModelExists());
    dir_ = testing::MakeScratchDir("paths");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // The flags every run shares: model, target, input shape, one thread, no progress.
  std::vector<std::string> Common(const std::string& command) const {
    return testing::ClsCommand(command, GetParam().target);
  }
  std::vector<std::string> WithCalib(std::vector<std::string> args) const {
    return Plus(std::move(args), {"--calib", "random:10", "--observer", GetParam().observer});
  }

  std::string dir_;
};

TEST_P(PipelinePathsTest, CalibrateThenAlignFindsTheGroupsQuantizeFinds) {
  const std::string report = dir_ + "/quantize_report.json";
  CliResult q = RunCli(Plus(WithCalib(Common("quantize")),
                            {"-o", dir_ + "/q.onnx", "--report", report}));
  ASSERT_EQ(q.exit_code, 0) << q.err;

  const std::string ranges = dir_ + "/ranges.json";
  CliResult c = RunCli(Plus(WithCalib(Common("calibrate")), {"-o", ranges}));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const std::string align_report = dir_ + "/align_report.json";
  std::vector<std::string> align = Common("align");
  align.pop_back();  // align runs no model: no --quiet
  align.erase(align.end() - 2, align.end());  // nor --threads
  CliResult a = RunCli(Plus(align, {"--ranges", ranges, "--report", align_report}));
  ASSERT_EQ(a.exit_code, 0) << a.err;

  const nlohmann::json from_quantize = nlohmann::json::parse(ReadBytes(report));
  const nlohmann::json from_align = nlohmann::json::parse(ReadBytes(align_report));
  ASSERT_GT(from_quantize["groups"].size(), 0u);
  EXPECT_EQ(from_align["groups"], from_quantize["groups"]);
  EXPECT_EQ(from_align["requantize"], from_quantize["requantize"]);
  EXPECT_EQ(from_align["summary"], from_quantize["summary"]);
  // The text report names the same number of groups.
  EXPECT_NE(a.out.find(std::to_string(from_quantize["groups"].size()) + " groups"),
            std::string::npos)
      << a.out;
}

TEST_P(PipelinePathsTest, CalibrateThenQuantizeWithRangesWritesTheSameModel) {
  const std::string single = dir_ + "/single.onnx";
  CliResult q = RunCli(Plus(WithCalib(Common("quantize")), {"-o", single}));
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_NE(q.out.find("calibration: 8 samples"), std::string::npos) << q.out;  // 2 held out
  // Bias correction is on by default only for coarse weights: per-tensor, or fewer than 255
  // levels (ort-qdq-u8s8's [-64, 64]).
  const bool corrects_by_default = GetParam().target == "ort-qdq-u8s8";
  EXPECT_EQ(q.out.find("bias correction: ") != std::string::npos, corrects_by_default) << q.out;
  const std::string uncorrected = dir_ + "/uncorrected.onnx";
  CliResult qu =
      RunCli(Plus(WithCalib(Common("quantize")), {"--no-bias-correction", "-o", uncorrected}));
  ASSERT_EQ(qu.exit_code, 0) << qu.err;
  EXPECT_EQ(qu.out.find("bias correction: "), std::string::npos) << qu.out;

  // The same data and the same default --holdout: calibrate observes the same 8 samples.
  const std::string ranges = dir_ + "/ranges.json";
  CliResult c = RunCli(Plus(WithCalib(Common("calibrate")), {"-o", ranges}));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const std::string two_step = dir_ + "/two_step.onnx";
  std::vector<std::string> with_ranges =
      Plus(Common("quantize"), {"--ranges", ranges, "--calib", "random:10", "-o", two_step});
  CliResult r = RunCli(with_ranges);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("calibration: ranges from " + ranges), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("on 2 of 2 held-out samples"), std::string::npos) << r.out;

  const std::string expected = ReadBytes(single);
  ASSERT_GT(expected.size(), 100000u);
  EXPECT_TRUE(ReadBytes(two_step) == expected) << "calibrate + quantize --ranges differs";

  // Without data: no SNR and no bias correction (no samples to measure it on), so the model
  // quantize writes with --no-bias-correction.
  const std::string no_data = dir_ + "/no_data.onnx";
  CliResult n = RunCli(Plus(Common("quantize"), {"--ranges", ranges, "-o", no_data}));
  ASSERT_EQ(n.exit_code, 0) << n.err;
  EXPECT_NE(n.out.find("not measured (no --calib)"), std::string::npos) << n.out;
  EXPECT_TRUE(ReadBytes(no_data) == ReadBytes(uncorrected))
      << "quantize --ranges without --calib differs";

  // Bias correction sums the inputs over the calibration samples: with --ranges in a run of its
  // own over the same samples, so the two paths still write the same model (a different one).
  const std::string corrected = dir_ + "/corrected.onnx";
  CliResult qb =
      RunCli(Plus(WithCalib(Common("quantize")), {"--bias-correction", "-o", corrected}));
  ASSERT_EQ(qb.exit_code, 0) << qb.err;
  EXPECT_NE(qb.out.find("bias correction: "), std::string::npos) << qb.out;
  const std::string corrected_two_step = dir_ + "/corrected_two_step.onnx";
  CliResult rb = RunCli(Plus(Common("quantize"), {"--ranges", ranges, "--calib", "random:10",
                                                  "--bias-correction", "-o", corrected_two_step}));
  ASSERT_EQ(rb.exit_code, 0) << rb.err;
  EXPECT_FALSE(ReadBytes(corrected) == ReadBytes(uncorrected)) << "bias correction changed nothing";
  EXPECT_TRUE(ReadBytes(corrected_two_step) == ReadBytes(corrected))
      << "calibrate + quantize --ranges --bias-correction differs";

  // Ranges are already observed: --observer with --ranges is a usage error.
  CliResult both = RunCli(Plus(Common("quantize"), {"--ranges", ranges, "--observer", "kl", "-o",
                                                    dir_ + "/x.onnx"}));
  EXPECT_EQ(both.exit_code, 2) << both.err;
  EXPECT_FALSE(fs::exists(dir_ + "/x.onnx"));
  // Neither data nor ranges.
  CliResult neither = RunCli(Plus(Common("quantize"), {"-o", dir_ + "/x.onnx"}));
  EXPECT_EQ(neither.exit_code, 2) << neither.err;
  EXPECT_NE(neither.err.find("--calib or --ranges"), std::string::npos) << neither.err;
  // Outputs never replace an input: the ranges file stays as it was.
  const std::string ranges_bytes = ReadBytes(ranges);
  CliResult over = RunCli(Plus(Common("quantize"), {"--ranges", ranges, "-o", ranges}));
  EXPECT_EQ(over.exit_code, 1) << over.err;
  EXPECT_NE(over.err.find("refusing to overwrite"), std::string::npos) << over.err;
  EXPECT_EQ(ReadBytes(ranges), ranges_bytes);
  // A bad ranges file: one line naming it, no model written.
  const std::string bad = dir_ + "/bad.json";
  std::ofstream(bad) << "{\"x\": {\"min\": 1}}";
  CliResult broken = RunCli(Plus(Common("quantize"), {"--ranges", bad, "-o", dir_ + "/x.onnx"}));
  EXPECT_EQ(broken.exit_code, 1) << broken.err;
  EXPECT_EQ(broken.StderrLines(), 1) << broken.err;
  EXPECT_NE(broken.err.find(bad), std::string::npos) << broken.err;
  EXPECT_FALSE(fs::exists(dir_ + "/x.onnx"));
}

INSTANTIATE_TEST_SUITE_P(Jobs, PipelinePathsTest,
                         ::testing::Values(Job{"tflite-int8", "minmax"},
                                           Job{"ort-qdq-u8s8", "kl"}, Job{"qnn-u8", "mse"}),
                         [](const ::testing::TestParamInfo<Job>& info) {
                           std::string name = info.param.target + "_" + info.param.observer;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace qalign
