// BroadcastIter: drop size-1 dims and merge dims that every input reads the same way.
#include "runtime/kernels/elementwise/broadcast.h"

namespace qalign::kernels {

BroadcastIter::BroadcastIter(const std::vector<int64_t>& out_shape,
                             const std::vector<std::vector<int64_t>>& in_shapes) {
  std::vector<std::vector<int64_t>> full;
  for (const auto& s : in_shapes) full.push_back(BroadcastStrides(s, out_shape));
  // Keep dims of size > 1.
  std::vector<int64_t> shape;
  std::vector<std::vector<int64_t>> strides(in_shapes.size());
  for (size_t d = 0; d < out_shape.size(); ++d) {
    if (out_shape[d] == 1) continue;
    shape.push_back(out_shape[d]);
    for (size_t k = 0; k < full.size(); ++k) strides[k].push_back(full[k][d]);
  }
  if (shape.empty()) {
    shape.push_back(1);
    for (auto& s : strides) s.push_back(0);
  }
  // Merge dim d into d+1 when, for every input, stride[d] == stride[d+1] * shape[d+1]
  // (contiguous, or both broadcast).
  std::vector<int64_t> merged_shape{shape.back()};
  std::vector<std::vector<int64_t>> merged(strides.size());
  for (size_t k = 0; k < strides.size(); ++k) merged[k].push_back(strides[k].back());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 2; d >= 0; --d) {
    bool can_merge = true;
    for (size_t k = 0; k < strides.size(); ++k) {
      if (strides[k][d] != merged[k].front() * merged_shape.front()) can_merge = false;
    }
    if (can_merge) {
      merged_shape.front() *= shape[d];
    } else {
      merged_shape.insert(merged_shape.begin(), shape[d]);
      for (size_t k = 0; k < strides.size(); ++k) {
        merged[k].insert(merged[k].begin(), strides[k][d]);
      }
    }
  }
  shape_ = std::move(merged_shape);
  strides_ = std::move(merged);
  n_ = shape_.back();
  rows_ = 1;
  for (size_t d = 0; d + 1 < shape_.size(); ++d) rows_ *= shape_[d];
}

void BroadcastIter::RowOffsets(int64_t row, int64_t* offsets) const {
  for (size_t k = 0; k < strides_.size(); ++k) offsets[k] = 0;
  for (int64_t d = static_cast<int64_t>(shape_.size()) - 2; d >= 0 && row > 0; --d) {
    const int64_t i = row % shape_[d];
    row /= shape_[d];
    for (size_t k = 0; k < strides_.size(); ++k) offsets[k] += i * strides_[k][d];
  }
}

}  // namespace qalign::kernels
