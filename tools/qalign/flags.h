// The flags several subcommands share, each defined here once with one help text, so that a flag
// means and parses the same in every command. Each cmd_<name>.cc adds only its own flags.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "qalign/quantize.h"
#include "qalign/status.h"

namespace qalign::cli {

// MODEL (positional, required) and --input-shape NAME=D,D,... (repeatable).
void AddModelFlags(CLI::App* sub, std::string* model, std::vector<std::string>* input_shapes,
                   const std::string& model_help);
// The --input-shape flags by input name. A malformed flag, or a NAME given twice, is an error
// naming it (a usage error for the caller).
StatusOr<std::map<std::string, std::vector<int64_t>>> ParseInputShapes(
    const std::vector<std::string>& flags);

// --target NAME|FILE (required).
void AddTargetFlag(CLI::App* sub, std::string* target);
// --threads N.
void AddThreadsFlag(CLI::App* sub, int* threads);
// --quiet.
void AddQuietFlag(CLI::App* sub, bool* quiet);

// --no-fold and --no-equalize: the graph rewrites before dispatch.
void AddRewriteFlags(CLI::App* sub, ModelOptions* options);

// The help of a data spec (--calib, eval's --data).
extern const char kDataSpecHelp[];
// --calib, --observer, --percentile, --holdout. Returns --calib, which the caller may require.
CLI::Option* AddCalibrationFlags(CLI::App* sub, CalibrationDataOptions* options);

// --align, --align-node, --align-config, --force-overlap / --no-force-overlap,
// --requantize-on-mismatch.
void AddAlignFlags(CLI::App* sub, AlignOverrides* overrides);
// --no-saturation-ranges (align and quantize).
void AddSaturationFlag(CLI::App* sub, AlignOverrides* overrides);

}  // namespace qalign::cli
