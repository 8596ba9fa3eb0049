// Hostile input to every subcommand (issue 21): what crashed, hung or succeeded on nonsense now
// fails with one stderr line naming the file and the op or tensor, and leaves no output behind.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
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
using testing::FloatTensor;
using testing::NewModel;
using testing::RunCli;

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = (std::filesystem::temp_directory_path() /
               ("qalign_hostile_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                  .string();
    std::filesystem::create_directories(folder_);
  }
  void TearDown() override { std::filesystem::remove_all(folder_); }

  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = folder_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  std::string WriteModel(const std::string& name, const onnx::ModelProto& model) {
    return Write(name, model.SerializeAsString());
  }

  // Exit code 1 (not a signal), one stderr line "qalign: error: ..." holding every piece.
  void ExpectFailure(const CliResult& r, const std::vector<std::string>& pieces) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.StderrLines(), 1) << r.err;
    EXPECT_EQ(r.err.rfind("qalign: error: ", 0), 0u) << r.err;
    for (const std::string& piece : pieces) {
      EXPECT_NE(r.err.find(piece), std::string::npos) << "'" << piece << "' not in: " << r.err;
    }
  }

  // Names of the entries of the test folder, to check nothing was left behind.
  std::vector<std::string> Entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(folder_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string folder_;
};

// A float32 .npy file of `dims` holding `values`, written by hand (format version 1.0).
std::string NpyBytes(const std::vector<int64_t>& dims, const std::vector<float>& values,
                     const std::string& shape_text = "") {
  std::string shape = "(";
  for (int64_t d : dims) shape += std::to_string(d) + ",";
  shape += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " +
                       (shape_text.empty() ? shape : shape_text) + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return bytes;
}

// x [1,1,4,4] -> Conv 'conv' (1x1x3x3 weights, pads 1) -> Relu 'relu' -> y.
onnx::ModelProto ConvRelu() {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"1", "1", "4", "4"});
  *g->add_initializer() = FloatTensor("w", {1, 1, 3, 3}, std::vector<float>(9, 0.5f));
  auto* conv = AddNode(g, "Conv", {"x", "w"}, {"c"}, "conv");
  auto* pads = conv->add_attribute();
  pads->set_name("pads");
  pads->set_type(onnx::AttributeProto::INTS);
  for (int i = 0; i < 4; ++i) pads->add_ints(1);
  AddNode(g, "Relu", {"c"}, {"y"}, "relu");
  AddOutput(g, "y", {"1", "1", "4", "4"});
  return model;
}

TEST_F(HostileInputTest, ValidModelQuantizes) {
  const std::string model = WriteModel("ok.onnx", ConvRelu());
  const std::string out = folder_ + "/q.onnx";
  CliResult r =
      RunCli({"quantize", model, "--target", "ort-qdq-u8s8", "--calib", "random:2", "-o", out});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::is_regular_file(out));
}

