// File helpers: whole-file reads and safe writes (unique temp file, fsync, rename), so no output
// is half-written, written through a planted link, or left behind by an interrupted run.
#pragma once

#include <functional>
#include <string>

#include "qalign/status.h"

namespace qalign {

// Reads a regular file; errors name the path (missing, a directory, unreadable).
StatusOr<std::string> ReadFileToString(const std::string& path);

// Whether `path` may take an output: a new name in an existing folder, or an existing regular
// file that is not `protected_path` (the user's input). Refused: directories, symbolic links,
// devices, FIFOs and sockets (an output replaces what is at `path`; replacing /dev/null or the
// target of a link is never what the user meant), a missing folder, and the protected file. A
// command checks every output with this before it writes any.
Status CheckOutputPath(const std::string& path, const std::string& protected_path = "");

// Writes `contents` to `path`: CheckOutputPath, then a temporary file created with mkstemp
// (O_EXCL, a name nobody can predict) in the same folder, written, fsynced, renamed over `path`,
// and the folder fsynced. Readers never see a partial file. SIGINT, SIGTERM or SIGHUP arriving
// while a temporary file exists removes it before the process dies of the signal (the handler
// is installed on the first write, only where the signal's disposition is still the default).
Status WriteFileAtomically(const std::string& path, const std::string& contents,
                           const std::string& protected_path = "");

// True when both paths name the same existing file (same device and inode).
bool SameFile(const std::string& a, const std::string& b);

// For tests: called after the temporary file is complete, before the rename (nullptr: none).
void SetBeforeRenameHookForTesting(std::function<void(const std::string& temp_path)> hook);

}  // namespace qalign
