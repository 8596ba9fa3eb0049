// The quantize pipeline: the steps from an FP32 graph to aligned params, in order, in one place.
//
//   0. rewrite         on the FP32 graph, before anything is quantized (RewriteForQuantization):
//                      fold BatchNormalization and per-channel Mul/Add/Sub/Div into the Conv
//                      before them, then equalize Conv -> Conv pairs; folding comes first because
//                      a BatchNormalization between two Convs hides the pair
//   1. dispatch        one TQC per op port: role, scheme, state (FP32 / SOI / fused) per target
//   2. calibrate       ranges for every quantized activation tensor (the caller's executor run;
//                      passes do not run models, so it is a callback)
//   2b. keep FP32      the ops chosen to stay FP32 (--exclude, --accuracy-budget;
//                      pipeline/mixed_precision.h) lose their quantized ports, and the ops chosen
//                      for 16 bits (--int16, --accuracy-budget on a target with activation16)
//                      get the 16-bit scheme on their activation ports; after calibration,
//                      so that one calibration run serves every trial of the budget's search
//   3. apply ranges    calibration statistics into the TQCs (parameters from their own data)
//   3b. saturation     a tensor read only by ops flat outside an interval (Relu, Clip,
//                      HardSigmoid, HardSwish, Sigmoid, Tanh) and tied by no rule has its range
//                      narrowed to it (passes/saturation_ranges.h); before alignment, which
//                      reads the ranges, and only on tensors outside rule groups, so no group moves
//   4. align           groups, shared params, requantize edges (passes/alignment/); then weight
//                      params per channel and bias params (scale = input_scale * weight_scale,
//                      zero point 0; passes/weight_bias_params.h), which must come after
//                      alignment because they read the aligned input scale
//   4a. weight rounding (opt-in): each Conv / Gemm / MatMul weight rounds up or down where that
//                      moves the op's output least on the calibration data (AdaRound-style,
//                      calib/weight_rounding.h); it reads the weight params of step 4 and leaves
//                      them as they are
//   4b. bias correction (opt-in): each Conv / ConvTranspose / Gemm bias absorbs the mean output
//                      shift its weight's quantization causes on the calibration data
//                      (calib/bias_correction.h); it reads the weight params of step 4 and the
//                      weights rounded in 4a
//   5. verify          every rule holds or is relaxed by a recorded requantize edge
// Export (src/export) and simulation (src/sim) read the table this leaves behind.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "calib/bias_correction.h"
#include "calib/weight_rounding.h"
#include "ir/graph.h"
#include "passes/alignment/alignment_pass.h"
#include "passes/alignment_verifier.h"
#include "passes/equalize_conv_pairs.h"
#include "passes/fold_into_conv.h"
#include "passes/saturation_ranges.h"
#include "passes/weight_bias_params.h"
#include "quant/dispatch.h"
#include "quant/quant_config.h"
#include "quant/ranges.h"
#include "quant/target_profile.h"
#include "qalign/status.h"

namespace qalign {

struct GraphRewriteOptions {
  bool fold = true;
  bool equalize = true;
};

struct GraphRewriteStats {
  FoldIntoConvStats folded;
  EqualizeStats equalized;
};

// Step 0.
StatusOr<GraphRewriteStats> RewriteForQuantization(Graph* graph, const GraphRewriteOptions& options);

struct QuantizePipelineOptions {
  AlignmentOptions alignment;
  // Tensors the calibration left without a range stay FP32 (with a warning) instead of failing.
  bool allow_missing_ranges = false;
  // Step 4b, when set: the sums the caller's calibration run fed it, folded into the biases.
  const BiasCorrection* bias_correction = nullptr;
  // Step 4a, when set: the Gram matrices the caller's calibration run fed it; changes the graph's
  // weights (onto the grid) and restores them on every run.
  WeightRounding* weight_rounding = nullptr;
  // Ops kept in FP32 (step 2b).
  std::vector<const Operation*> fp32_ops;
  // Ops whose activation ports are quantized at 16 bits (step 2b; the profile must have an
  // activation16 scheme). An op also in fp32_ops stays FP32.
  std::vector<const Operation*> int16_ops;
  // Step 3b.
  bool saturation_ranges = true;
};

// Returns calibration ranges (by tensor name) for `tensors`.
using CalibrateFn = std::function<StatusOr<RangeMap>(const std::vector<const Variable*>& tensors)>;

struct QuantizePipelineResult {
  DispatchStats dispatch;
  RangeMap ranges;
  ApplyRangesStats applied;
  SaturationRangeStats saturation;
  AlignmentResult alignment;
  DerivedParamsStats derived;
  WeightRoundingStats weights_rounded;
  BiasCorrectionStats bias_corrected;
  std::vector<AlignmentViolation> violations;
};

// Whether a rule of `profile` or an override asks for the `optimal` method, whose search reads
// the calibration histograms (a calibration that only tracks extremes gives it none).
bool UsesOptimalMethod(const TargetProfile& profile, const AlignmentOptions& options);

// The non-parameter tensors with a quantized activation TQC (what calibration must observe), in
// table order, each once.
std::vector<const Variable*> TensorsToCalibrate(QuantConfigTable& table);

struct CalibrationStepsResult {
  DispatchStats dispatch;
  RangeMap ranges;
};

// Steps 1-2 on an empty `table`: dispatch, then calibrate the tensors it quantizes. `qalign
// calibrate` stops here and writes the ranges; RunQuantizePipeline starts with it, so both observe
// the same tensors.
StatusOr<CalibrationStepsResult> RunCalibrationSteps(const Graph& graph,
                                                     const TargetProfile& profile,
                                                     const CalibrateFn& calibrate,
                                                     QuantConfigTable* table);

// Runs steps 1-5 on an empty `table`.
StatusOr<QuantizePipelineResult> RunQuantizePipeline(const Graph& graph,
                                                     const TargetProfile& profile,
                                                     const QuantizePipelineOptions& options,
                                                     const CalibrateFn& calibrate,
                                                     QuantConfigTable* table);

}  // namespace qalign
