// `qalign quantize`: FP32 ONNX -> QDQ ONNX for a target: rewrite, dispatch, calibrate (or read
// the ranges calibrate wrote), align, export, and the output SNR of the result on held-out samples.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "core/logging.h"
#include "flags.h"
#include "qalign/quantize.h"

namespace qalign::cli {
namespace {

struct QuantizeFlags {
  QuantizeOptions options;
  std::vector<std::string> input_shapes;
  std::optional<bool> bias_correction;  // --bias-correction / --no-bias-correction
  double accuracy_budget_db = 0.0;
  bool strict = false;  // an accuracy budget not met is exit 1 (the best model is still written)
};

int RunQuantize(QuantizeFlags& flags) {
  QuantizeOptions& options = flags.options;
  auto shapes = ParseInputShapes(flags.input_shapes);
  if (!shapes.ok()) return ReportUsageError(shapes.status().message());
  options.input_shapes = *shapes;
  options.bias_correction = flags.bias_correction;
  Status checked = CheckCalibrationDataOptions(options);
  if (checked.ok()) checked = CheckAlignOverrides(options);
  if (!checked.ok()) return ReportUsageError(checked.message());
  if (options.calib_spec.empty() && options.ranges_path.empty()) {
    return ReportUsageError("quantize needs --calib or --ranges");
  }
  if (options.quiet) SetLogLevel(LogLevel::kWarning);
  auto summary = QuantizeModel(options);
  if (!summary.ok()) return ReportError(summary.status());
  std::fputs(summary->ToText().c_str(), stdout);
  if (flags.strict && !summary->budget_met) {
    return ReportError(FailedPreconditionError(
        options.model_path, ": --strict: the accuracy budget of ",
        flags.accuracy_budget_db, " dB is not met (the best model found was written to ",
        options.output_path, ")"));
  }
  return kExitOk;
}

}  // namespace

void AddQuantizeCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand("quantize",
                                 "Quantize a model end to end: calibrate, align, export QDQ ONNX");
  auto flags = std::make_shared<QuantizeFlags>();
  QuantizeOptions& o = flags->options;
  AddModelFlags(sub, &o.model_path, &flags->input_shapes, "FP32 ONNX model (never overwritten)");
  AddTargetFlag(sub, &o.target);
  AddCalibrationFlags(sub, &o);
  auto* ranges = sub->add_option(
      "--ranges", o.ranges_path,
      "ranges.json from calibrate, used instead of calibrating: with calibrate's --calib and "
      "--holdout, the model quantize alone writes (byte for byte with --threads 1; with more, "
      "sums may round differently from run to run). --calib is then optional: "
      "it gives the SNR on its held-out samples; without it there is no SNR and the export's "
      "shapes run uses one random sample of the input shapes");
  ranges->excludes(sub->get_option("--observer"));
  ranges->excludes(sub->get_option("--percentile"));
  sub->add_option("-o,--output", o.output_path, "Where to write the QDQ ONNX model")->required();
  AddRewriteFlags(sub, &o);
  AddAlignFlags(sub, &o);
  AddSaturationFlag(sub, &o);
  sub->add_flag_function(
      "--bias-correction,!--no-bias-correction",
      [flags](int64_t count) { flags->bias_correction = count > 0; },
      "Fold the mean output shift that weight quantization causes on the calibration data into "
      "each Conv / ConvTranspose / Gemm bias (needs --calib; default: on for targets whose "
      "weights are per-tensor or have fewer than 255 levels, as ort-qdq-u8s8's [-64, 64])");
  sub->add_flag("--optimize-weights", o.optimize_weights,
                "Round each Conv / Gemm / MatMul weight up or down where that moves the op's "
                "output least on the calibration data (AdaRound-style, layer by layer; needs "
                "--calib; the weight scales stay the target's)");
  sub->add_flag("--no-align", o.no_align,
                "Do not align: every rule's method becomes none (violations are warnings)");
  sub->add_option("--report", o.report_path, "Write the JSON alignment report here");
  sub->add_option("--table", o.table_path, "Write the JSON quantization table here");
  sub->add_option("--trt-cache", o.trt_cache_path, "Write a TensorRT calibration cache here");
  sub->add_option("--eval-samples", o.eval_samples,
                  "Held-out samples the summary's SNR runs on, at most (default 8; 0: no "
                  "evaluation)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--exclude", o.exclude,
                  "Keep these ops in FP32: an op name or an op type, repeatable or a comma list")
      ->delimiter(',');
  sub->add_option("--int16", o.int16,
                  "Quantize these ops' activations at 16 bits (targets with an activation16 "
                  "scheme, e.g. qnn-u8): an op name or an op type, repeatable or a comma list")
      ->delimiter(',');
  auto* budget = sub->add_option(
      "--accuracy-budget", flags->accuracy_budget_db,
      "Keep the fewest ops in FP32 (at 16 bits on a target with an activation16 scheme) until "
      "every output's SNR against FP32 (on the evaluation samples) is at least DB; the summary "
      "and --report say which ops and why");
  sub->add_option("--max-fp32-ops", o.max_fp32_ops,
                  "With --accuracy-budget: ops it may keep in FP32 at most (default 5 % of the "
                  "ops, at least 1)")
      ->check(CLI::NonNegativeNumber)
      ->needs(budget);
  sub->add_flag("--strict", flags->strict,
                "With --accuracy-budget: exit 1 when the budget is not met (the best model found "
                "is still written)")
      ->needs(budget);
  AddThreadsFlag(sub, &o.num_threads);
  AddQuietFlag(sub, &o.quiet);
  sub->callback([&context, flags, budget] {
    if (budget->count() > 0) flags->options.accuracy_budget_db = flags->accuracy_budget_db;
    context.run = [flags] { return RunQuantize(*flags); };
  });
}

}  // namespace qalign::cli
