// The public end-to-end API (include/qalign/quantize.h): CalibrateModel, AlignModel and
// QuantizeModel run the steps of pipeline.h on the same tensors; EvaluateModels compares models.
#include "qalign/quantize.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "calib/calibrator.h"
#include "calib/data_loader.h"
#include "calib/observer.h"
#include "calib/observer_choice.h"
#include "calib/progress.h"
#include "core/file_util.h"
#include "core/logging.h"
#include "export/alignment_report.h"
#include "export/qdq_export.h"
#include "export/quant_plan.h"
#include "export/quant_tables.h"
#include "onnx/importer.h"
#include "onnx/tensor_proto.h"
#include "pipeline/accuracy_budget.h"
#include "pipeline/align_overrides.h"
#include "pipeline/mixed_precision.h"
#include "pipeline/pipeline.h"
#include "quant/target_profile.h"
#include "runtime/executor.h"
#include "sim/fake_quant.h"
#include "sim/metrics.h"
#include "sim/qdq_kernels.h"

namespace qalign {
namespace {

using Clock = std::chrono::steady_clock;
double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Bias correction is on by default where weight rounding shifts the outputs most: per-tensor
// weights, or weights with fewer than 255 levels (ort-qdq-u8s8's [-64, 64]). There it pays: on
// PP-OCR in ort-qdq-u8s8, det's region F1 98.18 -> 99.48 %, rec's characters 99.10 -> 99.70 %.
// With 8-bit per-channel weights the shift is small and the correction, measured on few samples,
// costs as much as it corrects (rec on tflite-int8 99.91 -> 99.14 %).
bool CoarseWeights(const QuantScheme& weight) {
  return !weight.policy.Has(kPerChannel) || weight.quant_max - weight.quant_min + 1 < 255;
}

std::string Fixed(double v, int digits) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, v);
  return buffer;
}

std::string Scientific(double v) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.4g", v);
  return buffer;
}

std::string Join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i == 0 ? "" : separator) + parts[i];
  return out;
}

OutputQuality QualityOf(const ErrorAccumulator& e) {
  return OutputQuality{e.SnrDb(), e.Cosine(), e.max_abs_error};
}

StatusOr<std::shared_ptr<const CalibrationDataset>> OpenData(const std::string& spec,
                                                             const Graph& graph) {
  DataLoaderOptions loader;
  loader.read_tensor_proto = [](const std::string& path) { return ReadTensorProtoFile(path); };
  return OpenCalibrationData(spec, ModelInputSpecs(graph), loader);
}

// The caller's data: arrays in memory when there are any, else the spec.
StatusOr<std::shared_ptr<const CalibrationDataset>> OpenData(
    const std::string& spec, const std::vector<InputSample>& samples, const Graph& graph) {
  if (!samples.empty()) {
    if (!spec.empty()) {
      return InvalidArgumentError("give calibration data as a spec (", spec,
                                  ") or as arrays, not both");
    }
    return OpenArrayData(samples, ModelInputSpecs(graph));
  }
  return OpenData(spec, graph);
}

bool HasData(const CalibrationDataOptions& options) {
  return !options.calib_spec.empty() || !options.samples.empty();
}

// The per-sample hook of the calibrator for a public ProgressCallback.
std::function<bool(size_t, size_t)> OnSample(const ProgressCallback& progress,
                                             const std::string& stage) {
  if (!progress) return {};
  return [progress, stage](size_t done, size_t total) {
    return progress(stage, static_cast<int64_t>(done), static_cast<int64_t>(total));
  };
}

// An output that would replace one of the inputs (the model, a ranges file), or that cannot be
// written (CheckOutputPath: a missing folder, a directory, device or symbolic link), is refused
// before any work is done, so no output is written when another cannot be.
Status CheckOutputsSpareInputs(const std::vector<std::string>& outputs,
                               const std::vector<std::string>& inputs) {
  for (const std::string& output : outputs) {
    if (!output.empty()) QALIGN_RETURN_IF_ERROR(CheckOutputPath(output));
    for (const std::string& input : inputs) {
      if (!output.empty() && !input.empty() && SameFile(input, output)) {
        return InvalidArgumentError(output, ": refusing to overwrite the input ", input);
      }
    }
  }
  return Status::Ok();
}

// Step 0 and the target: where calibrate, align and quantize all start.
struct PreparedModel {
  std::unique_ptr<Graph> graph;
  TargetProfile profile;
  GraphRewriteStats rewritten;
};

StatusOr<PreparedModel> PrepareModel(const ModelOptions& options) {
  PreparedModel prepared;
  QALIGN_ASSIGN_OR_RETURN(prepared.profile, LoadTargetProfile(options.target));
  ImportOptions import_options;
  import_options.input_shapes = options.input_shapes;
  QALIGN_ASSIGN_OR_RETURN(prepared.graph, ImportOnnxModel(options.model_path, import_options));
  GraphRewriteOptions rewrite;
  rewrite.fold = options.fold;
  rewrite.equalize = options.equalize;
  QALIGN_ASSIGN_OR_RETURN(prepared.rewritten,
                          RewriteForQuantization(prepared.graph.get(), rewrite));
  return prepared;
}

// The calibration samples and the held-out ones (the last `holdout`), split the same way for
// calibrate and quantize.
StatusOr<HoldoutSplit> SplitCalibrationData(std::shared_ptr<const CalibrationDataset> data,
                                            const CalibrationDataOptions& options) {
  size_t holdout = 0;
  if (options.holdout >= 0) {
    holdout = static_cast<size_t>(options.holdout);
  } else if (data->size() >= 2) {
    holdout = std::max<size_t>(1, data->size() / 5);
  }
  if (holdout >= data->size()) {
    return InvalidArgumentError(options.calib_spec, ": --holdout ", holdout,
                                " leaves no calibration sample of ", data->size());
  }
  const size_t calibration = data->size() - holdout;
  return SplitHoldout(std::move(data), calibration);
}

