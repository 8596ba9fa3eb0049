// `qalign run MODEL --input NAME=FILE.npy ... --output-dir DIR [--input-shape NAME=D,..]
// [--repeat N] [--threads N] [--profile]`: FP32 inference with qalign's executor; each output is written as
// DIR/<output name>.npy; --repeat times N runs after one warm-up and prints the median.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "flags.h"
#include "ir/npy.h"
#include "onnx/importer.h"
#include "onnx/tensor_proto.h"
#include "runtime/executor.h"

namespace qalign::cli {
namespace {

struct RunFlags {
  std::string model;
  std::vector<std::string> inputs;
  std::vector<std::string> input_shapes;
  std::string output_dir;
  int repeat = 0;
  int threads = 0;
  bool profile = false;
};

// An output name as a file name: path separators and other awkward characters become '_'.
std::string SanitizeFileName(const std::string& name) {
  std::string out = name;
  for (char& c : out) {
    if (c == '/' || c == '\\' || c == ':' || c == '\0') c = '_';
  }
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

// Reads an input file: .npy, or a serialized ONNX TensorProto (.pb).
StatusOr<Tensor> ReadInputFile(const std::string& path) {
  if (path.size() >= 3 && path.substr(path.size() - 3) == ".pb") return ReadTensorProtoFile(path);
  return ReadNpy(path);
}

int RunRun(const RunFlags& flags) {
  if (flags.repeat < 0) return ReportUsageError("--repeat must be >= 0");
  // The output folder is checked before the model runs: an existing path must be a folder.
  if (!flags.output_dir.empty()) {
    std::error_code error;
    const auto status = std::filesystem::symlink_status(flags.output_dir, error);
    if (std::filesystem::exists(status) && !std::filesystem::is_directory(status)) {
      return ReportError(InvalidArgumentError(flags.output_dir,
                                              ": --output-dir exists and is not a folder"));
    }
  }
  ImportOptions options;
  auto shapes = ParseInputShapes(flags.input_shapes);
  if (!shapes.ok()) return ReportUsageError(shapes.status().message());
  options.input_shapes = *shapes;
  std::map<std::string, Tensor> feeds;
  for (const std::string& flag : flags.inputs) {
    const size_t eq = flag.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == flag.size()) {
      return ReportUsageError("--input expects NAME=FILE.npy, got '" + flag + "'");
    }
    const std::string name = flag.substr(0, eq);
    auto tensor = ReadInputFile(flag.substr(eq + 1));
    if (!tensor.ok()) return ReportError(tensor.status());
    if (!feeds.emplace(name, std::move(tensor).value()).second) {
      return ReportUsageError("--input given twice for '" + name + "'");
    }
  }
  auto graph = ImportOnnxModel(flags.model, options);
  if (!graph.ok()) return ReportError(graph.status());
  std::string input_names;
  bool dynamic = false;
  for (const Variable* v : (*graph)->inputs()) {
    if (v->is_parameter()) continue;
    input_names += (input_names.empty() ? "" : ", ") + v->name();
    if (!v->shape().fully_known()) dynamic = true;
  }
  for (const auto& [name, tensor] : feeds) {
    const Variable* v = (*graph)->FindVariable(name);
    if (!v || !v->is_graph_input()) {
      return ReportUsageError("--input names '" + name +
                              "', which is not an input of the model (inputs: " + input_names + ")");
    }
  }
  for (const Variable* v : (*graph)->inputs()) {
    if (!v->is_parameter() && !feeds.count(v->name())) {
      return ReportUsageError("model input '" + v->name() + "' needs --input " + v->name() +
                              "=FILE.npy");
    }
  }
  // Dynamic dims: import again with the fed shapes, so every intermediate shape is known.
  if (dynamic) {
    for (const auto& [name, tensor] : feeds) options.input_shapes.emplace(name, tensor.shape());
    graph = ImportOnnxModel(flags.model, options);
    if (!graph.ok()) return ReportError(graph.status());
  }
  ExecutorOptions exec_options;
  exec_options.num_threads = flags.threads;
  exec_options.profile = flags.profile;
  auto executor = Executor::Create(**graph, exec_options);
  if (!executor.ok()) return ReportError(executor.status());

  auto outputs = (*executor)->Run(feeds);
  if (!outputs.ok()) return ReportError(outputs.status());

  if (flags.repeat > 0) {
    (*executor)->reset_profile();  // profile the timed runs, not the warm-up
    std::vector<double> ms;
    for (int i = 0; i < flags.repeat; ++i) {
      const auto start = std::chrono::steady_clock::now();
      auto again = (*executor)->Run(feeds);
      const auto end = std::chrono::steady_clock::now();
      if (!again.ok()) return ReportError(again.status());
      ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    }
    std::sort(ms.begin(), ms.end());
    const size_t n = ms.size();
    const double median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
    std::printf("%s: median %.3f ms per run over %d runs (min %.3f, max %.3f), %d threads, "
                "peak live tensors %.1f MB\n",
                flags.model.c_str(), median, flags.repeat, ms.front(), ms.back(),
                (*executor)->pool()->num_threads(), (*executor)->peak_bytes() / 1e6);
  }

  if (flags.profile) {
    std::vector<std::pair<double, std::string>> by_time;
    double total = 0;
    for (const auto& [type, ms] : (*executor)->profile()) {
      by_time.emplace_back(ms, type);
      total += ms;
    }
    std::sort(by_time.rbegin(), by_time.rend());
    const int runs = std::max(1, flags.repeat);
    std::printf("time per op type (ms per run, over %d runs):\n", runs);
    for (const auto& [ms, type] : by_time) {
      std::printf("  %-24s %10.3f  %5.1f%%\n", type.c_str(), ms / runs, 100.0 * ms / total);
    }
  }

  if (!flags.output_dir.empty()) {
    std::error_code error;
    std::filesystem::create_directories(flags.output_dir, error);
    if (error) {
      return ReportError(IoError(flags.output_dir, ": cannot create the output folder: ",
                                 error.message()));
    }
    for (const Variable* v : (*graph)->outputs()) {
      const std::string path = flags.output_dir + "/" + SanitizeFileName(v->name()) + ".npy";
      Status written = WriteNpy(path, outputs->at(v->name()));
      if (!written.ok()) return ReportError(written);
      std::printf("%s -> %s %s %s\n", v->name().c_str(), path.c_str(),
                  DataTypeName(outputs->at(v->name()).dtype()),
                  ShapeToString(outputs->at(v->name()).shape()).c_str());
    }
  }
  return kExitOk;
}

}  // namespace

void AddRunCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand("run", "Run FP32 inference with qalign's executor");
  auto flags = std::make_shared<RunFlags>();
  AddModelFlags(sub, &flags->model, &flags->input_shapes, "ONNX model file");
  sub->add_option("--input", flags->inputs, "Feed a graph input: NAME=FILE.npy (repeatable)")
      ->allow_extra_args(false)
      ->take_all();
  sub->add_option("--output-dir", flags->output_dir, "Write each output as DIR/<name>.npy");
  sub->add_option("--repeat", flags->repeat,
                  "Time N runs after one warm-up and print the median ms per run");
  AddThreadsFlag(sub, &flags->threads);
  sub->add_flag("--profile", flags->profile, "Print the time spent per op type");
  sub->callback([&context, flags] { context.run = [flags] { return RunRun(*flags); }; });
}

}  // namespace qalign::cli
