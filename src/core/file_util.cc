// File helpers: whole-file reads and atomic writes.
#include "core/file_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace qalign {

StatusOr<std::string> ReadFileToString(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return NotFoundError(path, ": ", std::strerror(errno));
  }
  if (S_ISDIR(info.st_mode)) return InvalidArgumentError(path, ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(path, ": cannot open for reading: ", std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return IoError(path, ": read failed");
  return buffer.str();
}

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

Status WriteFileAtomically(const std::string& path, const std::string& contents,
                           const std::string& protected_path) {
  if (!protected_path.empty() && (path == protected_path || SameFile(path, protected_path))) {
    return InvalidArgumentError(path, ": refusing to overwrite the input file");
  }
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    return InvalidArgumentError(path, ": is a directory, expected a file path");
  }
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) return IoError(path, ": cannot open for writing: ", std::strerror(errno));
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) {
      std::remove(temp.c_str());
      return IoError(path, ": write failed");
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(temp.c_str());
    return IoError(path, ": rename failed: ", reason);
  }
  return Status::Ok();
}

}  // namespace qalign
