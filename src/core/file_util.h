// File helpers: whole-file reads and atomic writes (temp file + rename), so no output is half-written.
#pragma once

#include <string>

#include "qalign/status.h"

namespace qalign {

// Reads a regular file; errors name the path (missing, a directory, unreadable).
StatusOr<std::string> ReadFileToString(const std::string& path);

// Writes `contents` to `path` through a temporary file in the same folder and a rename, so readers
// never see a partial file. Refuses to write over `protected_path` (the user's input) when given.
Status WriteFileAtomically(const std::string& path, const std::string& contents,
                           const std::string& protected_path = "");

// True when both paths name the same existing file (same device and inode).
bool SameFile(const std::string& a, const std::string& b);

}  // namespace qalign
