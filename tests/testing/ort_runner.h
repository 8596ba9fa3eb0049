// Runs an ONNX model in ONNX Runtime (node + tests/ort/run_ort.js) and returns its outputs, so
// tests can compare qalign's models and results against a reference runtime.
// Link qalign_ir (for .npy I/O). Needs `node` on PATH and QALIGN_ORT_DIR/node_modules installed.
#pragma once

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "ir/npy.h"
#include "ir/tensor.h"
#include "qalign/status.h"

namespace qalign::testing {

namespace ort_detail {

inline std::string ShellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// The first `node` executable on PATH, or "" when there is none.
inline std::string FindNode() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t colon = dirs.find(':', start);
    if (colon == std::string::npos) colon = dirs.size();
    const std::string dir = dirs.substr(start, colon - start);
    const std::string candidate = (dir.empty() ? "." : dir) + "/node";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = colon + 1;
  }
  return "";
}

// Removes a temporary folder when it goes out of scope.
struct TempDir {
  std::string path;
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/qalign_ort_XXXXXX";
    if (char* made = ::mkdtemp(pattern.data())) path = made;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path.empty()) std::filesystem::remove_all(path, ignored);
  }
};

// Runs a shell `command`, its output (stdout and whatever it redirects) into `output`; returns
// the exit status, or -1 when it cannot start.
inline int RunCapturing(const std::string& command, std::string* output) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return -1;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output->append(buffer, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace ort_detail

// Runs `model_path` with `inputs` (graph input name -> tensor) in ONNX Runtime with one thread.
// Returns every graph output by name; errors carry ONNX Runtime's first message line.
inline StatusOr<std::map<std::string, Tensor>> RunInOnnxRuntime(
    const std::string& model_path, const std::map<std::string, Tensor>& inputs) {
  const std::string node = ort_detail::FindNode();
  if (node.empty()) return NotFoundError("node is not on PATH; ONNX Runtime tests need it");
  const std::string script = std::string(QALIGN_ORT_DIR) + "/run_ort.js";
  if (::access(script.c_str(), R_OK) != 0) return NotFoundError(script, ": runner script missing");

  ort_detail::TempDir temp;
  if (temp.path.empty()) return IoError("cannot create a temporary folder for ONNX Runtime I/O");
  std::string command = ort_detail::ShellQuote(node) + " " + ort_detail::ShellQuote(script) + " " +
                        ort_detail::ShellQuote(model_path) + " " +
                        ort_detail::ShellQuote(temp.path + "/out");
  int index = 0;
  for (const auto& [name, tensor] : inputs) {
    const std::string file = temp.path + "/input_" + std::to_string(index++) + ".npy";
    QALIGN_RETURN_IF_ERROR(WriteNpy(file, tensor));
    command += " " + ort_detail::ShellQuote(name + "=" + file);
  }
  command += " 2>&1";

  std::string output;
  const int status = ort_detail::RunCapturing(command, &output);
  if (status != 0) {
    std::string first_line = output.substr(0, output.find('\n'));
    return FailedPreconditionError(model_path, ": ONNX Runtime run failed (exit status ", status,
                                   "): ", first_line);
  }

  const std::string manifest_path = temp.path + "/out/manifest.json";
  QALIGN_ASSIGN_OR_RETURN(std::string manifest_text, ReadFileToString(manifest_path));
  nlohmann::json manifest =
      nlohmann::json::parse(manifest_text, nullptr, /*allow_exceptions=*/false);
  if (!manifest.is_object()) return InvalidArgumentError(manifest_path, ": not a JSON object");
  std::map<std::string, Tensor> outputs;
  for (const auto& [name, file] : manifest.items()) {
    if (!file.is_string())
      return InvalidArgumentError(manifest_path, ": entry '", name, "' is not a file name");
    QALIGN_ASSIGN_OR_RETURN(Tensor tensor, ReadNpy(temp.path + "/out/" + file.get<std::string>()));
    outputs.emplace(name, std::move(tensor));
  }
  return outputs;
}

// The graph ONNX Runtime runs for `model_path` with every graph optimization on
// (tests/ort/ort_fused.js): {"op_counts", "round_trips", "dq_consumers", "q_producers"}.
inline StatusOr<nlohmann::json> OptimizedGraphInOnnxRuntime(const std::string& model_path) {
  const std::string node = ort_detail::FindNode();
  if (node.empty()) return NotFoundError("node is not on PATH; ONNX Runtime tests need it");
  const std::string script = std::string(QALIGN_ORT_DIR) + "/ort_fused.js";
  if (::access(script.c_str(), R_OK) != 0) return NotFoundError(script, ": script missing");
  ort_detail::TempDir temp;
  if (temp.path.empty()) return IoError("cannot create a temporary folder for ONNX Runtime I/O");
  const std::string out = temp.path + "/fused.json";
  const std::string command = ort_detail::ShellQuote(node) + " " + ort_detail::ShellQuote(script) +
                              " " + ort_detail::ShellQuote(model_path) + " " +
                              ort_detail::ShellQuote(out) + " 2>&1";
  std::string output;
  if (ort_detail::RunCapturing(command, &output) != 0) {
    return FailedPreconditionError(model_path, ": ort_fused.js failed: ",
                                   output.substr(0, output.find('\n')));
  }
  QALIGN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(out));
  nlohmann::json result = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!result.is_object()) return InvalidArgumentError(out, ": not a JSON object");
  return result;
}

}  // namespace qalign::testing
