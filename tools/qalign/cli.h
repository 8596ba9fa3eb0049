// Shared plumbing for qalign's subcommands: registration and Status -> exit code mapping.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "qalign/status.h"

namespace qalign::cli {

// Exit codes: 0 success, 1 a failure (bad model, I/O, violations found), 2 a usage error.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// The subcommand CLI11 selected stores what to run here; main() runs it after parsing.
struct CommandContext {
  std::function<int()> run;
};

// Prints "qalign: error: <message>" as one line on stderr and returns the exit code for it.
int ReportError(const Status& status);
// Prints "qalign: usage error: <message> (see qalign --help)" and returns kExitUsage.
int ReportUsageError(const std::string& message);

// One function per subcommand, each in its own cmd_<name>.cc.
void AddInspectCommand(CLI::App& app, CommandContext& context);    // cmd_inspect.cc
void AddAlignCommand(CLI::App& app, CommandContext& context);      // cmd_align.cc
void AddRunCommand(CLI::App& app, CommandContext& context);        // cmd_run.cc
void AddCalibrateCommand(CLI::App& app, CommandContext& context);  // cmd_calibrate.cc
void AddQuantizeCommand(CLI::App& app, CommandContext& context);   // cmd_quantize.cc
void AddEvalCommand(CLI::App& app, CommandContext& context);       // cmd_eval.cc
void AddCheckCommand(CLI::App& app, CommandContext& context);      // cmd_check.cc
void AddFixCommand(CLI::App& app, CommandContext& context);        // cmd_fix.cc

}  // namespace qalign::cli
