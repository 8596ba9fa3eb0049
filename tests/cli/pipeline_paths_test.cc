// calibrate, align and quantize run the same steps on the same tensors: on the real PP-OCR cls
// model, `calibrate` then `align --ranges` finds the groups a single `quantize` finds.
//
// Every run uses --threads 1: the executor's multi-threaded kernels are not bit-reproducible from
// run to run (the last bit of a sum depends on the split), and these tests compare exactly.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli_runner.h"

namespace qalign {
namespace {

namespace fs = std::filesystem;
using testing::CliResult;
using testing::RunCli;

const std::string kModel = std::string(QALIGN_MODEL_DIR) + "/ch_ppocr_mobile_v2.0_cls_infer.onnx";

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

struct Job {
  std::string target;
  std::string observer;
};
void PrintTo(const Job& job, std::ostream* os) { *os << job.target << " " << job.observer; }

class PipelinePathsTest : public ::testing::TestWithParam<Job> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kModel)) << kModel << " is missing: run scripts/fetch_models.sh";
    std::string tmpl = (fs::temp_directory_path() / "qalign_paths_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The flags every run shares: model, target, input shape, one thread, no progress.
  std::vector<std::string> Common(const std::string& command) const {
    return {command, kModel, "--target", GetParam().target, "--input-shape", "x=1,3,48,192",
            "--threads", "1", "--quiet"};
  }
  std::vector<std::string> WithCalib(std::vector<std::string> args) const {
    args.insert(args.end(), {"--calib", "random:10", "--observer", GetParam().observer});
    return args;
  }
  static std::vector<std::string> Plus(std::vector<std::string> args,
                                       const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
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

INSTANTIATE_TEST_SUITE_P(Jobs, PipelinePathsTest,
                         ::testing::Values(Job{"tflite-int8", "minmax"},
                                           Job{"ort-qdq-u8s8", "kl"}),
                         [](const ::testing::TestParamInfo<Job>& info) {
                           std::string name = info.param.target + "_" + info.param.observer;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace qalign
