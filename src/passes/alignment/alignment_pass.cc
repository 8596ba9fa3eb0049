// RunAlignmentPass: the steps of the alignment pass (steps.h) in order.
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
  QALIGN_RETURN_IF_ERROR(CollectRules(graph, profile, options, table, &constraints, &result));
  const bool force_overlap = options.force_overlap.value_or(profile.force_overlap);
  CollectConstraints(force_overlap, table, &constraints, &result);
  WidenSixteenBitGroups(constraints, profile, options, table, &result);
  QALIGN_RETURN_IF_ERROR(FormGroups(constraints, options, table, &result));
  std::vector<GroupChoice> groups;
  QALIGN_RETURN_IF_ERROR(ChooseParams(constraints, options, table, &groups, &result));
  FinishReport(std::move(constraints.requantizes), &groups, options, table, &result);
  result.counters.changed = result.counters.links_made > 0 || result.counters.params_changed > 0;
  return result;
}

}  // namespace qalign
