// `qalign inspect` on the real PP-OCR models, and a truncated copy of one.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli/cli_runner.h"

namespace qalign {
namespace {

using testing::CliResult;
using testing::RunCli;

std::string ModelPath(const std::string& file) {
  const std::string path = std::string(QALIGN_MODEL_DIR) + "/" + file;
  EXPECT_TRUE(std::filesystem::exists(path)) << path << " is missing; run scripts/fetch_models.sh";
  return path;
}

nlohmann::json InspectJson(const std::vector<std::string>& args) {
  CliResult r = RunCli(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  return j;
}

TEST(InspectModelTest, DetModelText) {
  const std::string path = ModelPath("ch_PP-OCRv4_det_infer.onnx");
  CliResult r = RunCli({"inspect", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("nodes:       672 as read"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Constant               342"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("opsets:      ai.onnx 11"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("x: f32 [p2o.DynamicDimension.0,3,"), std::string::npos) << r.out;
}

TEST(InspectModelTest, DetModelJson) {
  const std::string path = ModelPath("ch_PP-OCRv4_det_infer.onnx");
  nlohmann::json j = InspectJson({"inspect", path, "--json"});
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["nodes"], 672);
  EXPECT_EQ(j["op_counts"]["Constant"], 342);
  EXPECT_EQ(j["operations_after_constant_folding"], 672 - 342);
  int64_t total = 0;
  for (const auto& [type, count] : j["op_counts"].items()) total += count.get<int64_t>();
  EXPECT_EQ(total, 672);
  ASSERT_EQ(j["inputs"].size(), 1u);
  EXPECT_EQ(j["inputs"][0]["dtype"], "f32");
  EXPECT_EQ(j["inputs"][0]["shape"][1], 3);
  EXPECT_TRUE(j["inputs"][0]["shape"][0].is_string());  // a symbolic dim, by name
  EXPECT_GT(j["parameters"]["count"].get<int64_t>(), 1000000);
  EXPECT_EQ(j["parameters"]["bytes"].get<int64_t>() % 4, 0);
}

TEST(InspectModelTest, InputShapeFixesTheDetModel) {
  const std::string path = ModelPath("ch_PP-OCRv4_det_infer.onnx");
  nlohmann::json j = InspectJson({"inspect", path, "--input-shape", "x=1,3,640,640", "--json"});
  EXPECT_EQ(j["inputs"][0]["shape"], nlohmann::json::parse("[1,3,640,640]"));
  EXPECT_EQ(j["outputs"][0]["shape"], nlohmann::json::parse("[1,1,640,640]"));
}

TEST(InspectModelTest, RecAndClsModels) {
  for (const char* file : {"ch_PP-OCRv4_rec_infer.onnx", "ch_ppocr_mobile_v2.0_cls_infer.onnx"}) {
    nlohmann::json j = InspectJson({"inspect", ModelPath(file), "--json"});
    int64_t total = 0;
    for (const auto& [type, count] : j["op_counts"].items()) total += count.get<int64_t>();
    EXPECT_EQ(j["nodes"], total) << file;
    EXPECT_GT(total, 50) << file;
    EXPECT_EQ(j["inputs"].size(), 1u) << file;
    EXPECT_EQ(j["inputs"][0]["shape"][1], 3) << file;
  }
}

TEST(InspectModelTest, TruncatedModelIsAOneLineError) {
  const std::string path = ModelPath("ch_PP-OCRv4_det_infer.onnx");
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  ASSERT_GT(bytes.size(), 1000u);
  const std::string cut = (std::filesystem::temp_directory_path() /
                           ("qalign_truncated_" + std::to_string(::getpid()) + ".onnx"))
                              .string();
  {
    std::ofstream out(cut, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  CliResult r = RunCli({"inspect", cut});
  std::filesystem::remove(cut);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.StderrLines(), 1) << r.err;
  EXPECT_EQ(r.err.rfind("qalign: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(cut), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not a valid ONNX model"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace qalign
