// Step 3 of the alignment pass: groups from constraints, conflicts replayed in name order.
#include <algorithm>
#include <numeric>
#include <string>

#include "passes/alignment/steps.h"

namespace qalign {
namespace {

// A look-ahead partition over TQC ids that never touches the table: the smaller id is the root.
struct LookAhead {
  explicit LookAhead(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  int32_t& up(int32_t x) { return parent[static_cast<size_t>(x)]; }
  int32_t Find(int32_t x) {  // with path halving
    while (up(x) != x) x = up(x) = up(up(x));
    return x;
  }
  void Union(int32_t a, int32_t b) {
    a = Find(a);
    b = Find(b);
    up(std::max(a, b)) = std::min(a, b);
  }
  std::vector<int32_t> parent;
};

}  // namespace

Status FormGroups(const AlignmentConstraints& in, const AlignmentOptions& options,
                  QuantConfigTable* table, AlignmentResult* result) {
  // Parts of the look-ahead partition that see two schemes or two different pins.
  const size_t n = table->size();
  LookAhead look(n);
  for (const Constraint& c : in.constraints) look.Union(c.a->id, c.b->id);
  std::vector<const TQC*> scheme_seen(n, nullptr);
  std::vector<const Pin*> pin_seen(n, nullptr);
  std::vector<uint8_t> conflicted(n, 0);
  for (const Constraint& c : in.constraints) {
    for (const TQC* t : {c.a, c.b}) {
      const size_t r = static_cast<size_t>(look.Find(t->id));
      if (scheme_seen[r] == nullptr) scheme_seen[r] = t;
      if (!(scheme_seen[r]->scheme == t->scheme)) conflicted[r] = 1;
      const Pin* pin = in.PinOf(t);
      if (pin == nullptr) continue;
      if (pin_seen[r] == nullptr) pin_seen[r] = pin;
      if (!pin_seen[r]->Same(*pin)) conflicted[r] = 1;
    }
  }
  auto rule_op = [&in](const Constraint& c) -> Operation* {
    return c.rule < 0 ? nullptr : in.rules[static_cast<size_t>(c.rule)].op;
  };
  std::vector<Constraint> replay;
  for (const Constraint& c : in.constraints) {
    if (conflicted[static_cast<size_t>(look.Find(c.a->id))]) {
      replay.push_back(c);
    } else {
      QALIGN_ASSIGN_OR_RETURN(bool merged, table->Link(c.a, c.b));
      if (merged) ++result->counters.links_made;
    }
  }
  // Rule ties first (by op name, then port), then default edges (by tensor name, then port), so a
  // conflict drops the same constraint whatever the storage order.
  std::sort(replay.begin(), replay.end(), [&](const Constraint& x, const Constraint& y) {
    const Operation* x_op = rule_op(x);
    const Operation* y_op = rule_op(y);
    if ((x_op != nullptr) != (y_op != nullptr)) return x_op != nullptr;
    const int c = x_op != nullptr ? x_op->name().compare(y_op->name())
                                  : x.b->port.tensor->name().compare(y.b->port.tensor->name());
    return c != 0 ? c < 0 : PortLess(x.b, y.b);
  });
  // Replay over a fresh partition of the conflicted TQCs, each part with a member that shows its
  // scheme, and its pin if any.
  LookAhead parts(n);
  scheme_seen.assign(n, nullptr);
  pin_seen.assign(n, nullptr);
  auto part_of = [&](const TQC* t) {
    const size_t r = static_cast<size_t>(parts.Find(t->id));
    if (scheme_seen[r] == nullptr) scheme_seen[r] = t;
    if (pin_seen[r] == nullptr) pin_seen[r] = in.PinOf(t);
    return static_cast<int32_t>(r);
  };
  for (const Constraint& c : replay) {
    const int32_t ra = part_of(c.a), rb = part_of(c.b);
    if (ra == rb) continue;
    const TQC* sa = scheme_seen[static_cast<size_t>(ra)];
    const TQC* sb = scheme_seen[static_cast<size_t>(rb)];
    const Pin* pa = pin_seen[static_cast<size_t>(ra)];
    const Pin* pb = pin_seen[static_cast<size_t>(rb)];
    std::string why;
    if (!(sa->scheme == sb->scheme)) {
      if (!options.requantize_on_scheme_mismatch) {
        return InvalidArgumentError(
            "scheme mismatch: ", DescribeTqc(*c.a), " must share params with ", DescribeTqc(*c.b),
            " (", rule_op(c) ? StrCat(rule_op(c)->Describe(), " rule") : std::string("same tensor"),
            ") but ", DescribeTqc(*sa), " is ", sa->scheme.ToString(), " and ", DescribeTqc(*sb),
            " is ", sb->scheme.ToString(),
            "; pass --requantize-on-mismatch to insert a requantize");
      }
      why = StrCat("scheme mismatch: ", sa->scheme.ToString(), " vs ", sb->scheme.ToString());
    } else if (pa != nullptr && pb != nullptr && !pa->Same(*pb)) {
      why = PinConflictReason(*pa, *pb);
    }
    if (!why.empty()) {
      ++result->counters.conflicts;
      result->requantizes.push_back(DroppedConstraintEdge(c, rule_op(c), why));
      result->notes.push_back(
          StrCat("constraint ", DescribeTqc(*c.a), " ~ ", DescribeTqc(*c.b), " dropped: ", why));
      continue;
    }
    parts.Union(ra, rb);  // the smaller root stays: with a's scheme, and its pin or the other's
    const size_t r = static_cast<size_t>(std::min(ra, rb));
    scheme_seen[r] = sa;
    if (pin_seen[r] == nullptr) pin_seen[r] = pin_seen[static_cast<size_t>(std::max(ra, rb))];
    QALIGN_ASSIGN_OR_RETURN(bool merged, table->Link(c.a, c.b));
    if (merged) ++result->counters.links_made;
  }
  return Status::Ok();
}

}  // namespace qalign
