// `qalign align MODEL --target T --ranges ranges.json`: the quantize pipeline with the ranges of a
// file instead of a calibration run; prints the groups, params and requantize edges it finds.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "flags.h"
#include "qalign/quantize.h"

namespace qalign::cli {
namespace {

struct AlignFlags {
  AlignOptions options;
  std::vector<std::string> input_shapes;
};

int RunAlign(AlignFlags& flags) {
  // Flags first, so a usage mistake is reported before any file is read.
  AlignOptions& options = flags.options;
  auto shapes = ParseInputShapes(flags.input_shapes);
  if (!shapes.ok()) return ReportUsageError(shapes.status().message());
  options.input_shapes = *shapes;
  Status checked = CheckAlignOverrides(options);
  if (!checked.ok()) return ReportUsageError(checked.message());

  auto summary = AlignModel(options);
  if (!summary.ok()) return ReportError(summary.status());
  std::fputs(summary->text.c_str(), stdout);
  if (!summary->violation_messages.empty()) {
    return ReportError(FailedPreconditionError(
        options.model_path, ": ", summary->violation_messages.size(),
        " alignment violations, first: ", summary->violation_messages.front()));
  }
  return kExitOk;
}

}  // namespace

void AddAlignCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand(
      "align", "Align a model's quantization params to a target's rules, from given ranges");
  auto flags = std::make_shared<AlignFlags>();
  AlignOptions& o = flags->options;
  AddModelFlags(sub, &o.model_path, &flags->input_shapes, "FP32 ONNX model (never overwritten)");
  AddTargetFlag(sub, &o.target);
  sub->add_option("--ranges", o.ranges_path,
                  "ranges.json, as calibrate writes it: {\"tensor\": {\"min\": x, \"max\": y}} "
                  "(histogram optional)")
      ->required();
  AddRewriteFlags(sub, &o);
  AddAlignFlags(sub, &o);
  AddSaturationFlag(sub, &o);
  sub->add_flag("--allow-missing", o.allow_missing_ranges,
                "Tensors missing from ranges.json stay FP32 (with a warning)");
  sub->add_option("--report", o.report_path, "Write the JSON alignment report here");
  sub->callback([&context, flags] { context.run = [flags] { return RunAlign(*flags); }; });
}

}  // namespace qalign::cli
