// Progress of a long loop on stderr: a bar with ETA on a terminal, plain periodic lines otherwise.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace qalign {

enum class ProgressMode {
  kAuto,   // kBar when the stream is a terminal (isatty), kLines otherwise
  kBar,    // one line redrawn in place: "calibrate [=======>     ] 12/32  37%  ETA 0:05"
  kLines,  // "calibrate: 12/32 (37%), ETA 0:05" at most every few seconds, and at the end
  kQuiet,  // nothing
};

class ProgressReporter {
 public:
  // `label` starts every line; `total` is the number of steps (0: unknown, no percentage or ETA).
  ProgressReporter(std::string label, size_t total, ProgressMode mode = ProgressMode::kAuto,
                   std::FILE* stream = stderr);
  ~ProgressReporter();  // calls Finish()

  // Records that `done` steps are complete; redraws when enough time has passed.
  void Update(size_t done);
  // Prints the final state (once) and ends the bar's line.
  void Finish();

  ProgressMode mode() const { return mode_; }
  // "1:05", "0:07", "1:02:03" for a duration in seconds.
  static std::string FormatDuration(double seconds);
  // The text of one report (without the carriage return), for tests.
  std::string Render(size_t done, double elapsed_seconds) const;

 private:
  using Clock = std::chrono::steady_clock;
  void Draw(size_t done, bool final);

  std::string label_;
  size_t total_;
  ProgressMode mode_;
  std::FILE* stream_;
  Clock::time_point start_;
  Clock::time_point last_draw_;
  size_t done_ = 0;
  bool drawn_ = false;
  bool finished_ = false;
};

}  // namespace qalign
