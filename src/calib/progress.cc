// Progress reporting: bar on a terminal, throttled plain lines elsewhere, silence when quiet.
#include "calib/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace qalign {
namespace {

constexpr double kBarInterval = 0.1;   // seconds between bar redraws
constexpr double kLineInterval = 5.0;  // seconds between plain lines
constexpr int kBarWidth = 30;

}  // namespace

ProgressReporter::ProgressReporter(std::string label, size_t total, ProgressMode mode,
                                   std::FILE* stream)
    : label_(std::move(label)), total_(total), mode_(mode), stream_(stream) {
  if (mode_ == ProgressMode::kAuto) {
    mode_ = (stream_ != nullptr && isatty(fileno(stream_))) ? ProgressMode::kBar
                                                            : ProgressMode::kLines;
  }
  if (stream_ == nullptr) mode_ = ProgressMode::kQuiet;
  start_ = Clock::now();
  last_draw_ = start_;
}

ProgressReporter::~ProgressReporter() { Finish(); }

std::string ProgressReporter::FormatDuration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const long total = std::lround(seconds);
  const long h = total / 3600, m = (total / 60) % 60, s = total % 60;
  char buffer[32];
  if (h > 0) {
    std::snprintf(buffer, sizeof(buffer), "%ld:%02ld:%02ld", h, m, s);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%ld:%02ld", m, s);
  }
  return buffer;
}

std::string ProgressReporter::Render(size_t done, double elapsed) const {
  char buffer[256];
  if (total_ == 0) {
    std::snprintf(buffer, sizeof(buffer), "%s: %zu done, %s elapsed", label_.c_str(), done,
                  FormatDuration(elapsed).c_str());
    return buffer;
  }
  const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
  // ETA assumes the remaining steps take as long as the finished ones did on average.
  const std::string eta =
      done == 0 ? "?" : FormatDuration(elapsed / static_cast<double>(done) *
                                       static_cast<double>(total_ - std::min(done, total_)));
  const int percent = static_cast<int>(fraction * 100.0);
  if (mode_ == ProgressMode::kBar) {
    std::string bar(kBarWidth, ' ');
    const int filled = static_cast<int>(fraction * kBarWidth);
    for (int i = 0; i < filled; ++i) bar[static_cast<size_t>(i)] = '=';
    if (filled < kBarWidth) bar[static_cast<size_t>(filled)] = '>';
    std::snprintf(buffer, sizeof(buffer), "%s [%s] %zu/%zu %3d%%  ETA %s", label_.c_str(),
                  bar.c_str(), done, total_, percent, eta.c_str());
  } else {
    std::snprintf(buffer, sizeof(buffer), "%s: %zu/%zu (%d%%), ETA %s", label_.c_str(), done,
                  total_, percent, eta.c_str());
  }
  return buffer;
}

void ProgressReporter::Draw(size_t done, bool final) {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  if (mode_ == ProgressMode::kBar) {
    std::fprintf(stream_, "\r%s\x1b[K%s", Render(done, elapsed).c_str(), final ? "\n" : "");
  } else if (final) {
    std::fprintf(stream_, "%s: %zu/%zu done in %s\n", label_.c_str(), done, total_,
                 FormatDuration(elapsed).c_str());
  } else {
    std::fprintf(stream_, "%s\n", Render(done, elapsed).c_str());
  }
  std::fflush(stream_);
  drawn_ = true;
}

void ProgressReporter::Update(size_t done) {
  done_ = done;
  if (mode_ == ProgressMode::kQuiet || finished_) return;
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (mode_ == ProgressMode::kBar) {
    if (drawn_ && since < kBarInterval) return;
  } else if (since < kLineInterval) {
    return;  // plain lines are periodic; a short run prints only its final line
  }
  last_draw_ = now;
  Draw(done, false);
}

void ProgressReporter::Finish() {
  if (finished_) return;
  finished_ = true;
  if (mode_ == ProgressMode::kQuiet) return;
  Draw(done_, true);
}

}  // namespace qalign
