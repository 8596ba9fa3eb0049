// Public API: the target profiles shipped with qalign (targets/*.json, installed in
// share/qalign/targets/) and where they are looked up.
#pragma once

#include <string>
#include <vector>

namespace qalign {

// The names a `target` option accepts besides a JSON file path (tflite-int8, ...), sorted.
std::vector<std::string> TargetNames();
// The directory they come from: $QALIGN_TARGETS_DIR if set, else PREFIX/share/qalign/targets of
// an installed qalign, else the source tree's targets/.
std::string TargetsDirectory();

}  // namespace qalign
