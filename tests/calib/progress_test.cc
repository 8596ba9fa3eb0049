// Progress reporter: rendering, ETA, quiet mode, non-terminal lines.
#include "calib/progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace qalign {
namespace {

std::string ReadAll(std::FILE* f) {
  std::rewind(f);
  std::string text;
  char buffer[256];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0) text.append(buffer, n);
  return text;
}

TEST(ProgressTest, FormatDuration) {
  EXPECT_EQ(ProgressReporter::FormatDuration(7.2), "0:07");
  EXPECT_EQ(ProgressReporter::FormatDuration(65), "1:05");
  EXPECT_EQ(ProgressReporter::FormatDuration(3723), "1:02:03");
}

TEST(ProgressTest, BarShowsCountPercentAndEta) {
  std::FILE* f = std::tmpfile();
  ProgressReporter bar("calibrate", 4, ProgressMode::kBar, f);
  // 1 of 4 done after 2 s: 3 left at 2 s each -> 6 s.
  const std::string text = bar.Render(1, 2.0);
  EXPECT_NE(text.find("calibrate ["), std::string::npos) << text;
  EXPECT_NE(text.find("1/4"), std::string::npos) << text;
  EXPECT_NE(text.find("25%"), std::string::npos) << text;
  EXPECT_NE(text.find("ETA 0:06"), std::string::npos) << text;
  bar.Update(4);
  bar.Finish();
  const std::string out = ReadAll(f);
  EXPECT_NE(out.find('\r'), std::string::npos);
  EXPECT_NE(out.find("4/4"), std::string::npos);
  EXPECT_EQ(out.back(), '\n');
  std::fclose(f);
}

TEST(ProgressTest, NonTerminalGetsPlainLines) {
  std::FILE* f = std::tmpfile();
  {
    ProgressReporter lines("calibrate", 3, ProgressMode::kAuto, f);  // a file is not a tty
    EXPECT_EQ(lines.mode(), ProgressMode::kLines);
    EXPECT_EQ(lines.Render(3, 30.0).find('['), std::string::npos);
    lines.Update(1);
    lines.Update(3);
  }  // the destructor finishes
  const std::string out = ReadAll(f);
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_NE(out.find("calibrate: 3/3 done"), std::string::npos) << out;
  std::fclose(f);
}

TEST(ProgressTest, QuietPrintsNothing) {
  std::FILE* f = std::tmpfile();
  {
    ProgressReporter quiet("calibrate", 3, ProgressMode::kQuiet, f);
    quiet.Update(1);
    quiet.Update(3);
  }
  EXPECT_EQ(ReadAll(f), "");
  std::fclose(f);
}

}  // namespace
}  // namespace qalign
