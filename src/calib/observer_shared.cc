// The `optimal` alignment method's search: one range for a group of tensors that must share it.
//
// The objective is the members' summed expected squared quantization error,
//   E(lo, hi) = sum over members m of total_m * ExpectedQuantError(m, params(lo, hi)),
// each member weighted by its element count (total_m), so for a Concat it is the squared error of
// the concatenated output. params(lo, hi) are ComputeParams' under the shared scheme, so rounding,
// the widening to include 0, symmetry and power-of-2 scales are accounted for. E is not convex in
// (lo, hi) in general, so the search is a grid:
//  0. the candidates the caller names (the union of the members' ranges: `large`; each member's
//     own range: `output`, `input`), so the result is never worse than any of them;
//  1. then SearchClipRange's grid (observer_mse.cc, shared with the mse observer) over the union
//     [U_lo, U_hi] of the members' data.
// With a required range [R_lo, R_hi], each range (a, b) tried is scored, and returned, as
// [min(a, R_lo), max(b, R_hi)]: the search runs over the ranges that keep the required values,
// with the unconstrained optimum (so widened) among the candidates.
#include <algorithm>
#include <cmath>
#include <limits>

#include "calib/observer.h"

namespace qalign {

double SummedQuantError(const std::vector<const Histogram*>& members, const QuantScheme& scheme,
                        float lo, float hi) {
  float scale = 0.0f;
  int64_t zero_point = 0;
  if (!ComputeParams(scheme, lo, hi, &scale, &zero_point).ok()) {
    return std::numeric_limits<double>::infinity();
  }
  double error = 0.0;
  for (const Histogram* h : members) {
    if (!h->empty()) error += h->total() * ExpectedQuantError(*h, scheme, scale, zero_point);
  }
  return error;
}

StatusOr<ClipRange> OptimalSharedRange(const std::vector<const Histogram*>& members,
                                       const std::vector<ClipRange>& candidates,
                                       const QuantScheme& scheme,
                                       std::optional<ClipRange> required) {
  bool any = false;
  double union_lo = 0.0, union_hi = 0.0;
  for (const Histogram* h : members) {
    if (h->empty()) continue;
    if (!h->binned()) {
      return InvalidArgumentError("optimal range: a member's histogram holds only extremes");
    }
    union_lo = any ? std::min<double>(union_lo, h->data_min()) : h->data_min();
    union_hi = any ? std::max<double>(union_hi, h->data_max()) : h->data_max();
    any = true;
  }
  if (!any && candidates.empty()) return InvalidArgumentError("optimal range: no data observed");

  auto widened = [&required](ClipRange r) {
    if (required) {
      r.min = std::min(r.min, required->min);
      r.max = std::max(r.max, required->max);
    }
    return r;
  };
  ClipRange best{static_cast<float>(union_lo), static_cast<float>(union_hi)};
  double best_error = std::numeric_limits<double>::infinity();
  // Every range is judged as the range it becomes once widened to `required`.
  auto error = [&](float lo, float hi) {
    const ClipRange r = widened({lo, hi});
    return SummedQuantError(members, scheme, r.min, r.max);
  };
  // 0. The named candidates first: a later candidate replaces them only when strictly better.
  std::vector<ClipRange> first = candidates;
  if (first.empty()) first.push_back(best);
  // With a requirement, the grid's ranges are widened ones, and the widened unconstrained optimum
  // may fall between them: it is a candidate too, so the result is never worse than it.
  if (required) {
    auto unconstrained = OptimalSharedRange(members, candidates, scheme);
    if (unconstrained.ok()) first.push_back(*unconstrained);
  }
  for (const ClipRange& c : first) {
    const double e = error(c.min, c.max);
    if (e < best_error) {
      best_error = e;
      best = c;
    }
  }
  if (!any || !(union_hi > union_lo)) return widened(best);
  // 1, 2. The grid over the union.
  return widened(SearchClipRange(union_lo, union_hi, scheme.policy.Has(kSymmetric), error, best,
                                 best_error));
}

}  // namespace qalign