TEST_F(HostileInputTest, ZeroStridesFailInEverySubcommandWithoutASignal) {
  onnx::ModelProto model = ConvRelu();
  auto* strides = model.mutable_graph()->mutable_node(0)->add_attribute();
  strides->set_name("strides");
  strides->set_type(onnx::AttributeProto::INTS);
  strides->add_ints(0);
  strides->add_ints(0);
  const std::string path = WriteModel("strides0.onnx", model);
  const std::string out = folder_ + "/q.onnx";
  ExpectFailure(RunCli({"inspect", path}), {path, "Conv 'conv'", "'strides'"});
  ExpectFailure(RunCli({"calibrate", path, "--target", "ort-qdq-u8s8", "--calib", "random:1", "-o",
                        folder_ + "/r.json"}),
                {path, "Conv 'conv'", "'strides'"});
  ExpectFailure(RunCli({"check", path, "--target", "ort-qdq-u8s8"}),
                {path, "Conv 'conv'", "'strides'"});
  ExpectFailure(
      RunCli({"quantize", path, "--target", "ort-qdq-u8s8", "--calib", "random:1", "-o", out}),
      {path, "Conv 'conv'", "'strides'"});
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(HostileInputTest, StridesAsFloatsAreRefused) {
  onnx::ModelProto model = ConvRelu();
  auto* strides = model.mutable_graph()->mutable_node(0)->add_attribute();
  strides->set_name("strides");
  strides->set_type(onnx::AttributeProto::FLOATS);
  strides->add_floats(2);
  strides->add_floats(2);
  const std::string path = WriteModel("floats.onnx", model);
  ExpectFailure(RunCli({"inspect", path}), {path, "Conv 'conv'", "'strides' is FLOATS"});
}

TEST_F(HostileInputTest, NonUtf8NamesAreRefusedBeforeAnyJsonOrOutput) {
  onnx::ModelProto model = ConvRelu();
  const std::string bad("c\xff", 2);
  model.mutable_graph()->mutable_node(0)->set_output(0, bad);
  model.mutable_graph()->mutable_node(1)->set_input(0, bad);
  const std::string path = WriteModel("utf8.onnx", model);
  const std::string out = folder_ + "/q.onnx";
  const std::string table = folder_ + "/table.json";
  ExpectFailure(RunCli({"inspect", "--json", path}), {path, "'c\\xff'", "not valid UTF-8"});
  ExpectFailure(RunCli({"calibrate", path, "--target", "ort-qdq-u8s8", "--calib", "random:1", "-o",
                        folder_ + "/ranges.json"}),
                {path, "not valid UTF-8"});
  ExpectFailure(RunCli({"quantize", path, "--target", "ort-qdq-u8s8", "--calib", "random:1",
                        "--table", table, "-o", out}),
                {path, "not valid UTF-8"});
  EXPECT_EQ(Entries(), std::vector<std::string>{"utf8.onnx"});
}

TEST_F(HostileInputTest, GraphWithoutOutputsIsRefused) {
  onnx::ModelProto model = ConvRelu();
  model.mutable_graph()->clear_output();
  const std::string path = WriteModel("noout.onnx", model);
  ExpectFailure(RunCli({"inspect", path}), {path, "no outputs"});
}

onnx::ModelProto ReluWithInputDims(const std::vector<int64_t>& dims) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  auto* x = AddInput(g, "x", {});
  for (int64_t d : dims) {
    x->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
  }
  AddNode(g, "Relu", {"x"}, {"y"}, "relu");
  AddOutput(g, "y", {})->mutable_type()->mutable_tensor_type()->clear_shape();
  return model;
}

TEST_F(HostileInputTest, InputDimsThatOverflowOrAreNegativeAreRefused) {
  const std::string out = folder_ + "/q.onnx";
  for (const auto& dims : std::vector<std::vector<int64_t>>{
           {1, 3, int64_t{1} << 32, int64_t{1} << 32}, {1, 3, INT64_MAX, INT64_MAX}}) {
    const std::string path = WriteModel("big.onnx", ReluWithInputDims(dims));
    ExpectFailure(
        RunCli({"quantize", path, "--target", "ort-qdq-u8s8", "--calib", "random:1", "-o", out}),
        {path, "input 'x'", "64-bit"});
  }
  const std::string path = WriteModel("neg.onnx", ReluWithInputDims({1, -3, 4}));
  ExpectFailure(RunCli({"inspect", path}), {path, "input 'x'", "dim -3"});
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(HostileInputTest, HugeInputShapeFlagIsRefused) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"n", "c", "h", "w"});
  AddNode(g, "Relu", {"x"}, {"y"}, "relu");
  AddOutput(g, "y", {"n", "c", "h", "w"});
  const std::string path = WriteModel("dyn.onnx", model);
  for (const std::string dims :
       {"1,3,48000,192000", "100000,3,640,640", "1,3,9223372036854775807,1"}) {
    ExpectFailure(RunCli({"calibrate", path, "--target", "ort-qdq-u8s8", "--calib", "random:1",
                          "--input-shape", "x=" + dims, "-o", folder_ + "/r.json"}),
                  {path, "--input-shape x"});
  }
}

TEST_F(HostileInputTest, ResizeWithHugeScalesFailsInTheOp) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"1", "1", "2", "2"});
  *g->add_initializer() = FloatTensor("scales", {4}, {1.0f, 1.0f, 1e6f, 1e6f});
  AddNode(g, "Resize", {"x", "", "scales"}, {"y"}, "resize");
  AddOutput(g, "y", {"?", "?", "?", "?"});
  const std::string path = WriteModel("resize.onnx", model);
  const std::string x = Write("x.npy", NpyBytes({1, 1, 2, 2}, {1, 2, 3, 4}));
  ExpectFailure(RunCli({"run", path, "--input", "x=" + x}),
                {"Resize 'resize'", "[1,1,2000000,2000000]", "limit"});
}

