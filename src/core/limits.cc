// Resource limits: the tensor size bound, from the environment or set by the caller.
#include "core/limits.h"

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "core/logging.h"

namespace qalign {
namespace {

int64_t LimitFromEnvironment() {
  const char* text = std::getenv("QALIGN_MAX_TENSOR_BYTES");
  if (text == nullptr || *text == '\0') return kDefaultMaxTensorBytes;
  int64_t value = 0;
  const char* end = text + std::strlen(text);
  const auto [ptr, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || ptr != end || value <= 0) {
    LogWarning("QALIGN_MAX_TENSOR_BYTES='", text,
               "' is not a positive whole number of bytes; using the default ",
               kDefaultMaxTensorBytes);
    return kDefaultMaxTensorBytes;
  }
  return value;
}

std::atomic<int64_t>& Limit() {
  static std::atomic<int64_t> limit{LimitFromEnvironment()};
  return limit;
}

}  // namespace

int64_t MaxTensorBytes() { return Limit().load(std::memory_order_relaxed); }

void SetMaxTensorBytes(int64_t bytes) {
  Limit().store(bytes > 0 ? bytes : kDefaultMaxTensorBytes, std::memory_order_relaxed);
}

}  // namespace qalign
