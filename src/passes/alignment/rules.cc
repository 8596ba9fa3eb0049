// Step 1 of the alignment pass: options, overrides, the effective rule of an op, its ports.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/file_util.h"
#include "passes/alignment/alignment_pass.h"
#include "quant/op_kinds.h"

namespace qalign {

Status ParseAlignAssignment(const std::string& flag, std::map<std::string, AlignMethod>* out) {
  const size_t eq = flag.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == flag.size()) {
    return InvalidArgumentError("expected NAME=METHOD, got '", flag, "'");
  }
  auto method = ParseAlignMethod(flag.substr(eq + 1));
  if (!method.ok()) return InvalidArgumentError("'", flag, "': ", method.status().message());
  (*out)[flag.substr(0, eq)] = *method;
  return Status::Ok();
}

Status LoadAlignConfig(const std::string& path, AlignmentOptions* options) {
  using json = nlohmann::json;
  QALIGN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return InvalidArgumentError(path, ": expected a JSON object {\"op_types\", \"nodes\", ",
                                "\"force_overlap\", \"requantize_on_scheme_mismatch\"}");
  }
  for (const auto& [key, value] : root.items()) {
    if (key == "op_types" || key == "nodes") {
      if (!value.is_object()) {
        return InvalidArgumentError(path, ": \"", key, "\" must map names to methods");
      }
      auto& target = key == "op_types" ? options->method_by_op_type : options->method_by_node;
      for (const auto& [name, method] : value.items()) {
        if (!method.is_string()) {
          return InvalidArgumentError(path, ": \"", key, ".", name, "\" must be a method name");
        }
        auto parsed = ParseAlignMethod(method.get<std::string>());
        if (!parsed.ok()) {
          return InvalidArgumentError(path, ": \"", key, ".", name,
                                      "\": ", parsed.status().message());
        }
        target[name] = *parsed;
      }
    } else if (key == "force_overlap" || key == "requantize_on_scheme_mismatch") {
      if (!value.is_boolean()) {
        return InvalidArgumentError(path, ": \"", key, "\" must be true or false");
      }
      const bool on = value.get<bool>();
      if (key == "force_overlap") options->force_overlap = on;
      if (key != "force_overlap") options->requantize_on_scheme_mismatch = on;
    } else {
      return InvalidArgumentError(path, ": unknown key \"", key,
                                  "\" (expected op_types, nodes, force_overlap, ",
                                  "requantize_on_scheme_mismatch)");
    }
  }
  return Status::Ok();
}

std::optional<RuleKind> DefaultRuleKind(const std::string& op_type) {
  const uint32_t kinds = OpKindsOf(op_type);
  if (kinds & kConcatLike) return RuleKind::kShareInputsAndOutput;
  if (kinds & kElementwise) return RuleKind::kShareInputs;
  if (kinds & kPassThrough) return RuleKind::kShareInputOutput;
  return std::nullopt;
}

StatusOr<EffectiveRule> ResolveRule(const Operation& op, const TargetProfile& profile,
                                    const AlignmentOptions& options) {
  EffectiveRule rule;
  if (const AlignmentRule* base = profile.FindRule(op.type()); base != nullptr) {
    const RuleSource source = RuleSource::kProfile;
    rule = {true, base->kind, base->method, source, base->fixed_scale, base->fixed_zero_point};
    if (base->kind == RuleKind::kFixedOutput) return rule;
  }
  auto by_node = options.method_by_node.find(op.name());
  auto by_type = options.method_by_op_type.find(op.type());
  const bool node = by_node != options.method_by_node.end();
  if (!node && by_type == options.method_by_op_type.end()) return rule;
  if (!rule.present) {
    std::optional<RuleKind> kind = DefaultRuleKind(op.type());
    if (!kind) {
      return InvalidArgumentError(
          "cannot align ", op.Describe(), ": target '", profile.name, "' has no rule for op type ",
          op.type(), " and qalign knows no sharing kind for it; add a rule to the profile");
    }
    rule.present = true;
    rule.kind = *kind;
  }
  rule.method = node ? by_node->second : by_type->second;
  rule.source = node ? RuleSource::kNodeOverride : RuleSource::kOpTypeOverride;
  return rule;
}

std::vector<TQC*> RuleMembers(const OperationQuantConfig& config, RuleKind kind) {
  // share_inputs_and_output: every input and output; share_input_output: input 0 and every
  // output; share_inputs: every input; fixed_output ties nothing.
  size_t inputs =
      std::min<size_t>(kind == RuleKind::kShareInputOutput ? 1 : 0, config.inputs.size());
  if (kind == RuleKind::kShareInputsAndOutput || kind == RuleKind::kShareInputs) {
    inputs = config.inputs.size();
  }
  const bool outputs =
      kind == RuleKind::kShareInputsAndOutput || kind == RuleKind::kShareInputOutput;
  std::vector<TQC*> members;
  for (size_t i = 0; i < inputs + (outputs ? config.outputs.size() : 0); ++i) {
    TQC* t = i < inputs ? config.inputs[i] : config.outputs[i - inputs];
    if (t != nullptr && IsJoinable(*t)) members.push_back(t);
  }
  return members;
}

}  // namespace qalign