TEST_F(HostileInputTest, ExternalDataOutsideTheModelFolderIsRefused) {
  // Both used to be read as weights, exit 0.
  Write("secret.bin", std::string(36, '\x01'));
  for (const std::string location : {"/etc/passwd", "../secret.bin"}) {
    onnx::ModelProto model = ConvRelu();
    onnx::TensorProto* w = model.mutable_graph()->mutable_initializer(0);
    w->clear_raw_data();
    w->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* entry = w->add_external_data();
    entry->set_key("location");
    entry->set_value(location);
    const std::string path = WriteModel("model/m.onnx", model);
    ExpectFailure(RunCli({"inspect", path}),
                  {path, "tensor 'w'", "location '" + location + "'", "model's folder"});
  }
}

TEST_F(HostileInputTest, OutputOntoAFifoOrSymlinkIsRefusedAndLeavesNothing) {
  // A FIFO stands in for a device node: -o /dev/null used to replace the device.
  const std::string model = WriteModel("m.onnx", ConvRelu());
  ASSERT_EQ(::mkfifo((folder_ + "/fifo").c_str(), 0600), 0);
  ExpectFailure(RunCli({"quantize", model, "--target", "ort-qdq-u8s8", "--calib", "random:1", "-o",
                        folder_ + "/fifo"}),
                {folder_ + "/fifo", "not a regular file"});
  std::filesystem::create_symlink(folder_ + "/elsewhere.onnx", folder_ + "/link.onnx");
  ExpectFailure(RunCli({"quantize", model, "--target", "ort-qdq-u8s8", "--calib", "random:1", "-o",
                        folder_ + "/link.onnx"}),
                {folder_ + "/link.onnx", "symbolic link"});
  EXPECT_EQ(Entries(), (std::vector<std::string>{"fifo", "link.onnx", "m.onnx"}));
  EXPECT_TRUE(std::filesystem::is_fifo(folder_ + "/fifo"));
}

TEST_F(HostileInputTest, InvalidSecondOutputMeansNoOutputAtAll) {
  // The -o model used to be written before --table or --trt-cache failed.
  const std::string model = WriteModel("m.onnx", ConvRelu());
  const std::string out = folder_ + "/q.onnx";
  ExpectFailure(RunCli({"quantize", model, "--target", "ort-qdq-u8s8", "--calib", "random:1",
                        "--table", folder_ + "/missing/t.json", "-o", out}),
                {folder_ + "/missing", "output folder"});
  ExpectFailure(RunCli({"quantize", model, "--target", "trt-int8", "--calib", "random:1",
                        "--trt-cache", model, "-o", out}),
                {model, "refusing to overwrite the input"});
  EXPECT_EQ(Entries(), std::vector<std::string>{"m.onnx"});
}

// fix and run check their outputs before any work too: an unusable --report, a FIFO -o or an
// --output-dir that is a file leave nothing behind.
TEST_F(HostileInputTest, FixAndRunCheckTheirOutputsFirst) {
  const std::string model = WriteModel("m.onnx", ConvRelu());
  const std::string q = folder_ + "/q.onnx";
  ASSERT_EQ(RunCli({"quantize", model, "--target", "ort-qdq-u8s8", "--calib", "random:2", "-o", q,
                    "--quiet"})
                .exit_code,
            0);
  const std::string out = folder_ + "/fixed.onnx";
  ExpectFailure(RunCli({"fix", q, "--target", "ort-qdq-u8s8", "-o", out, "--report",
                        folder_ + "/missing/r.json"}),
                {folder_ + "/missing", "output folder"});
  ASSERT_EQ(::mkfifo((folder_ + "/fifo").c_str(), 0600), 0);
  ExpectFailure(RunCli({"fix", q, "--target", "ort-qdq-u8s8", "-o", folder_ + "/fifo"}),
                {folder_ + "/fifo", "not a regular file"});
  const std::string x = Write("x.npy", NpyBytes({1, 1, 4, 4}, std::vector<float>(16, 1.0f)));
  ExpectFailure(RunCli({"run", model, "--input", "x=" + x, "--output-dir", x}),
                {x, "not a folder"});
  EXPECT_EQ(Entries(), (std::vector<std::string>{"fifo", "m.onnx", "q.onnx", "x.npy"}));
}

