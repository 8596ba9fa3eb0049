// Fuzzes the .npy reader; what it reads must write back and read to the same tensor.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "ir/npy.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  qalign::fuzz::Setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto tensor = qalign::ParseNpy(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!tensor.ok()) return 0;
  auto bytes = qalign::SerializeNpy(*tensor);
  if (!bytes.ok()) return 0;
  auto back = qalign::ParseNpy(*bytes, "fuzz-again");
  if (!back.ok() || !back->BitwiseEqual(*tensor)) __builtin_trap();
  return 0;
}
