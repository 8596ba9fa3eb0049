// Resource limits qalign checks before allocating, and overflow-checked size arithmetic.
#pragma once

#include <cstdint>

namespace qalign {

// The largest tensor qalign allocates, in bytes: model weights, inputs, every intermediate
// result. 8 GiB by default; the environment variable QALIGN_MAX_TENSOR_BYTES (a whole number of
// bytes, read once) or SetMaxTensorBytes() changes it. A shape beyond it is refused, naming the
// tensor, instead of failing inside the allocator.
inline constexpr int64_t kDefaultMaxTensorBytes = int64_t{8} << 30;
int64_t MaxTensorBytes();
// `bytes` <= 0 restores the default.
void SetMaxTensorBytes(int64_t bytes);

// a * b, false when the product does not fit in int64.
inline bool MultiplyChecked(int64_t a, int64_t b, int64_t* product) {
  return !__builtin_mul_overflow(a, b, product);
}

}  // namespace qalign
