// Tests for file reads and atomic writes.
#include "core/file_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>

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

}  // namespace
}  // namespace qalign
