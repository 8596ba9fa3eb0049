// Tests for file reads and atomic writes.
#include "core/file_util.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace qalign {
namespace {

std::string TempDir() {
  auto dir = std::filesystem::temp_directory_path() /
             ("qalign_file_util_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

TEST(FileUtilTest, WriteThenReadRoundTrips) {
  const std::string path = TempDir() + "/a.bin";
  std::string payload("ab\0cd", 5);
  ASSERT_TRUE(WriteFileAtomically(path, payload).ok());
  auto read = ReadFileToString(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, payload);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));
}

TEST(FileUtilTest, ErrorsNameThePath) {
  auto missing = ReadFileToString("/nonexistent/qalign.onnx");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/qalign.onnx"), std::string::npos);
  auto dir = ReadFileToString(TempDir());
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find("is a directory"), std::string::npos);
}

TEST(FileUtilTest, RefusesToOverwriteProtectedInput) {
  const std::string input = TempDir() + "/in.onnx";
  ASSERT_TRUE(WriteFileAtomically(input, "original").ok());
  Status s = WriteFileAtomically(input, "clobbered", input);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(*ReadFileToString(input), "original");
  // A different spelling of the same file is caught too.
  Status s2 = WriteFileAtomically(TempDir() + "/./in.onnx", "clobbered", input);
  EXPECT_FALSE(s2.ok());
  EXPECT_EQ(*ReadFileToString(input), "original");
}

// A fresh, empty folder per test; Names() lists what is in it.
class SafeWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("qalign_safe_write_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    SetBeforeRenameHookForTesting(nullptr);
    std::filesystem::remove_all(dir_);
  }
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string dir_;
};

TEST_F(SafeWriteTest, TheOldPredictableTemporaryNameIsNotUsed) {
  // A link planted at OUT.tmp.PID used to be written through: the victim was overwritten and
  // the output became a link to it.
  const std::string out = dir_ + "/out.onnx";
  const std::string victim = dir_ + "/victim";
  ASSERT_TRUE(WriteFileAtomically(victim, "precious").ok());
  std::filesystem::create_symlink(victim, out + ".tmp." + std::to_string(::getpid()));
  ASSERT_TRUE(WriteFileAtomically(out, "model").ok());
  EXPECT_EQ(*ReadFileToString(victim), "precious");
  EXPECT_FALSE(std::filesystem::is_symlink(out));
  EXPECT_EQ(*ReadFileToString(out), "model");
}

TEST_F(SafeWriteTest, TemporaryFileIsUniqueInTheTargetFolderAndHasNormalPermissions) {
  std::string seen;
  SetBeforeRenameHookForTesting([&](const std::string& temp) {
    seen = temp;
    struct stat info {};
    ASSERT_EQ(::lstat(temp.c_str(), &info), 0);
    EXPECT_TRUE(S_ISREG(info.st_mode));
  });
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/a.json", "{}").ok());
  EXPECT_EQ(seen.rfind(dir_ + "/.qalign-", 0), 0u) << seen;
  EXPECT_EQ(Names(), std::vector<std::string>{"a.json"});
  struct stat info {};
  ASSERT_EQ(::stat((dir_ + "/a.json").c_str(), &info), 0);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(info.st_mode & 0777, 0666 & ~mask);
}

TEST_F(SafeWriteTest, RefusesDevicesDirectoriesAndSymlinks) {
  // -o /dev/null used to replace the device with a regular file when run as root.
  Status device = WriteFileAtomically("/dev/null", "x");
  ASSERT_FALSE(device.ok());
  EXPECT_NE(device.message().find("/dev/null: is not a regular file"), std::string::npos)
      << device.message();
  struct stat info {};
  ASSERT_EQ(::stat("/dev/null", &info), 0);
  EXPECT_TRUE(S_ISCHR(info.st_mode));

  Status directory = WriteFileAtomically(dir_, "x");
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.message().find("is a directory"), std::string::npos);

  const std::string target = dir_ + "/target";
  ASSERT_TRUE(WriteFileAtomically(target, "kept").ok());
  std::filesystem::create_symlink(target, dir_ + "/link");
  Status link = WriteFileAtomically(dir_ + "/link", "x");
  ASSERT_FALSE(link.ok());
  EXPECT_NE(link.message().find("is a symbolic link"), std::string::npos) << link.message();
  EXPECT_EQ(*ReadFileToString(target), "kept");
  EXPECT_TRUE(std::filesystem::is_symlink(dir_ + "/link"));

  ASSERT_EQ(::mkfifo((dir_ + "/fifo").c_str(), 0600), 0);
  EXPECT_FALSE(WriteFileAtomically(dir_ + "/fifo", "x").ok());
  EXPECT_EQ(Names(), (std::vector<std::string>{"fifo", "link", "target"}));
}

TEST_F(SafeWriteTest, MissingFolderIsRefusedByTheCheckAlone) {
  const std::string path = dir_ + "/no/such/out.onnx";
  Status checked = CheckOutputPath(path);
  ASSERT_FALSE(checked.ok());
  EXPECT_NE(checked.message().find("output folder " + dir_ + "/no/such"), std::string::npos)
      << checked.message();
  EXPECT_TRUE(CheckOutputPath(dir_ + "/new.onnx").ok());
  EXPECT_FALSE(CheckOutputPath(dir_ + "/x", dir_ + "/x").ok());
}

TEST_F(SafeWriteTest, LongButValidNameIsWritten) {
  // 250 bytes: the old OUT.tmp.PID suffix pushed it past NAME_MAX (255).
  const std::string path = dir_ + "/" + std::string(245, 'm') + ".onnx";
  Status s = WriteFileAtomically(path, "model");
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(*ReadFileToString(path), "model");
}

TEST_F(SafeWriteTest, ReplacesAnExistingRegularFile) {
  const std::string path = dir_ + "/out.onnx";
  ASSERT_TRUE(WriteFileAtomically(path, "old").ok());
  ASSERT_TRUE(WriteFileAtomically(path, "new").ok());
  EXPECT_EQ(*ReadFileToString(path), "new");
  EXPECT_EQ(Names(), std::vector<std::string>{"out.onnx"});
}

// A signal between the temporary write and the rename: the temporary file is removed and the
// process dies of that signal. Runs in a child process (a death test).
void WriteAndGetSignalled(const std::string& path, int signal_number) {
  SetBeforeRenameHookForTesting([signal_number](const std::string&) { ::raise(signal_number); });
  (void)WriteFileAtomically(path, std::string(1 << 20, 'q'));
  std::_Exit(0);  // not reached when the signal kills the process
}

TEST_F(SafeWriteTest, SigtermAndSigintRemoveTheTemporaryFile) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(WriteAndGetSignalled(dir_ + "/out.onnx", SIGTERM),
              ::testing::KilledBySignal(SIGTERM), "");
  EXPECT_TRUE(Names().empty()) << Names().front();
  EXPECT_EXIT(WriteAndGetSignalled(dir_ + "/out.onnx", SIGINT),
              ::testing::KilledBySignal(SIGINT), "");
  EXPECT_TRUE(Names().empty()) << Names().front();
}

}  // namespace
}  // namespace qalign