StatusOr<CalibrationOptions> ToCalibrationOptions(const CalibrationDataOptions& data,
                                                  const ModelOptions& model) {
  CalibrationOptions options;
  QALIGN_ASSIGN_OR_RETURN(options.observer.kind, ParseObserverKind(data.observer));
  options.observer.percentile = data.percentile;
  options.progress = model.quiet ? ProgressMode::kQuiet : ProgressMode::kAuto;
  options.on_sample = OnSample(model.progress, "calibrate");
  options.num_threads = model.num_threads;
  return options;
}

// Step 2 in the executor: every tensor the pipeline asks for is observed under the target's
// activation scheme. The whole result is kept in `*result` for callers that need more than the
// ranges (shapes, outputs, timings).
CalibrateFn ExecutorCalibration(const PreparedModel& model, const CalibrationDataset& samples,
                                const CalibrationOptions& options, CalibrationResult* result) {
  return [&model, &samples, options,
          result](const std::vector<const Variable*>& tensors) -> StatusOr<RangeMap> {
    // A Softmax's logits and its output keep their maximum whatever the observer clips, and
    // what an averaging op reads its whole range (calib/observer_choice.h).
    const std::map<std::string, KeptEnds> unclipped = UnclippedEnds(*model.graph);
    std::vector<ObservedTensor> observed;
    observed.reserve(tensors.size());
    for (const Variable* v : tensors) {
      const auto it = unclipped.find(v->name());
      const KeptEnds keep = it != unclipped.end() ? it->second : KeptEnds{};
      observed.push_back({v, model.profile.activation, keep});
    }
    QALIGN_ASSIGN_OR_RETURN(*result, RunCalibration(*model.graph, observed, samples, options));
    return ToRangeMap(*result);
  };
}

// Ranges read from a file instead of a calibration run.
CalibrateFn RangesFromFile(const RangeMap& ranges) {
  return [&ranges](const std::vector<const Variable*>&) -> StatusOr<RangeMap> { return ranges; };
}

// The JSON report align and quantize write: the alignment report, to which each step that ran
// adds its own section under its own key (keys print sorted, so the order of Add does not show).
class ReportJson {
 public:
  explicit ReportJson(const std::string& alignment_report)
      : root_(nlohmann::json::parse(alignment_report)) {}
  void Add(const std::string& key, nlohmann::json section) { root_[key] = std::move(section); }
  std::string Text() const { return root_.dump(2) + "\n"; }

 private:
  nlohmann::json root_;
};

// The tensors saturation-aware ranges narrowed.
nlohmann::json SaturationRangesJson(const SaturationRangeStats& stats) {
  nlohmann::json list = nlohmann::json::array();
  for (const NarrowedRange& n : stats.narrowed) {
    list.push_back({{"tensor", n.tensor},
                    {"consumers", n.consumers},
                    {"before", {n.min_before, n.max_before}},
                    {"after", {n.min, n.max}}});
  }
  return {{"narrowed", stats.narrowed_tensors}, {"tensors", std::move(list)}};
}

// Ops mixed precision kept in FP32 or at 16 bits, with the reason.
nlohmann::json KeptOpsJson(const std::vector<QuantizeSummary::KeptFp32Op>& kept) {
  nlohmann::json list = nlohmann::json::array();
  for (const QuantizeSummary::KeptFp32Op& k : kept) {
    list.push_back({{"op", k.op}, {"reason", k.reason}});
  }
  return list;
}

// What weight rounding did.
nlohmann::json WeightRoundingJson(const QuantizeSummary& summary) {
  return {{"layers", summary.optimized_layers},
          {"weights", summary.optimized_weights},
          {"rounded_otherwise", summary.rounded_weights},
          {"loss_nearest", summary.rounding_loss_nearest},
          {"loss_optimized", summary.rounding_loss_optimized}};
}

// The accuracy budget and whether it was met.
nlohmann::json AccuracyBudgetJson(const QuantizeSummary& summary) {
  return {{"snr_db", *summary.accuracy_budget_db},
          {"met", summary.budget_met},
          {"snr_db_before", summary.budget_base_snr_db},
          {"snr_db_after", summary.budget_snr_db},
          {"blocked_by", summary.budget_blockers}};
}

}  // namespace

// ------------------------------------------------------------------------- option checks

Status CheckCalibrationDataOptions(const CalibrationDataOptions& options) {
  QALIGN_RETURN_IF_ERROR(ParseObserverKind(options.observer).status());
  if (!(options.percentile > 50.0 && options.percentile <= 100.0)) {
    return InvalidArgumentError("--percentile must be in (50, 100], got ", options.percentile);
  }
  if (options.holdout < -1) {
    return InvalidArgumentError("--holdout must be 0 or more, got ", options.holdout);
  }
  return Status::Ok();
}

Status CheckAlignOverrides(const AlignOverrides& overrides) {
  std::map<std::string, AlignMethod> scratch;
  for (const std::string& flag : overrides.align) {
    Status s = ParseAlignAssignment(flag, &scratch);
    if (!s.ok()) return InvalidArgumentError("--align: ", s.message());
  }
  for (const std::string& flag : overrides.align_node) {
    Status s = ParseAlignAssignment(flag, &scratch);
    if (!s.ok()) return InvalidArgumentError("--align-node: ", s.message());
  }
  return Status::Ok();
}

// ----------------------------------------------------------------------------- calibrate

