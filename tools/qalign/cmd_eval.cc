// `qalign eval`: per-output SNR and cosine of a quantized model against its FP32 original, both run
// in qalign's executor; --per-layer ranks the layers that lose most.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "onnx/importer.h"
#include "qalign/quantize.h"

namespace qalign::cli {
namespace {

struct EvalFlags {
  EvalOptions options;
  std::vector<std::string> input_shapes;
};

int RunEval(EvalFlags& flags) {
  for (const std::string& flag : flags.input_shapes) {
    auto parsed = ParseInputShapeFlag(flag);
    if (!parsed.ok()) return ReportUsageError("--input-shape: " + parsed.status().message());
    flags.options.input_shapes[parsed->first] = parsed->second;
  }
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
  sub->add_option("fp32", o.fp32_path, "The FP32 ONNX model")->required();
  sub->add_option("quantized", o.quantized_path, "The quantized (QDQ) ONNX model")->required();
  sub->add_option("--data", o.data_spec,
                  "Samples: random:N[?seed=S], npy:DIR, pb:DIR, image:DIR[?size=WxH&...]")
      ->required();
  sub->add_option("--input-shape", flags->input_shapes, "Fix a graph input's dims: NAME=D,D,..");
  sub->add_flag("--per-layer", o.per_layer, "Rank the layers that lose most SNR");
  sub->add_option("--top", o.top_layers, "How many layers --per-layer lists (default 10)");
  sub->add_option("--threads", o.num_threads, "Executor threads (default: all cores)");
  sub->add_flag("--quiet", o.quiet, "No progress bar");
  sub->callback([&context, flags] { context.run = [flags] { return RunEval(*flags); }; });
}

}  // namespace qalign::cli
