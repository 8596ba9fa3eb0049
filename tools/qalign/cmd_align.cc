// `qalign align`: placeholder until its issue lands; replaced by the real command.
#include "cli.h"

namespace qalign::cli {

void AddAlignCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand("align", "Align quantization params of a model to a target's rules, from given ranges");
  sub->allow_extras();
  sub->callback([&context] {
    context.run = [] { return ReportError(UnimplementedError("align: not built yet")); };
  });
}

}  // namespace qalign::cli