std::string CalibrateSummary::ToText() const {
  const std::string held_out =
      holdout_samples > 0 ? StrCat(" (", holdout_samples, " held out)") : std::string();
  return StrCat("calibrated ", tensors, " tensors on ", samples, " samples", held_out, " (",
                observer, ", target ", target, ") in ", Fixed(seconds, 2), " s (",
                Fixed(static_cast<double>(samples) / std::max(run_seconds, 1e-9), 2),
                " samples/s through the model, ", Fixed(seconds - run_seconds, 2),
                " s in the observers), peak tensors ",
                Fixed(static_cast<double>(peak_bytes) / (1024.0 * 1024.0), 1), " MiB -> ", output,
                "\n");
}

StatusOr<CalibrateSummary> CalibrateModel(const CalibrateOptions& options) {
  if (options.output_path.empty()) return InvalidArgumentError("calibrate: no output path (-o)");
  QALIGN_RETURN_IF_ERROR(CheckOutputsSpareInputs({options.output_path}, {options.model_path}));
  QALIGN_ASSIGN_OR_RETURN(CalibrationOptions calib_options, ToCalibrationOptions(options, options));
  calib_options.keep_histograms = options.histograms;
  QALIGN_ASSIGN_OR_RETURN(PreparedModel model, PrepareModel(options));
  // `qalign align` with the `optimal` method reads the histograms from the file.
  calib_options.keep_histograms |= UsesOptimalMethod(model.profile, AlignmentOptions());
  QALIGN_ASSIGN_OR_RETURN(auto data, OpenData(options.calib_spec, options.samples, *model.graph));
  QALIGN_ASSIGN_OR_RETURN(HoldoutSplit split, SplitCalibrationData(data, options));

  CalibrationResult result;
  QuantConfigTable table;
  auto calibrated = RunCalibrationSteps(
      *model.graph, model.profile,
      ExecutorCalibration(model, *split.calibration, calib_options, &result), &table);
  if (!calibrated.ok()) {
    return Status(calibrated.status().code(),
                  options.model_path + ": " + calibrated.status().message());
  }
  QALIGN_RETURN_IF_ERROR(SaveRanges(calibrated->ranges, options.output_path));

  CalibrateSummary summary;
  summary.model = options.model_path;
  summary.target = model.profile.name;
  summary.observer = ObserverKindName(calib_options.observer.kind);
  summary.output = options.output_path;
  summary.tensors = static_cast<int64_t>(result.tensors.size());
  summary.samples = static_cast<int64_t>(result.samples);
  summary.holdout_samples = static_cast<int64_t>(split.holdout->size());
  summary.seconds = result.seconds;
  summary.run_seconds = result.run_seconds;
  summary.peak_bytes = result.peak_bytes;
  return summary;
}

// --------------------------------------------------------------------------------- align

StatusOr<AlignSummary> AlignModel(const AlignOptions& options) {
  QALIGN_RETURN_IF_ERROR(
      CheckOutputsSpareInputs({options.report_path}, {options.model_path, options.ranges_path}));
  QuantizePipelineOptions pipeline_options;
  QALIGN_ASSIGN_OR_RETURN(pipeline_options.alignment, ResolveAlignOverrides(options));
  pipeline_options.allow_missing_ranges = options.allow_missing_ranges;
  pipeline_options.saturation_ranges = options.saturation_ranges;
  QALIGN_ASSIGN_OR_RETURN(RangeMap ranges, LoadRanges(options.ranges_path));
  QALIGN_ASSIGN_OR_RETURN(PreparedModel model, PrepareModel(options));

  QuantConfigTable table;
  auto pipeline = RunQuantizePipeline(*model.graph, model.profile, pipeline_options,
                                      RangesFromFile(ranges), &table);
  if (!pipeline.ok()) {
    return Status(pipeline.status().code(),
                  options.model_path + ": " + pipeline.status().message());
  }
  for (const std::string& note : pipeline->alignment.notes) LogInfo(note);
  for (const std::string& note : pipeline->derived.notes) LogInfo(note);
  AlignSummary summary;
  ReportJson report(AlignmentReportJson(model.profile.name, pipeline->alignment, table,
                                        pipeline->violations, &pipeline->derived));
  report.Add("saturation_ranges", SaturationRangesJson(pipeline->saturation));
  summary.report_json = report.Text();
  if (!options.report_path.empty()) {
    QALIGN_RETURN_IF_ERROR(
        WriteFileAtomically(options.report_path, summary.report_json, options.model_path));
  }
  summary.target = model.profile.name;
  summary.text =
      AlignmentReportText(model.profile.name, pipeline->alignment, table, pipeline->violations);
  summary.groups = pipeline->alignment.counters.groups;
  summary.requantizes = pipeline->alignment.counters.requantizes;
  for (const AlignmentViolation& v : pipeline->violations) {
    summary.violation_messages.push_back(v.message);
  }
  return summary;
}

// ------------------------------------------------------------------------------ quantize

