// Cross-layer equalization of adjacent Conv pairs (see equalize_conv_pairs.h).
#include "passes/equalize_conv_pairs.h"

#include <cmath>
#include <vector>

namespace qalign {
namespace {

// A float parameter only `op` reads, so it can be rewritten in place.
Tensor* OwnFloatParameter(Variable* v, const Operation* op) {
  if (v == nullptr || !v->is_parameter() || v->data()->dtype() != DataType::kFloat) return nullptr;
  for (const Use& use : v->uses()) {
    if (use.op != op) return nullptr;
  }
  if (v->is_graph_input() || v->is_graph_output()) return nullptr;
  return v->mutable_data();
}

}  // namespace

StatusOr<EqualizeStats> EqualizeConvPairs(Graph* graph) {
  EqualizeStats stats;
  for (Operation* a : graph->operations()) {
    if (a->type() != "Conv" || !a->in_default_domain() || a->outputs().size() != 1) continue;
    Variable* mid = a->output(0);
    if (mid == nullptr || mid->is_graph_output() || mid->uses().size() != 1) continue;
    const Use use = mid->uses()[0];
    Operation* b = use.op;
    if (use.index != 0 || b->type() != "Conv" || !b->in_default_domain() || b->GetInt("group", 1) != 1) {
      continue;
    }
    Tensor* wa = OwnFloatParameter(a->input(1), a);
    Tensor* wb = OwnFloatParameter(b->input(1), b);
    if (wa == nullptr || wb == nullptr || wa->rank() < 3 || wb->rank() != wa->rank()) continue;
    Tensor* ba = nullptr;
    if (a->input(2) != nullptr) {
      ba = OwnFloatParameter(a->input(2), a);
      if (ba == nullptr) continue;
    }
    const int64_t channels = wa->shape()[0];
    if (wb->shape()[1] != channels || (ba != nullptr && ba->num_elements() != channels)) continue;
    const int64_t per_filter_a = wa->num_elements() / channels;
    const int64_t outputs_b = wb->shape()[0];
    const int64_t per_input_b = wb->num_elements() / (outputs_b * channels);  // kernel area
    std::span<float> va = wa->values<float>(), vb = wb->values<float>();
    auto b_index = [&](int64_t o, int64_t i, int64_t k) {
      return static_cast<size_t>((o * channels + i) * per_input_b + k);
    };
    bool changed = false;
    for (int64_t i = 0; i < channels; ++i) {
      double r1 = 0, r2 = 0;
      for (int64_t j = 0; j < per_filter_a; ++j) {
        r1 = std::max(r1, std::fabs(double(va[static_cast<size_t>(i * per_filter_a + j)])));
      }
      for (int64_t o = 0; o < outputs_b; ++o) {
        for (int64_t k = 0; k < per_input_b; ++k) r2 = std::max(r2, std::fabs(double(vb[b_index(o, i, k)])));
      }
      if (!(r1 > 0) || !(r2 > 0)) continue;  // a dead channel: nothing to balance
      const double s = std::sqrt(r1 / r2);
      if (!std::isfinite(s) || s == 1.0) continue;
      for (int64_t j = 0; j < per_filter_a; ++j) {
        float& w = va[static_cast<size_t>(i * per_filter_a + j)];
        w = static_cast<float>(w / s);
      }
      if (ba != nullptr) {
        float& bias = ba->values<float>()[static_cast<size_t>(i)];
        bias = static_cast<float>(bias / s);
      }
      for (int64_t o = 0; o < outputs_b; ++o) {
        for (int64_t k = 0; k < per_input_b; ++k) {
          float& w = vb[b_index(o, i, k)];
          w = static_cast<float>(w * s);
        }
      }
      changed = true;
    }
    stats.pairs += changed ? 1 : 0;
  }
  return stats;
}

}  // namespace qalign
