// `qalign run`: placeholder until its issue lands; replaced by the real command.
#include "cli.h"

namespace qalign::cli {

void AddRunCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand("run", "Run FP32 inference with qalign's executor");
  sub->allow_extras();
  sub->callback([&context] {
    context.run = [] { return ReportError(UnimplementedError("run: not built yet")); };
  });
}

}  // namespace qalign::cli
