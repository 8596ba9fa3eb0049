// `qalign calibrate MODEL --target T --calib SPEC [--observer minmax|percentile|kl|mse]
//  [--percentile P] [--input-shape NAME=D,..]... [--num-samples K] [--threads N] [--quiet]
//  -o ranges.json`: runs the model on calibration data and writes the range of every activation
// tensor the target quantizes, with its histogram, in the ranges.json format (quant/ranges.h).
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "calib/calibrator.h"
#include "calib/data_loader.h"
#include "cli.h"
#include "core/file_util.h"
#include "onnx/importer.h"
#include "onnx/tensor_proto.h"
#include "quant/dispatch.h"
#include "quant/ranges.h"
#include "quant/target_profile.h"

namespace qalign::cli {
namespace {

struct CalibrateFlags {
  std::string model;
  std::string target;
  std::string calib;
  std::string observer = "minmax";
  double percentile = 99.99;
  std::vector<std::string> input_shapes;
  size_t num_samples = 0;  // 0: all
  int threads = 0;
  bool histograms = false;
  bool quiet = false;
  std::string output;
};

// The activation tensors the target quantizes, each once, with the scheme of its producer-side
// TQC (or of its first quantized consumer for graph inputs). OVERLAPPED ports (an output fused
// into the following activation) are not quantized separately, so they are not observed.
std::vector<ObservedTensor> QuantizedActivations(const Graph& graph, QuantConfigTable& table) {
  std::map<const Variable*, const TQC*> chosen;
  for (const TQC* tqc : table.all()) {
    if (tqc->role != TensorRole::kActivation || tqc->port.tensor == nullptr) continue;
    if (!IsQuantizedState(tqc->state) || tqc->state == QuantState::kOverlapped) continue;
    if (tqc->floating() || tqc->port.tensor->is_parameter()) continue;
    if (tqc->port.tensor->dtype() != DataType::kFloat) continue;
    auto [it, inserted] = chosen.emplace(tqc->port.tensor, tqc);
    if (!inserted && !tqc->port.is_input) it->second = tqc;  // prefer the producer side
  }
  std::vector<ObservedTensor> tensors;
  for (const Variable* v : graph.variables()) {  // graph order, for stable output
    auto it = chosen.find(v);
    if (it != chosen.end()) tensors.push_back({v, it->second->scheme});
  }
  return tensors;
}

int RunCalibrate(const CalibrateFlags& flags) {
  auto observer = ParseObserverKind(flags.observer);
  if (!observer.ok()) return ReportUsageError(observer.status().message());
  if (!(flags.percentile > 50.0 && flags.percentile <= 100.0)) {
    return ReportUsageError("--percentile must be in (50, 100]");
  }
  ImportOptions import_options;
  for (const std::string& flag : flags.input_shapes) {
    auto parsed = ParseInputShapeFlag(flag);
    if (!parsed.ok()) return ReportUsageError(parsed.status().message());
    if (!import_options.input_shapes.emplace(parsed->first, parsed->second).second) {
      return ReportUsageError("--input-shape given twice for '" + parsed->first + "'");
    }
  }
  if (SameFile(flags.output, flags.model)) {
    return ReportError(InvalidArgumentError(flags.output, ": refusing to overwrite the model"));
  }

  auto graph = ImportOnnxModel(flags.model, import_options);
  if (!graph.ok()) return ReportError(graph.status());
  auto profile = LoadTargetProfile(flags.target);
  if (!profile.ok()) return ReportError(profile.status());
  QuantConfigTable table;
  auto dispatched = DispatchQuantization(**graph, *profile, &table);
  if (!dispatched.ok()) return ReportError(dispatched.status());
  const std::vector<ObservedTensor> tensors = QuantizedActivations(**graph, table);

  DataLoaderOptions loader_options;
  loader_options.read_tensor_proto = ReadTensorProtoFile;
  auto data = OpenCalibrationData(flags.calib, ModelInputSpecs(**graph), loader_options);
  if (!data.ok()) return ReportError(data.status());
  std::shared_ptr<const CalibrationDataset> samples = *data;
  if (flags.num_samples > 0) samples = SplitHoldout(samples, flags.num_samples).calibration;

  CalibrationOptions options;
  options.observer.kind = *observer;
  options.observer.percentile = flags.percentile;
  options.progress = flags.quiet ? ProgressMode::kQuiet : ProgressMode::kAuto;
  options.num_threads = flags.threads;
  options.keep_histograms = flags.histograms;
  auto result = RunCalibration(**graph, tensors, *samples, options);
  if (!result.ok()) return ReportError(result.status());

  const Status saved = SaveRanges(ToRangeMap(*result), flags.output);
  if (!saved.ok()) return ReportError(saved);
  if (!flags.quiet) {
    std::fprintf(stderr,
                 "qalign: calibrated %zu tensors on %zu samples (%s, target %s) in %.2f s "
                 "(%.2f samples/s through the model, %.2f s in the observers), peak tensors "
                 "%.1f MiB -> %s\n",
                 result->tensors.size(), result->samples, ObserverKindName(*observer),
                 profile->name.c_str(), result->seconds,
                 static_cast<double>(result->samples) / std::max(result->run_seconds, 1e-9),
                 result->seconds - result->run_seconds,
                 static_cast<double>(result->peak_bytes) / (1024.0 * 1024.0),
                 flags.output.c_str());
  }
  return kExitOk;
}

}  // namespace

void AddCalibrateCommand(CLI::App& app, CommandContext& context) {
  auto flags = std::make_shared<CalibrateFlags>();
  auto* sub = app.add_subcommand("calibrate", "Calibrate activation ranges on sample data");
  sub->add_option("model", flags->model, "ONNX model file")->required();
  sub->add_option("--target", flags->target, "Target profile name or JSON file")->required();
  sub->add_option("--calib", flags->calib,
                  "Calibration data: random:N, [npy:]DIR, [pb:]DIR or image:DIR?size=WxH&...")
      ->required();
  sub->add_option("--observer", flags->observer, "minmax (default), percentile, kl or mse");
  sub->add_option("--percentile", flags->percentile, "Percentile for --observer percentile")
      ->default_val(99.99);
  sub->add_option("--input-shape", flags->input_shapes, "Fix an input's dims: NAME=D,D,...");
  sub->add_option("--num-samples", flags->num_samples,
                  "Use only the first N samples (the rest are held out)");
  sub->add_option("--threads", flags->threads, "Executor threads (default: all cores)");
  sub->add_flag("--histograms", flags->histograms,
                "Write each tensor's histogram into ranges.json (minmax skips binning otherwise)");
  sub->add_flag("--quiet", flags->quiet, "No progress or summary on stderr");
  sub->add_option("-o,--output", flags->output, "ranges.json to write")->required();
  sub->callback([&context, flags] { context.run = [flags] { return RunCalibrate(*flags); }; });
}

}  // namespace qalign::cli
