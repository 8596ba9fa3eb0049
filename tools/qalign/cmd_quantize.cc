// `qalign quantize`: FP32 ONNX -> QDQ ONNX for a target: dispatch, calibrate, align, export.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "core/logging.h"
#include "onnx/importer.h"
#include "qalign/quantize.h"

namespace qalign::cli {
namespace {

struct QuantizeFlags {
  QuantizeOptions options;
  std::vector<std::string> input_shapes;
  bool force_overlap = false;
  bool no_force_overlap = false;
};

int RunQuantize(QuantizeFlags& flags) {
  QuantizeOptions& options = flags.options;
  for (const std::string& flag : flags.input_shapes) {
    auto parsed = ParseInputShapeFlag(flag);
    if (!parsed.ok()) return ReportUsageError("--input-shape: " + parsed.status().message());
    options.input_shapes[parsed->first] = parsed->second;
  }
  if (flags.force_overlap) options.force_overlap = true;
  if (flags.no_force_overlap) options.force_overlap = false;
  if (options.quiet) SetLogLevel(LogLevel::kWarning);
  auto summary = QuantizeModel(options);
  if (!summary.ok()) return ReportError(summary.status());
  std::fputs(summary->ToText().c_str(), stdout);
  return kExitOk;
}

}  // namespace

void AddQuantizeCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand(
      "quantize", "Quantize a model end to end: calibrate, align, export QDQ ONNX");
  auto flags = std::make_shared<QuantizeFlags>();
  QuantizeOptions& o = flags->options;
  sub->add_option("model", o.model_path, "FP32 ONNX model (never overwritten)")->required();
  sub->add_option("--target", o.target,
                  "Target profile: tflite-int8, ort-qdq-u8s8, trt-int8, qnn-u8, ppq-default or a "
                  "JSON file")
      ->required();
  sub->add_option("--calib", o.calib_spec,
                  "Calibration data: random:N[?seed=S], npy:DIR, pb:DIR, image:DIR[?size=WxH&...]")
      ->required();
  sub->add_option("-o,--output", o.output_path, "Where to write the QDQ ONNX model")->required();
  sub->add_option("--input-shape", flags->input_shapes, "Fix a graph input's dims: NAME=D,D,..");
  sub->add_option("--observer", o.observer, "minmax (default), percentile, kl, mse");
  sub->add_option("--percentile", o.percentile, "For --observer percentile (default 99.99)");
  sub->add_option("--align", o.align, "Override a rule's method per op type: TYPE=METHOD");
  sub->add_option("--align-node", o.align_node, "Override the method for one node: NAME=METHOD");
  auto* on = sub->add_flag("--force-overlap", flags->force_overlap,
                           "A rule on a shared tensor pulls its producer and all consumers in");
  auto* off = sub->add_flag("--no-force-overlap", flags->no_force_overlap,
                            "A rule on a shared tensor gets a requantize edge instead");
  on->excludes(off);
  sub->add_flag("--no-fold{false}", o.fold,
                "Keep BatchNormalization and per-channel Mul/Add after a Conv as separate ops");
  sub->add_flag("--no-equalize{false}", o.equalize,
                "No cross-layer equalization of Conv -> Conv pairs");
  sub->add_flag("--no-align", o.no_align,
                "Do not align: every rule's method becomes none (violations are warnings)");
  sub->add_option("--report", o.report_path, "Write the JSON alignment report here");
  sub->add_option("--table", o.table_path, "Write the JSON quantization table here");
  sub->add_option("--trt-cache", o.trt_cache_path, "Write a TensorRT calibration cache here");
  sub->add_option("--eval-samples", o.eval_samples,
                  "Samples the summary's SNR runs on, at most (default 8; 0: no evaluation)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--holdout", o.holdout,
                  "Calibration samples held out for the SNR in the summary (default: a fifth)");
  sub->add_option("--threads", o.num_threads, "Executor threads (default: all cores)");
  sub->add_flag("--quiet", o.quiet, "No progress bars or notes");
  sub->callback([&context, flags] { context.run = [flags] { return RunQuantize(*flags); }; });
}

}  // namespace qalign::cli
