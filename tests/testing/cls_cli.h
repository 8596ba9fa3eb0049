// What the CLI tests on the real PP-OCR cls model share: the model, the flags every run takes, a
// scratch folder and reading a written file back.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace qalign::testing {

inline std::string ClsModel() {
  return std::string(QALIGN_MODEL_DIR) + "/ch_ppocr_mobile_v2.0_cls_infer.onnx";
}

// For ASSERT_TRUE: the model is there, or a message saying how to fetch it.
inline ::testing::AssertionResult ClsModelExists() {
  if (std::filesystem::exists(ClsModel())) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << ClsModel() << " is missing: run scripts/fetch_models.sh";
}

// `command MODEL --target TARGET --input-shape x=1,3,48,192 --threads 1 --quiet`: one thread,
// since the executor's multi-threaded sums are not bit-reproducible and the tests compare models
// byte for byte; no progress.
inline std::vector<std::string> ClsCommand(const std::string& command, const std::string& target) {
  return {command,   ClsModel(), "--target", target, "--input-shape", "x=1,3,48,192",
          "--threads", "1",        "--quiet"};
}

// `args` followed by `more`.
inline std::vector<std::string> Plus(std::vector<std::string> args,
                                     const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// A new folder qalign_<tag>_XXXXXX in the system's temporary folder, or "" when it cannot be made.
// The caller removes it.
inline std::string MakeScratchDir(const std::string& tag) {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / ("qalign_" + tag + "_XXXXXX")).string();
  return mkdtemp(tmpl.data()) != nullptr ? tmpl : std::string();
}

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace qalign::testing
