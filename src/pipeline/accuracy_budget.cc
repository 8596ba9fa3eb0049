// The accuracy budget's search with the real pipeline (see accuracy_budget.h).
#include "pipeline/accuracy_budget.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "export/quant_plan.h"
#include "sim/fake_quant.h"
#include "sim/metrics.h"

namespace qalign {
namespace {

// The worst SNR over a model's outputs.
double WorstSnrDb(const OutputErrors& errors) {
  double worst = std::numeric_limits<double>::infinity();
  for (const auto& [name, e] : errors) worst = std::min(worst, e.SnrDb());
  return worst;
}

// The `keep` candidates that lose the most SNR locally in the quantized model of `table` (on one
// sample): worst input SNR - output SNR, as `qalign eval --per-layer` ranks layers. Measuring every
// op of a large model costs one simulated run each; this one run narrows the list first.
StatusOr<std::vector<const Operation*>> MostLossyOps(
    const BudgetSearchModel& model, const std::vector<const Operation*>& candidates,
    const Sample& sample, const ExecutorOptions& exec_options, size_t keep) {
  const Graph& graph = model.graph;
  if (candidates.size() <= keep) return candidates;
  ExecutorOptions all = exec_options;
  all.keep_all = true;
  QALIGN_ASSIGN_OR_RETURN(auto reference, Executor::Create(model.fp32_graph, all));
  QALIGN_ASSIGN_OR_RETURN(auto ref, reference->Run(sample));
  QALIGN_ASSIGN_OR_RETURN(QuantPlan plan,
                          BuildQuantPlan(graph, model.table, model.first.alignment.requantizes));
  QALIGN_ASSIGN_OR_RETURN(auto simulator, FakeQuantSimulator::Create(graph, plan, all));
  QALIGN_ASSIGN_OR_RETURN(auto got, simulator->Run(sample));
  auto snr_of = [&](const Variable* v) -> double {
    if (v == nullptr) return 100.0;
    auto r = ref.find(v->name());
    auto g = got.find(v->name());
    if (r == ref.end() || g == got.end() || r->second.dtype() != DataType::kFloat ||
        r->second.shape() != g->second.shape()) {
      return 100.0;
    }
    ErrorAccumulator e;
    if (!e.Add(r->second, g->second, v->name()).ok()) return 100.0;
    return std::min(e.SnrDb(), 100.0);  // exact tensors count as 100 dB, as in eval
  };
  std::vector<std::pair<double, const Operation*>> losses;
  for (const Operation* op : candidates) {
    double input_snr = 100.0;
    for (const Variable* in : op->inputs()) {
      if (in != nullptr && !in->is_parameter()) input_snr = std::min(input_snr, snr_of(in));
    }
    losses.push_back({input_snr - snr_of(op->output(0)), op});
  }
  std::stable_sort(losses.begin(), losses.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::set<const Operation*> chosen;
  for (size_t i = 0; i < keep; ++i) chosen.insert(losses[i].second);
  std::vector<const Operation*> out;
  for (const Operation* op : candidates) {
    if (chosen.count(op)) out.push_back(op);
  }
  return out;
}

}  // namespace

StatusOr<Fp32SearchResult> SearchAccuracyBudget(const BudgetSearchModel& model,
                                                const CalibrationDataset& samples, size_t count,
                                                const Fp32SearchOptions& options,
                                                const ExecutorOptions& exec_options,
                                                ProgressMode progress_mode) {
  const Graph& graph = model.graph;
  QALIGN_ASSIGN_OR_RETURN(auto reference, Executor::Create(model.fp32_graph, exec_options));
  std::vector<Sample> inputs;
  std::vector<std::map<std::string, Tensor>> fp32_outputs;
  for (size_t i = 0; i < count; ++i) {
    QALIGN_ASSIGN_OR_RETURN(Sample sample, samples.Load(i));
    QALIGN_ASSIGN_OR_RETURN(auto out, reference->Run(sample));
    inputs.push_back(std::move(sample));
    fp32_outputs.push_back(std::move(out));
  }
  if (inputs.empty()) return InvalidArgumentError("accuracy budget: no evaluation samples");
  // On a target with a 16-bit activation scheme the search keeps ops at 16 bits (the --int16 ops
  // fixed), otherwise in FP32 (the --exclude ops fixed); the --exclude ops are FP32 in both.
  const bool sixteen = model.profile.activation16.has_value();
  const std::vector<const Operation*>& fixed =
      sixteen ? model.pipeline_options.int16_ops : model.pipeline_options.fp32_ops;
  std::vector<const Operation*> settled = model.pipeline_options.fp32_ops;
  settled.insert(settled.end(), model.pipeline_options.int16_ops.begin(),
                 model.pipeline_options.int16_ops.end());
  QALIGN_ASSIGN_OR_RETURN(
      const std::vector<const Operation*> candidates,
      MostLossyOps(model, MixedPrecisionCandidates(model.table, settled), inputs.front(),
                   exec_options, 2 * options.max_ops + 8));
  ProgressReporter progress("mixed precision", 9 + candidates.size() + options.max_ops,
                            progress_mode);
  int64_t done = 0;
  const CalibrateFn ranges = [&model](const std::vector<const Variable*>&) -> StatusOr<RangeMap> {
    return model.ranges;
  };
  const MeasureSnrFn measure =
      [&](const std::vector<const Operation*>& chosen) -> StatusOr<double> {
    QuantizePipelineOptions trial_options = model.pipeline_options;
    (sixteen ? trial_options.int16_ops : trial_options.fp32_ops) = chosen;
    QuantConfigTable trial;
    QALIGN_ASSIGN_OR_RETURN(QuantizePipelineResult result,
                            RunQuantizePipeline(graph, model.profile, trial_options, ranges, &trial));
    if (!result.violations.empty()) {
      return InternalError("mixed precision: a rule is violated with ", chosen.size(), " ops ",
                           sixteen ? "at 16 bits" : "in FP32", ": ",
                           result.violations.front().message);
    }
    QALIGN_ASSIGN_OR_RETURN(QuantPlan plan,
                            BuildQuantPlan(graph, trial, result.alignment.requantizes));
    QALIGN_ASSIGN_OR_RETURN(auto simulator, FakeQuantSimulator::Create(graph, plan, exec_options));
    OutputErrors errors;
    for (size_t i = 0; i < inputs.size(); ++i) {
      QALIGN_ASSIGN_OR_RETURN(auto out, simulator->Run(inputs[i]));
      QALIGN_RETURN_IF_ERROR(AccumulateOutputs(fp32_outputs[i], out, &errors));
    }
    progress.Update(static_cast<size_t>(++done));
    return WorstSnrDb(errors);
  };
  QALIGN_ASSIGN_OR_RETURN(Fp32SearchResult result,
                          SearchFp32Ops(fixed, candidates, measure, options));
  progress.Finish();
  return result;
}

}  // namespace qalign
