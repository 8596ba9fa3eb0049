// RunAlignmentPass: the steps of the alignment pass in order.
#include "passes/alignment/alignment_pass.h"

#include <utility>

#include "passes/alignment/steps.h"

namespace qalign {

StatusOr<AlignmentResult> RunAlignmentPass(const Graph& graph, const TargetProfile& profile,
                                           const AlignmentOptions& options,
                                           QuantConfigTable* table) {
  if (table == nullptr) return InvalidArgumentError("alignment: no quantization table");
  AlignmentResult result;
  AlignmentConstraints constraints;
  // 1. The effective rule of every op, and the values groups are pinned to.
  QALIGN_RETURN_IF_ERROR(CollectRules(graph, profile, options, table, &constraints, &result));
  // 2. Rule ties and default edges; cascade control turns some ties into requantize edges.
  const bool force_overlap = options.force_overlap.value_or(profile.force_overlap);
  CollectConstraints(force_overlap, table, &constraints, &result);
  // 2b. One bit width per group: a group with a 16-bit port is 16-bit as a whole.
  if (options.widen_to_16_bits) {
    WidenSixteenBitGroups(constraints, profile, options, table, &result);
  }
  // 3. Groups: every constraint linked, conflicts dropped and recorded.
  QALIGN_RETURN_IF_ERROR(FormGroups(constraints, options, table, &result));
  // 4. Params per group, once the groups are final.
  std::vector<GroupChoice> groups;
  QALIGN_RETURN_IF_ERROR(ChooseParams(constraints, options, table, &groups, &result));
  // 5. The report: requantize edges sorted by name, the groups rules formed.
  FinishReport(std::move(constraints.requantizes), &groups, options, table, &result);
  result.counters.changed = result.counters.links_made > 0 || result.counters.params_changed > 0;
  return result;
}

}  // namespace qalign
