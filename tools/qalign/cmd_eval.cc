// `qalign eval`: per-output SNR and cosine of a quantized model against its FP32 original, both run
// in qalign's executor; --per-layer ranks the layers that lose most.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "flags.h"
#include "onnx/importer.h"
#include "qalign/quantize.h"

namespace qalign::cli {
namespace {

struct EvalFlags {
  EvalOptions options;
  std::vector<std::string> input_shapes;
};

int RunEval(EvalFlags& flags) {
  auto shapes = ParseInputShapes(flags.input_shapes);
  if (!shapes.ok()) return ReportUsageError(shapes.status().message());
  flags.options.input_shapes = *shapes;
  auto summary = EvaluateModels(flags.options);
  if (!summary.ok()) return ReportError(summary.status());
  std::fputs(summary->ToText().c_str(), stdout);
  return kExitOk;
}

}  // namespace

void AddEvalCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand("eval",
                                 "Compare a quantized model with its FP32 original (SNR, cosine)");
  auto flags = std::make_shared<EvalFlags>();
  EvalOptions& o = flags->options;
  AddModelFlags(sub, &o.fp32_path, &flags->input_shapes, "The FP32 ONNX model");
  sub->add_option("quantized", o.quantized_path, "The quantized (QDQ) ONNX model")->required();
  sub->add_option("--data", o.data_spec, std::string("Samples: ") + kDataSpecHelp)->required();
  sub->add_flag("--per-layer", o.per_layer, "Rank the layers that lose most SNR");
  sub->add_option("--top", o.top_layers, "How many layers --per-layer lists (default 10)")
      ->check(CLI::PositiveNumber);
  AddThreadsFlag(sub, &o.num_threads);
  AddQuietFlag(sub, &o.quiet);
  sub->callback([&context, flags] { context.run = [flags] { return RunEval(*flags); }; });
}

}  // namespace qalign::cli