std::string QuantizeSummary::ToText() const {
  std::string out;
  out += StrCat("quantized ", model, " for ", target, " -> ", output, "\n");
  out += StrCat("  ops: ", ops, " (", folded_ops, " folded into Conv, ", quantized_ops,
                " quantized, ", fp32_ops, " FP32); ", equalized_pairs, " Conv pairs equalized\n");
  out += StrCat("  QDQ: ", quantized_tensors, " activation pairs, ", weights, " int8 weights, ",
                biases, " int32 biases; opset ", source_opset, " -> ", opset, "\n");
  if (raised_weight_channels > 0) {
    out += StrCat("  bias fit: ", raised_weight_channels,
                  " weight channels got a larger scale so their int32 bias fits (the report's "
                  "bias_fit names each)\n");
  }
  if (saturated_ranges > 0) {
    out += StrCat("  saturation: ", saturated_ranges,
                  " ranges narrowed to where every reader saturates (the report's "
                  "saturation_ranges names each)\n");
  }
  out += StrCat("  alignment: ", groups, " groups, ", requantizes, " requantizes, ", violations,
                " violations\n");
  if (corrected_biases >= 0) out += StrCat("  bias correction: ", corrected_biases, " biases\n");
  if (optimized_layers >= 0) {
    out += StrCat("  weight rounding: ", optimized_layers, " layers, ", rounded_weights, " of ",
                  optimized_weights, " weights rounded the other way; output MSE summed over "
                  "layers ", Scientific(rounding_loss_nearest), " (nearest) -> ",
                  Scientific(rounding_loss_optimized), "\n");
  }
  if (!kept_fp32.empty() || !kept_int16.empty() || accuracy_budget_db) {
    out += StrCat("  mixed precision: ", kept_fp32.size(), " ops kept FP32, ", kept_int16.size(),
                  " ops at 16 bits (", ports_at_16_bits,
                  " activation ports at 16 bits with their groups)\n");
    for (const KeptFp32Op& k : kept_fp32) out += StrCat("    FP32 ", k.op, ": ", k.reason, "\n");
    for (const KeptFp32Op& k : kept_int16) {
      out += StrCat("    16-bit ", k.op, ": ", k.reason, "\n");
    }
  }
  if (accuracy_budget_db) {
    out += StrCat("  accuracy budget ", Fixed(*accuracy_budget_db, 2), " dB: ",
                  budget_met ? "met" : "NOT met", " (worst output SNR ",
                  Fixed(budget_base_snr_db, 2), " dB before, ", Fixed(budget_snr_db, 2),
                  " dB after)\n");
    if (!budget_met) {
      out += budget_blockers.empty()
                 ? std::string("    no further op in FP32 raises the SNR (the 8 most sensitive "
                               "left quantized were tried)\n")
                 : StrCat("    prevented by the quantization of: ", Join(budget_blockers, ", "),
                          "\n");
    }
  }
  if (!ranges_path.empty()) {
    out += StrCat("  calibration: ranges from ", ranges_path, "\n");
  } else {
    out += StrCat("  calibration: ", calibration_samples, " samples in ",
                  Fixed(calibrate_seconds, 2), " s\n");
  }
  if (evaluated_samples > 0) {
    const std::string on =
        holdout_samples > 0
            ? StrCat(evaluated_samples, " of ", holdout_samples, " held-out samples")
            : StrCat(evaluated_samples, " calibration samples (none held out)");
    out += StrCat("  output SNR vs FP32 (simulated, on ", on, "):\n");
    for (const auto& [name, q] : outputs) {
      out += StrCat("    ", name, ": SNR ", Fixed(q.snr_db, 2), " dB, cosine ", Fixed(q.cosine, 6),
                    "\n");
    }
  } else {
    out += has_data ? "  output SNR: not measured (--eval-samples 0)\n"
                    : "  output SNR: not measured (no --calib)\n";
  }
  out += StrCat("  time: ", Fixed(total_seconds, 2), " s (calibrate ", Fixed(calibrate_seconds, 2),
                ", export ", Fixed(export_seconds, 2), ", evaluate ", Fixed(evaluate_seconds, 2),
                ")\n");
  return out;
}

