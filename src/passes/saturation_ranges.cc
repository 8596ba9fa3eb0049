// Saturation-aware ranges (see saturation_ranges.h for the intervals and why they are safe).
#include "passes/saturation_ranges.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "core/logging.h"

namespace qalign {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// The value of a one-element float parameter input, if `index` is one.
bool ScalarInput(const Operation& op, size_t index, float* value) {
  if (index >= op.inputs().size() || op.input(index) == nullptr) return false;
  const Variable* v = op.input(index);
  if (!v->is_parameter() || v->data() == nullptr) return false;
  const Tensor& t = *v->data();
  if (t.num_elements() != 1 || t.dtype() != DataType::kFloat) return false;
  *value = t.values<float>()[0];
  return std::isfinite(*value);
}

// Whether a rule of `op` (after overrides) ties or fixes any of `ports`.
StatusOr<bool> RuleTouches(const Operation& op, const TargetProfile& profile,
                           const AlignmentOptions& options, const QuantConfigTable& table,
                           const std::vector<const TQC*>& ports) {
  QALIGN_ASSIGN_OR_RETURN(EffectiveRule rule, ResolveRule(op, profile, options));
  if (!rule.present) return false;
  const OperationQuantConfig* config = table.FindOp(&op);
  if (config == nullptr) return false;
  if (rule.kind == RuleKind::kFixedOutput) {
    for (const TQC* t : config->outputs) {
      if (std::find(ports.begin(), ports.end(), t) != ports.end()) return true;
    }
    return false;
  }
  if (rule.method == AlignMethod::kNone) return false;
  for (const TQC* t : RuleMembers(*config, rule.kind)) {
    if (std::find(ports.begin(), ports.end(), t) != ports.end()) return true;
  }
  return false;
}

}  // namespace

bool SaturationInterval(const Operation& op, int num_bits, float* lo, float* hi) {
  if (!op.in_default_domain()) return false;
  const std::string& type = op.type();
  if (type == "Relu") {
    *lo = 0.0f;
    *hi = kInf;
    return true;
  }
  if (type == "Clip") {
    *lo = -kInf;
    *hi = kInf;
    if (op.opset() < 11) {  // bounds are attributes before opset 11
      *lo = op.GetFloat("min", -kInf);
      *hi = op.GetFloat("max", kInf);
      return true;
    }
    // An absent bound leaves that side open; a bound that is not a constant, the op unknown.
    const bool has_min = op.inputs().size() > 1 && op.input(1) != nullptr;
    const bool has_max = op.inputs().size() > 2 && op.input(2) != nullptr;
    if (has_min && !ScalarInput(op, 1, lo)) return false;
    if (has_max && !ScalarInput(op, 2, hi)) return false;
    return *lo <= *hi;
  }
  if (type == "HardSigmoid") {
    // y = max(0, min(1, alpha x + beta)): 0 and 1 where alpha x + beta crosses them.
    const float alpha = op.GetFloat("alpha", 0.2f);
    const float beta = op.GetFloat("beta", 0.5f);
    if (!(alpha != 0.0f) || !std::isfinite(alpha) || !std::isfinite(beta)) return false;
    const float a = -beta / alpha;
    const float b = (1.0f - beta) / alpha;
    *lo = std::min(a, b);
    *hi = std::max(a, b);
    return true;
  }
  if (type == "HardSwish") {  // x * HardSigmoid(x; 1/6, 1/2): exactly 0 below -3
    *lo = -3.0f;
    *hi = kInf;
    return true;
  }
  if (type == "Sigmoid" || type == "Tanh") {
    // Sigmoid(B) = 1 - 1 / (1 + e^B) = 1 - 2^-2b for B = ln(2^2b - 1);
    // Tanh(x) = 2 Sigmoid(2x) - 1.
    const double bound = std::log(std::ldexp(1.0, 2 * num_bits) - 1.0);
    *hi = static_cast<float>(type == "Sigmoid" ? bound : bound / 2.0);
    *lo = -*hi;
    return true;
  }
  return false;
}

