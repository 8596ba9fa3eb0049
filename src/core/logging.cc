// Leveled logging to stderr.
#include "core/logging.h"

#include <atomic>
#include <cstdio>

namespace qalign {
namespace {
std::atomic<LogLevel> g_level{LogLevel::kWarning};
}  // namespace

void SetLogLevel(LogLevel level) { g_level = level; }
LogLevel GetLogLevel() { return g_level; }

void LogMessage(LogLevel level, const std::string& message) {
  if (level < g_level.load()) return;
  const char* prefix = "";
  switch (level) {
    case LogLevel::kDebug: prefix = "debug: "; break;
    case LogLevel::kInfo: prefix = ""; break;
    case LogLevel::kWarning: prefix = "warning: "; break;
    case LogLevel::kError: prefix = "error: "; break;
    case LogLevel::kSilent: return;
  }
  std::fprintf(stderr, "%s%s\n", prefix, message.c_str());
}

}  // namespace qalign
