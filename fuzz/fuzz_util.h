// Shared setup for the libFuzzer targets: a small tensor limit and a private scratch folder.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "core/limits.h"
#include "core/logging.h"

namespace qalign::fuzz {

// Called once from LLVMFuzzerInitialize: quiet logs, and a tensor limit far below the fuzzer's
// RSS limit, so a hostile size is refused rather than reported as an out-of-memory crash.
inline void Setup() {
  SetLogLevel(LogLevel::kSilent);
  SetMaxTensorBytes(int64_t{64} << 20);
}

// An empty folder of this process's own (created once), for inputs that name files.
inline const std::string& ScratchDir() {
  static const std::string dir = [] {
    std::string pattern = "/tmp/qalign_fuzz_XXXXXX";
    const char* made = ::mkdtemp(pattern.data());
    return std::string(made ? made : "/tmp");
  }();
  return dir;
}

// Writes the input to one file in ScratchDir (replaced every iteration) for APIs that read paths.
inline std::string WriteScratchFile(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = ScratchDir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace qalign::fuzz
