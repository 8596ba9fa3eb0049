// `qalign calibrate MODEL --target T --calib SPEC -o ranges.json`: steps 0-2 of the quantize
// pipeline (rewrite, dispatch, calibrate) and the ranges of every activation tensor quantize would
// calibrate, with histograms on request, in the ranges.json format (quant/ranges.h).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "core/logging.h"
#include "flags.h"
#include "qalign/quantize.h"

namespace qalign::cli {
namespace {

struct CalibrateFlags {
  CalibrateOptions options;
  std::vector<std::string> input_shapes;
};

int RunCalibrate(CalibrateFlags& flags) {
  CalibrateOptions& options = flags.options;
  auto shapes = ParseInputShapes(flags.input_shapes);
  if (!shapes.ok()) return ReportUsageError(shapes.status().message());
  options.input_shapes = *shapes;
  Status checked = CheckCalibrationDataOptions(options);
  if (!checked.ok()) return ReportUsageError(checked.message());
  if (options.quiet) SetLogLevel(LogLevel::kWarning);
  auto summary = CalibrateModel(options);
  if (!summary.ok()) return ReportError(summary.status());
  if (!options.quiet) std::fprintf(stderr, "qalign: %s", summary->ToText().c_str());
  return kExitOk;
}

}  // namespace

void AddCalibrateCommand(CLI::App& app, CommandContext& context) {
  auto flags = std::make_shared<CalibrateFlags>();
  CalibrateOptions& o = flags->options;
  auto* sub = app.add_subcommand(
      "calibrate", "Calibrate the activation ranges quantize would, on sample data; write them");
  AddModelFlags(sub, &o.model_path, &flags->input_shapes, "FP32 ONNX model (never overwritten)");
  AddTargetFlag(sub, &o.target);
  AddCalibrationFlags(sub, &o)->required();
  AddRewriteFlags(sub, &o);
  sub->add_flag("--histograms", o.histograms,
                "Write each tensor's histogram into ranges.json (minmax skips binning otherwise)");
  sub->add_option("-o,--output", o.output_path, "ranges.json to write")->required();
  AddThreadsFlag(sub, &o.num_threads);
  AddQuietFlag(sub, &o.quiet);
  sub->callback([&context, flags] { context.run = [flags] { return RunCalibrate(*flags); }; });
}

}  // namespace qalign::cli
