// `qalign inspect`: placeholder until the ONNX importer lands.
#include "cli.h"

namespace qalign::cli {

void AddInspectCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand("inspect", "Summarize an ONNX model");
  auto model = std::make_shared<std::string>();
  sub->add_option("model", *model, "ONNX model file")->required();
  sub->callback([&context, model] {
    context.run = [model] { return ReportError(UnimplementedError("inspect: not built yet")); };
  });
}

}  // namespace qalign::cli
