// `qalign fix`: re-align a QDQ ONNX model's Q/DQ params to a target's rules and write a new model.
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

struct FixFlags {
  FixOptions options;
  std::vector<std::string> input_shapes;
};

int RunFix(FixFlags& flags) {
  auto shapes = ParseInputShapes(flags.input_shapes);
  if (!shapes.ok()) return ReportUsageError(shapes.status().message());
  flags.options.input_shapes = *shapes;
  Status checked = CheckAlignOverrides(flags.options);
  if (!checked.ok()) return ReportUsageError(checked.message());
  auto summary = FixModel(flags.options);
  if (!summary.ok()) return ReportError(summary.status());
  for (const std::string& note : summary->notes) LogWarning(note);
  std::fputs(summary->ToText().c_str(), stdout);
  Status remaining = summary->Remaining();
  if (!remaining.ok()) return ReportError(remaining);
  return kExitOk;
}

}  // namespace

void AddFixCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand(
      "fix", "Re-align a QDQ ONNX model's Q/DQ params to a target's rules (method large where no "
      "flag says otherwise); write a new model");
  auto flags = std::make_shared<FixFlags>();
  FixOptions& o = flags->options;
  AddModelFlags(sub, &o.model_path, &flags->input_shapes, "QDQ ONNX model (never modified)");
  AddTargetFlag(sub, &o.target);
  sub->add_option("-o,--output", o.output_path, "Where to write the repaired model")->required();
  sub->add_option("--report", o.report_path, "Write the JSON report of every change here");
  AddAlignFlags(sub, &o);
  sub->callback([&context, flags] { context.run = [flags] { return RunFix(*flags); }; });
}

}  // namespace qalign::cli
