// Step 5 of the alignment pass: requantize edges and groups for the report; notes and reasons.
#include <algorithm>
#include <set>

#include "passes/alignment/steps.h"

namespace qalign {
namespace {

// "Concat 'cat1'" (with quotes also for an unnamed op, unlike Operation::Describe).
std::string OpLabel(const Operation& op) { return op.type() + " '" + op.name() + "'"; }

// By RuleSource and RuleKind value.
constexpr const char* kSourceLabels[] = {"target rule", "op-type override", "node override"};
constexpr const char* kKindLabels[] = {"inputs and output share", "input and output share",
                                       "inputs share", "fixed output"};

}  // namespace

std::string CascadeReason(const Operation& consumer, int port, const Variable& tensor,
                          int value_consumers) {
  // Appended into one string: with force_overlap off a large graph has such an edge per block.
  std::string out = "force_overlap off: ";
  out.append(consumer.type()).append(" '").append(consumer.name()).append("''s rule ties input:");
  out.append(std::to_string(port)).append(" but tensor '").append(tensor.name()).append("' has ");
  out.append(std::to_string(value_consumers)).append(" consumer(s)");
  if (tensor.is_graph_output()) out += " and is a graph output";
  return out.append("; the producer keeps its own params");
}

std::string PinConflictReason(const Pin& x, const Pin& y) {
  return StrCat("conflicting ", x.fixed ? "fixed" : "baked", " params (", x.scale, ", ",
                x.zero_point, ") of ", DescribeTqc(*x.source), " and ", y.fixed ? "fixed" : "baked",
                " params (", y.scale, ", ", y.zero_point, ") of ", DescribeTqc(*y.source));
}

RequantizeEdge DroppedConstraintEdge(const Constraint& c, Operation* rule_op,
                                     const std::string& why) {
  // A default edge: the consumer requantizes the producer's tensor. A rule tie: the input that
  // cannot join is requantized (or, for two outputs, inside the op).
  const TQC* in =
      rule_op == nullptr || c.b->port.is_input ? c.b : (c.a->port.is_input ? c.a : nullptr);
  if (in == nullptr) return {c.b->port.tensor, rule_op, nullptr, why};
  Operation* consumer = rule_op != nullptr ? rule_op : c.b->port.op;
  return {in->port.tensor, in->port.tensor->producer(), consumer, why};
}

std::string PinReason(const Pin& pin) {
  return pin.fixed ? "fixed output range of " + OpLabel(*pin.source->port.op)
                   : "already-quantized member " + DescribeTqc(*pin.source);
}

std::string RuleReason(std::vector<const RuleTie*> deciding, AlignMethod chosen, bool mixed) {
  // Sorted by op name, so a reason reads the same whatever the storage order.
  std::sort(deciding.begin(), deciding.end(),
            [](const RuleTie* x, const RuleTie* y) { return x->op->name() < y->op->name(); });
  const RuleTie& first = *deciding.front();
  // Plain concatenation: a large graph can have a method conflict per block.
  std::string out = OpLabel(*first.op) + " " + kSourceLabels[static_cast<int>(first.rule.source)] +
                    " (" + kKindLabels[static_cast<int>(first.rule.kind)] + ")";
  if (deciding.size() > 1) out += " and " + std::to_string(deciding.size() - 1) + " more";
  if (!mixed) return out;
  out += "; methods conflict (";
  for (size_t k = 0; k < deciding.size(); ++k) {
    if (k > 0) out += ", ";
    out += deciding[k]->op->Describe() + " wants " + AlignMethodName(deciding[k]->rule.method);
  }
  return out + "), chose " + AlignMethodName(chosen) + " by priority large > output > input";
}

void FinishReport(std::vector<RequantizeEdge> cascade, std::vector<GroupChoice>* groups,
                  const AlignmentOptions& options, QuantConfigTable* table,
                  AlignmentResult* result) {
  std::vector<RequantizeEdge>& edges = result->requantizes;
  edges.insert(edges.begin(), std::make_move_iterator(cascade.begin()),
               std::make_move_iterator(cascade.end()));
  auto names = [](const RequantizeEdge& e) {  // (tensor, consumer or "")
    return std::pair<std::string_view, std::string_view>(
        e.tensor->name(), e.consumer != nullptr ? e.consumer->name() : std::string_view());
  };
  std::stable_sort(
      edges.begin(), edges.end(),
      [&](const RequantizeEdge& x, const RequantizeEdge& y) { return names(x) < names(y); });
  auto same = [](const RequantizeEdge& a, const RequantizeEdge& b) {
    return a.tensor == b.tensor && a.consumer == b.consumer && a.producer == b.producer;
  };
  edges.erase(std::unique(edges.begin(), edges.end(), same), edges.end());
  result->counters.requantizes = static_cast<int64_t>(edges.size());

  for (GroupChoice& g : *groups) {
    if (g.rules.empty() && g.fixed_pin == nullptr) continue;
    ++result->counters.groups;
    result->counters.members += static_cast<int64_t>(table->GroupSize(g.root));
    if (!options.collect_groups) continue;
    AlignmentGroup group;
    group.members = table->Members(g.root);
    std::sort(group.members.begin(), group.members.end(), PortLess);
    std::set<const Variable*> tensors;
    for (const TQC* m : group.members) tensors.insert(m->port.tensor);
    group.distinct_tensors = static_cast<int>(tensors.size());
    group.method = g.method;
    group.reason = std::move(g.reason);
    result->groups.push_back(std::move(group));
  }
  std::sort(result->groups.begin(), result->groups.end(),
            [](const AlignmentGroup& x, const AlignmentGroup& y) {
              return PortLess(x.members.front(), y.members.front());
            });
  for (size_t i = 0; i < result->groups.size(); ++i) result->groups[i].id = static_cast<int>(i);
}

}  // namespace qalign
