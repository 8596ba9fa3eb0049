// Public API: calibrate, align or quantize an FP32 ONNX model end to end (rewrite, dispatch,
// calibrate, align, derive weight and bias params, export QDQ ONNX: the steps of
// src/pipeline/pipeline.h, one path for the three), and compare a quantized model with its FP32
// original.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "qalign/data.h"
#include "qalign/status.h"

namespace qalign {

// What calibrate, align and quantize share: the model, the target and the graph rewrites before
// dispatch (step 0 of the pipeline), so that the three run the same steps on the same tensors.
struct ModelOptions {
  std::string model_path;  // FP32 ONNX model (never overwritten)
  std::string target;      // profile name (tflite-int8, ...) or JSON file
  std::map<std::string, std::vector<int64_t>> input_shapes;  // NAME -> dims
  // Fold BatchNormalization and per-channel Mul/Add/Sub/Div into the Conv before them
  // (passes/fold_into_conv.h), as deployment converters do. Off: every op is kept as it is.
  bool fold = true;
  // Cross-layer equalization of Conv -> Conv pairs (passes/equalize_conv_pairs.h), after folding.
  bool equalize = true;
  bool quiet = false;    // no progress bar on stderr
  int num_threads = 0;  // 0: all cores
  ProgressCallback progress;  // optional
};

// The calibration data and how its ranges are observed (calibrate, and quantize without ranges).
struct CalibrationDataOptions {
  std::string calib_spec;  // --calib: random:N, npy:DIR, pb:DIR, image:DIR?...
  // Samples in memory instead of calib_spec (one of the two), checked like files: dtype, rank,
  // known dims, finite values; errors name "sample N".
  std::vector<InputSample> samples;
  std::string observer = "percentile";  // minmax, percentile, kl, mse, auto
  double percentile = 99.99;
  // The last `holdout` samples of the data are never calibrated on; quantize measures its SNR on
  // them. -1: a fifth of the samples (at least 1 when there are 2 or more). calibrate and quantize
  // split alike, so that calibrate + quantize --ranges on the same data calibrates on the same
  // samples as quantize alone.
  int holdout = -1;
};

// The user's overrides of the target's alignment rules.
struct AlignOverrides {
  std::vector<std::string> align;       // TYPE=METHOD
  std::vector<std::string> align_node;  // NODE=METHOD (beats `align`)
  // JSON file (the alignment pass's LoadAlignConfig), applied first: the fields above and
  // below win over it.
  std::string align_config;
  std::optional<bool> force_overlap;
  bool requantize_on_mismatch = false;
  // Saturation-aware ranges: a tensor read only by ops that are flat outside an interval (Relu,
  // Clip, HardSigmoid, HardSwish exactly; Sigmoid, Tanh within 2^-16 of their limits) and
  // tied by no rule is quantized over that interval only (--no-saturation-ranges turns it off).
  bool saturation_ranges = true;
};

// The checks the CLI makes on its flags before any work (a usage error), for every caller:
// --observer names an observer, --percentile is in (50, 100], --holdout is -1 or more.
Status CheckCalibrationDataOptions(const CalibrationDataOptions& options);
// --align and --align-node are KEY=METHOD with a known method (the config file is read later).
Status CheckAlignOverrides(const AlignOverrides& overrides);

struct CalibrateOptions : ModelOptions, CalibrationDataOptions {
  std::string output_path;  // ranges.json (quant/ranges.h)
  // Bin every value even for minmax, so ranges.json carries histograms for other tools.
  bool histograms = false;
};

struct CalibrateSummary {
  std::string model, target, observer, output;
  int64_t tensors = 0;
  int64_t samples = 0;          // calibrated on
  int64_t holdout_samples = 0;  // left out
  double seconds = 0.0;
  double run_seconds = 0.0;  // of that, loading and running the samples
  int64_t peak_bytes = 0;
  // One line for people.
  std::string ToText() const;
};

// Steps 0-2 of the pipeline: rewrite, dispatch, calibrate the tensors quantize would, and write
// their ranges (with histograms when asked) to `output_path`.
StatusOr<CalibrateSummary> CalibrateModel(const CalibrateOptions& options);

struct AlignOptions : ModelOptions, AlignOverrides {
  std::string ranges_path;  // ranges.json, as CalibrateModel writes it
  std::string report_path;  // JSON alignment report
  // Tensors missing from ranges.json stay FP32 (with a warning) instead of failing.
  bool allow_missing_ranges = false;
};

struct AlignSummary {
  std::string target;
  std::string text;  // the alignment report for people (groups, requantizes, violations)
  int64_t groups = 0;
  int64_t requantizes = 0;
  std::vector<std::string> violation_messages;
  std::string report_json;  // the JSON alignment report (what report_path receives)
};

// Steps 0-5 with the ranges of `ranges_path` instead of a calibration run: the same groups and
// params quantize finds from those ranges. Violations are in the summary, not an error.
StatusOr<AlignSummary> AlignModel(const AlignOptions& options);

struct QuantizeOptions : ModelOptions, CalibrationDataOptions, AlignOverrides {
  std::string output_path;  // QDQ ONNX model
  // ranges.json from CalibrateModel, used instead of calibrating. calib_spec is then optional: it
  // feeds only the SNR evaluation (on its held-out samples) and the shapes run of the export.
  std::string ranges_path;
  // --no-align: every rule's method becomes `none` (fixed output ranges still apply); violations
  // are reported as warnings and the model is written anyway (to make test inputs for `fix`).
  bool no_align = false;
  std::string report_path;     // JSON alignment report
  std::string table_path;      // JSON quantization table
  std::string trt_cache_path;  // TensorRT calibration cache
  // At most this many held-out samples are run for the SNR (reference and simulation: two model
  // runs each); 0 skips the evaluation.
  int eval_samples = 8;
  // Accuracy techniques (pipeline.h step 4b): fold the mean output shift weight quantization
  // causes on the calibration data into the biases (calib/bias_correction.h). Unset: on when the
  // target's weights are per-tensor or have fewer than 255 levels (ort-qdq-u8s8's [-64, 64]):
  // their rounding shifts the outputs most. Off otherwise.
  std::optional<bool> bias_correction;
  // Weight rounding optimization (pipeline.h step 4a, calib/weight_rounding.h): each Conv / Gemm /
  // MatMul weight rounds up or down, AdaRound-style, so that the op's output on the calibration
  // data moves least; the weight params stay as the target derives them. Needs calibration data.
  bool optimize_weights = false;
  // Mixed precision (src/pipeline/mixed_precision.h). `exclude`: ops kept in FP32, each entry an op
  // name or an op type; an entry naming no op of the model is an error.
  std::vector<std::string> exclude;
  // Ops quantized at 16 bits (the target's activation16 scheme), entries as for `exclude`; an op
  // in both lists stays FP32. On a target with activation16, the accuracy budget's search also
  // keeps ops at 16 bits instead of FP32.
  std::vector<std::string> int16;
  // Set: keep the fewest further ops in FP32 until every output's SNR against FP32, measured on
  // the evaluation samples (those of the summary's SNR), is at least this many dB.
  std::optional<double> accuracy_budget_db;
  // Most ops the budget's search may keep in FP32; -1: 5 % of the model's ops (at least 1).
  int max_fp32_ops = -1;
};

struct OutputQuality {
  double snr_db = 0.0;
  double cosine = 0.0;
  double max_abs_error = 0.0;
};

struct QuantizeSummary {
  std::string model, target, output;
  int64_t ops = 0;
  int64_t quantized_ops = 0;
  int64_t fp32_ops = 0;
  // Ops kept in FP32 by --exclude or the accuracy budget, with why ("--exclude Sigmoid",
  // "accuracy budget: alone in FP32 the output SNR is 12.3 dB").
  struct KeptFp32Op {
    std::string op;  // "Conv 'conv_3'"
    std::string reason;
  };
  std::vector<KeptFp32Op> kept_fp32;
  // Ops quantized at 16 bits by --int16 or the accuracy budget, with why (same form).
  std::vector<KeptFp32Op> kept_int16;
  int64_t ports_at_16_bits = 0;  // activation ports at 16 bits, the groups they joined included
  std::optional<double> accuracy_budget_db;
  bool budget_met = true;
  double budget_base_snr_db = 0.0;  // the worst output SNR before the search kept any op FP32
  double budget_snr_db = 0.0;       // and after
  std::vector<std::string> budget_blockers;  // when not met: ops whose quantization prevents it
  int64_t folded_ops = 0;  // BatchNormalization/Mul/Add/... folded into a Conv before dispatch
  int64_t equalized_pairs = 0;  // Conv -> Conv pairs whose channels were equalized
  int64_t corrected_biases = -1;  // biases bias correction changed; -1: not asked
  // Weight rounding: layers optimized (-1: not asked), weights rounded otherwise than nearest, and
  // the summed per-layer mean squared output error on the sampled inputs with nearest rounding
  // and with the rounding chosen.
  int64_t optimized_layers = -1;
  int64_t rounded_weights = 0;
  int64_t optimized_weights = 0;  // weights of the optimized layers
  double rounding_loss_nearest = 0.0;
  double rounding_loss_optimized = 0.0;
  int64_t quantized_tensors = 0;  // activation Q/DQ pairs in the export (requantizes included)
  int64_t weights = 0;            // int8/uint8 parameter initializers
  int64_t biases = 0;             // int32 initializers
  // Weight channels whose scale was raised so that their int32 bias fits (a nearly dead input or
  // an all-zero weight channel); the report's "bias_fit" names each bias.
  int64_t raised_weight_channels = 0;
  // Tensors whose range saturation-aware ranges narrowed (the report's saturation_ranges names
  // each, with its range before and after).
  int64_t saturated_ranges = 0;
  int64_t groups = 0;
  int64_t requantizes = 0;
  int64_t violations = 0;
  std::vector<std::string> violation_messages;
  std::string ranges_path;  // the ranges came from this file (no calibration run)
  bool has_data = false;    // calibration data was given (without it, no SNR)
  int64_t calibration_samples = 0;
  int64_t holdout_samples = 0;  // 0: the SNR below is on the calibration samples
  int64_t evaluated_samples = 0;  // how many of them the SNR was measured on (0: not measured)
  std::map<std::string, OutputQuality> outputs;  // SNR of the simulated quantized model vs FP32
  int64_t source_opset = 0;
  int64_t opset = 0;
  double calibrate_seconds = 0.0;
  double export_seconds = 0.0;    // alignment done: plan, shapes run, QDQ model and tables written
  double evaluate_seconds = 0.0;
  double total_seconds = 0.0;
  std::string report_json;  // the JSON alignment report (what report_path receives)
  // A few lines for people.
  std::string ToText() const;
};

// Runs the whole job. The model is written only when there are no rule violations (the report,
// if asked for, is written either way and lists them); violations are then an error.
StatusOr<QuantizeSummary> QuantizeModel(const QuantizeOptions& options);

struct EvalOptions {
  std::string fp32_path;
  std::string quantized_path;
  std::string data_spec;
  std::vector<InputSample> samples;  // in memory instead of data_spec
  std::map<std::string, std::vector<int64_t>> input_shapes;
  bool per_layer = false;
  int top_layers = 10;
  bool quiet = false;
  int num_threads = 0;
  ProgressCallback progress;  // optional
};

struct LayerQuality {
  std::string tensor;
  std::string op;       // "Conv 'conv_3'"
  double snr_db = 0.0;
  double input_snr_db = 0.0;  // the worst SNR among its float inputs
  double loss_db = 0.0;       // input_snr_db - snr_db: what this layer lost
};

struct EvalSummary {
  int64_t samples = 0;
  std::map<std::string, OutputQuality> outputs;
  std::vector<LayerQuality> layers;  // with per_layer: the top layers by loss, worst first
  std::string ToText() const;
};

// Runs both models in qalign's executor on every sample of `data_spec` and compares outputs.
StatusOr<EvalSummary> EvaluateModels(const EvalOptions& options);

}  // namespace qalign
