// The quantization alignment pass: makes every sharing rule of a target hold, explicitly.
//
// Steps (contract: ../shared/design/alignment.md):
//  1. Collect constraints over the whole graph: for each op, the target's rule (or a user override)
//     names the ports that must share (scale, zero_point); plus the default producer -> consumer
//     sharing of every tensor.
//  2. Cascade control: a rule that ties a consumer-side port whose TENSOR has other consumers or is
//     a graph output either pulls the producer and every consumer into the group
//     (force_overlap = true) or leaves the producer alone and records a RequantizeEdge.
//  3. Form groups with the table's union-find (root to root). The partition does not depend on the
//     order ops are stored in; the rare conflicts (two different fixed ranges, two schemes) are
//     resolved over constraints sorted by a name key, so they do not either.
//  4. Choose params per group by priority: fixed-range rule > user override (node > op type) >
//     already-quantized (BAKED) member > the rules' method (large > output > input when several
//     meet in one group) > the tensor's own range for groups no rule formed.
//  5. Derive weight params (per-channel symmetric from the data) and bias params
//     (scale = input_scale * weight_scale[c], zero_point 0).
// FP32, SOI, OVERLAPPED, floating and per-channel TQCs never join a group.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "quant/quant_config.h"
#include "quant/target_profile.h"
#include "qalign/status.h"

namespace qalign {

class ThreadPool;

// User overrides of the target's rules (CLI flags or an --align-config JSON file).
struct AlignmentOptions {
  std::map<std::string, AlignMethod> method_by_op_type;  // --align Concat=large
  std::map<std::string, AlignMethod> method_by_node;     // --align-node NAME=output
  std::optional<bool> force_overlap;                     // overrides the profile's
  // A scheme mismatch inside a group is an error unless this is set; then the conflicting
  // constraint is dropped and recorded as a requantize.
  bool requantize_on_scheme_mismatch = false;
  // Derive weight (per-channel, from the data) and bias params after alignment.
  bool derive_weight_and_bias = true;
  // Build the group list for the report (the benchmark switches it off to time the pass alone).
  bool collect_groups = true;
  // Threads for large graphs (nullptr: the calling thread only): the sweep over every TQC runs in
  // slices beside the search for each op's config, and per-channel weights are derived on a
  // second thread while the activations are aligned. The result does not depend on it (on an
  // alignment error, the weights may already hold their derived params).
  ThreadPool* pool = nullptr;
};

// Parses "KEY=METHOD" (the last '=' separates) into `out`.
Status ParseAlignAssignment(const std::string& flag, std::map<std::string, AlignMethod>* out);
// Reads an --align-config file:
//   {"op_types": {"Concat": "large"}, "nodes": {"concat_3": "output"},
//    "force_overlap": false, "requantize_on_scheme_mismatch": false}
// Every key is optional; unknown keys are errors naming the file. Values merge into `options`
// (command-line flags given after the file win, because the CLI applies them later).
Status LoadAlignConfig(const std::string& path, AlignmentOptions* options);

// Where the effective rule of an op comes from (higher wins).
enum class RuleSource { kProfile = 0, kOpTypeOverride = 1, kNodeOverride = 2 };

// The rule that applies to one op after overrides; `present` is false when nothing ties its ports.
struct EffectiveRule {
  bool present = false;
  RuleKind kind = RuleKind::kShareInputsAndOutput;
  AlignMethod method = AlignMethod::kNone;
  RuleSource source = RuleSource::kProfile;
  float fixed_scale = 0.0f;
  int64_t fixed_zero_point = 0;
};

// The sharing kind qalign assumes for an op type the profile has no rule for, when the user asks
// to align it (`--align Add=large`): Concat -> inputs and output; Add/Sub/Mul/Sum/Max/Min/Mean ->
// inputs; pooling and data-movement ops (Slice and Dropout included) -> input and output.
std::optional<RuleKind> DefaultRuleKind(const std::string& op_type);

// The effective rule of `op`: fixed-output rules are never overridden; otherwise a node override
// beats an op-type override beats the profile. Fails when an override names an op type with no
// rule and no default kind.
StatusOr<EffectiveRule> ResolveRule(const Operation& op, const TargetProfile& profile,
                                    const AlignmentOptions& options);

// The ports a rule ties, restricted to TQCs that may join a group, in port order (inputs first).
std::vector<TQC*> RuleMembers(const OperationQuantConfig& config, RuleKind kind);
// The same, appended to *members (a caller looping over ops reuses one vector).
void AppendRuleMembers(const OperationQuantConfig& config, RuleKind kind,
                       std::vector<TQC*>* members);

// True when a TQC may be a member of an alignment group: quantized (not FP32 / SOI / OVERLAPPED),
// linear, per-tensor, and an activation or a per-tensor parameter (not a bias).
bool IsJoinable(const TQC& tqc);

// An edge whose consumer reads the tensor with params different from its producer's: exported as
// Q -> DQ -> Q -> DQ. `producer` is nullptr for a graph input; `consumer` is nullptr when the
// conflict is inside `producer` (two of its outputs).
struct RequantizeEdge {
  Variable* tensor = nullptr;
  Operation* producer = nullptr;
  Operation* consumer = nullptr;

