// `qalign fix`: re-align a QDQ ONNX model's Q/DQ params to a target's rules and write a new model.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "core/file_util.h"
#include "core/logging.h"
#include "onnx/importer.h"
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
  std::vector<std::string> align;
  std::vector<std::string> align_node;
  bool force_overlap = false;
  bool no_force_overlap = false;
  std::vector<std::string> input_shapes;
};

int RunFix(const FixFlags& flags) {
  ImportOptions import_options;
  for (const std::string& flag : flags.input_shapes) {
    auto parsed = ParseInputShapeFlag(flag);
    if (!parsed.ok()) return ReportUsageError("--input-shape: " + parsed.status().message());
    import_options.input_shapes[parsed->first] = parsed->second;
  }
  QdqFixOptions options;
  for (const std::string& flag : flags.align) {
    Status s = ParseAlignAssignment(flag, &options.alignment.method_by_op_type);
    if (!s.ok()) return ReportUsageError("--align: " + s.message());
  }
  for (const std::string& flag : flags.align_node) {
    Status s = ParseAlignAssignment(flag, &options.alignment.method_by_node);
    if (!s.ok()) return ReportUsageError("--align-node: " + s.message());
  }
  if (flags.force_overlap) options.alignment.force_overlap = true;
  if (flags.no_force_overlap) options.alignment.force_overlap = false;
  if (SameFile(flags.model, flags.output)) {
    return ReportError(InvalidArgumentError(flags.output, ": refusing to overwrite the input model"));
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
      "fix", "Re-align a QDQ ONNX model's Q/DQ params to a target's rules; write a new model");
  auto flags = std::make_shared<FixFlags>();
  sub->add_option("model", flags->model, "QDQ ONNX model (never modified)")->required();
  sub->add_option("--target", flags->target,
                  "Target profile: tflite-int8, ort-qdq-u8s8, trt-int8, qnn-u8, ppq-default or a "
                  "JSON file")
      ->required();
  sub->add_option("-o,--output", flags->output, "Where to write the repaired model")->required();
  sub->add_option("--report", flags->report, "Write the JSON report of every change here");
  sub->add_option("--align", flags->align,
                  "Method per op type, TYPE=METHOD (default large for every rule)");
  sub->add_option("--align-node", flags->align_node, "Method for one node: NAME=METHOD");
  auto* on = sub->add_flag("--force-overlap", flags->force_overlap,
                           "A rule on a shared tensor pulls its producer and all consumers in");
  auto* off = sub->add_flag("--no-force-overlap", flags->no_force_overlap,
                            "A rule on a shared tensor gets a requantize pair instead");
  on->excludes(off);
  sub->add_option("--input-shape", flags->input_shapes, "Fix a graph input's dims: NAME=D,D,..");
  sub->callback([&context, flags] { context.run = [flags] { return RunFix(*flags); }; });
}

}  // namespace qalign::cli
