// File helpers: whole-file reads and safe writes through registered temporary files.
#include "core/file_util.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

namespace qalign {
namespace {

// Temporary files that exist right now, for the signal handler to remove. Fixed slots of
// fixed-size buffers: the handler may only make async-signal-safe calls (unlink, raise), so it
// cannot walk a std::vector another thread is resizing. A slot is claimed with a
// compare-exchange on `state` (0 free, 1 being filled, 2 live); the handler reads live ones.
struct TempSlot {
  std::atomic<int> state{0};
  char path[PATH_MAX];
};
constexpr int kTempSlots = 16;
TempSlot g_temp_slots[kTempSlots];

void RemoveTempFilesAndReraise(int signal_number) {
  for (TempSlot& slot : g_temp_slots) {
    if (slot.state.load(std::memory_order_acquire) == 2) ::unlink(slot.path);
  }
  // Die of the same signal, so the parent sees why (a shell reports 128 + the signal).
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

void InstallSignalCleanup() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction current {};
      if (::sigaction(signal_number, nullptr, &current) != 0) continue;
      // An ignored signal (nohup) or a handler someone else installed stays as it is.
      if ((current.sa_flags & SA_SIGINFO) || current.sa_handler != SIG_DFL) continue;
      struct sigaction action {};
      action.sa_handler = RemoveTempFilesAndReraise;
      sigemptyset(&action.sa_mask);
      ::sigaction(signal_number, &action, nullptr);
    }
  });
}

// Registers a live temporary file; returns its slot, or -1 when every slot is taken (the file
// is still written, only not removed on a signal).
int RegisterTemp(const std::string& path) {
  if (path.size() >= PATH_MAX) return -1;
  for (int i = 0; i < kTempSlots; ++i) {
    int expected = 0;
    if (g_temp_slots[i].state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
      std::memcpy(g_temp_slots[i].path, path.c_str(), path.size() + 1);
      g_temp_slots[i].state.store(2, std::memory_order_release);
      return i;
    }
  }
  return -1;
}

void UnregisterTemp(int slot) {
  if (slot >= 0) g_temp_slots[slot].state.store(0, std::memory_order_release);
}

std::function<void(const std::string&)>& BeforeRenameHook() {
  static std::function<void(const std::string&)> hook;
  return hook;
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// The permissions a plain open(O_CREAT, 0666) would give: mkstemp makes the file 0600.
mode_t DefaultFileMode() {
  static const mode_t mode = [] {
    const mode_t mask = ::umask(0);
    ::umask(mask);
    return static_cast<mode_t>(0666 & ~mask);
  }();
  return mode;
}

Status WriteAll(int fd, const std::string& contents, const std::string& path) {
  const char* data = contents.data();
  size_t left = contents.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return IoError(path, ": write failed: ", std::strerror(errno));
    data += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return IoError(path, ": fsync failed: ", std::strerror(errno));
  return Status::Ok();
}

}  // namespace

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
  struct stat sa {
  }, sb{};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

Status CheckOutputPath(const std::string& path, const std::string& protected_path) {
  if (path.empty()) return InvalidArgumentError("empty output path");
  if (!protected_path.empty() && (path == protected_path || SameFile(path, protected_path))) {
    return InvalidArgumentError(path, ": refusing to overwrite the input file");
  }
  struct stat info {};
  if (::lstat(path.c_str(), &info) == 0) {
    if (S_ISDIR(info.st_mode)) {
      return InvalidArgumentError(path, ": is a directory, expected a file path");
    }
    if (S_ISLNK(info.st_mode)) {
      return InvalidArgumentError(path,
                                  ": is a symbolic link; qalign replaces only regular "
                                  "files (name the link's target, or remove the link)");
    }
    if (!S_ISREG(info.st_mode)) {
      return InvalidArgumentError(path,
                                  ": is not a regular file (a device, FIFO or socket); "
                                  "qalign writes outputs only to regular files or new names");
    }
    return Status::Ok();
  }
  if (errno != ENOENT) return IoError(path, ": ", std::strerror(errno));
  const std::string dir = DirectoryOf(path);
  if (::stat(dir.c_str(), &info) != 0) {
    return NotFoundError(path, ": output folder ", dir, ": ", std::strerror(errno));
  }
  if (!S_ISDIR(info.st_mode)) return InvalidArgumentError(path, ": ", dir, " is not a folder");
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, const std::string& contents,
                           const std::string& protected_path) {
  QALIGN_RETURN_IF_ERROR(CheckOutputPath(path, protected_path));
  InstallSignalCleanup();
  const std::string dir = DirectoryOf(path);
  // A short fixed prefix, not the output's name plus a suffix: an output name of up to NAME_MAX
  // bytes still gives a valid temporary name.
  std::string temp = dir + "/.qalign-XXXXXX";
  // Signals are held while the file is created and registered, so none can find it unregistered.
  sigset_t block, previous;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGHUP);
  ::pthread_sigmask(SIG_BLOCK, &block, &previous);
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  const int slot = fd >= 0 ? RegisterTemp(temp) : -1;
  const int create_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (fd < 0) {
    return IoError(path, ": cannot create a temporary file in ", dir, ": ",
                   std::strerror(create_errno));
  }
  auto fail = [&](const Status& status) {
    ::unlink(temp.c_str());
    UnregisterTemp(slot);
    return status;
  };
  if (::fchmod(fd, DefaultFileMode()) != 0) {
    const Status status = IoError(path, ": chmod failed: ", std::strerror(errno));
    ::close(fd);
    return fail(status);
  }
  Status written = WriteAll(fd, contents, path);
  if (::close(fd) != 0 && written.ok()) {
    written = IoError(path, ": close failed: ", std::strerror(errno));
  }
  if (!written.ok()) return fail(written);
  if (BeforeRenameHook()) BeforeRenameHook()(temp);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return fail(IoError(path, ": rename failed: ", std::strerror(errno)));
  }
  UnregisterTemp(slot);
  // The rename is durable once the folder's entry is on disk too.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return Status::Ok();
}

void SetBeforeRenameHookForTesting(std::function<void(const std::string& temp_path)> hook) {
  BeforeRenameHook() = std::move(hook);
}

}  // namespace qalign
