// The steps of the alignment pass in order, one .cc file each, and the data they hand each other.
#pragma once

#include "passes/alignment/alignment_pass.h"  // with <cstdint>, <string>, <vector>

namespace qalign {

// A value a group is pinned to: a fixed-range rule's params or a BAKED member's params.
struct Pin {
  float scale = 0.0f;
  int64_t zero_point = 0;
  bool fixed = false;  // fixed-range rule (else BAKED member)
  const TQC* source = nullptr;
  bool Same(const Pin& o) const { return scale == o.scale && zero_point == o.zero_point; }
};

// One op whose rule ties two or more ports (or one input to an output method).
struct RuleTie {
  Operation* op = nullptr;
  const OperationQuantConfig* config = nullptr;
  EffectiveRule rule;
  std::vector<TQC*> members;  // RuleMembers
};

// a and b must share params; `rule` indexes the tie that asks it, -1 for a default edge.
struct Constraint {
  TQC* a = nullptr;
  TQC* b = nullptr;
  int32_t rule = -1;
};

struct AlignmentConstraints {
  std::vector<const OperationQuantConfig*> configs;  // of the graph's ops in order, or nullptr
  std::vector<RuleTie> rules;                        // graph order
  std::vector<Pin> pins;
  std::vector<int32_t> pin_of;              // by TQC id: index into pins, or -1
  std::vector<Constraint> constraints;      // rule ties, then default edges: the order of the links
  std::vector<RequantizeEdge> requantizes;  // made by cascade control

  const Pin* PinOf(const TQC* t) const {
    const int32_t k = pin_of[static_cast<size_t>(t->id)];
    return k < 0 ? nullptr : &pins[static_cast<size_t>(k)];
  }
};

// Step 1 (constraints.cc, rules.cc): the rule ties of every op, fixed-output pins (checked against
// the port's scheme), then BAKED members' pins; a TQC keeps its first pin, so a fixed range wins.
Status CollectRules(const Graph& graph, const TargetProfile& profile,
                    const AlignmentOptions& options, QuantConfigTable* table,
                    AlignmentConstraints* out, AlignmentResult* result);

// Step 2 (constraints.cc): every consumer-side TQC shares its tensor's producer-side TQC, or
// without one the first consumer port by name. Cascade control (force_overlap off): a rule tie on
// an input whose tensor has another consumer that reads its values (not Shape, Size), or is a graph
// output, keeps the producer out: that edge becomes a requantize instead.
void CollectConstraints(bool force_overlap, QuantConfigTable* table, AlignmentConstraints* out,
                        AlignmentResult* result);

// Step 2b (widen.cc), with options.widen_to_16_bits and a 16-bit activation scheme: every part of
// the partition the constraints will form that holds a joinable port at that scheme gets it on
// each joinable member at the 8-bit activation scheme (one bit width per group). Then every 16-bit
// port takes options.range_at_16_bits's range, when it gives one.
void WidenSixteenBitGroups(const AlignmentConstraints& constraints, const TargetProfile& profile,
                           const AlignmentOptions& options, QuantConfigTable* table,
                           AlignmentResult* result);

// Step 3 (groups.cc): links the constraints in order (the partition does not depend on it); those
// of a part holding two schemes or two different pins are replayed sorted by names, dropping and
// recording each one that would join them (see options.requantize_on_scheme_mismatch).
Status FormGroups(const AlignmentConstraints& constraints, const AlignmentOptions& options,
                  QuantConfigTable* table, AlignmentResult* result);

// What the pass knows of one group of joinable TQCs once the groups are final.
struct GroupChoice {
  TQC* root = nullptr;
  std::vector<int32_t> rules;      // indices of the rule ties touching the group, in rule order
  const Pin* fixed_pin = nullptr;  // the first by port name, if any
  const Pin* baked_pin = nullptr;
  bool has_range = false;  // whether [min, max], the union of the members' ranges, is set
  float min = 0.0f, max = 0.0f;
  const char* method = "";  // "fixed", "baked", a method name; "" for a tensor's own
  std::string reason;       // for reported groups, when options.collect_groups
};

// Step 4 (params.cc): sets the params of every group (in order of its first member's id) by the
// priority of docs/alignment.md: fixed range > user override > BAKED member > the method of the
// strongest rule source present. `output` and `input` take port 0 of that side of each deciding op
// with that method, else the members' union (as `optimal` does without options.optimal_range).
Status ChooseParams(const AlignmentConstraints& constraints, const AlignmentOptions& options,
                    QuantConfigTable* table, std::vector<GroupChoice>* groups,
                    AlignmentResult* result);

// Why cascade control made a requantize edge into input `port` of `consumer`.
std::string CascadeReason(const Operation& consumer, int port, const Variable& tensor,
                          int value_consumers);
std::string PinConflictReason(const Pin& x, const Pin& y);
RequantizeEdge DroppedConstraintEdge(const Constraint& c, Operation* rule_op,
                                     const std::string& why);
std::string PinReason(const Pin& pin);
// The first deciding rule by op name, how many more, and when methods differ how that was resolved.
std::string RuleReason(std::vector<const RuleTie*> deciding, AlignMethod chosen, bool mixed);

// Step 5 (report.cc, with the texts above): the requantize edges, the cascade's first, sorted
// stably by names without repeats; the groups a rule formed or a fixed range pinned (the others
// hold the TQCs of one tensor: listing them would bury the interesting ones).
void FinishReport(std::vector<RequantizeEdge> cascade, std::vector<GroupChoice>* groups,
                  const AlignmentOptions& options, QuantConfigTable* table,
                  AlignmentResult* result);

}  // namespace qalign
