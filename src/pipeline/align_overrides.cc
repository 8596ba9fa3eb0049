// ResolveAlignOverrides: AlignOverrides -> AlignmentOptions (see align_overrides.h).
#include "pipeline/align_overrides.h"

namespace qalign {

StatusOr<AlignmentOptions> ResolveAlignOverrides(const AlignOverrides& overrides) {
  AlignmentOptions options;
  if (!overrides.align_config.empty()) {
    QALIGN_RETURN_IF_ERROR(LoadAlignConfig(overrides.align_config, &options));
  }
  for (const std::string& flag : overrides.align) {
    Status s = ParseAlignAssignment(flag, &options.method_by_op_type);
    if (!s.ok()) return Status(s.code(), "--align: " + s.message());
  }
  for (const std::string& flag : overrides.align_node) {
    Status s = ParseAlignAssignment(flag, &options.method_by_node);
    if (!s.ok()) return Status(s.code(), "--align-node: " + s.message());
  }
  if (overrides.force_overlap.has_value()) options.force_overlap = overrides.force_overlap;
  if (overrides.requantize_on_mismatch) options.requantize_on_scheme_mismatch = true;
  return options;
}

}  // namespace qalign
