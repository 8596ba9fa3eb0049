// Strided copy: out[i0..ik] = in[base + sum(i_d * stride_d)], the core of Transpose, Slice and
// Expand. Any element type (copied by width); strides may be 0 (broadcast) or negative.
#pragma once

#include <vector>

#include "runtime/kernels/common.h"

namespace qalign::kernels {

Status StridedCopy(const Operation& op, ThreadPool* pool, const Tensor& in, int64_t base,
                   const std::vector<int64_t>& out_shape, const std::vector<int64_t>& in_strides,
                   Tensor& out);

}  // namespace qalign::kernels
