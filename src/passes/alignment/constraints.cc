// Steps 1 and 2 of the alignment pass: rule ties, pins, default edges, cascade control.
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "passes/alignment/steps.h"
#include "quant/op_kinds.h"

namespace qalign {
namespace {

void AddPin(AlignmentConstraints* out, const TQC* t, const Pin& pin) {
  int32_t& k = out->pin_of[static_cast<size_t>(t->id)];
  if (k >= 0) return;
  k = static_cast<int32_t>(out->pins.size());
  out->pins.push_back(pin);
}

// The fixed-output pins of op's joinable outputs; fails when the params do not fit a port.
Status PinFixedOutputs(const Operation& op, const OperationQuantConfig& config,
                       const EffectiveRule& rule, const TargetProfile& profile,
                       AlignmentConstraints* out, AlignmentResult* result) {
  bool any = false;
  for (TQC* t : config.outputs) {
    if (t == nullptr || !IsJoinable(*t)) continue;
    if (rule.fixed_zero_point < t->scheme.quant_min ||
        rule.fixed_zero_point > t->scheme.quant_max || !(rule.fixed_scale > 0.0f)) {
      return InvalidArgumentError("target '", profile.name, "': fixed output params (",
                                  rule.fixed_scale, ", ", rule.fixed_zero_point, ") of ",
                                  op.Describe(), " do not fit ", DescribeTqc(*t), " scheme ",
                                  t->scheme.ToString());
    }
    AddPin(out, t, Pin{rule.fixed_scale, rule.fixed_zero_point, /*fixed=*/true, t});
    any = true;
    ++result->counters.fixed_outputs;
  }
  if (any) ++result->counters.rule_ops;
  return Status::Ok();
}

// Distinct consuming ops of t that read its values (no set: a tensor has a few uses).
int CountValueConsumers(const Variable& t) {
  int count = 0;
  const std::vector<Use>& uses = t.uses();
  for (size_t i = 0; i < uses.size(); ++i) {
    bool first_use = true;  // each op counts at its first use only
    for (size_t j = 0; j < i && first_use; ++j) first_use = uses[j].op != uses[i].op;
    count += first_use && !IsOpKind(uses[i].op->type(), kReadsOnlyShape) ? 1 : 0;
  }
  return count;
}

// Whether an input of `rule_op` reading t must keep t's producer out of the rule's group.
bool CascadeRelaxes(const Variable& t, const Operation* rule_op) {
  if (t.is_graph_output()) return true;
  for (const Use& use : t.uses()) {
    if (use.op != rule_op && !IsOpKind(use.op->type(), kReadsOnlyShape)) return true;
  }
  return false;
}

// The joinable producer-side TQC of t, or nullptr.
TQC* ProducerTqc(const Variable& t, const QuantConfigTable& table) {
  const OperationQuantConfig* config = table.FindOp(t.producer());
  const size_t index = static_cast<size_t>(t.producer_index());
  if (config == nullptr || index >= config->outputs.size()) return nullptr;
  TQC* p = config->outputs[index];
  return p != nullptr && IsJoinable(*p) ? p : nullptr;
}

// Fails when a node override names no op of the graph, or an op-type override names a type with
// neither a rule nor a default kind.
Status ValidateOverrides(const Graph& graph, const TargetProfile& profile,
                         const AlignmentOptions& options) {
  for (const auto& [name, method] : options.method_by_node) {
    if (graph.FindOperation(name) == nullptr) {
      return NotFoundError("--align-node ", name, "=", AlignMethodName(method),
                           ": the model has no op named '", name, "'");
    }
  }
  for (const auto& [type, method] : options.method_by_op_type) {
    if (profile.FindRule(type) == nullptr && !DefaultRuleKind(type)) {
      return InvalidArgumentError("--align ", type, "=", AlignMethodName(method), ": target '",
                                  profile.name, "' has no rule for op type ", type,
                                  " and qalign knows no sharing kind for it");
    }
  }
  return Status::Ok();
}

}  // namespace

Status CollectRules(const Graph& graph, const TargetProfile& profile,
                    const AlignmentOptions& options, QuantConfigTable* table,
                    AlignmentConstraints* out, AlignmentResult* result) {
  QALIGN_RETURN_IF_ERROR(ValidateOverrides(graph, profile, options));
  out->pin_of.assign(table->size(), -1);
  out->configs = table->FindOps(graph.operations());
  // Without a node override the rule depends on the op type only: resolved once per type.
  std::vector<std::optional<EffectiveRule>> rule_by_type(table->num_op_types());
  for (const OperationQuantConfig* config : out->configs) {
    if (config == nullptr) continue;
    Operation* op = config->op;
    const bool by_type = !options.method_by_node.count(op->name());
    std::optional<EffectiveRule>& cached = rule_by_type[static_cast<size_t>(config->type_id)];
    std::optional<EffectiveRule> rule = by_type ? cached : std::nullopt;
    if (!rule) {
      QALIGN_ASSIGN_OR_RETURN(rule, ResolveRule(*op, profile, options));
      if (by_type) cached = rule;
    }
    if (!rule->present) continue;
    if (rule->kind == RuleKind::kFixedOutput) {
      QALIGN_RETURN_IF_ERROR(PinFixedOutputs(*op, *config, *rule, profile, out, result));
      if (options.method_by_node.count(op->name()) || options.method_by_op_type.count(op->type())) {
        result->notes.push_back(
            StrCat(op->Describe(), ": fixed output range kept; overrides do not apply to it"));
      }
      continue;
    }
    if (rule->method == AlignMethod::kNone) continue;
    std::vector<TQC*> members = RuleMembers(*config, rule->kind);
    // A rule needs two quantized ports to tie, except an inputs rule whose method takes the
    // params from a port outside the group (`output`): its single input still adopts them.
    const bool single_ok = members.size() == 1 && rule->kind == RuleKind::kShareInputs &&
                           rule->method == AlignMethod::kOutput;
    if (members.size() < 2 && !single_ok) continue;
    out->rules.push_back({op, config, *rule, std::move(members)});
    ++result->counters.rule_ops;
  }
  for (TQC* t : table->all()) {
    if (IsJoinable(*t) && IsBakedState(t->state) && t->scale.size() == 1 &&
        t->zero_point.size() == 1) {
      AddPin(out, t, Pin{t->scale[0], t->zero_point[0], /*fixed=*/false, t});
    }
  }
  return Status::Ok();
}

void CollectConstraints(bool force_overlap, QuantConfigTable* table, AlignmentConstraints* out,
                        AlignmentResult* result) {
  std::vector<int32_t> tie_of(force_overlap ? 0 : table->size(), -1);  // by id: an input's tie
  for (size_t r = 0; r < out->rules.size(); ++r) {
    const RuleTie& tie = out->rules[r];
    for (size_t i = 1; i < tie.members.size(); ++i) {
      out->constraints.push_back({tie.members[0], tie.members[i], static_cast<int32_t>(r)});
    }
    if (force_overlap) continue;
    for (const TQC* m : tie.members) {
      if (m->port.is_input) tie_of[static_cast<size_t>(m->id)] = static_cast<int32_t>(r);
    }
  }
  // Cascade control's requantize edges are written here, while their tensor is at hand.
  std::vector<std::pair<TQC*, TQC*>> edges;  // (consumer, joinable producer-side TQC or nullptr)
  for (const OperationQuantConfig* config : out->configs) {
    if (config == nullptr) continue;
    for (TQC* c : config->inputs) {
      if (c == nullptr || !IsJoinable(*c)) continue;
      Variable* t = c->port.tensor;
      TQC* producer = ProducerTqc(*t, *table);
      const int32_t tie = force_overlap ? -1 : tie_of[static_cast<size_t>(c->id)];
      const bool relaxed = tie >= 0 && CascadeRelaxes(*t, out->rules[static_cast<size_t>(tie)].op);
      if (!relaxed) {
        edges.emplace_back(c, producer);
      } else if (producer != nullptr) {
        Operation* op = c->port.op;
        out->requantizes.push_back(
            {t, t->producer(), op, CascadeReason(*op, c->port.index, *t, CountValueConsumers(*t))});
      }
    }
  }
  std::unordered_map<const Variable*, TQC*> anchor;
  for (const auto& [consumer, producer] : edges) {
    if (producer != nullptr) continue;
    auto [it, inserted] = anchor.emplace(consumer->port.tensor, consumer);
    if (!inserted && PortLess(consumer, it->second)) it->second = consumer;
  }
  for (const auto& [consumer, producer] : edges) {
    if (producer != nullptr) {
      out->constraints.push_back({producer, consumer, -1});
    } else if (TQC* a = anchor.at(consumer->port.tensor); a != consumer) {
      out->constraints.push_back({a, consumer, -1});
    }
  }
  result->counters.constraints = static_cast<int64_t>(out->constraints.size());
}

}  // namespace qalign
