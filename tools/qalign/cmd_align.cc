// `qalign align`: align a model's quantization params to a target's rules from given ranges.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "core/file_util.h"
#include "core/logging.h"
#include "export/alignment_report.h"
#include "onnx/importer.h"
#include "passes/alignment/alignment_pass.h"
#include "passes/weight_bias_params.h"
#include "passes/alignment_verifier.h"
#include "quant/dispatch.h"
#include "quant/quant_config.h"
#include "quant/ranges.h"
#include "quant/target_profile.h"

namespace qalign::cli {
namespace {

struct AlignFlags {
  std::string model;
  std::string target;
  std::string ranges;
  std::string report;
  std::vector<std::string> align;
  std::vector<std::string> align_node;
  bool force_overlap = false;
  bool no_force_overlap = false;
  std::string align_config;
  bool allow_missing = false;
  bool requantize_on_mismatch = false;
  std::vector<std::string> input_shapes;
};

int RunAlign(const AlignFlags& flags) {
  // Flags first, so a usage mistake is reported before any file is read.
  ImportOptions import_options;
  for (const std::string& flag : flags.input_shapes) {
    auto parsed = ParseInputShapeFlag(flag);
    if (!parsed.ok()) return ReportUsageError("--input-shape: " + parsed.status().message());
    import_options.input_shapes[parsed->first] = parsed->second;
  }
  AlignmentOptions options;
  if (!flags.align_config.empty()) {
    Status s = LoadAlignConfig(flags.align_config, &options);
    if (!s.ok()) return ReportError(s);
  }
  for (const std::string& flag : flags.align) {
    Status s = ParseAlignAssignment(flag, &options.method_by_op_type);
    if (!s.ok()) return ReportUsageError("--align: " + s.message());
  }
  for (const std::string& flag : flags.align_node) {
    Status s = ParseAlignAssignment(flag, &options.method_by_node);
    if (!s.ok()) return ReportUsageError("--align-node: " + s.message());
  }
  if (flags.force_overlap) options.force_overlap = true;
  if (flags.no_force_overlap) options.force_overlap = false;
  if (flags.requantize_on_mismatch) options.requantize_on_scheme_mismatch = true;

  auto graph = ImportOnnxModel(flags.model, import_options);
  if (!graph.ok()) return ReportError(graph.status());
  auto profile = LoadTargetProfile(flags.target);
  if (!profile.ok()) return ReportError(profile.status());
  auto ranges = LoadRanges(flags.ranges);
  if (!ranges.ok()) return ReportError(ranges.status());

  QuantConfigTable table;
  auto dispatched = DispatchQuantization(**graph, *profile, &table);
  if (!dispatched.ok()) return ReportError(dispatched.status());
  auto applied = ApplyRanges(*ranges, &table, flags.allow_missing);
  if (!applied.ok()) return ReportError(applied.status());
  auto result = RunAlignmentPass(**graph, *profile, options, &table);
  if (!result.ok()) {
    return ReportError(Status(result.status().code(),
                              flags.model + ": " + result.status().message()));
  }
  auto derived = DeriveWeightAndBiasParams(&table);
  if (!derived.ok()) {
    return ReportError(Status(derived.status().code(),
                              flags.model + ": " + derived.status().message()));
  }
  std::vector<AlignmentViolation> violations =
      VerifyAlignment(**graph, table, *profile, result->requantizes, options);

  std::fputs(AlignmentReportText(profile->name, *result, table, violations).c_str(), stdout);
  for (const std::string& note : result->notes) LogInfo(note);
  if (!flags.report.empty()) {
    Status s = WriteFileAtomically(
        flags.report, AlignmentReportJson(profile->name, *result, table, violations), flags.model);
    if (!s.ok()) return ReportError(s);
  }
  if (!violations.empty()) {
    return ReportError(FailedPreconditionError(flags.model, ": ", violations.size(),
                                               " alignment violations, first: ",
                                               violations.front().message));
  }
  return kExitOk;
}

}  // namespace

void AddAlignCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand(
      "align", "Align quantization params of a model to a target's rules, from given ranges");
  auto flags = std::make_shared<AlignFlags>();
  sub->add_option("model", flags->model, "ONNX model file")->required();
  sub->add_option("--target", flags->target,
                  "Target profile: a name (tflite-int8, ort-qdq-u8s8, trt-int8, qnn-u8, "
                  "ppq-default) or a JSON file")
      ->required();
  sub->add_option("--ranges", flags->ranges,
                  "ranges.json: {\"tensor\": {\"min\": x, \"max\": y}} (histogram optional)")
      ->required();
  sub->add_option("--report", flags->report, "Write the JSON alignment report here");
  sub->add_option("--align", flags->align, "Override a rule's method per op type: TYPE=METHOD "
                                           "(large, output, input, none)");
  sub->add_option("--align-node", flags->align_node,
                  "Override the method for one node: NAME=METHOD (beats --align)");
  auto* on = sub->add_flag("--force-overlap", flags->force_overlap,
                           "A rule on a shared tensor pulls its producer and all consumers in");
  auto* off = sub->add_flag("--no-force-overlap", flags->no_force_overlap,
                            "A rule on a shared tensor gets a requantize edge instead");
  on->excludes(off);
  sub->add_option("--align-config", flags->align_config,
                  "JSON overrides: {\"op_types\": {..}, \"nodes\": {..}, \"force_overlap\": b}");
  sub->add_flag("--allow-missing", flags->allow_missing,
                "Tensors missing from ranges.json stay FP32 (with a warning)");
  sub->add_flag("--requantize-on-mismatch", flags->requantize_on_mismatch,
                "Relax a scheme mismatch inside a group with a recorded requantize");
  sub->add_option("--input-shape", flags->input_shapes, "Fix a graph input's dims: NAME=D,D,..");
  sub->callback([&context, flags] { context.run = [flags] { return RunAlign(*flags); }; });
}

}  // namespace qalign::cli
