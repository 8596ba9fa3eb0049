// Step 2b of the alignment pass: a group with a 16-bit port is 16-bit as a whole.
//
// Why widen rather than requantize at the boundary: a group shares one (scale, zero_point), and
// its members read one quantized tensor, so they must also share one integer type. Widening the
// whole group is the plainest rule that keeps every sharing rule exact without a new op: the
// 8-bit members lose nothing (a 16-bit grid over the same range is finer), and the only cost is
// that neighbours of a 16-bit op read 16-bit tensors.
#include <vector>

#include "passes/alignment/steps.h"
#include "quant/union_find.h"

namespace qalign {

void WidenSixteenBitGroups(const AlignmentConstraints& constraints, const TargetProfile& profile,
                           const AlignmentOptions& options, QuantConfigTable* table,
                           AlignmentResult* result) {
  if (!options.widen_to_16_bits || !profile.activation16) return;
  const QuantScheme& wide = *profile.activation16;
  // The partition the constraints will form (FormGroups links the same pairs).
  UnionFind parts;
  const size_t n = table->size();
  for (size_t i = 0; i < n; ++i) parts.Add();
  for (const Constraint& c : constraints.constraints) parts.Union(c.a->id, c.b->id);
  std::vector<uint8_t> sixteen(n, 0);
  for (const TQC* t : table->all()) {
    if (IsJoinable(*t) && t->scheme == wide) sixteen[static_cast<size_t>(parts.Find(t->id))] = 1;
  }
  for (TQC* t : table->all()) {
    if (!IsJoinable(*t) || !(t->scheme == profile.activation)) continue;
    if (!sixteen[static_cast<size_t>(parts.Find(t->id))]) continue;
    t->scheme = wide;
    ++result->counters.widened_to_16_bits;
  }
  if (!options.range_at_16_bits) return;
  for (TQC* t : table->all()) {
    if (!IsJoinable(*t) || !(t->scheme == wide) || !t->stats.has_range) continue;
    float lo = 0.0f, hi = 0.0f;
    if (!options.range_at_16_bits(*t, &lo, &hi)) continue;
    t->stats.min = lo;
    t->stats.max = hi;
  }
}

}  // namespace qalign
