// Leveled logging to stderr; warnings are how recoverable problems reach the user.
#pragma once

#include <string>

#include "qalign/status.h"

namespace qalign {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kSilent = 4 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void LogMessage(LogLevel level, const std::string& message);

template <typename... Args>
void LogWarning(const Args&... args) {
  LogMessage(LogLevel::kWarning, StrCat(args...));
}
template <typename... Args>
void LogInfo(const Args&... args) {
  LogMessage(LogLevel::kInfo, StrCat(args...));
}
template <typename... Args>
void LogDebug(const Args&... args) {
  LogMessage(LogLevel::kDebug, StrCat(args...));
}

}  // namespace qalign
