// `qalign check`: list the alignment rules a QDQ ONNX model violates for a target.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "flags.h"
#include "core/logging.h"
#include "qalign/check.h"

namespace qalign::cli {
namespace {

struct CheckFlags {
  CheckOptions options;
  bool json = false;
  std::vector<std::string> input_shapes;
};

int RunCheck(CheckFlags& flags) {
  auto shapes = ParseInputShapes(flags.input_shapes);
  if (!shapes.ok()) return ReportUsageError(shapes.status().message());
  flags.options.input_shapes = *shapes;
  auto summary = CheckModel(flags.options);
  if (!summary.ok()) return ReportError(summary.status());
  if (!summary->has_qdq) {
    LogWarning(flags.options.model_path, ": no QuantizeLinear / DequantizeLinear nodes; not a QDQ "
               "model, nothing to check");
  }
  if (flags.json) {
    std::fputs(summary->report_json.c_str(), stdout);
  } else {
    for (const std::string& note : summary->notes) LogWarning(note);
    std::fputs(summary->text.c_str(), stdout);
  }
  return summary->violations.empty() ? kExitOk : kExitFailure;
}

}  // namespace

void AddCheckCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand(
      "check", "List the alignment rules a QDQ ONNX model violates for a target (exit 1 if any)");
  auto flags = std::make_shared<CheckFlags>();
  AddModelFlags(sub, &flags->options.model_path, &flags->input_shapes,
                "QDQ ONNX model (from any quantizer)");
  AddTargetFlag(sub, &flags->options.target);
  sub->add_flag("--json", flags->json, "Print the violations as JSON");
  sub->callback([&context, flags] { context.run = [flags] { return RunCheck(*flags); }; });
}

}  // namespace qalign::cli
