// Bad input to `qalign inspect`: one line on stderr naming the file and the problem, exit 1 (2 for
// usage errors), never a crash. Models are built in code with the ONNX protobuf API.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "cli/cli_runner.h"
#include "onnx/onnx_proto_builder.h"

namespace qalign {
namespace {

using testing::AddInput;
using testing::AddNode;
using testing::AddOutput;
using testing::CliResult;
using testing::NewModel;
using testing::RunCli;

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = (std::filesystem::temp_directory_path() /
               ("qalign_bad_input_" + std::to_string(::getpid())))
                  .string();
    std::filesystem::create_directories(folder_);
  }
  void TearDown() override { std::filesystem::remove_all(folder_); }

  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = folder_ + "/" + name;
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  std::string WriteModel(const std::string& name, const onnx::ModelProto& model) {
    return Write(name, model.SerializeAsString());
  }

  // Exit code 1, exactly one stderr line that names `path` and contains `problem`.
  void ExpectFailure(const CliResult& r, const std::string& path, const std::string& problem,
                     int exit_code = 1) {
    EXPECT_EQ(r.exit_code, exit_code) << r.err;
    EXPECT_EQ(r.StderrLines(), 1) << r.err;
    EXPECT_EQ(r.err.rfind(exit_code == 2 ? "qalign: usage error: " : "qalign: error: ", 0), 0u)
        << r.err;
    if (!path.empty()) {
      EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
    }
    EXPECT_NE(r.err.find(problem), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }

  std::string folder_;
};

onnx::ModelProto ValidModel() {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"n", "4"});
  AddNode(g, "Relu", {"x"}, {"y"}, "relu");
  AddOutput(g, "y", {"n", "4"});
  return model;
}

TEST_F(BadInputTest, ValidModelSucceeds) {
  const std::string path = WriteModel("ok.onnx", ValidModel());
  CliResult r = RunCli({"inspect", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_NE(r.out.find("Relu"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("x: f32 [n,4]"), std::string::npos) << r.out;
}

TEST_F(BadInputTest, MissingFile) {
  const std::string path = folder_ + "/does_not_exist.onnx";
  ExpectFailure(RunCli({"inspect", path}), path, "No such file");
}

TEST_F(BadInputTest, Directory) {
  ExpectFailure(RunCli({"inspect", folder_}), folder_, "directory");
}

TEST_F(BadInputTest, RandomBytes) {
  std::mt19937 rng(7);
  std::string junk(100000, '\0');
  for (char& c : junk) c = static_cast<char>(rng() & 0xff);
  const std::string path = Write("random.onnx", junk);
  ExpectFailure(RunCli({"inspect", path}), path, "not a valid ONNX model");
}

TEST_F(BadInputTest, EmptyFile) {
  const std::string path = Write("empty.onnx", "");
  ExpectFailure(RunCli({"inspect", path}), path, "empty file");
}

TEST_F(BadInputTest, Cycle) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"4"});
  AddNode(g, "Add", {"x", "b"}, {"a"}, "first");
  AddNode(g, "Relu", {"a"}, {"b"}, "second");
  AddOutput(g, "b", {"4"});
  const std::string path = WriteModel("cycle.onnx", model);
  CliResult r = RunCli({"inspect", path});
  ExpectFailure(r, path, "cycle");
  EXPECT_TRUE(r.err.find("'first'") != std::string::npos ||
              r.err.find("'second'") != std::string::npos)
      << r.err;
}

TEST_F(BadInputTest, DanglingInput) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"4"});
  AddNode(g, "Add", {"x", "ghost"}, {"y"}, "adder");
  AddOutput(g, "y", {"4"});
  const std::string path = WriteModel("dangling.onnx", model);
  CliResult r = RunCli({"inspect", path});
  ExpectFailure(r, path, "'ghost'");
  EXPECT_NE(r.err.find("Add 'adder'"), std::string::npos) << r.err;
}

