// `qalign calibrate`: placeholder until its issue lands; replaced by the real command.
#include "cli.h"

namespace qalign::cli {

void AddCalibrateCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand("calibrate", "Calibrate activation ranges on sample data");
  sub->allow_extras();
  sub->callback([&context] {
    context.run = [] { return ReportError(UnimplementedError("calibrate: not built yet")); };
  });
}

}  // namespace qalign::cli
