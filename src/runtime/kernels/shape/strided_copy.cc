// StridedCopy: merge dims the input reads contiguously, then copy rows in parallel.
#include "runtime/kernels/shape/strided_copy.h"

#include <algorithm>

namespace qalign::kernels {
namespace {

template <typename U>
void CopyRows(ThreadPool* pool, const U* in, U* out, const std::vector<int64_t>& shape,
              const std::vector<int64_t>& strides) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  const int64_t n = shape.back();
  const int64_t step = strides.back();
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < rank; ++d) rows *= shape[d];
  ParallelFor(pool, rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      int64_t rest = r, offset = 0;
      for (int64_t d = rank - 2; d >= 0; --d) {
        offset += (rest % shape[d]) * strides[d];
        rest /= shape[d];
      }
      const U* src = in + offset;
      U* dst = out + r * n;
      if (step == 1) {
        std::copy(src, src + n, dst);
      } else if (step == 0) {
        std::fill(dst, dst + n, *src);
      } else {
        for (int64_t i = 0; i < n; ++i) dst[i] = src[i * step];
      }
    }
  }, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(n, 1)));
}

}  // namespace

Status StridedCopy(const Operation& op, ThreadPool* pool, const Tensor& in, int64_t base,
                   const std::vector<int64_t>& out_shape, const std::vector<int64_t>& in_strides,
                   Tensor& out) {
  if (out.num_elements() == 0) return Status::Ok();
  if (in.dtype() == DataType::kString) {
    // Strings: plain element loop.
    const int64_t total = out.num_elements();
    for (int64_t i = 0; i < total; ++i) {
      int64_t rest = i, offset = base;
      for (int64_t d = static_cast<int64_t>(out_shape.size()) - 1; d >= 0; --d) {
        offset += (rest % out_shape[d]) * in_strides[d];
        rest /= out_shape[d];
      }
      out.strings()[i] = in.strings()[offset];
    }
    return Status::Ok();
  }
  std::vector<int64_t> shape, strides;
  for (size_t i = 0; i < out_shape.size(); ++i) {
    if (out_shape[i] == 1) continue;
    if (!shape.empty() && strides.back() == in_strides[i] * out_shape[i]) {
      shape.back() *= out_shape[i];
      strides.back() = in_strides[i];
    } else {
      shape.push_back(out_shape[i]);
      strides.push_back(in_strides[i]);
    }
  }
  if (shape.empty()) {
    shape.push_back(1);
    strides.push_back(1);
  }
  QALIGN_ASSIGN_OR_RETURN(size_t size, ElementSize(op, in));
  switch (size) {
    case 1: CopyRows(pool, in.data<uint8_t>() + base, out.data<uint8_t>(), shape, strides); break;
    case 2: CopyRows(pool, in.data<uint16_t>() + base, out.data<uint16_t>(), shape, strides); break;
    case 4: CopyRows(pool, in.data<uint32_t>() + base, out.data<uint32_t>(), shape, strides); break;
    case 8: CopyRows(pool, in.data<uint64_t>() + base, out.data<uint64_t>(), shape, strides); break;
    default: return OpUnimplemented(op, "element type ", DataTypeName(in.dtype()));
  }
  return Status::Ok();
}

}  // namespace qalign::kernels
