// `qalign calibrate` on the real PP-OCR cls model: a range for every activation tensor the quantize
// pipeline calibrates, histograms holding every value of the calibration samples (the held-out
// ones excluded), observers that clip inside min/max.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <sstream>
#include <string>

#include "onnx/importer.h"
#include "pipeline/pipeline.h"
#include "quant/target_profile.h"

namespace qalign {
namespace {

namespace fs = std::filesystem;

const std::string kModel = std::string(QALIGN_MODEL_DIR) + "/ch_ppocr_mobile_v2.0_cls_infer.onnx";

struct RunResult {
  int exit_code = -1;
  std::string err;
};

RunResult RunCli(const std::string& args, const std::string& dir) {
  const std::string err_path = dir + "/stderr.txt";
  const std::string command = std::string(QALIGN_CLI_PATH) + " " + args + " 2>" + err_path;
  const int status = std::system(command.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_path);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  return r;
}

class CalibrateCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kModel)) << kModel << " is missing: run scripts/fetch_models.sh";
    std::string tmpl = (fs::temp_directory_path() / "qalign_calibrate_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

// The activation tensors tflite-int8 quantizes in the cls model after the rewrites (BatchNorm
// folded into the Convs before it, so its outputs are gone), from dispatch.
std::map<std::string, int64_t> QuantizedActivations(const std::string& target) {
  ImportOptions options;
  options.input_shapes["x"] = {1, 3, 48, 192};
  auto graph = ImportOnnxModel(kModel, options);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  auto rewritten = RewriteForQuantization(graph->get(), GraphRewriteOptions{});
  EXPECT_TRUE(rewritten.ok()) << rewritten.status().ToString();
  EXPECT_GT(rewritten->folded.batch_norms, 0);
  auto profile = LoadTargetProfile(target);
  EXPECT_TRUE(profile.ok()) << profile.status().ToString();
  QuantConfigTable table;
  EXPECT_TRUE(DispatchQuantization(**graph, *profile, &table).ok());
  std::map<std::string, int64_t> tensors;  // name -> elements per sample (-1 if unknown)
  for (const TQC* tqc : table.all()) {
    const Variable* v = tqc->port.tensor;
    if (tqc->role != TensorRole::kActivation || v == nullptr || v->is_parameter()) continue;
    if (!IsQuantizedState(tqc->state) || tqc->state == QuantState::kOverlapped) continue;
    tensors[v->name()] = v->shape().fully_known() ? NumElements(v->shape().concrete()) : -1;
  }
  return tensors;
}

TEST_F(CalibrateCliTest, RandomDataGivesARangeForEveryQuantizedActivation) {
  const std::string out = dir_ + "/ranges.json";
  const RunResult r = RunCli("calibrate " + kModel +
                                 " --target tflite-int8 --calib random:4 --input-shape x=1,3,48,192"
                                 " --observer minmax --histograms --quiet -o " + out,
                             dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // --quiet: no progress, no summary
  std::ifstream in(out);
  const nlohmann::json ranges = nlohmann::json::parse(in);

  const std::map<std::string, int64_t> expected = QuantizedActivations("tflite-int8");
  ASSERT_GT(expected.size(), 50u);
  EXPECT_EQ(ranges.size(), expected.size());
  for (const auto& [name, elements] : expected) {
    ASSERT_TRUE(ranges.contains(name)) << "no range for " << name;
    const auto& entry = ranges[name];
    const float lo = entry["min"], hi = entry["max"];
    EXPECT_LE(lo, hi) << name;
    const auto& hist = entry["histogram"];
    EXPECT_LT(hist["min"].get<float>(), hist["max"].get<float>()) << name;
    const std::vector<double> counts = hist["counts"].get<std::vector<double>>();
    EXPECT_EQ(counts.size(), 2048u) << name;
    if (elements > 0) {
      // Every value of the three calibration samples landed in the histogram; the fourth is
      // held out (a fifth of the samples, at least one), as quantize holds it out.
      EXPECT_NEAR(std::accumulate(counts.begin(), counts.end(), 0.0), 3.0 * elements,
                  1e-6 * elements) << name;
    }
  }
  // The model input itself is uniform [0, 1).
  if (ranges.contains("x")) {
    EXPECT_GE(ranges["x"]["min"].get<float>(), 0.0f);
    EXPECT_LT(ranges["x"]["max"].get<float>(), 1.0f);
    EXPECT_GT(ranges["x"]["max"].get<float>(), 0.99f);
  }

  // KL on the same data clips inside the min/max range of every tensor.
  const std::string kl_out = dir_ + "/kl.json";
  const RunResult kl = RunCli("calibrate " + kModel +
                                  " --target tflite-int8 --calib random:4 --input-shape x=1,3,48,192"
                                  " --observer kl -o " + kl_out,
                              dir_);
  ASSERT_EQ(kl.exit_code, 0) << kl.err;
  // The summary without --quiet.
  EXPECT_NE(kl.err.find("on 3 samples (1 held out)"), std::string::npos) << kl.err;
  std::ifstream kl_in(kl_out);
  const nlohmann::json kl_ranges = nlohmann::json::parse(kl_in);
  ASSERT_EQ(kl_ranges.size(), ranges.size());
  // The executor's multi-threaded kernels are not bit-reproducible from run to run (the last
  // bit of a sum depends on the split), so the two runs' extremes may differ by a few ulps.
  int clipped = 0;
  for (const auto& [name, entry] : ranges.items()) {
    const float lo = kl_ranges[name]["min"], hi = kl_ranges[name]["max"];
    const float mm_lo = entry["min"], mm_hi = entry["max"];
    const float slack = 1e-5f * std::max(std::fabs(mm_lo), std::fabs(mm_hi));
    EXPECT_GE(lo, mm_lo - slack) << name;
    EXPECT_LE(hi, mm_hi + slack) << name;
    if (hi < mm_hi - 0.01f * (mm_hi - mm_lo) || lo > mm_lo + 0.01f * (mm_hi - mm_lo)) ++clipped;
  }
  EXPECT_GT(clipped, 0);
}

TEST_F(CalibrateCliTest, UsageAndDataErrors) {
  const std::string out = dir_ + "/ranges.json";
  RunResult r = RunCli("calibrate " + kModel + " --target tflite-int8 --calib random:1 --observer median -o " + out, dir_);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("median"), std::string::npos) << r.err;

  r = RunCli("calibrate " + kModel + " --target tflite-int8 --calib " + dir_ + "/missing -o " + out, dir_);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(dir_ + "/missing"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));

  r = RunCli("calibrate " + kModel + " --target no-such-target --calib random:1 -o " + out, dir_);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("no-such-target"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace qalign
