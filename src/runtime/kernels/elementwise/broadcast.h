// Broadcast iteration for elementwise kernels: dims collapsed so the inner loop is one long row.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/kernels/common.h"

namespace qalign::kernels {

// The output of an elementwise op viewed as rows x n: each row reads input k from
// offsets[k] with step inner_step[k] (0 for a broadcast value, 1 for contiguous).
class BroadcastIter {
 public:
  BroadcastIter(const std::vector<int64_t>& out_shape,
                const std::vector<std::vector<int64_t>>& in_shapes);

  int64_t rows() const { return rows_; }
  int64_t n() const { return n_; }
  size_t num_inputs() const { return strides_.size(); }
  int64_t inner_step(size_t k) const { return strides_[k].back(); }
  // Start offset of `row` in input k, for every k.
  void RowOffsets(int64_t row, int64_t* offsets) const;

 private:
  std::vector<int64_t> shape_;                 // collapsed, rank >= 1
  std::vector<std::vector<int64_t>> strides_;  // per input, per collapsed dim
  int64_t rows_ = 1;
  int64_t n_ = 1;
};

// Calls fn(out_offset, in_offsets, len) over all rows (split into pieces when rows are long),
// in parallel for big outputs.
template <typename Fn>
void ForEachRow(const BroadcastIter& it, ThreadPool* pool, Fn&& fn) {
  const size_t k = it.num_inputs();
  const int64_t n = it.n();
  if (it.rows() == 1) {
    ParallelFor(pool, n, [&](int64_t begin, int64_t end) {
      int64_t offsets[8];
      it.RowOffsets(0, offsets);
      for (size_t j = 0; j < k; ++j) offsets[j] += begin * it.inner_step(j);
      fn(begin, offsets, end - begin);
    }, kParallelGrain);
    return;
  }
  const int64_t rows_per_chunk = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(n, 1));
  ParallelFor(pool, it.rows(), [&](int64_t begin, int64_t end) {
    int64_t offsets[8];
    for (int64_t r = begin; r < end; ++r) {
      it.RowOffsets(r, offsets);
      fn(r * n, offsets, n);
    }
  }, rows_per_chunk);
}

}  // namespace qalign::kernels