StatusOr<QuantizeSummary> QuantizeModel(const QuantizeOptions& options) {
  const auto start = Clock::now();
  QuantizeSummary summary;
  summary.model = options.model_path;
  summary.output = options.output_path;
  summary.ranges_path = options.ranges_path;
  if (options.output_path.empty()) return InvalidArgumentError("quantize: no output path (-o)");
  QALIGN_RETURN_IF_ERROR(CheckOutputsSpareInputs(
      {options.output_path, options.report_path, options.table_path, options.trt_cache_path},
      {options.model_path, options.ranges_path}));
  if (!HasData(options) && options.ranges_path.empty()) {
    return InvalidArgumentError("quantize: no calibration data (--calib) and no --ranges");
  }
  if (options.accuracy_budget_db &&
      (options.calib_spec.empty() || options.eval_samples <= 0 ||
       !std::isfinite(*options.accuracy_budget_db))) {
    return InvalidArgumentError(
        "quantize: --accuracy-budget needs a finite number of dB, --calib data and "
        "--eval-samples > 0 (its SNR is measured on the evaluation samples)");
  }

  // Options first, so mistakes surface before any work.
  QuantizePipelineOptions pipeline_options;
  QALIGN_ASSIGN_OR_RETURN(pipeline_options.alignment, ResolveAlignOverrides(options));
  pipeline_options.saturation_ranges = options.saturation_ranges;
  QALIGN_ASSIGN_OR_RETURN(CalibrationOptions calib_options, ToCalibrationOptions(options, options));
  RangeMap file_ranges;
  if (!options.ranges_path.empty()) {
    QALIGN_ASSIGN_OR_RETURN(file_ranges, LoadRanges(options.ranges_path));
  }
  QALIGN_ASSIGN_OR_RETURN(PreparedModel model, PrepareModel(options));
  const TargetProfile& profile = model.profile;
  const Graph& graph = *model.graph;
  if (options.no_align) {
    for (const AlignmentRule& rule : profile.rules) {
      if (rule.kind != RuleKind::kFixedOutput) {
        pipeline_options.alignment.method_by_op_type[rule.op_type] = AlignMethod::kNone;
      }
    }
  }
  auto excluded = ResolveExcludedOps(graph, options.exclude);
  if (!excluded.ok()) {
    return Status(excluded.status().code(), options.model_path + ": " + excluded.status().message());
  }
  pipeline_options.fp32_ops = *excluded;
  auto sixteen = ResolveExcludedOps(graph, options.int16, "--int16");
  if (!sixteen.ok()) {
    return Status(sixteen.status().code(), options.model_path + ": " + sixteen.status().message());
  }
  if (!sixteen->empty() && !profile.activation16) {
    return InvalidArgumentError("quantize: --int16: target '", profile.name,
                                "' has no 16-bit activation scheme (schemes.activation16)");
  }
  pipeline_options.int16_ops = *sixteen;
  // The `optimal` method searches the calibration histograms: bin the values for it.
  calib_options.keep_histograms = UsesOptimalMethod(profile, pipeline_options.alignment);
  summary.target = profile.name;
  summary.ops = static_cast<int64_t>(graph.num_operations());
  summary.folded_ops = model.rewritten.folded.batch_norms + model.rewritten.folded.elementwise;
  summary.equalized_pairs = model.rewritten.equalized.pairs;

  // With --ranges the data is optional: it only feeds the SNR and the export's shapes run.
  HoldoutSplit split;
  if (HasData(options)) {
    QALIGN_ASSIGN_OR_RETURN(auto data, OpenData(options.calib_spec, options.samples, graph));
    QALIGN_ASSIGN_OR_RETURN(split, SplitCalibrationData(data, options));
    summary.has_data = true;
    summary.holdout_samples = static_cast<int64_t>(split.holdout->size());
    if (options.ranges_path.empty()) {
      summary.calibration_samples = static_cast<int64_t>(split.calibration->size());
    }
  }
  const size_t holdout = static_cast<size_t>(summary.holdout_samples);

  // Steps 1-5 (pipeline/pipeline.h); calibration runs the FP32 model in the executor. The same
  // runs give the tensor shapes the export needs and, when the summary's SNR is measured on
  // calibration samples, their FP32 outputs.
  calib_options.record_shapes = true;
  // Bias correction sums each candidate op's input over the calibration samples: during the
  // calibration run, or with --ranges in a run of its own over the same samples (so calibrate then
  // quantize --ranges writes the model quantize alone writes). Without samples there is nothing
  // to measure.
  std::unique_ptr<BiasCorrection> bias_correction;
  std::unique_ptr<Graph> fp32_copy;
  const Graph* fp32_graph = &graph;
  const bool correct_biases =
      options.bias_correction.value_or(CoarseWeights(profile.weight));
  if (correct_biases && split.calibration == nullptr) {
    if (options.bias_correction) {
      LogWarning("bias correction skipped: it needs calibration samples (--calib)");
    }
  } else if (correct_biases) {
    bias_correction = std::make_unique<BiasCorrection>(graph);
    pipeline_options.bias_correction = bias_correction.get();
  }
  // Weight rounding accumulates the Gram matrix of each candidate op's input the same way.
  std::unique_ptr<WeightRounding> weight_rounding;
  if (options.optimize_weights && split.calibration == nullptr) {
    LogWarning("weight rounding skipped: it needs calibration samples (--calib)");
  } else if (options.optimize_weights) {
    WeightRoundingOptions rounding;
    rounding.samples = split.calibration->size();
    rounding.progress = calib_options.progress;
    rounding.on_layer = OnSample(options.progress, "optimize weights");
    weight_rounding = std::make_unique<WeightRounding>(graph, rounding);
    pipeline_options.weight_rounding = weight_rounding.get();
  }
  if (bias_correction != nullptr || weight_rounding != nullptr) {
    // Both change the graph: the FP32 outputs the SNR compares with come from the model as given.
    QALIGN_ASSIGN_OR_RETURN(fp32_copy, CloneGraph(graph));
    fp32_graph = fp32_copy.get();
    calib_options.tensor_hook = [&bias_correction, &weight_rounding](const Variable& v,
                                                                     const Tensor& value) {
      if (bias_correction != nullptr) bias_correction->Observe(v, value);
      if (weight_rounding != nullptr) weight_rounding->Observe(v, value);
    };
    if (!options.ranges_path.empty()) {  // no calibration run: one for the sums alone
      CalibrationOptions sums_only = calib_options;
      sums_only.record_shapes = false;
      sums_only.progress_label = "input sums";
      QALIGN_RETURN_IF_ERROR(
          RunCalibration(graph, {}, *split.calibration, sums_only).status());
    }
  }
  if (holdout == 0) {
    calib_options.keep_outputs = static_cast<size_t>(std::max(options.eval_samples, 0));
  }
  CalibrationResult calibration;
  const CalibrateFn calibrate =
      options.ranges_path.empty()
          ? ExecutorCalibration(model, *split.calibration, calib_options, &calibration)
          : RangesFromFile(file_ranges);
  auto table = std::make_unique<QuantConfigTable>();
  auto pipeline = RunQuantizePipeline(graph, profile, pipeline_options, calibrate, table.get());
  if (!pipeline.ok()) {
    return Status(pipeline.status().code(),
                  options.model_path + ": " + pipeline.status().message());
  }
  for (const Operation* op : pipeline_options.fp32_ops) {
    summary.kept_fp32.push_back({op->Describe(), "--exclude"});
  }
  for (const Operation* op : pipeline_options.int16_ops) {
    summary.kept_int16.push_back({op->Describe(), "--int16"});
  }
  // --accuracy-budget: search with the ranges of that calibration, then redo steps 2b-5 with the
  // ops it keeps in FP32.
  if (options.accuracy_budget_db) {
    auto samples = split.holdout->size() > 0 ? split.holdout : split.calibration;
    const size_t count =
        std::min(samples->size(), static_cast<size_t>(std::max(options.eval_samples, 0)));
    const RangeMap ranges = pipeline->ranges;
    Fp32SearchOptions budget;
    budget.budget_db = *options.accuracy_budget_db;
    budget.max_ops = options.max_fp32_ops >= 0
                         ? static_cast<size_t>(options.max_fp32_ops)
                         : std::max<size_t>(1, graph.num_operations() / 20);
    ExecutorOptions exec_options;
    exec_options.num_threads = options.num_threads;
    auto search = SearchAccuracyBudget(
        {graph, *fp32_graph, profile, pipeline_options, ranges, *table, *pipeline}, *samples,
        count, budget, exec_options, options.quiet ? ProgressMode::kQuiet : ProgressMode::kAuto);
    if (!search.ok()) {
      return Status(search.status().code(), options.model_path + ": " + search.status().message());
    }
    summary.accuracy_budget_db = options.accuracy_budget_db;
    summary.budget_met = search->met;
    summary.budget_base_snr_db = search->base_snr_db;
    summary.budget_snr_db = search->snr_db;
    // On a target with a 16-bit activation scheme the search chose ops for 16 bits.
    const bool sixteen_bits = profile.activation16.has_value();
    const char* kept_as = sixteen_bits ? "at 16 bits" : "FP32";
    for (const OpSensitivity& k : search->kept) {
      (sixteen_bits ? pipeline_options.int16_ops : pipeline_options.fp32_ops).push_back(k.op);
      (sixteen_bits ? summary.kept_int16 : summary.kept_fp32)
          .push_back({k.op->Describe(),
                      StrCat("accuracy budget: output SNR ", Fixed(k.snr_db, 2), " dB once ",
                             kept_as, " (", Fixed(search->base_snr_db, 2),
                             " dB with every op quantized)")});
    }
    for (const OpSensitivity& b : search->blockers) {
      summary.budget_blockers.push_back(StrCat(b.op->Describe(), " (", Fixed(b.snr_db, 2),
                                               " dB if it were ", kept_as, " too)"));
    }
    if (!search->met) {
      LogWarning(options.model_path, ": accuracy budget ", Fixed(*options.accuracy_budget_db, 2),
                 " dB not met: the best model found (", Fixed(search->snr_db, 2),
                 " dB) is written");
    }
    table = std::make_unique<QuantConfigTable>();
    pipeline = RunQuantizePipeline(graph, profile, pipeline_options, RangesFromFile(ranges),
                                   table.get());
    if (!pipeline.ok()) {
      return Status(pipeline.status().code(),
                    options.model_path + ": " + pipeline.status().message());
    }
    pipeline->ranges = ranges;
  }
  TensorShapes shapes = std::move(calibration.shapes);
  std::vector<std::map<std::string, Tensor>> fp32_outputs = std::move(calibration.outputs);
  summary.calibrate_seconds = calibration.seconds;
  summary.quantized_ops = pipeline->dispatch.quantized_ops;
  summary.fp32_ops = pipeline->dispatch.fp32_ops;
  if (bias_correction != nullptr) summary.corrected_biases = pipeline->bias_corrected.corrected;
  if (weight_rounding != nullptr) {
    const WeightRoundingStats& rounded = pipeline->weights_rounded;
    summary.optimized_layers = rounded.optimized;
    summary.rounded_weights = rounded.changed_weights;
    summary.optimized_weights = rounded.weights;
    summary.rounding_loss_nearest = rounded.loss_nearest;
    summary.rounding_loss_optimized = rounded.loss_optimized;
  }
  for (const Operation* op : pipeline_options.fp32_ops) {  // dispatch counted them as quantized
    if (op->in_default_domain() && profile.Quantizes(op->type())) {
      --summary.quantized_ops;
      ++summary.fp32_ops;
    }
  }
  for (const TQC* t : table->all()) {
    if (t->role == TensorRole::kActivation && IsJoinable(*t) && t->scheme.num_bits == 16) {
      ++summary.ports_at_16_bits;
    }
  }
  summary.groups = pipeline->alignment.counters.groups;
  summary.requantizes = pipeline->alignment.counters.requantizes;
  summary.violations = static_cast<int64_t>(pipeline->violations.size());
  summary.raised_weight_channels = pipeline->derived.raised_weight_channels;
  summary.saturated_ranges = pipeline->saturation.narrowed_tensors;
  for (const AlignmentViolation& v : pipeline->violations) {
    summary.violation_messages.push_back(v.check + ": " + v.message);
  }
  for (const std::string& note : pipeline->alignment.notes) LogInfo(note);
  for (const std::string& note : pipeline->derived.notes) LogInfo(note);

  ReportJson report(AlignmentReportJson(profile.name, pipeline->alignment, *table,
                                        pipeline->violations, &pipeline->derived));
  report.Add("saturation_ranges", SaturationRangesJson(pipeline->saturation));
  report.Add("fp32_ops", KeptOpsJson(summary.kept_fp32));
  report.Add("int16_ops", KeptOpsJson(summary.kept_int16));
  report.Add("ports_at_16_bits", summary.ports_at_16_bits);
  if (summary.optimized_layers >= 0) report.Add("weight_rounding", WeightRoundingJson(summary));
  if (summary.accuracy_budget_db) report.Add("accuracy_budget", AccuracyBudgetJson(summary));
  summary.report_json = report.Text();
  if (!options.report_path.empty()) {
    QALIGN_RETURN_IF_ERROR(WriteFileAtomically(options.report_path, summary.report_json,
                                               options.model_path));
  }
  if (!pipeline->violations.empty() && options.no_align) {
    for (const std::string& m : summary.violation_messages) LogWarning("--no-align: ", m);
  } else if (!pipeline->violations.empty()) {
    return FailedPreconditionError(
        options.model_path, ": ", pipeline->violations.size(),
        " alignment violations, first: ", pipeline->violations.front().message);
  }

  const auto export_start = Clock::now();
  QALIGN_ASSIGN_OR_RETURN(QuantPlan plan,
                          BuildQuantPlan(graph, *table, pipeline->alignment.requantizes));
  // Shapes from an FP32 run: the opset converter needs ranks static inference cannot give. The
  // first calibration sample, as the calibration run records them; without data, one random
  // sample of the model's input shapes.
  if (shapes.empty()) {
    std::shared_ptr<const CalibrationDataset> first = split.calibration;
    if (first == nullptr) {
      QALIGN_ASSIGN_OR_RETURN(first, OpenData("random:1", graph));
    }
    QALIGN_ASSIGN_OR_RETURN(Sample sample, first->Load(0));
    QALIGN_ASSIGN_OR_RETURN(shapes,
                            RecordTensorShapes(graph, std::move(sample), options.num_threads));
  }
  QdqExportStats export_stats;
  QdqExportOptions export_options;
  export_options.hardswish_op = profile.hardswish_op;
  QALIGN_RETURN_IF_ERROR(SaveQdqModel(graph, plan, options.output_path, options.model_path,
                                      &export_stats, &shapes, export_options));
  summary.quantized_tensors = export_stats.activation_pairs;
  summary.weights = export_stats.weight_initializers;
  summary.biases = export_stats.bias_initializers;
  summary.source_opset = export_stats.source_opset;
  summary.opset = export_stats.opset;
  if (!options.table_path.empty()) {
    QALIGN_RETURN_IF_ERROR(
        WriteFileAtomically(options.table_path, QuantTableJson(plan), options.model_path));
  }
  if (!options.trt_cache_path.empty()) {
    QALIGN_RETURN_IF_ERROR(
        WriteFileAtomically(options.trt_cache_path, TrtCalibrationCache(plan), options.model_path));
  }

  summary.export_seconds = SecondsSince(export_start);

  // Output SNR of the simulated quantized model on (at most eval_samples of) the held-out samples.
  const auto evaluate_start = Clock::now();
  auto eval_data = holdout > 0 ? split.holdout : split.calibration;
  const size_t evaluated =
      eval_data == nullptr
          ? 0
          : std::min(eval_data->size(), static_cast<size_t>(std::max(options.eval_samples, 0)));
  summary.evaluated_samples = static_cast<int64_t>(evaluated);
  if (evaluated == 0) {
    summary.total_seconds = SecondsSince(start);
    return summary;
  }
  ExecutorOptions exec_options;
  exec_options.num_threads = options.num_threads;
  std::unique_ptr<Executor> reference;  // only for samples whose FP32 outputs were not kept
  if (fp32_outputs.size() < evaluated) {
    QALIGN_ASSIGN_OR_RETURN(reference, Executor::Create(*fp32_graph, exec_options));
  }
  QALIGN_ASSIGN_OR_RETURN(auto simulator, FakeQuantSimulator::Create(graph, plan, exec_options));
  OutputErrors errors;
  ProgressReporter progress("evaluate", evaluated,
                            options.quiet ? ProgressMode::kQuiet : ProgressMode::kAuto);
  for (size_t i = 0; i < evaluated; ++i) {
    QALIGN_ASSIGN_OR_RETURN(Sample sample, eval_data->Load(i));
    std::map<std::string, Tensor> ref_out;
    if (i < fp32_outputs.size()) {
      ref_out = std::move(fp32_outputs[i]);  // this calibration sample's outputs
    } else {
      QALIGN_ASSIGN_OR_RETURN(ref_out, reference->Run(sample));
    }
    QALIGN_ASSIGN_OR_RETURN(auto sim_out, simulator->Run(std::move(sample)));
    QALIGN_RETURN_IF_ERROR(AccumulateOutputs(ref_out, sim_out, &errors));
    progress.Update(i + 1);
    if (options.progress && !options.progress("evaluate", static_cast<int64_t>(i + 1),
                                              static_cast<int64_t>(evaluated))) {
      return CancelledError("evaluate: stopped after ", i + 1, " of ", evaluated, " samples");
    }
  }
  progress.Finish();
  for (const auto& [name, e] : errors) summary.outputs[name] = QualityOf(e);
  summary.evaluate_seconds = SecondsSince(evaluate_start);
  summary.total_seconds = SecondsSince(start);
  return summary;
}

