// qalign command-line entry point: parse flags with CLI11, run the selected subcommand.
#include <cstdio>
#include <string>

#include "cli.h"
#include "core/logging.h"

#ifndef QALIGN_VERSION_STRING
#define QALIGN_VERSION_STRING "0.0.0"
#endif

namespace qalign::cli {

int ReportError(const Status& status) {
  std::string message = status.message();
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  std::fprintf(stderr, "qalign: error: %s\n", message.c_str());
  return kExitFailure;
}

int ReportUsageError(const std::string& message) {
  std::fprintf(stderr, "qalign: usage error: %s (see qalign --help)\n", message.c_str());
  return kExitUsage;
}

}  // namespace qalign::cli

int main(int argc, char** argv) {
  using namespace qalign;
  CLI::App app{"qalign: quantize ONNX models to INT8 with explicit, verified alignment"};
  app.set_version_flag("--version", std::string("qalign ") + QALIGN_VERSION_STRING);
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Print progress details");

  cli::CommandContext context;
  auto* help = app.add_subcommand("help", "Show this help");
  help->callback([&] { context.run = [&] { std::printf("%s", app.help().c_str()); return 0; }; });
  cli::AddInspectCommand(app, context);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    for (char& c : what) {
      if (c == '\n') c = ' ';
    }
    return cli::ReportUsageError(what);
  }
  if (verbose) SetLogLevel(LogLevel::kInfo);
  if (!context.run) return cli::kExitUsage;
  return context.run();
}
