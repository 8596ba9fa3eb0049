// `qalign eval`: placeholder until its issue lands; replaced by the real command.
#include "cli.h"

namespace qalign::cli {

void AddEvalCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand("eval", "Compare a quantized model with its FP32 original (SNR, cosine)");
  sub->allow_extras();
  sub->callback([&context] {
    context.run = [] { return ReportError(UnimplementedError("eval: not built yet")); };
  });
}

}  // namespace qalign::cli