// ---------------------------------------------------------------------------------- eval

std::string EvalSummary::ToText() const {
  std::string out = StrCat("compared on ", samples, " samples:\n");
  for (const auto& [name, q] : outputs) {
    out += StrCat("  ", name, ": SNR ", Fixed(q.snr_db, 2), " dB, cosine ", Fixed(q.cosine, 6),
                  ", max |err| ", Fixed(q.max_abs_error, 5), "\n");
  }
  if (!layers.empty()) {
    out += "layers that lose most (loss = worst input SNR - output SNR):\n";
    for (const LayerQuality& l : layers) {
      out += StrCat("  ", l.op, " -> ", l.tensor, ": SNR ", Fixed(l.snr_db, 2), " dB (inputs ",
                    Fixed(l.input_snr_db, 2), " dB), loss ", Fixed(l.loss_db, 2), " dB\n");
    }
  }
  return out;
}

namespace {

// The FP32 tensor a tensor of the QDQ model stands for: through DequantizeLinear <- QuantizeLinear
// chains back to the tensor that was quantized.
std::string OriginOf(const Graph& qdq, const std::string& name) {
  std::string current = name;
  for (int guard = 0; guard < 16; ++guard) {
    const Variable* v = qdq.FindVariable(current);
    if (v == nullptr || v->producer() == nullptr) return current;
    const Operation* op = v->producer();
    if (op->type() != "DequantizeLinear" && op->type() != "QuantizeLinear") return current;
    if (op->input(0) == nullptr) return current;
    current = op->input(0)->name();
  }
  return current;
}

}  // namespace

