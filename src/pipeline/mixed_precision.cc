// Mixed precision: --exclude resolution, FP32 ports, and the --accuracy-budget search.
#include "pipeline/mixed_precision.h"

#include <algorithm>
#include <set>

namespace qalign {

StatusOr<std::vector<const Operation*>> ResolveExcludedOps(
    const Graph& graph, const std::vector<std::string>& entries, const std::string& flag) {
  std::set<const Operation*> chosen;
  for (const std::string& entry : entries) {
    const Operation* by_name = nullptr;
    for (const Operation* op : graph.operations()) {
      if (op->name() == entry) by_name = op;
    }
    if (by_name != nullptr) {
      chosen.insert(by_name);
      continue;
    }
    bool any = false;
    for (const Operation* op : graph.operations()) {
      if (op->type() == entry) {
        chosen.insert(op);
        any = true;
      }
    }
    if (!any) {
      return InvalidArgumentError(flag, " '", entry,
                                  "': no op of the model has this name or type");
    }
  }
  std::vector<const Operation*> out;
  for (const Operation* op : graph.operations()) {
    if (chosen.count(op)) out.push_back(op);
  }
  return out;
}

int64_t KeepOpsInFp32(const std::vector<const Operation*>& ops, QuantConfigTable* table) {
  if (ops.empty()) return 0;
  const std::set<const Operation*> chosen(ops.begin(), ops.end());
  int64_t changed = 0;
  for (OperationQuantConfig* config : table->op_configs()) {
    if (!chosen.count(config->op)) continue;
    config->kept_fp32 = true;
    for (const auto* ports : {&config->inputs, &config->outputs}) {
      for (TQC* t : *ports) {
        if (t == nullptr || !IsQuantizedState(t->state)) continue;
        t->state = QuantState::kFp32;
        ++changed;
      }
    }
  }
  return changed;
}

int64_t QuantizeOpsAt16Bits(const std::vector<const Operation*>& ops, const QuantScheme& wide,
                            QuantConfigTable* table) {
  if (ops.empty()) return 0;
  const std::set<const Operation*> chosen(ops.begin(), ops.end());
  int64_t changed = 0;
  for (OperationQuantConfig* config : table->op_configs()) {
    if (!chosen.count(config->op)) continue;
    for (const auto* ports : {&config->inputs, &config->outputs}) {
      for (TQC* t : *ports) {
        if (t == nullptr || t->role != TensorRole::kActivation || !IsQuantizedState(t->state) ||
            t->state == QuantState::kOverlapped || t->floating() || t->scheme == wide) {
          continue;
        }
        t->scheme = wide;
        ++changed;
      }
    }
  }
  return changed;
}

std::vector<const Operation*> MixedPrecisionCandidates(
    QuantConfigTable& table, const std::vector<const Operation*>& already) {
  const std::set<const Operation*> skip(already.begin(), already.end());
  std::vector<const Operation*> out;
  for (const OperationQuantConfig* config : table.op_configs()) {
    if (config->op == nullptr || skip.count(config->op)) continue;
    bool quantized = false;
    for (const auto* ports : {&config->inputs, &config->outputs}) {
      for (const TQC* t : *ports) {
        if (t == nullptr || !IsQuantizedState(t->state) || t->state == QuantState::kOverlapped) {
          continue;
        }
        if (t->role == TensorRole::kActivation || t->role == TensorRole::kWeight) quantized = true;
      }
    }
    if (quantized) out.push_back(config->op);
  }
  return out;
}

StatusOr<Fp32SearchResult> SearchFp32Ops(const std::vector<const Operation*>& fixed,
                                         const std::vector<const Operation*>& candidates,
                                         const MeasureSnrFn& measure,
                                         const Fp32SearchOptions& options) {
  Fp32SearchResult result;
  auto run = [&](const std::vector<const Operation*>& extra) -> StatusOr<double> {
    std::vector<const Operation*> ops = fixed;
    ops.insert(ops.end(), extra.begin(), extra.end());
    ++result.measurements;
    return measure(ops);
  };
  QALIGN_ASSIGN_OR_RETURN(result.base_snr_db, run({}));
  result.snr_db = result.base_snr_db;
  result.met = result.snr_db >= options.budget_db;
  if (result.met) return result;

  // 1. Sensitivity of each candidate alone: the model's SNR with only it (and the fixed) in FP32.
  for (const Operation* op : candidates) {
    QALIGN_ASSIGN_OR_RETURN(double snr, run({op}));
    result.ranking.push_back({op, snr});
  }
  std::stable_sort(result.ranking.begin(), result.ranking.end(),
                   [](const OpSensitivity& a, const OpSensitivity& b) { return a.snr_db > b.snr_db; });

  // 2. Add them in that order while they help, until the budget holds or max_ops are used.
  std::vector<const Operation*> kept;
  for (const OpSensitivity& candidate : result.ranking) {
    if (result.met || kept.size() >= options.max_ops) break;
    if (!(candidate.snr_db > result.base_snr_db)) break;  // alone it does not help: nor will the rest
    std::vector<const Operation*> trial = kept;
    trial.push_back(candidate.op);
    double snr = candidate.snr_db;
    if (!kept.empty()) {
      QALIGN_ASSIGN_OR_RETURN(snr, run(trial));
    }
    if (!(snr > result.snr_db)) continue;  // with the others already FP32 it adds nothing
    kept = std::move(trial);
    result.kept.push_back({candidate.op, snr});
    result.snr_db = snr;
    result.met = snr >= options.budget_db;
  }
  // 3. Not met: the ops that would raise the SNR further if they too were FP32 (the 8 most
  // sensitive left quantized are tried), the best first.
  if (!result.met) {
    const std::set<const Operation*> in(kept.begin(), kept.end());
    size_t tries = 0;
    for (const OpSensitivity& candidate : result.ranking) {
      if (tries >= 8) break;
      if (in.count(candidate.op)) continue;
      ++tries;
      std::vector<const Operation*> trial = kept;
      trial.push_back(candidate.op);
      QALIGN_ASSIGN_OR_RETURN(double snr, run(trial));
      if (snr > result.snr_db) result.blockers.push_back({candidate.op, snr});
    }
    std::stable_sort(result.blockers.begin(), result.blockers.end(),
                     [](const OpSensitivity& a, const OpSensitivity& b) {
                       return a.snr_db > b.snr_db;
                     });
    if (result.blockers.size() > 5) result.blockers.resize(5);
  }
  return result;
}

}  // namespace qalign