StatusOr<SaturationRangeStats> NarrowSaturatedRanges(const Graph& graph,
                                                     const TargetProfile& profile,
                                                     const AlignmentOptions& options,
                                                     QuantConfigTable* table) {
  SaturationRangeStats stats;
  // The TQCs of each tensor, and which of them hold a calibrated range.
  std::unordered_map<const Variable*, std::vector<TQC*>> tqcs_of;
  for (TQC* t : table->all()) {
    if (t->port.tensor != nullptr) tqcs_of[t->port.tensor].push_back(t);
  }
  for (const Operation* producer : graph.operations()) {
    for (const Variable* v : producer->outputs()) {
      if (v == nullptr || v->is_graph_output() || v->uses().empty()) continue;
      auto found = tqcs_of.find(v);
      if (found == tqcs_of.end()) continue;
      std::vector<TQC*>& tqcs = found->second;
      const TQC* ranged = nullptr;
      for (const TQC* t : tqcs) {
        if (t->role == TensorRole::kActivation && t->stats.has_range && IsJoinable(*t)) ranged = t;
      }
      if (ranged == nullptr) continue;
      // Every consumer must saturate: the union of their intervals.
      float lo = kInf, hi = -kInf;
      bool all_saturate = true;
      std::string consumers;
      for (const Use& use : v->uses()) {
        float a, b;
        if (use.implicit() || use.index != 0 ||
            !SaturationInterval(*use.op, ranged->scheme.num_bits, &a, &b)) {
          all_saturate = false;
          break;
        }
        lo = std::min(lo, a);
        hi = std::max(hi, b);
        consumers += (consumers.empty() ? "" : ", ") + use.op->Describe();
      }
      if (!all_saturate) continue;
      // No rule may tie or fix one of the tensor's ports: its group stays what it was.
      const std::vector<const TQC*> ports(tqcs.begin(), tqcs.end());
      QALIGN_ASSIGN_OR_RETURN(bool tied, RuleTouches(*producer, profile, options, *table, ports));
      for (const Use& use : v->uses()) {
        if (tied) break;
        QALIGN_ASSIGN_OR_RETURN(tied, RuleTouches(*use.op, profile, options, *table, ports));
      }
      if (tied) continue;
      NarrowedRange n;
      n.tensor = v->name();
      n.consumers = consumers;
      n.min_before = ranged->stats.min;
      n.max_before = ranged->stats.max;
      // [max(min, lo), min(max, hi)]; a range wholly outside [lo, hi] shrinks to the nearer end.
      n.min = std::clamp(n.min_before, lo, hi);
      n.max = std::clamp(n.max_before, lo, hi);
      // An asymmetric grid's zero point is rounded, which moves its ends by up to half a step
      // inward: a narrowed end other than 0 (always on the grid) gets one step of margin,
      // step = (max - min) / (qmax - qmin), so the grid reaches past it and every value beyond
      // it still reads as saturated.
      const float step = (n.max - n.min) / static_cast<float>(ranged->scheme.quant_max -
                                                              ranged->scheme.quant_min);
      if (n.min > n.min_before && n.min != 0.0f) n.min = std::max(n.min_before, n.min - step);
      if (n.max < n.max_before && n.max != 0.0f) n.max = std::min(n.max_before, n.max + step);
      if (n.min == n.min_before && n.max == n.max_before) continue;
      for (TQC* t : tqcs) {
        if (!t->stats.has_range) continue;
        t->stats.min = std::clamp(t->stats.min, n.min, n.max);
        t->stats.max = std::clamp(t->stats.max, n.min, n.max);
      }
      LogDebug("saturation range: ", v->name(), " [", n.min_before, ", ", n.max_before, "] -> [",
               n.min, ", ", n.max, "] (read only by ", consumers, ")");
      stats.narrowed.push_back(std::move(n));
      ++stats.narrowed_tensors;
    }
  }
  return stats;
}

}  // namespace qalign
