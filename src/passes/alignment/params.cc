// Step 4 of the alignment pass: group params from pins, overrides and rule methods.
#include <algorithm>
#include <cmath>

#include "passes/alignment/steps.h"

namespace qalign {
namespace {

// By AlignMethod value (none, input, output, large, optimal): large > optimal > output > input.
constexpr int kMethodPriority[] = {0, 1, 2, 4, 3};
int Priority(AlignMethod m) { return kMethodPriority[static_cast<int>(m)]; }

// The range a member contributes: its calibration stats, or a parameter's own data.
bool MemberRange(const TQC& t, float* min, float* max) {
  if (t.stats.has_range) {
    *min = t.stats.min;
    *max = t.stats.max;
    return true;
  }
  const Variable* v = t.port.tensor;
  if (v == nullptr || !v->is_parameter()) return false;
  auto values = v->data()->AsFloats();
  if (!values.ok() || values->empty()) return false;
  auto [lo, hi] = std::minmax_element(values->begin(), values->end());
  *min = *lo;
  *max = *hi;
  return std::isfinite(*min) && std::isfinite(*max);
}

// [min, max] grows to include [lo, hi].
void Widen(bool* has, float* min, float* max, float lo, float hi) {
  *min = *has ? std::min(*min, lo) : lo;
  *max = *has ? std::max(*max, hi) : hi;
  *has = true;
}

// The groups of joinable TQCs with their ranges, pins and rule ties.
std::vector<GroupChoice> CollectGroups(const AlignmentConstraints& in, QuantConfigTable* table) {
  std::vector<GroupChoice> groups;
  groups.reserve(table->size());  // at most one per TQC; capacity never touched is never paged in
  std::vector<int32_t> group_of_root(table->size(), -1);
  auto group_of = [&](const TQC* t) -> GroupChoice& {
    TQC* root = table->Root(t);
    int32_t& g = group_of_root[static_cast<size_t>(root->id)];
    if (g < 0) {
      g = static_cast<int32_t>(groups.size());
      groups.emplace_back().root = root;
    }
    return groups[static_cast<size_t>(g)];
  };
  for (TQC* t : table->all()) {
    if (!IsJoinable(*t)) continue;
    GroupChoice& g = group_of(t);
    float lo, hi;
    if (MemberRange(*t, &lo, &hi)) Widen(&g.has_range, &g.min, &g.max, lo, hi);
    if (const Pin* pin = in.PinOf(t); pin != nullptr) {
      const Pin*& slot = pin->fixed ? g.fixed_pin : g.baked_pin;
      if (slot == nullptr || PortLess(pin->source, slot->source)) slot = pin;
    }
  }
  // A rule's members normally lie in one group; a dropped constraint can split them.
  for (size_t r = 0; r < in.rules.size(); ++r) {
    for (const TQC* m : in.rules[r].members) {
      std::vector<int32_t>& rules = group_of(m).rules;
      const int32_t rule = static_cast<int32_t>(r);
      if (rules.empty() || rules.back() != rule) rules.push_back(rule);
    }
  }
  return groups;
}

Status ChooseGroupParams(const AlignmentConstraints& in, const AlignmentOptions& options,
                         GroupChoice* g, QuantConfigTable* table, AlignmentResult* result) {
  std::string& reason = g->reason;
  bool has = false;  // without a pin, params come from the range [lo, hi]
  float scale = 0.0f, lo = 0.0f, hi = 0.0f;
  int64_t zero_point = 0;
  RuleSource best = RuleSource::kProfile;
  for (int32_t r : g->rules) best = std::max(best, in.rules[static_cast<size_t>(r)].rule.source);
  const Pin* pin = g->fixed_pin;
  if (pin == nullptr && (g->rules.empty() || best == RuleSource::kProfile)) pin = g->baked_pin;
  if (pin != nullptr) {
    g->method = pin->fixed ? "fixed" : "baked";
    if (options.collect_groups) reason = PinReason(*pin);
    scale = pin->scale;
    zero_point = pin->zero_point;
  } else if (!g->rules.empty()) {
    std::vector<const RuleTie*> deciding;
    AlignMethod chosen = AlignMethod::kNone;
    for (int32_t r : g->rules) {
      const RuleTie& tie = in.rules[static_cast<size_t>(r)];
      if (tie.rule.source != best) continue;
      deciding.push_back(&tie);
      if (Priority(tie.rule.method) > Priority(chosen)) chosen = tie.rule.method;
    }
    bool mixed = false;
    for (const RuleTie* tie : deciding) mixed |= tie->rule.method != chosen;
    if (mixed) ++result->counters.method_conflicts;
    if (mixed || options.collect_groups) {
      reason = RuleReason(deciding, chosen, mixed);
      if (mixed) result->notes.push_back("group of " + DescribeTqc(*g->root) + ": " + reason);
    }
    g->method = AlignMethodName(chosen);
    if (chosen == AlignMethod::kOptimal) {
      has = options.optimal_range && options.optimal_range(table->Members(g->root), &lo, &hi);
    } else if (chosen != AlignMethod::kLarge) {
      for (const RuleTie* tie : deciding) {
        if (tie->rule.method != chosen) continue;
        const auto& ports =
            chosen == AlignMethod::kOutput ? tie->config->outputs : tie->config->inputs;
        float a, b;
        if (!ports.empty() && ports[0] != nullptr && MemberRange(*ports[0], &a, &b)) {
          Widen(&has, &lo, &hi, a, b);
        }
      }
    }
    if (!has && g->has_range && chosen != AlignMethod::kLarge) {
      reason += std::string("; the ") + g->method + " port has no range, used the union of members";
      g->method = "large";
    }
  }
  if (!options.collect_groups) reason.clear();
  if (pin == nullptr) {
    if (!has && g->has_range) {  // `large`, a fallback, or a tensor's own range
      has = true;
      lo = g->min;
      hi = g->max;
    }
    if (!has) {
      ++result->counters.groups_without_range;
      return Status::Ok();
    }
    QALIGN_RETURN_IF_ERROR(ComputeParams(g->root->scheme, lo, hi, &scale, &zero_point));
  }
  ++result->counters.params_set;
  if (table->SetGroupParams(g->root, {&scale, 1}, {&zero_point, 1})) {
    ++result->counters.params_changed;
  }
  return Status::Ok();
}

}  // namespace

Status ChooseParams(const AlignmentConstraints& constraints, const AlignmentOptions& options,
                    QuantConfigTable* table, std::vector<GroupChoice>* groups,
                    AlignmentResult* result) {
  *groups = CollectGroups(constraints, table);
  for (GroupChoice& g : *groups) {
    QALIGN_RETURN_IF_ERROR(ChooseGroupParams(constraints, options, &g, table, result));
  }
  return Status::Ok();
}

}  // namespace qalign
