// `qalign fix`: placeholder until its issue lands; replaced by the real command.
#include "cli.h"

namespace qalign::cli {

void AddFixCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand("fix", "Repair alignment violations in a QDQ ONNX model");
  sub->allow_extras();
  sub->callback([&context] {
    context.run = [] { return ReportError(UnimplementedError("fix: not built yet")); };
  });
}

}  // namespace qalign::cli