StatusOr<EvalSummary> EvaluateModels(const EvalOptions& options) {
  ImportOptions import_options;
  import_options.input_shapes = options.input_shapes;
  QALIGN_ASSIGN_OR_RETURN(auto fp32, ImportOnnxModel(options.fp32_path, import_options));
  QALIGN_ASSIGN_OR_RETURN(auto quant, ImportOnnxModel(options.quantized_path, import_options));
  QALIGN_ASSIGN_OR_RETURN(auto data, OpenData(options.data_spec, options.samples, *fp32));

  ExecutorOptions exec_options;
  exec_options.num_threads = options.num_threads;
  exec_options.registry = &SimKernelRegistry();
  exec_options.keep_all = options.per_layer;
  QALIGN_ASSIGN_OR_RETURN(auto fp32_exec, Executor::Create(*fp32, exec_options));
  QALIGN_ASSIGN_OR_RETURN(auto quant_exec, Executor::Create(*quant, exec_options));

  // Per layer: each non-QDQ op of the quantized model whose output the FP32 model also has.
  struct LayerAcc {
    const Operation* op = nullptr;
    std::string tensor;
    ErrorAccumulator output;
    std::map<std::string, ErrorAccumulator> inputs;  // by FP32 origin name
  };
  std::vector<LayerAcc> layers;
  if (options.per_layer) {
    for (const Operation* op : quant->operations()) {
      if (op->type() == "QuantizeLinear" || op->type() == "DequantizeLinear") continue;
      const Variable* out = op->output(0);
      if (out == nullptr || out->dtype() != DataType::kFloat) continue;
      if (fp32->FindVariable(out->name()) == nullptr) continue;
      LayerAcc acc;
      acc.op = op;
      acc.tensor = out->name();
      layers.push_back(std::move(acc));
    }
  }

  EvalSummary summary;
  OutputErrors errors;
  ProgressReporter progress("eval", data->size(),
                            options.quiet ? ProgressMode::kQuiet : ProgressMode::kAuto);
  for (size_t i = 0; i < data->size(); ++i) {
    QALIGN_ASSIGN_OR_RETURN(Sample sample, data->Load(i));
    QALIGN_ASSIGN_OR_RETURN(auto ref, fp32_exec->Run(sample));
    QALIGN_ASSIGN_OR_RETURN(auto got, quant_exec->Run(std::move(sample)));
    std::map<std::string, Tensor> ref_outputs, got_outputs;
    for (const Variable* v : fp32->outputs()) {
      if (ref.count(v->name())) ref_outputs[v->name()] = ref.at(v->name());
      if (got.count(v->name())) got_outputs[v->name()] = got.at(v->name());
    }
    QALIGN_RETURN_IF_ERROR(AccumulateOutputs(ref_outputs, got_outputs, &errors));
    for (LayerAcc& l : layers) {
      auto r = ref.find(l.tensor);
      auto g = got.find(l.tensor);
      if (r == ref.end() || g == got.end()) continue;
      QALIGN_RETURN_IF_ERROR(l.output.Add(r->second, g->second, l.tensor));
      for (const Variable* in : l.op->inputs()) {
        if (in == nullptr || in->is_parameter() || in->dtype() != DataType::kFloat) continue;
        const std::string origin = OriginOf(*quant, in->name());
        auto ri = ref.find(origin);
        auto gi = got.find(in->name());
        if (ri == ref.end() || gi == got.end() || ri->second.shape() != gi->second.shape()) {
          continue;
        }
        QALIGN_RETURN_IF_ERROR(l.inputs[origin].Add(ri->second, gi->second, origin));
      }
    }
    progress.Update(i + 1);
    if (options.progress && !options.progress("eval", static_cast<int64_t>(i + 1),
                                              static_cast<int64_t>(data->size()))) {
      return CancelledError("eval: stopped after ", i + 1, " of ", data->size(), " samples");
    }
  }
  progress.Finish();
  summary.samples = static_cast<int64_t>(data->size());
  for (const auto& [name, e] : errors) summary.outputs[name] = QualityOf(e);
  for (const LayerAcc& l : layers) {
    LayerQuality q;
    q.tensor = l.tensor;
    q.op = l.op->Describe();
    q.snr_db = l.output.SnrDb();
    q.input_snr_db = std::numeric_limits<double>::infinity();
    for (const auto& [name, e] : l.inputs) q.input_snr_db = std::min(q.input_snr_db, e.SnrDb());
    // Exact inputs (a graph input, FP32 all the way) have infinite SNR; count them as 100 dB so
    // the loss of the layer that first quantizes stays finite and comparable.
    constexpr double kExactDb = 100.0;
    q.input_snr_db = std::min(q.input_snr_db, kExactDb);
    q.loss_db = q.input_snr_db - std::min(q.snr_db, kExactDb);
    summary.layers.push_back(q);
  }
  std::stable_sort(
      summary.layers.begin(), summary.layers.end(),
      [](const LayerQuality& a, const LayerQuality& b) { return a.loss_db > b.loss_db; });
  if (summary.layers.size() > static_cast<size_t>(std::max(options.top_layers, 0))) {
    summary.layers.resize(static_cast<size_t>(std::max(options.top_layers, 0)));
  }
  return summary;
}

}  // namespace qalign