TEST_F(BadInputTest, UnknownOpDomain) {
  onnx::ModelProto model = ValidModel();
  auto* import = model.add_opset_import();
  import->set_domain("com.vendor.secret");
  import->set_version(1);
  model.mutable_graph()->mutable_node(0)->set_domain("com.vendor.secret");
  const std::string path = WriteModel("domain.onnx", model);
  CliResult r = RunCli({"inspect", path});
  ExpectFailure(r, path, "unknown op domain 'com.vendor.secret'");
  EXPECT_NE(r.err.find("Relu 'relu'"), std::string::npos) << r.err;
}

TEST_F(BadInputTest, OpsetTooOld) {
  onnx::ModelProto model = ValidModel();
  model.mutable_opset_import(0)->set_version(5);
  const std::string path = WriteModel("old.onnx", model);
  ExpectFailure(RunCli({"inspect", path}), path, "opset 5");
}

TEST_F(BadInputTest, BadInputShapeFlagIsAUsageError) {
  const std::string path = WriteModel("ok.onnx", ValidModel());
  for (const char* flag : {"x", "x=1,a", "x=", "=1,4", "x=-1,4"}) {
    CliResult r = RunCli({"inspect", path, "--input-shape", flag});
    ExpectFailure(r, "", "--input-shape", 2);
  }
  CliResult twice = RunCli({"inspect", path, "--input-shape", "x=1,4", "--input-shape", "x=2,4"});
  ExpectFailure(twice, "", "twice", 2);
}

// Every command that takes --input-shape applies one policy: an input named twice is a usage
// error naming it, reported before any file is read or written.
TEST_F(BadInputTest, InputShapeGivenTwiceIsAUsageErrorInEveryCommand) {
  const std::string path = WriteModel("ok.onnx", ValidModel());
  const std::string out = folder_ + "/out";
  const std::vector<std::vector<std::string>> commands = {
      {"inspect", path},
      {"run", path},
      {"calibrate", path, "--target", "tflite-int8", "--calib", "random:1", "-o", out},
      {"align", path, "--target", "tflite-int8", "--ranges", folder_ + "/ranges.json"},
      {"quantize", path, "--target", "tflite-int8", "--calib", "random:1", "-o", out},
      {"eval", path, path, "--data", "random:1"},
      {"check", path, "--target", "tflite-int8"},
      {"fix", path, "--target", "tflite-int8", "-o", out},
  };
  for (std::vector<std::string> args : commands) {
    SCOPED_TRACE(args[0]);
    args.insert(args.end(), {"--input-shape", "x=1,4", "--input-shape", "x=2,4"});
    ExpectFailure(RunCli(args), "", "--input-shape given twice for 'x'", 2);
    EXPECT_FALSE(std::filesystem::exists(out));
    // Two different inputs are fine as far as the flag goes (the model then rejects 'z').
    args.back() = "z=2,4";
    CliResult different = RunCli(args);
    EXPECT_EQ(different.err.find("twice"), std::string::npos) << different.err;
  }
}

TEST_F(BadInputTest, InputShapeThatDoesNotFitTheModel) {
  const std::string path = WriteModel("ok.onnx", ValidModel());
  ExpectFailure(RunCli({"inspect", path, "--input-shape", "nope=1,4"}), path, "'nope'");
  ExpectFailure(RunCli({"inspect", path, "--input-shape", "x=1,5"}), path, "dim 1");
  CliResult fixed = RunCli({"inspect", path, "--input-shape", "x=2,4"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.err;
  EXPECT_NE(fixed.out.find("y: f32 [2,4]"), std::string::npos) << fixed.out;
}

TEST_F(BadInputTest, MissingModelArgumentIsAUsageError) {
  CliResult r = RunCli({"inspect"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.StderrLines(), 1) << r.err;
}

}  // namespace
}  // namespace qalign
