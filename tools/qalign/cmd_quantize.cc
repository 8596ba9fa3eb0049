// `qalign quantize`: placeholder until its issue lands; replaced by the real command.
#include "cli.h"

namespace qalign::cli {

void AddQuantizeCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand("quantize", "Quantize a model end to end: calibrate, align, export QDQ ONNX");
  sub->allow_extras();
  sub->callback([&context] {
    context.run = [] { return ReportError(UnimplementedError("quantize: not built yet")); };
  });
}

}  // namespace qalign::cli