TEST_F(HostileInputTest, HugeRandomSampleCountAndNegativeNpyDimsAreRefused) {
  // random:2^63-1 was accepted and ran forever; a .npy (-1, 16) read as (1, 16).
  const std::string model = WriteModel("m.onnx", ConvRelu());
  ExpectFailure(RunCli({"calibrate", model, "--target", "ort-qdq-u8s8", "--calib",
                        "random:9223372036854775807", "-o", folder_ + "/r.json"}),
                {"random:9223372036854775807", "at most"});
  const std::string x = Write("x.npy", NpyBytes({}, std::vector<float>(16, 1.0f), "(-1, 1, 4, 4)"));
  ExpectFailure(RunCli({"run", model, "--input", "x=" + x}), {x, "dim '-1'"});
}

TEST_F(HostileInputTest, AbsurdThreadCountRunsWithACappedPool) {
  const std::string model = WriteModel("m.onnx", ConvRelu());
  const std::string x = Write("x.npy", NpyBytes({1, 1, 4, 4}, std::vector<float>(16, 1.0f)));
  CliResult r = RunCli({"run", model, "--input", "x=" + x, "--threads", "100000"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("thread pool: 100000 threads asked"), std::string::npos) << r.err;
}

// Negative counts are usage errors (exit 2) naming the flag, before any model is read.
TEST_F(HostileInputTest, NegativeThreadsAndTopAreUsageErrors) {
  const std::string model = WriteModel("m.onnx", ConvRelu());
  CliResult run = RunCli({"calibrate", model, "--target", "tflite-int8", "--calib", "random:2",
                          "-o", folder_ + "/r.json", "--threads", "-1"});
  CliResult top = RunCli({"eval", model, model, "--data", "random:2", "--top", "-5"});
  for (const CliResult* r : {&run, &top}) {
    EXPECT_EQ(r->exit_code, 2) << r->err;
    EXPECT_NE(r->err.find("usage error"), std::string::npos) << r->err;
  }
  EXPECT_NE(run.err.find("--threads"), std::string::npos) << run.err;
  EXPECT_NE(top.err.find("--top"), std::string::npos) << top.err;
}

TEST_F(HostileInputTest, EvalRefusesAQdqModelWithAMeaninglessScale) {
  // eval printed an SNR for these (check and fix reject them).
  onnx::ModelProto fp32 = NewModel(13);
  auto* g = fp32.mutable_graph();
  AddInput(g, "x", {"1", "4"});
  AddNode(g, "Relu", {"x"}, {"y"}, "relu");
  AddOutput(g, "y", {"1", "4"});
  const std::string fp32_path = WriteModel("fp32.onnx", fp32);
  for (const float scale : {0.0f, -0.5f, std::nanf(""), INFINITY}) {
    onnx::ModelProto q = NewModel(13);
    auto* qg = q.mutable_graph();
    AddInput(qg, "x", {"1", "4"});
    *qg->add_initializer() = FloatTensor("s", {}, {scale});
    onnx::TensorProto zp;
    zp.set_name("zp");
    zp.set_data_type(onnx::TensorProto::UINT8);
    zp.set_raw_data(std::string(1, '\0'));
    *qg->add_initializer() = zp;
    AddNode(qg, "QuantizeLinear", {"x", "s", "zp"}, {"xq"}, "quant");
    AddNode(qg, "DequantizeLinear", {"xq", "s", "zp"}, {"xd"}, "dequant");
    AddNode(qg, "Relu", {"xd"}, {"y"}, "relu");
    AddOutput(qg, "y", {"1", "4"});
    const std::string q_path = WriteModel("q.onnx", q);
    ExpectFailure(RunCli({"eval", fp32_path, q_path, "--data", "random:2", "--quiet"}),
                  {"QuantizeLinear 'quant'", "scale 's'", "positive and finite"});
  }
}

TEST_F(HostileInputTest, LongOutputNameWorks) {
  const std::string model = WriteModel("m.onnx", ConvRelu());
  const std::string out = folder_ + "/" + std::string(245, 'q') + ".onnx";
  CliResult r =
      RunCli({"quantize", model, "--target", "ort-qdq-u8s8", "--calib", "random:1", "-o", out});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::is_regular_file(out));
}

}  // namespace
}  // namespace qalign
