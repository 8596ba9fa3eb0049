// `qalign check`: list the alignment rules a QDQ ONNX model violates for a target.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "flags.h"
#include "core/logging.h"
#include "onnx/importer.h"
#include "qdq/qdq_check.h"
#include "qdq/qdq_import.h"
#include "quant/target_profile.h"

namespace qalign::cli {
namespace {

struct CheckFlags {
  std::string model;
  std::string target;
  bool json = false;
  std::vector<std::string> input_shapes;
};

int RunCheck(const CheckFlags& flags) {
  ImportOptions import_options;
  auto shapes = ParseInputShapes(flags.input_shapes);
  if (!shapes.ok()) return ReportUsageError(shapes.status().message());
  import_options.input_shapes = *shapes;
  auto profile = LoadTargetProfile(flags.target);
  if (!profile.ok()) return ReportError(profile.status());
  auto view = ImportQdqModelFile(flags.model, *profile, import_options);
  if (!view.ok()) return ReportError(view.status());
  if ((*view)->stats.activation_pairs == 0 && (*view)->stats.constant_dqs == 0) {
    LogWarning(flags.model, ": no QuantizeLinear / DequantizeLinear nodes; not a QDQ model, "
               "nothing to check");
  }
  QdqCheckResult result = CheckQdqModel(**view);
  if (flags.json) {
    std::fputs(CheckReportJson(**view, result).c_str(), stdout);
  } else {
    for (const std::string& note : (*view)->notes) LogWarning(note);
    std::fputs(CheckReportText(**view, result).c_str(), stdout);
  }
  return result.violations.empty() ? kExitOk : kExitFailure;
}

}  // namespace

void AddCheckCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand(
      "check", "List the alignment rules a QDQ ONNX model violates for a target (exit 1 if any)");
  auto flags = std::make_shared<CheckFlags>();
  AddModelFlags(sub, &flags->model, &flags->input_shapes, "QDQ ONNX model (from any quantizer)");
  AddTargetFlag(sub, &flags->target);
  sub->add_flag("--json", flags->json, "Print the violations as JSON");
  sub->callback([&context, flags] { context.run = [flags] { return RunCheck(*flags); }; });
}

}  // namespace qalign::cli
