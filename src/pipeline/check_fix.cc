// The public check and fix API (include/qalign/check.h) over src/qdq: import a QDQ model's params
// for a target, check them against its rules, re-align them and write a repaired model.
#include <algorithm>
#include <cstdio>

#include "core/file_util.h"
#include "core/logging.h"
#include "onnx/importer.h"
#include "pipeline/align_overrides.h"
#include "qalign/check.h"
#include "qalign/targets.h"
#include "qdq/qdq_check.h"
#include "qdq/qdq_fix.h"
#include "qdq/qdq_import.h"
#include "quant/target_profile.h"

namespace qalign {
namespace {

std::vector<Violation> ToViolations(const QdqCheckResult& result) {
  std::vector<Violation> violations;
  for (const QdqCheckViolation& v : result.violations) {
    Violation out{v.rule, v.op_type, v.op, v.method, {}, v.message};
    for (const QdqCheckPort& p : v.ports) {
      out.ports.push_back(ViolationPort{p.port, p.tensor, p.scale, p.zero_point});
    }
    violations.push_back(std::move(out));
  }
  return violations;
}

StatusOr<std::unique_ptr<QdqModelView>> ImportForTarget(
    const std::string& model_path, const std::string& target,
    const std::map<std::string, std::vector<int64_t>>& input_shapes, TargetProfile* profile,
    ImportOptions* import_options) {
  import_options->input_shapes = input_shapes;
  QALIGN_ASSIGN_OR_RETURN(*profile, LoadTargetProfile(target));
  return ImportQdqModelFile(model_path, *profile, *import_options);
}

}  // namespace

std::vector<std::string> TargetNames() { return BuiltinTargetNames(); }
std::string TargetsDirectory() { return TargetsDir(); }

StatusOr<CheckSummary> CheckModel(const CheckOptions& options) {
  TargetProfile profile;
  ImportOptions import_options;
  QALIGN_ASSIGN_OR_RETURN(auto view, ImportForTarget(options.model_path, options.target,
                                                     options.input_shapes, &profile,
                                                     &import_options));
  const QdqCheckResult result = CheckQdqModel(*view);
  CheckSummary summary;
  summary.model = options.model_path;
  summary.target = profile.name;
  summary.violations = ToViolations(result);
  summary.ops_checked = result.ops_checked;
  summary.ports_checked = result.ports_checked;
  summary.biases_checked = result.biases_checked;
  summary.has_qdq = view->stats.activation_pairs > 0 || view->stats.constant_dqs > 0;
  summary.notes = view->notes;
  summary.report_json = CheckReportJson(*view, result);
  summary.text = CheckReportText(*view, result);
  return summary;
}

std::string FixSummary::ToText() const {
  return StrCat("fixed ", model, " for ", target, " -> ", output, "\n",
                "  violations: ", violations_before.size(), " before, ", violations_after.size(),
                " after\n",
                "  changes: ", activation_pairs, " activation Q/DQ pairs re-aligned, ",
                requantizes_added, " requantize pairs added, ", constants, " constants and ",
                biases, " int32 biases re-quantized; worst resolution cost ",
                [&] {
                  char buffer[32];
                  std::snprintf(buffer, sizeof(buffer), "%.3f", worst_resolution_cost);
                  return std::string(buffer);
                }(),
                "x\n");
}

Status FixSummary::Remaining() const {
  if (violations_after.empty()) return Status::Ok();
  return FailedPreconditionError(output, ": ", violations_after.size(),
                                 " violations remain, first: ", violations_after.front().message);
}

StatusOr<FixSummary> FixModel(const FixOptions& options) {
  QALIGN_RETURN_IF_ERROR(CheckAlignOverrides(options));
  QdqFixOptions fix_options;
  QALIGN_ASSIGN_OR_RETURN(fix_options.alignment, ResolveAlignOverrides(options));
  if (options.output_path.empty()) return InvalidArgumentError("fix: no output path (-o)");
  if (SameFile(options.model_path, options.output_path)) {
    return InvalidArgumentError(options.output_path, ": refusing to overwrite the input model");
  }
  // Every output is checked before any work, so a run that cannot write them writes nothing.
  if (!options.report_path.empty() && SameFile(options.report_path, options.output_path)) {
    return InvalidArgumentError(options.report_path, ": --report names the -o model");
  }
  for (const std::string& path : {options.output_path, options.report_path}) {
    if (!path.empty()) QALIGN_RETURN_IF_ERROR(CheckOutputPath(path, options.model_path));
  }

  TargetProfile profile;
  ImportOptions import_options;
  QALIGN_ASSIGN_OR_RETURN(auto view, ImportForTarget(options.model_path, options.target,
                                                     options.input_shapes, &profile,
                                                     &import_options));
  FixSummary summary;
  summary.model = options.model_path;
  summary.target = profile.name;
  summary.output = options.output_path;
  summary.notes = view->notes;
  QALIGN_ASSIGN_OR_RETURN(QdqFixResult result, FixQdqModel(*view, fix_options, import_options));
  for (const std::string& note : result.alignment.notes) LogInfo(note);
  summary.report_json = FixReportJson(*view, result, options.output_path);
  if (!options.report_path.empty()) {
    QALIGN_RETURN_IF_ERROR(
        WriteFileAtomically(options.report_path, summary.report_json, options.model_path));
  }
  QALIGN_RETURN_IF_ERROR(SaveFixedModel(result.model, options.output_path, options.model_path));

  summary.violations_before = ToViolations(result.before);
  summary.violations_after = ToViolations(result.after);
  for (const QdqFixChange& c : result.changes) {
    summary.activation_pairs += c.kind == "activation";
    summary.requantizes_added += c.kind == "requantize_added";
    summary.constants += c.kind == "constant";
    summary.biases += c.kind == "bias";
    if (c.kind != "bias") {
      summary.worst_resolution_cost = std::max(summary.worst_resolution_cost, c.resolution_cost);
    }
  }
  return summary;
}

}  // namespace qalign
