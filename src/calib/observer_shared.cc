// The `optimal` alignment method's search: one range for a group of tensors that must share it.
//
// The objective is the members' summed expected squared quantization error,
//   E(lo, hi) = sum over members m of total_m * ExpectedQuantError(m, params(lo, hi)),
// each member weighted by its element count (total_m), so for a Concat it is the squared error of
// the concatenated output. params(lo, hi) are ComputeParams' under the shared scheme, so rounding,
// the widening to include 0, symmetry and power-of-2 scales are accounted for. E is not convex in
// (lo, hi) in general, so the search is a grid, like the mse observer's (observer_mse.cc):
//  0. the candidates the caller names (the union of the members' ranges: `large`; each member's
//     own range: `output`, `input`), so the result is never worse than any of them;
//  1. the union [U_lo, U_hi] shrunk at both ends together: [alpha U_lo, alpha U_hi], alpha = 1/C
//     .. 1 (C = 100), then finer sweeps (steps 1/(10 C), 1/(100 C)) around the best alpha;
//  2. for asymmetric schemes, the lower end alone, then the upper end alone, on the same grid.
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
                                       const QuantScheme& scheme) {
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

  ClipRange best{static_cast<float>(union_lo), static_cast<float>(union_hi)};
  double best_error = std::numeric_limits<double>::infinity();
  auto consider = [&](double lo, double hi) {
    const float a = static_cast<float>(lo), b = static_cast<float>(hi);
    const double e = SummedQuantError(members, scheme, a, b);
    if (e < best_error) {
      best_error = e;
      best = ClipRange{a, b};
    }
  };
  // 0. The named candidates first: a later candidate replaces them only when strictly better.
  if (candidates.empty()) consider(union_lo, union_hi);
  for (const ClipRange& c : candidates) consider(c.min, c.max);
  if (!any) return best;
  if (!(union_hi > union_lo)) return best;

  // 1. Both ends together, coarse then fine.
  constexpr int kSteps = 100;
  double best_alpha = 1.0;
  for (int j = 1; j <= kSteps; ++j) {
    const double alpha = static_cast<double>(j) / kSteps;
    const double before = best_error;
    consider(alpha * union_lo, alpha * union_hi);
    if (best_error < before) best_alpha = alpha;
  }
  // Two finer sweeps: a member far wider than the others can put the optimum at a few percent of
  // the union, where the coarse grid alone would be too coarse.
  for (double step : {0.1 / kSteps, 0.01 / kSteps}) {
    const double center = best_alpha;
    for (int j = -10; j <= 10; ++j) {
      const double alpha = center + j * step;
      const double before = best_error;
      if (alpha > 0 && alpha <= 1) consider(alpha * union_lo, alpha * union_hi);
      if (best_error < before) best_alpha = alpha;
    }
  }
  // 2. Each end alone (a symmetric range depends on max |x| alone: step 1 was exact).
  if (!scheme.policy.Has(kSymmetric)) {
    const double fixed_hi = best.max;
    for (int j = 1; j <= kSteps; ++j) consider(union_lo * j / kSteps, fixed_hi);
    const double fixed_lo = best.min;
    for (int j = 1; j <= kSteps; ++j) consider(fixed_lo, union_hi * j / kSteps);
  }
  return best;
}

}  // namespace qalign
