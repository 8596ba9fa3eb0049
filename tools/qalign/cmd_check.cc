// `qalign check`: placeholder until its issue lands; replaced by the real command.
#include "cli.h"

namespace qalign::cli {

void AddCheckCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand("check", "List alignment rule violations in a QDQ ONNX model");
  sub->allow_extras();
  sub->callback([&context] {
    context.run = [] { return ReportError(UnimplementedError("check: not built yet")); };
  });
}

}  // namespace qalign::cli
