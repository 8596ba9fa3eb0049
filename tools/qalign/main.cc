// qalign command-line entry point: parse flags with CLI11, run the selected subcommand.
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
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

namespace {

// oneDNN (Debian's build) runs on GNU OpenMP, whose idle threads spin by default after every
// parallel region and so take both cores away from qalign's own thread pool between oneDNN calls
// (measured: det 640x640 runs ~3.5x slower). libgomp reads OMP_WAIT_POLICY once, when it loads,
// before main(), so the only way to set it for this process is to set it and exec ourselves once.
// A user's explicit OMP_WAIT_POLICY is respected.
void EnsurePassiveOpenMpWaiting(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: carry on with the default policy
}

// The executor frees each intermediate tensor after its last use and allocates the next op's
// output moments later, tens of megabytes each for a detector at 640x640. Above glibc's mmap
// threshold every such allocation is a fresh mapping whose pages the kernel faults in and zeroes
// again, and every free unmaps it (measured: a fifth of the calibration time). Keeping large
// blocks in the heap lets them be reused; peak memory is unchanged, only returned later.
void KeepLargeBlocksInTheHeap() {
  ::mallopt(M_MMAP_THRESHOLD, 1 << 30);
  ::mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace qalign;
  EnsurePassiveOpenMpWaiting(argv);
  KeepLargeBlocksInTheHeap();
  CLI::App app{"qalign: quantize ONNX models to INT8 with explicit, verified alignment", "qalign"};
  app.set_version_flag("--version", std::string("qalign ") + QALIGN_VERSION_STRING);
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Print progress details");

  cli::CommandContext context;
  auto* help = app.add_subcommand("help", "Show this help");
  std::string top_help;  // filled after every subcommand is registered
  help->callback([&] { context.run = [&] { std::printf("%s", top_help.c_str()); return 0; }; });
  cli::AddInspectCommand(app, context);
  cli::AddAlignCommand(app, context);
  cli::AddRunCommand(app, context);
  cli::AddCalibrateCommand(app, context);
  cli::AddQuantizeCommand(app, context);
  cli::AddEvalCommand(app, context);
  cli::AddCheckCommand(app, context);
  cli::AddFixCommand(app, context);

  top_help = app.help();

  auto is_subcommand = [&app](const std::string& name) {
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      if (sub->get_name() == name) return true;
    }
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !is_subcommand(argv[1])) {
    return cli::ReportUsageError(std::string("unknown command '") + argv[1] + "'");
  }
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
  // Library calls return Status; an exception reaching here is a bug in qalign. It still ends as
  // one line and exit 1 (the CLI tests expect "qalign: error: " and so fail on this line).
  try {
    return context.run();
  } catch (const std::exception& e) {
    std::string what = e.what();
    for (char& c : what) {
      if (c == '\n') c = ' ';
    }
    std::fprintf(stderr, "qalign: internal error: %s\n", what.c_str());
  } catch (...) {
    std::fprintf(stderr, "qalign: internal error: unknown exception\n");
  }
  return cli::kExitFailure;
}
