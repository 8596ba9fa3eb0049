// The user's overrides of a target's alignment rules (public AlignOverrides: CLI flags and an
// --align-config file) as the alignment pass's options; align, quantize and fix share it.
#pragma once

#include "pipeline/pipeline.h"
#include "qalign/quantize.h"
#include "qalign/status.h"

namespace qalign {

// The config file first, then the flags over it (a flag beats the file). Errors name the flag
// ("--align: ...") or the file.
StatusOr<AlignmentOptions> ResolveAlignOverrides(const AlignOverrides& overrides);

}  // namespace qalign
