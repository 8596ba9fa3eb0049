// Fuzzes the ranges JSON parser (calibrate's output, align's and quantize's input).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "quant/ranges.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  qalign::fuzz::Setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto ranges = qalign::ParseRanges(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  // What parses must serialize and parse back.
  if (ranges.ok()) {
    auto again = qalign::ParseRanges(qalign::SerializeRanges(*ranges), "fuzz-again");
    if (!again.ok()) __builtin_trap();
  }
  return 0;
}
