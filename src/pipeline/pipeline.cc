// The quantize pipeline (see pipeline.h for the order and why).
#include "pipeline/pipeline.h"

#include <algorithm>
#include <optional>
#include <tuple>
#include <unordered_set>

#include "calib/histogram.h"
#include "calib/observer.h"
#include "calib/observer_choice.h"
#include "pipeline/mixed_precision.h"

namespace qalign {

bool UsesOptimalMethod(const TargetProfile& profile, const AlignmentOptions& options) {
  for (const AlignmentRule& rule : profile.rules) {
    if (rule.method == AlignMethod::kOptimal) return true;
  }
  for (const auto* overrides : {&options.method_by_op_type, &options.method_by_node}) {
    for (const auto& [name, method] : *overrides) {
      if (method == AlignMethod::kOptimal) return true;
    }
  }
  return false;
}

namespace {

// The `optimal` method's range of a group: OptimalSharedRange over the histograms of the group's
// distinct tensors, with the union of the members' ranges (`large`) and each member's own range
// (`input`, `output`) as candidates. A tensor without a histogram counts as uniform over its
// range, with the mean mass of the others (docs/alignment.md).
// The summed error weighs a tensor by its element count, so it would clip a small member for the
// sake of the large ones it shares a range with. Two kinds of ends are required in the group's
// range, and the search looks for the least-error range that keeps them: a constant's values (an
// Add's learned offset: clipped, it moves every output of the op; clipping det's scalar HardSwish
// offsets on qnn-u8 takes its region F1 from 99 to 11 %), and an end the observer may not clip
// (`unclipped`, observer_choice.h: a Softmax's maximum, what an averaging op reads).
bool OptimalRange(const RangeMap& ranges, const std::map<std::string, KeptEnds>& unclipped,
                  const std::vector<TQC*>& members, float* lo, float* hi) {
  std::vector<Histogram> histograms;
  std::vector<ClipRange> candidates;  // the union first, then each member's own range
  std::vector<ClipRange> uniform;     // of tensors without a histogram
  std::optional<ClipRange> required;  // the values the range must keep
  auto require = [&required](float value) {
    if (!required) required = ClipRange{value, value};
    required->min = std::min(required->min, value);
    required->max = std::max(required->max, value);
  };
  std::unordered_set<const Variable*> seen;
  histograms.reserve(members.size());
  for (const TQC* m : members) {
    if (!m->stats.has_range) continue;
    const ClipRange own{m->stats.min, m->stats.max};
    if (candidates.empty()) candidates.push_back(own);
    candidates.front().min = std::min(candidates.front().min, own.min);
    candidates.front().max = std::max(candidates.front().max, own.max);
    candidates.push_back(own);
    KeptEnds keep{true, true};
    if (!m->port.tensor->is_parameter()) {
      const auto it = unclipped.find(m->port.tensor->name());
      keep = it != unclipped.end() ? it->second : KeptEnds{};
    }
    if (keep.min) require(own.min);
    if (keep.max) require(own.max);
    if (!seen.insert(m->port.tensor).second) continue;
    const TensorRange* range = ranges.Find(m->port.tensor->name());
    StatusOr<Histogram> h = InvalidArgumentError("no histogram");
    if (range != nullptr && range->has_histogram) {
      h = Histogram::FromCounts(range->hist_min, range->hist_max,
                                std::vector<double>(range->counts.begin(), range->counts.end()));
    }
    if (h.ok()) {
      histograms.push_back(std::move(*h));
    } else if (own.max > own.min) {
      uniform.push_back(own);
    }
  }
  if (candidates.empty()) return false;
  double mass = 0.0;
  for (const Histogram& h : histograms) mass += h.total();
  mass = histograms.empty() ? 1.0 : mass / static_cast<double>(histograms.size());
  for (const ClipRange& r : uniform) {
    StatusOr<Histogram> h = Histogram::FromCounts(r.min, r.max, {mass});
    if (h.ok()) histograms.push_back(std::move(*h));
  }
  std::vector<const Histogram*> pointers;
  for (const Histogram& h : histograms) pointers.push_back(&h);
  auto best = OptimalSharedRange(pointers, candidates, members.front()->scheme, required);
  if (!best.ok()) return false;
  *lo = best->min;
  *hi = best->max;
  return true;
}

// The range a 16-bit port takes: its own (the observer's, chosen for 8 bits) widened to the
// extent of the tensor's histogram, from the lower edge of its first non-empty bin to the upper
// edge of its last, when calibration kept one (percentile, kl, mse). An observer clips a tail
// because 256 levels are too coarse for it; at 65536 levels the clipping error dominates.
bool HistogramExtent(const RangeMap& ranges, const TQC& tqc, float* lo, float* hi) {
  const TensorRange* range = ranges.Find(tqc.port.tensor->name());
  if (range == nullptr || !range->has_histogram || range->counts.empty()) return false;
  const size_t bins = range->counts.size();
  size_t first = 0, last = bins;
  while (first < bins && range->counts[first] <= 0.0f) ++first;
  while (last > first && range->counts[last - 1] <= 0.0f) --last;
  if (first >= last) return false;
  const double width = (static_cast<double>(range->hist_max) - range->hist_min) / bins;
  *lo = std::min(tqc.stats.min, static_cast<float>(range->hist_min + width * first));
  *hi = std::max(tqc.stats.max, static_cast<float>(range->hist_min + width * last));
  return true;
}

}  // namespace

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

StatusOr<GraphRewriteStats> RewriteForQuantization(Graph* graph,
                                                   const GraphRewriteOptions& options) {
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
  // 2b. Ops kept in FP32, then ops at 16 bits (an op in both lists has no quantized port left).
  KeepOpsInFp32(options.fp32_ops, table);
  if (!options.int16_ops.empty()) {
    if (!profile.activation16) {
      return InvalidArgumentError("target '", profile.name, "' has no 16-bit activation scheme ",
                                  "(schemes.activation16): ", options.int16_ops.front()->Describe(),
                                  " cannot be quantized at 16 bits");
    }
    QuantizeOpsAt16Bits(options.int16_ops, *profile.activation16, table);
  }
  // 3. Ranges into TQCs.
  QALIGN_ASSIGN_OR_RETURN(result.applied,
                          ApplyRanges(result.ranges, table, options.allow_missing_ranges));
  // 3b. Saturation-aware ranges, before alignment reads them.
  if (options.saturation_ranges) {
    QALIGN_ASSIGN_OR_RETURN(result.saturation,
                            NarrowSaturatedRanges(graph, profile, options.alignment, table));
  }
  // 4. Align, then derive weight and bias params (the bias reads the aligned input scale).
  AlignmentOptions alignment = options.alignment;
  alignment.widen_to_16_bits = true;  // a group a 16-bit port joins is 16-bit as a whole
  if (!alignment.range_at_16_bits) {
    alignment.range_at_16_bits = [&result](const TQC& tqc, float* lo, float* hi) {
      return HistogramExtent(result.ranges, tqc, lo, hi);
    };
  }
  // The search (and the graph walk for UnclippedEnds) only when some group asks for it.
  if (!alignment.optimal_range && UsesOptimalMethod(profile, alignment)) {
    alignment.optimal_range = [&result, unclipped = UnclippedEnds(graph)](
                                  const std::vector<TQC*>& members, float* lo, float* hi) {
      return OptimalRange(result.ranges, unclipped, members, lo, hi);
    };
  }
  QALIGN_ASSIGN_OR_RETURN(result.alignment, RunAlignmentPass(graph, profile, alignment, table));
  QALIGN_ASSIGN_OR_RETURN(result.derived, DeriveWeightAndBiasParams(table));
  // 4a. Weight rounding under the params just derived; deriving them again from the moved weights
  // must give the same params (weight_rounding.h says why it does).
  // (Compared param by param: the `changed` flag of a second derivation is set whenever a bias fit
  // raised a scale, even to the same value.)
  if (options.weight_rounding != nullptr) {
    std::vector<std::tuple<const TQC*, std::vector<float>, std::vector<int64_t>>> params;
    for (const TQC* t : table->all()) {
      if (t->role == TensorRole::kWeight)
        params.emplace_back(t, table->scale(t), table->zero_point(t));
    }
    QALIGN_ASSIGN_OR_RETURN(result.weights_rounded, options.weight_rounding->Apply(table));
    QALIGN_ASSIGN_OR_RETURN(result.derived, DeriveWeightAndBiasParams(table));
    for (const auto& [t, scale, zero_point] : params) {
      if (table->scale(t) != scale || table->zero_point(t) != zero_point) {
        return InternalError(DescribeTqc(*t), ": weight rounding changed the weight params");
      }
    }
  }
  // 4b. Bias correction reads the weight params just derived.
  // The corrected biases get their params again, so each still fits its integer range.
  if (options.bias_correction != nullptr) {
    QALIGN_ASSIGN_OR_RETURN(result.bias_corrected, options.bias_correction->Apply(table));
    QALIGN_ASSIGN_OR_RETURN(result.derived, DeriveWeightAndBiasParams(table));
  }
  // 5. Verify, independently of how the pass got there.
  result.violations =
      VerifyAlignment(graph, *table, profile, result.alignment.requantizes, alignment);
  return result;
}

}  // namespace qalign
