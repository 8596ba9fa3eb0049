// --accuracy-budget with the real pipeline: SearchFp32Ops (mixed_precision.h) whose every
// measurement reruns steps 2b-5 of pipeline.h with some ops kept FP32 (or, on a target with a
// 16-bit activation scheme, at 16 bits), from the ranges of the first calibration, and simulates
// the quantized model against FP32 outputs computed once.
#pragma once

#include "calib/data_loader.h"
#include "calib/progress.h"
#include "pipeline/mixed_precision.h"
#include "pipeline/pipeline.h"
#include "runtime/executor.h"

namespace qalign {

// What the first run of the pipeline left: the model, its FP32 original (bias correction changes
// the biases of `graph`), the options and ranges every trial reruns with, and the first table.
struct BudgetSearchModel {
  const Graph& graph;
  const Graph& fp32_graph;
  const TargetProfile& profile;
  const QuantizePipelineOptions& pipeline_options;
  const RangeMap& ranges;
  QuantConfigTable& table;
  const QuantizePipelineResult& first;
};

// The search over the first `count` of `samples`. The candidates are first narrowed, by one
// simulated run, to the 2 * max_ops + 8 ops that lose the most SNR locally (as `qalign eval
// --per-layer` ranks layers); each measurement then costs a simulated run per sample.
StatusOr<Fp32SearchResult> SearchAccuracyBudget(const BudgetSearchModel& model,
                                                const CalibrationDataset& samples, size_t count,
                                                const Fp32SearchOptions& options,
                                                const ExecutorOptions& exec_options,
                                                ProgressMode progress_mode);

}  // namespace qalign
