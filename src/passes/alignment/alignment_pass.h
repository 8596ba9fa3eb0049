// The quantization alignment pass: makes every sharing rule of a target hold, or says where not.
// The contract is docs/alignment.md; steps.h declares the steps, one .cc file each.
// FP32, SOI, OVERLAPPED, floating and per-channel TQCs never join a group. Weight and bias params
// are a later step (passes/weight_bias_params.h): they read the aligned input scale.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "qalign/status.h"
#include "quant/quant_config.h"
#include "quant/target_profile.h"

namespace qalign {

// User overrides of the target's rules (CLI flags or an --align-config JSON file).
struct AlignmentOptions {
  std::map<std::string, AlignMethod> method_by_op_type;  // --align Concat=large
  std::map<std::string, AlignMethod> method_by_node;     // --align-node NAME=output
  std::optional<bool> force_overlap;                     // overrides the profile's
  // A scheme mismatch inside a group is an error unless this is set; then the conflicting
  // constraint is dropped and recorded as a requantize.
  bool requantize_on_scheme_mismatch = false;
  // Step 2b: a group with a 16-bit port is 16-bit as a whole. The quantize pipeline sets it; `fix`
  // leaves it off, so that a mixed-width group in a given model is a scheme mismatch.
  bool widen_to_16_bits = false;
  // The calibration range of a port at 16 bits, when it should differ from the one the 8-bit
  // observer chose (pipeline.cc: the extent of the tensor's histogram, since a clip that pays at
  // 256 levels costs more than it saves at 65536); false keeps the port's own range.
  std::function<bool(const TQC& tqc, float* lo, float* hi)> range_at_16_bits;
  // Build the group list for the report (the benchmark switches it off to time the pass alone).
  bool collect_groups = true;
  // `optimal`'s range for a group's members (pipeline.cc searches their histograms); else `large`.
  std::function<bool(const std::vector<TQC*>& members, float* lo, float* hi)> optimal_range;
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

// The sharing kind qalign assumes, from its op kinds, for an op type the profile has no rule for
// when the user asks to align it (`--align Add=large`).
std::optional<RuleKind> DefaultRuleKind(const std::string& op_type);

// The effective rule of `op`: fixed-output rules are never overridden (their range is what the
// kernel computes); otherwise a node override beats an op-type override beats the profile. Fails
// when an override names an op type with no rule and no default kind.
StatusOr<EffectiveRule> ResolveRule(const Operation& op, const TargetProfile& profile,
                                    const AlignmentOptions& options);

// The ports a rule ties, restricted to TQCs that may join a group, in port order (inputs first).
std::vector<TQC*> RuleMembers(const OperationQuantConfig& config, RuleKind kind);

// An edge whose consumer reads the tensor with params different from its producer's: exported as
// Q -> DQ -> Q -> DQ. `producer` is nullptr for a graph input; `consumer` is nullptr when the
// conflict is inside `producer` (two of its outputs).
struct RequantizeEdge {
  Variable* tensor = nullptr;
  Operation* producer = nullptr;
  Operation* consumer = nullptr;
  std::string reason;  // one line
};

// A group formed by alignment rules (or spanning more than one tensor), for the report.
struct AlignmentGroup {
  int id = 0;
  std::vector<TQC*> members;  // sorted by (op name, port)
  std::string method;         // "fixed", "large", "optimal", "output", "input", "baked", "tensor"
  std::string reason;
  int distinct_tensors = 0;
};

struct AlignmentCounters {
  int64_t rule_ops = 0;     // ops whose rule tied at least two ports or fixed an output
  int64_t constraints = 0;  // links requested (rule ties + default edges)
  int64_t links_made = 0;   // links that merged two groups
  int64_t groups = 0;       // reported groups (rule-formed or multi-tensor)
  int64_t members = 0;      // members of reported groups
  int64_t requantizes = 0;
  int64_t conflicts = 0;         // constraints dropped because of a conflict (also requantizes)
  int64_t method_conflicts = 0;  // groups where rules with different methods met
  int64_t fixed_outputs = 0;
  int64_t params_set = 0;      // groups whose params were (re)computed
  int64_t params_changed = 0;  // of those, groups whose params differ from before
  int64_t groups_without_range = 0;
  int64_t widened_to_16_bits = 0;  // 8-bit ports widened because their group has a 16-bit one
  bool changed = false;            // any link or param changed
};

struct AlignmentResult {
  std::vector<AlignmentGroup> groups;       // by id
  std::vector<RequantizeEdge> requantizes;  // sorted by (tensor name, consumer name)
  std::vector<std::string> notes;           // fallbacks and conflicts, one line each, in order
  AlignmentCounters counters;
};

// Runs the pass over `table` (TQCs made by DispatchQuantization, ranges applied). Running it again
// on its own output changes nothing. The graph must outlive the result (it points into both).
StatusOr<AlignmentResult> RunAlignmentPass(const Graph& graph, const TargetProfile& profile,
                                           const AlignmentOptions& options,
                                           QuantConfigTable* table);

}  // namespace qalign