  // Why the edge exists, one line. An edge that cascade control made (force_overlap off) keeps
  // the numbers that name it and renders the text when read, from the names of its consumer and
  // tensor: a large graph can have one per block, and building the text for each was a large
  // share of the pass's time. (So the graph must outlive the edge, as for the pointers above.)
  std::string reason() const;

  // The text of an edge made for another reason (a dropped constraint); empty for a cascade edge.
  std::string text;
  // A cascade edge: the consumer's input port the rule ties, the tensor's consumers that read its
  // values, and whether it is a graph output.
  int32_t cascade_port = -1;
  int32_t cascade_consumers = 0;
  bool cascade_graph_output = false;
};

// A group formed by alignment rules (or spanning more than one tensor), for the report.
struct AlignmentGroup {
  int id = 0;
  std::vector<TQC*> members;  // sorted by (op name, port)
  std::string method;         // "fixed", "large", "output", "input", "baked", "tensor"
  std::string reason;
  int distinct_tensors = 0;
};

struct AlignmentCounters {
  int64_t rule_ops = 0;         // ops whose rule tied at least two ports or fixed an output
  int64_t constraints = 0;      // links requested (rule ties + default edges)
  int64_t links_made = 0;       // links that merged two groups
  int64_t groups = 0;           // reported groups (rule-formed or multi-tensor)
  int64_t members = 0;          // members of reported groups
  int64_t requantizes = 0;
  int64_t conflicts = 0;        // constraints dropped because of a conflict (also requantizes)
  int64_t method_conflicts = 0; // groups where rules with different methods met
  int64_t fixed_outputs = 0;
  int64_t params_set = 0;       // groups whose params were (re)computed
  int64_t params_changed = 0;   // of those, groups whose params differ from before
  int64_t params_set_by_helper = 0;  // of params_set, those the weights' thread chose once done
                                     // with its own work (depends on timing; 0 without a pool)
  int64_t groups_without_range = 0;
  int64_t weights = 0;
  int64_t biases = 0;
  bool changed = false;         // any link or param changed
};

// The pass's notes (fallbacks and conflicts), one line each, in the order the pass made them.
// A note on rules with different methods meeting in one group is kept as the data that names it
// (the group's root TQC, the deciding rules' ops and methods) and rendered when read: a large graph
// can have such a group per block, and building the text (about 250 characters) for each was a
// quarter of the pass's time for callers that never read it. Reading a note reads the names of
// the ops and tensors it mentions, so the graph and table must outlive the result (as they must
// for the groups' TQC pointers and the requantize edges).
class AlignmentNotes {
 public:
  // One rule of a group whose rules' methods conflict, as the note names it.
  struct ConflictRule {
    const Operation* op = nullptr;
    AlignMethod method = AlignMethod::kNone;
    RuleSource source = RuleSource::kProfile;
    RuleKind kind = RuleKind::kShareInputsAndOutput;
  };

  bool empty() const { return notes_.empty(); }
  size_t size() const { return notes_.size(); }
  // The text of note i.
  std::string operator[](size_t i) const;
  void push_back(std::string text);
  // "group of <root>: <first rule> ... and N more; methods conflict (<op> wants <method>, ...),
  // chose <chosen> by priority large > output > input"; `rules` in the pass's order (the text
  // lists them sorted by op name).
  void AddMethodConflict(const TQC* root, std::span<const ConflictRule> rules, AlignMethod chosen);
  // Adds other's notes after these, in their order.
  void Append(const AlignmentNotes& other);
  // Room for `conflicts` more method conflicts naming `rules` rules in all (an upper bound is
  // fine: the storage is address space until written).
  void Reserve(size_t conflicts, size_t rules);

  // Iterates the rendered texts: `for (const std::string& note : result.notes)`.
  class const_iterator {
   public:
    using value_type = std::string;
    using difference_type = std::ptrdiff_t;
    const_iterator() = default;
    const_iterator(const AlignmentNotes* notes, size_t i) : notes_(notes), i_(i) {}
    std::string operator*() const { return (*notes_)[i_]; }
    const_iterator& operator++() {
      ++i_;
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator old = *this;
      ++i_;
      return old;
    }
    bool operator==(const const_iterator& o) const { return i_ == o.i_; }

   private:
    const AlignmentNotes* notes_ = nullptr;
    size_t i_ = 0;
  };
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, notes_.size()}; }

 private:
  // Plain data, so the list grows by copying bytes: a large graph can have a conflict per block.
  struct Note {
    const TQC* root = nullptr;  // a method conflict: the group's root; nullptr for a text note
    uint32_t first = 0;         // its rules: rules_[first, first + count); a text: texts_[first]
    uint32_t count = 0;
    AlignMethod chosen = AlignMethod::kNone;
  };
  HugeVector<Note> notes_;
  HugeVector<ConflictRule> rules_;
  std::vector<std::string> texts_;
};

struct AlignmentResult {
  std::vector<AlignmentGroup> groups;          // by id
  std::vector<RequantizeEdge> requantizes;     // sorted by (tensor, consumer)
  AlignmentNotes notes;                        // fallbacks and conflicts, one line each
  AlignmentCounters counters;
};

// Runs the pass over `table` (TQCs made by DispatchQuantization, ranges applied). Running it again
// on its own output changes nothing.
StatusOr<AlignmentResult> RunAlignmentPass(const Graph& graph, const TargetProfile& profile,
                                           const AlignmentOptions& options,
                                           QuantConfigTable* table);

}  // namespace qalign
