// Whole-model timing of qalign's executor with a per-op-type breakdown (time between successive
// tensor hooks is charged to the op that produced the tensor), to see where a model spends its
// time next to ONNX Runtime's profile.
//
//   build-*/bench/nn_model_bench MODEL INPUT.npy [REPEAT] [--reference]
//   e.g. nn_model_bench .cache/models/ch_PP-OCRv4_det_infer.onnx det.npy 10
// The input .npy can be made with `node bench/ort_time.js --make-npy F --shape 1,3,640,640`.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "ir/npy.h"
#include "onnx/importer.h"
#include "runtime/executor.h"

namespace {

using Clock = std::chrono::steady_clock;

int Fail(const qalign::Status& status) {
  std::fprintf(stderr, "nn_model_bench: %s\n", status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: nn_model_bench MODEL INPUT.npy [REPEAT] [--reference]\n");
    return 2;
  }
  const std::string model_path = argv[1];
  const int repeat = argc > 3 && argv[3][0] != '-' ? std::atoi(argv[3]) : 10;
  bool reference = false;
  for (int i = 3; i < argc; ++i) reference |= std::string(argv[i]) == "--reference";

  auto input = qalign::ReadNpy(argv[2]);
  if (!input.ok()) return Fail(input.status());
  qalign::ImportOptions import_options;
  auto graph = qalign::ImportOnnxModel(model_path, import_options);
  if (!graph.ok()) return Fail(graph.status());
  if ((*graph)->inputs().size() != 1) {
    return Fail(qalign::InvalidArgumentError(model_path, ": expected one graph input"));
  }
  qalign::ExecutorOptions options;
  options.flavor = reference ? qalign::KernelFlavor::kReference : qalign::KernelFlavor::kFast;
  auto executor = qalign::Executor::Create(**graph, options);
  if (!executor.ok()) return Fail(executor.status());

  // Per op type: accumulated ms over the timed runs.
  std::map<std::string, double> by_type;
  std::map<std::string, double> by_conv;  // Conv / ConvTranspose by input shape
  Clock::time_point last = Clock::now();
  bool record = false;
  (*executor)->set_hook([&](const qalign::Variable& variable, qalign::Tensor&) {
    const Clock::time_point now = Clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - last).count();
    if (record && variable.producer() != nullptr) {
      const qalign::Operation* op = variable.producer();
      by_type[op->type()] += ms;
      if (op->type() == "Conv" || op->type() == "ConvTranspose") {
        std::string key = op->type() + " " + op->name() + " " + op->input(0)->shape().ToString();
        if (op->input(1) != nullptr) key += " w" + op->input(1)->shape().ToString();
        key += " g" + std::to_string(op->GetInt("group", 1)) + " s" +
               std::to_string(op->GetInts("strides", {1}).front());
        by_conv[key] += ms;
      }
    }
    last = Clock::now();
  });

  const std::string input_name = (*graph)->inputs()[0]->name();
  std::vector<double> times;
  for (int i = 0; i <= repeat; ++i) {
    std::map<std::string, qalign::Tensor> feeds;
    feeds[input_name] = *input;
    record = i > 0;  // the first run is the warm-up (primitive creation, layout choice)
    const Clock::time_point start = Clock::now();
    last = start;
    auto outputs = (*executor)->Run(std::move(feeds));
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (!outputs.ok()) return Fail(outputs.status());
    if (i > 0) times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  std::printf("qalign_ms_per_iter %.3f min %.3f runs %d (%s kernels)\n", times[times.size() / 2],
              times[0], repeat, reference ? "reference" : "fast");
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [type, ms] : by_type) rows.push_back({ms / repeat, type});
  std::sort(rows.rbegin(), rows.rend());
  for (const auto& [ms, type] : rows) std::printf("  %-22s %9.3f ms/iter\n", type.c_str(), ms);
  rows.clear();
  for (const auto& [name, ms] : by_conv) rows.push_back({ms / repeat, name});
  std::sort(rows.rbegin(), rows.rend());
  std::printf("  slowest convolutions:\n");
  for (size_t i = 0; i < rows.size() && i < 12; ++i) {
    std::printf("    %-70s %9.3f ms/iter\n", rows[i].second.c_str(), rows[i].first);
  }
  return 0;
}
