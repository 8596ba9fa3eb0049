// Fuzzes target profile loading (JSON parse and every schema check) on any bytes.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "quant/target_profile.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  qalign::fuzz::Setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = qalign::fuzz::WriteScratchFile("target.json", data, size);
  auto profile = qalign::LoadTargetProfileFile(path);
  (void)profile;
  return 0;
}
