// `qalign fix`: re-align a QDQ ONNX model's Q/DQ params to a target's rules and write a new model.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "flags.h"
#include "core/file_util.h"
#include "core/logging.h"
#include "onnx/importer.h"
#include "pipeline/align_overrides.h"
#include "qdq/qdq_fix.h"
#include "qdq/qdq_import.h"
#include "quant/target_profile.h"

namespace qalign::cli {
namespace {

struct FixFlags {
  std::string model;
  std::string target;
  std::string output;
  std::string report;
  AlignOverrides overrides;
  std::vector<std::string> input_shapes;
};

int RunFix(const FixFlags& flags) {
  ImportOptions import_options;
  auto shapes = ParseInputShapes(flags.input_shapes);
  if (!shapes.ok()) return ReportUsageError(shapes.status().message());
  import_options.input_shapes = *shapes;
  Status checked = CheckAlignFlags(flags.overrides);
  if (!checked.ok()) return ReportUsageError(checked.message());
  QdqFixOptions options;
  auto alignment = ResolveAlignOverrides(flags.overrides);
  if (!alignment.ok()) return ReportError(alignment.status());
  options.alignment = *alignment;
  if (SameFile(flags.model, flags.output)) {
    return ReportError(InvalidArgumentError(flags.output, ": refusing to overwrite the input model"));
  }
  // Every output is checked before any work, so a run that cannot write them writes nothing.
  if (!flags.report.empty() && SameFile(flags.report, flags.output)) {
    return ReportError(InvalidArgumentError(flags.report, ": --report names the -o model"));
  }
  for (const std::string& path : {flags.output, flags.report}) {
    if (path.empty()) continue;
    Status usable = CheckOutputPath(path, flags.model);
    if (!usable.ok()) return ReportError(usable);
  }

  auto profile = LoadTargetProfile(flags.target);
  if (!profile.ok()) return ReportError(profile.status());
  auto view = ImportQdqModelFile(flags.model, *profile, import_options);
  if (!view.ok()) return ReportError(view.status());
  for (const std::string& note : (*view)->notes) LogWarning(note);
  auto result = FixQdqModel(**view, options, import_options);
  if (!result.ok()) return ReportError(result.status());
  for (const std::string& note : result->alignment.notes) LogInfo(note);
  if (!flags.report.empty()) {
    Status s = WriteFileAtomically(flags.report, FixReportJson(**view, *result, flags.output),
                                   flags.model);
    if (!s.ok()) return ReportError(s);
  }
  Status saved = SaveFixedModel(result->model, flags.output, flags.model);
  if (!saved.ok()) return ReportError(saved);

  int64_t pairs = 0, added = 0, constants = 0, biases = 0;
  double worst = 1.0;
  for (const QdqFixChange& c : result->changes) {
    pairs += c.kind == "activation";
    added += c.kind == "requantize_added";
    constants += c.kind == "constant";
    biases += c.kind == "bias";
    if (c.kind != "bias") worst = std::max(worst, c.resolution_cost);
  }
  std::printf("fixed %s for %s -> %s\n", flags.model.c_str(), (*profile).name.c_str(),
              flags.output.c_str());
  std::printf("  violations: %zu before, %zu after\n", result->before.violations.size(),
              result->after.violations.size());
  std::printf("  changes: %lld activation Q/DQ pairs re-aligned, %lld requantize pairs added, "
              "%lld constants and %lld int32 biases re-quantized; worst resolution cost %.3fx\n",
              static_cast<long long>(pairs), static_cast<long long>(added),
              static_cast<long long>(constants), static_cast<long long>(biases), worst);
  if (!result->after.violations.empty()) {
    return ReportError(FailedPreconditionError(flags.output, ": ", result->after.violations.size(),
                                               " violations remain, first: ",
                                               result->after.violations.front().message));
  }
  return kExitOk;
}

}  // namespace

void AddFixCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand(
      "fix", "Re-align a QDQ ONNX model's Q/DQ params to a target's rules (method large where no "
      "flag says otherwise); write a new model");
  auto flags = std::make_shared<FixFlags>();
  AddModelFlags(sub, &flags->model, &flags->input_shapes, "QDQ ONNX model (never modified)");
  AddTargetFlag(sub, &flags->target);
  sub->add_option("-o,--output", flags->output, "Where to write the repaired model")->required();
  sub->add_option("--report", flags->report, "Write the JSON report of every change here");
  AddAlignFlags(sub, &flags->overrides);
  sub->callback([&context, flags] { context.run = [flags] { return RunFix(*flags); }; });
}

}  // namespace qalign::cli
