// The shared flags of qalign's subcommands (see flags.h).
#include "flags.h"

#include "calib/observer.h"
#include "onnx/importer.h"
#include "pipeline/align_overrides.h"

namespace qalign::cli {

void AddModelFlags(CLI::App* sub, std::string* model, std::vector<std::string>* input_shapes,
                   const std::string& model_help) {
  sub->add_option("model", *model, model_help)->required();
  sub->add_option("--input-shape", *input_shapes,
                  "Fix a graph input's dims: NAME=D,D,... (repeatable, once per input)")
      ->allow_extra_args(false)
      ->take_all();
}

StatusOr<std::map<std::string, std::vector<int64_t>>> ParseInputShapes(
    const std::vector<std::string>& flags) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const std::string& flag : flags) {
    auto parsed = ParseInputShapeFlag(flag);
    if (!parsed.ok()) return InvalidArgumentError("--input-shape: ", parsed.status().message());
    if (!shapes.emplace(parsed->first, parsed->second).second) {
      return InvalidArgumentError("--input-shape given twice for '", parsed->first, "'");
    }
  }
  return shapes;
}

void AddTargetFlag(CLI::App* sub, std::string* target) {
  sub->add_option("--target", *target,
                  "Target profile: tflite-int8, ort-qdq-u8s8, trt-int8, qnn-u8, ppq-default or a "
                  "JSON file")
      ->required();
}

void AddThreadsFlag(CLI::App* sub, int* threads) {
  sub->add_option("--threads", *threads, "Executor threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
}

void AddQuietFlag(CLI::App* sub, bool* quiet) {
  sub->add_flag("--quiet", *quiet,
                "Nothing on stderr but warnings and errors (no progress, notes or summary line)");
}

void AddRewriteFlags(CLI::App* sub, ModelOptions* options) {
  sub->add_flag("--no-fold{false}", options->fold,
                "Keep BatchNormalization and per-channel Mul/Add after a Conv as separate ops");
  sub->add_flag("--no-equalize{false}", options->equalize,
                "No cross-layer equalization of Conv -> Conv pairs");
}

const char kDataSpecHelp[] = "random:N[?seed=S], [npy:]DIR, [pb:]DIR or image:DIR[?size=WxH&...]";

CLI::Option* AddCalibrationFlags(CLI::App* sub, CalibrationDataOptions* options) {
  CLI::Option* calib = sub->add_option("--calib", options->calib_spec,
                                       std::string("Calibration data: ") + kDataSpecHelp);
  sub->add_option("--observer", options->observer,
                  "percentile (default; what an averaging op reads keeps its whole range), "
                  "minmax, kl, mse or auto (mse where the data has long tails)");
  sub->add_option("--percentile", options->percentile,
                  "For --observer percentile, in (50, 100] (default 99.99)");
  sub->add_option("--holdout", options->holdout,
                  "The last N samples of --calib are not calibrated on; quantize's SNR runs on "
                  "them (default: a fifth, at least 1; 0: calibrate on all). calibrate and "
                  "quantize split alike");
  return calib;
}

void AddAlignFlags(CLI::App* sub, AlignOverrides* overrides) {
  sub->add_option("--align", overrides->align,
                  "Override a rule's method per op type: TYPE=METHOD (large, output, input, none)");
  sub->add_option("--align-node", overrides->align_node,
                  "Override the method for one node: NAME=METHOD (beats --align)");
  sub->add_option("--align-config", overrides->align_config,
                  "JSON overrides: {\"op_types\": {..}, \"nodes\": {..}, \"force_overlap\": b, "
                  "\"requantize_on_scheme_mismatch\": b}; the flags beat it");
  auto* on = sub->add_flag_callback(
      "--force-overlap", [overrides] { overrides->force_overlap = true; },
      "A rule on a shared tensor pulls its producer and all consumers in");
  auto* off = sub->add_flag_callback(
      "--no-force-overlap", [overrides] { overrides->force_overlap = false; },
      "A rule on a shared tensor gets a requantize pair instead");
  on->excludes(off);
  sub->add_flag("--requantize-on-mismatch", overrides->requantize_on_mismatch,
                "Relax a scheme mismatch inside a group with a recorded requantize");
}

void AddSaturationFlag(CLI::App* sub, AlignOverrides* overrides) {
  sub->add_flag_callback(
      "--no-saturation-ranges", [overrides] { overrides->saturation_ranges = false; },
      "Keep the calibrated range of tensors read only by saturating ops (Relu, Clip, "
      "HardSigmoid, HardSwish, Sigmoid, Tanh)");
}

}  // namespace qalign::cli
