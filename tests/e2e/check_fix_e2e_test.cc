// qalign check / fix end to end on PP-OCRv4 det (320x320): `qalign quantize --no-align` leaves the
// target's rules broken; `qalign check` must report them (exit 1, JSON listing op, tensors, scales
// and zero points); `qalign fix` must repair them without touching its input; `check` must then
// be clean; and in ONNX Runtime the fixed model's output SNR against the FP32 model must be within
// 1 dB of the model `qalign quantize` aligned directly from the same calibration data.
// det is used rather than cls: its output is a 320x320 map, so the SNR is a stable average; cls
// has two output values per image, where one flipped rounding moves the SNR by a decibel.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "calib/data_loader.h"
#include "cli/cli_runner.h"
#include "core/file_util.h"
#include "onnx/importer.h"
#include "qalign/quantize.h"
#include "qdq/qdq_check.h"
#include "qdq/qdq_import.h"
#include "qdq/qdq_verify.h"
#include "sim/metrics.h"
#include "testing/ort_runner.h"

namespace qalign {
namespace {

constexpr int kCalibImages = 8;
constexpr int kHeldOut = 4;
const char* kPreprocess = "?size=320x320&mean=0.485,0.456,0.406&std=0.229,0.224,0.225";

TEST(CheckFixE2eTest, FixOfUnalignedDetMatchesDirectAlignment) {
  const std::string model = std::string(QALIGN_MODEL_DIR) + "/ch_PP-OCRv4_det_infer.onnx";
  ASSERT_TRUE(std::filesystem::exists(model)) << model << " missing: run scripts/fetch_models.sh";
  const std::string dir = ::testing::TempDir() + "/qalign_check_fix_e2e";
  std::filesystem::remove_all(dir);
  const std::string images = dir + "/images";
  const std::string command = std::string(QALIGN_SOURCE_DIR) + "/scripts/make_calib_images.sh " +
                              images + " det " + std::to_string(kCalibImages + kHeldOut) +
                              " > /dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const std::string calib = dir + "/calib", held = dir + "/held";
  std::filesystem::create_directories(calib);
  std::filesystem::create_directories(held);
  for (int i = 0; i < kCalibImages + kHeldOut; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "det_%03d.png", i);
    std::filesystem::copy_file(images + "/" + name, (i < kCalibImages ? calib : held) + "/" + name);
  }

  // The same job twice: aligned, and with alignment switched off.
  QuantizeOptions options;
  options.model_path = model;
  options.target = "tflite-int8";
  options.calib_spec = "image:" + calib + kPreprocess;
  options.input_shapes["x"] = {1, 3, 320, 320};
  options.holdout = 0;
  options.quiet = true;
  options.output_path = dir + "/aligned.onnx";
  auto aligned = QuantizeModel(options);
  ASSERT_TRUE(aligned.ok()) << aligned.status().ToString();
  EXPECT_EQ(aligned->violations, 0);
  options.output_path = dir + "/unaligned.onnx";
  options.no_align = true;
  auto unaligned = QuantizeModel(options);
  ASSERT_TRUE(unaligned.ok()) << unaligned.status().ToString();

  // check: violations found, exit 1, JSON names op, tensors, scales and zero points.
  const std::string unaligned_path = dir + "/unaligned.onnx";
  auto check = testing::RunCli({"check", unaligned_path, "--target", "tflite-int8", "--json"});
  ASSERT_EQ(check.exit_code, 1) << check.err;
  auto report = nlohmann::json::parse(check.out);
  ASSERT_GT(report["violations"].size(), 0u);
  for (const auto& v : report["violations"]) {
    EXPECT_FALSE(v["op_type"].get<std::string>().empty());
    EXPECT_FALSE(v["rule"].get<std::string>().empty());
    ASSERT_GE(v["ports"].size(), 1u);
    for (const auto& p : v["ports"]) {
      EXPECT_FALSE(p["tensor"].get<std::string>().empty());
      EXPECT_EQ(p["scale"].size(), p["zero_point"].size());
    }
  }
  // The file verifier (independent of the importer) agrees there are violations.
  auto profile = LoadTargetProfile("tflite-int8");
  ASSERT_TRUE(profile.ok());
  {
    auto view = ImportQdqModelFile(unaligned_path, *profile);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    EXPECT_EQ(CheckQdqModel(**view).violations.size(), report["violations"].size());
    EXPECT_FALSE(VerifyQdqModel((*view)->model, *profile).empty());
  }
  auto clean = testing::RunCli({"check", dir + "/aligned.onnx", "--target", "tflite-int8"});
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;

  // fix: never over its input; the repaired model passes check.
  auto before = ReadFileToString(unaligned_path);
  ASSERT_TRUE(before.ok());
  auto refused = testing::RunCli({"fix", unaligned_path, "--target", "tflite-int8", "-o",
                                  unaligned_path});
  EXPECT_EQ(refused.exit_code, 1);
  const std::string fixed_path = dir + "/fixed.onnx";
  auto fix = testing::RunCli({"fix", unaligned_path, "--target", "tflite-int8", "-o", fixed_path,
                              "--report", dir + "/fix.json"});
  ASSERT_EQ(fix.exit_code, 0) << fix.out << fix.err;
  EXPECT_EQ(*ReadFileToString(unaligned_path), *before);
  auto fix_report = nlohmann::json::parse(*ReadFileToString(dir + "/fix.json"));
  EXPECT_EQ(fix_report["summary"]["violations_before"], report["violations"].size());
  EXPECT_EQ(fix_report["summary"]["violations_after"], 0);
  EXPECT_GT(fix_report["changes"].size(), 0u);
  auto after = testing::RunCli({"check", fixed_path, "--target", "tflite-int8"});
  EXPECT_EQ(after.exit_code, 0) << after.out << after.err;

  // ONNX Runtime: SNR of each quantized model against the FP32 model on the held-out images.
  ImportOptions import_options;
  import_options.input_shapes["x"] = {1, 3, 320, 320};
  auto graph = ImportOnnxModel(model, import_options);
  ASSERT_TRUE(graph.ok());
  auto data = OpenCalibrationData("image:" + held + kPreprocess, ModelInputSpecs(**graph));
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ::setenv("QALIGN_ORT_OPTIMIZATION", "disabled", 1);
  ErrorAccumulator aligned_err, fixed_err;
  for (size_t i = 0; i < (*data)->size(); ++i) {
    auto sample = (*data)->Load(i);
    ASSERT_TRUE(sample.ok());
    auto ref = testing::RunInOnnxRuntime(model, *sample);
    ASSERT_TRUE(ref.ok()) << ref.status().ToString();
    auto a = testing::RunInOnnxRuntime(dir + "/aligned.onnx", *sample);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    auto f = testing::RunInOnnxRuntime(fixed_path, *sample);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    for (const auto& [name, tensor] : *ref) {
      ASSERT_TRUE(aligned_err.Add(tensor, a->at(name), name).ok());
      ASSERT_TRUE(fixed_err.Add(tensor, f->at(name), name).ok());
    }
  }
  std::printf("[ check/fix e2e ] det 320x320 tflite-int8, %d calibration + %zu held-out images, "
              "output SNR vs FP32 in ONNX Runtime: aligned by quantize %.2f dB, fixed %.2f dB "
              "(%zu violations before, %zu changes)\n",
              kCalibImages, (*data)->size(), aligned_err.SnrDb(),
              fixed_err.SnrDb(), report["violations"].size(), fix_report["changes"].size());
  EXPECT_NEAR(fixed_err.SnrDb(), aligned_err.SnrDb(), 1.0);
}

}  // namespace
}  // namespace qalign
