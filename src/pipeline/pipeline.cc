// The quantize pipeline (see pipeline.h for the order and why).
#include "pipeline/pipeline.h"

#include <unordered_set>

#include "pipeline/mixed_precision.h"


namespace qalign {

std::vector<const Variable*> TensorsToCalibrate(QuantConfigTable& table) {
  std::vector<const Variable*> out;
  std::unordered_set<const Variable*> seen;
  for (const TQC* t : table.all()) {
    if (t->role != TensorRole::kActivation || !IsQuantizedState(t->state) ||
        t->state == QuantState::kOverlapped || t->floating()) {
      continue;
    }
    const Variable* v = t->port.tensor;
    if (v == nullptr || v->is_parameter() || !seen.insert(v).second) continue;
    out.push_back(v);
  }
  return out;
}

StatusOr<CalibrationStepsResult> RunCalibrationSteps(const Graph& graph,
                                                     const TargetProfile& profile,
                                                     const CalibrateFn& calibrate,
                                                     QuantConfigTable* table) {
  CalibrationStepsResult result;
  // 1. Dispatch decides what is quantized; calibration only needs those tensors.
  QALIGN_ASSIGN_OR_RETURN(result.dispatch, DispatchQuantization(graph, profile, table));
  // 2. Calibrate.
  QALIGN_ASSIGN_OR_RETURN(result.ranges, calibrate(TensorsToCalibrate(*table)));
  return result;
}

StatusOr<GraphRewriteStats> RewriteForQuantization(Graph* graph, const GraphRewriteOptions& options) {
  GraphRewriteStats stats;
  if (options.fold) {
    QALIGN_ASSIGN_OR_RETURN(stats.folded, FoldIntoConv(graph));
  }
  if (options.equalize) {
    QALIGN_ASSIGN_OR_RETURN(stats.equalized, EqualizeConvPairs(graph));
  }
  return stats;
}

StatusOr<QuantizePipelineResult> RunQuantizePipeline(const Graph& graph,
                                                     const TargetProfile& profile,
                                                     const QuantizePipelineOptions& options,
                                                     const CalibrateFn& calibrate,
                                                     QuantConfigTable* table) {
  QuantizePipelineResult result;
  // 1-2. Dispatch and calibrate.
  QALIGN_ASSIGN_OR_RETURN(CalibrationStepsResult calibrated,
                          RunCalibrationSteps(graph, profile, calibrate, table));
  result.dispatch = calibrated.dispatch;
  result.ranges = std::move(calibrated.ranges);
  // 2b. Ops kept in FP32.
  KeepOpsInFp32(options.fp32_ops, table);
  // 3. Ranges into TQCs.
  QALIGN_ASSIGN_OR_RETURN(result.applied,
                          ApplyRanges(result.ranges, table, options.allow_missing_ranges));
  // 4. Align, then derive weight and bias params (the bias reads the aligned input scale).
  const AlignmentOptions& alignment = options.alignment;
  QALIGN_ASSIGN_OR_RETURN(result.alignment, RunAlignmentPass(graph, profile, alignment, table));
  QALIGN_ASSIGN_OR_RETURN(result.derived, DeriveWeightAndBiasParams(table));
  // 5. Verify, independently of how the pass got there.
  result.violations =
      VerifyAlignment(graph, *table, profile, result.alignment.requantizes, alignment);
  return result;
}

}  // namespace qalign
