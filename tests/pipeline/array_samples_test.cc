// Samples given in memory (the public InputSample) are read in place: the loader's tensors borrow
// the caller's bytes, the executor and calibration only read them, the kernels accept any
// element-aligned buffer, and the quantized model is the one the copying .npy path writes.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "calib/data_loader.h"
#include "ir/npy.h"
#include "onnx/exporter.h"
#include "qalign/quantize.h"
#include "runtime/executor.h"
#include "testing/graph_builder.h"

namespace qalign {
namespace {

namespace fs = std::filesystem;
using testing::GraphBuilder;

constexpr int64_t kSampleFloats = 1 * 3 * 8 * 8;

// x[1,3,8,8] read directly by each kernel that hands its input buffer to oneDNN (Conv, MaxPool,
// MatMul) and by a plain elementwise one (Add), so a misaligned input reaches all of them.
void BuildKernelsGraph(GraphBuilder& b) {
  Variable* x = b.Input("x", {1, 3, 8, 8});
  Variable* w = b.RandomParam("w", {4, 3, 3, 3}, /*seed=*/1, -0.5f, 0.5f);
  Variable* bias = b.RandomParam("bias", {4}, /*seed=*/2, -0.1f, 0.1f);
  Variable* conv = b.Op("Conv", "conv", {x, w, bias},
                        {{"pads", Attribute::Ints({1, 1, 1, 1})}});
  b.Output(b.Op("Relu", "relu", {conv}));
  b.Output(b.Op("MaxPool", "pool", {x}, {{"kernel_shape", Attribute::Ints({2, 2})},
                                         {"strides", Attribute::Ints({2, 2})}}));
  Variable* m = b.RandomParam("m", {8, 5}, /*seed=*/3, -1.0f, 1.0f);
  b.Output(b.Op("MatMul", "matmul", {x, m}));
  b.Output(b.Op("Add", "add", {x, x}));
}

std::vector<float> SeededFloats(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> values(count);
  for (float& v : values) v = dist(rng);
  return values;
}

InputArray ArrayOf(const float* data, std::vector<int64_t> dims) {
  InputArray a;
  a.onnx_dtype = 1;
  a.dims = std::move(dims);
  a.data = data;
  a.bytes = static_cast<size_t>(NumElements(a.dims)) * sizeof(float);
  return a;
}

TEST(ArraySamplesTest, LoadedTensorsPointAtTheCallersArrays) {
  const std::vector<ModelInputSpec> inputs = {{"x", DataType::kFloat, {1, 3, 8, 8}}};
  const std::vector<float> first = SeededFloats(kSampleFloats, 1);
  const std::vector<float> second = SeededFloats(kSampleFloats, 2);
  const InputArrayCounts before = CountInputArrays();
  auto data = OpenArrayData({{ArrayOf(first.data(), {1, 3, 8, 8})},
                             {ArrayOf(second.data(), {1, 3, 8, 8})}},
                            inputs);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  auto sample = (*data)->Load(1);
  ASSERT_TRUE(sample.ok()) << sample.status().ToString();
  const Tensor& x = sample->at("x");
  EXPECT_TRUE(x.borrowed());
  EXPECT_EQ(x.raw_data(), second.data());
  EXPECT_EQ(x.shape(), (std::vector<int64_t>{1, 3, 8, 8}));
  // Opening checks both samples (2 reads), then Load(1) reads one again; nothing is copied.
  const InputArrayCounts after = CountInputArrays();
  EXPECT_EQ(after.read_in_place - before.read_in_place, 3);
  EXPECT_EQ(after.copied - before.copied, 0);
}

TEST(ArraySamplesTest, MisalignedArrayIsCopiedWithTheSameValues) {
  const std::vector<ModelInputSpec> inputs = {{"x", DataType::kFloat, {1, 3, 8, 8}}};
  const std::vector<float> values = SeededFloats(kSampleFloats, 3);
  // The floats at an odd byte offset in a byte buffer, as numpy gives for a view of bytes.
  std::vector<uint8_t> buffer(values.size() * sizeof(float) + 1);
  std::memcpy(buffer.data() + 1, values.data(), values.size() * sizeof(float));
  const auto* misaligned = reinterpret_cast<const float*>(buffer.data() + 1);
  const InputArrayCounts before = CountInputArrays();
  auto data = OpenArrayData({{ArrayOf(misaligned, {1, 3, 8, 8})}}, inputs);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  auto sample = (*data)->Load(0);
  ASSERT_TRUE(sample.ok()) << sample.status().ToString();
  const Tensor& x = sample->at("x");
  EXPECT_FALSE(x.borrowed());
  EXPECT_TRUE(x.BitwiseEqual(Tensor::FromVector<float>({1, 3, 8, 8}, values)));
  const InputArrayCounts after = CountInputArrays();
  EXPECT_EQ(after.copied - before.copied, 2);  // the check when opening, then Load(0)
  EXPECT_EQ(after.read_in_place - before.read_in_place, 0);
}

TEST(ArraySamplesTest, KernelsReadABorrowedInputAtAnyElementAlignment) {
  GraphBuilder b;
  BuildKernelsGraph(b);
  ExecutorOptions options;
  options.num_threads = 1;
  options.keep = {"x"};  // returned, to see that the run left it a view
  auto executor = Executor::Create(b.graph(), options);
  ASSERT_TRUE(executor.ok()) << executor.status().ToString();
  const std::vector<float> values = SeededFloats(kSampleFloats, 4);
  Tensor owned = Tensor::FromVector<float>({1, 3, 8, 8}, values);
  auto expected = (*executor)->Run({{"x", owned}});
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();

  // The same floats at offsets 4, 8 and 16 bytes past a 64-byte boundary: aligned to the element
  // but not to what the owned tensors have.
  Tensor storage(DataType::kFloat, {kSampleFloats + 16});
  for (int64_t offset : {1, 2, 4}) {
    float* at = storage.data<float>() + offset;
    std::memcpy(at, values.data(), values.size() * sizeof(float));
    auto x = Tensor::Borrow(DataType::kFloat, {1, 3, 8, 8}, at, values.size() * sizeof(float));
    ASSERT_TRUE(x.ok()) << x.status().ToString();
    const int64_t copies_before = Tensor::BorrowedCopies();
    auto got = (*executor)->Run({{"x", *x}});
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(Tensor::BorrowedCopies(), copies_before) << "offset " << offset;
    const Tensor& returned = got->at("x");  // const: a mutable raw_data() would copy it
    EXPECT_TRUE(returned.borrowed());
    EXPECT_EQ(returned.raw_data(), at);
    for (const auto& [name, tensor] : *expected) {
      EXPECT_TRUE(got->at(name).BitwiseEqual(tensor)) << name << " at offset " << offset;
    }
  }
}

// x[1,3,8,8] -> Conv -> Relu -> MaxPool -> y: a model to quantize from arrays and from files.
std::string SaveConvModel(const std::string& path) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 3, 8, 8});
  Variable* w = b.RandomParam("w", {4, 3, 3, 3}, /*seed=*/5, -0.5f, 0.5f);
  Variable* bias = b.RandomParam("bias", {4}, /*seed=*/6, -0.1f, 0.1f);
  Variable* conv = b.Op("Conv", "conv", {x, w, bias},
                        {{"pads", Attribute::Ints({1, 1, 1, 1})}});
  Variable* relu = b.Op("Relu", "relu", {conv});
  b.Output(b.Op("MaxPool", "pool", {relu}, {{"kernel_shape", Attribute::Ints({2, 2})},
                                            {"strides", Attribute::Ints({2, 2})}}));
  EXPECT_TRUE(SaveOnnxModel(b.graph(), path).ok());
  return path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class ArrayQuantizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "qalign_arrays_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_;
};

TEST_F(ArrayQuantizeTest, ModelFromArraysIsByteIdenticalToTheNpyFiles) {
  const std::string model = SaveConvModel(dir_ + "/conv.onnx");
  const std::string npy_dir = dir_ + "/npy";
  fs::create_directory(npy_dir);
  std::vector<std::vector<float>> arrays;
  std::vector<InputSample> samples;
  for (uint32_t i = 0; i < 10; ++i) {
    arrays.push_back(SeededFloats(kSampleFloats, 100 + i));
    const Tensor t = Tensor::FromVector<float>({1, 3, 8, 8}, arrays.back());
    ASSERT_TRUE(WriteNpy(StrCat(npy_dir, "/", 100 + i, ".npy"), t).ok());
  }
  for (const std::vector<float>& a : arrays) samples.push_back({ArrayOf(a.data(), {1, 3, 8, 8})});

  QuantizeOptions options;
  options.model_path = model;
  options.target = "tflite-int8";
  options.quiet = true;
  options.num_threads = 1;
  options.calib_spec = "npy:" + npy_dir;
  options.output_path = dir_ + "/from_files.onnx";
  auto from_files = QuantizeModel(options);
  ASSERT_TRUE(from_files.ok()) << from_files.status().ToString();

  options.calib_spec.clear();
  options.samples = samples;
  options.output_path = dir_ + "/from_arrays.onnx";
  const InputArrayCounts before = CountInputArrays();
  auto from_arrays = QuantizeModel(options);
  ASSERT_TRUE(from_arrays.ok()) << from_arrays.status().ToString();
  const InputArrayCounts after = CountInputArrays();

  const std::string bytes = ReadFile(options.output_path);
  EXPECT_FALSE(bytes.empty());
  EXPECT_EQ(bytes, ReadFile(dir_ + "/from_files.onnx"));
  EXPECT_EQ(from_arrays->holdout_samples, 2);
  EXPECT_EQ(from_arrays->outputs.at("pool_out").snr_db, from_files->outputs.at("pool_out").snr_db);
  // Every array is read in place when checked and when calibrated on or evaluated. The only
  // copies are of the held-out inputs the simulated quantized model fake-quantizes.
  EXPECT_GE(after.read_in_place - before.read_in_place, 10 + 8);
  EXPECT_EQ(after.copied - before.copied, from_arrays->evaluated_samples);
  for (uint32_t i = 0; i < arrays.size(); ++i) {  // and never written
    EXPECT_EQ(arrays[i], SeededFloats(kSampleFloats, 100 + i));
  }
}

TEST_F(ArrayQuantizeTest, CalibrationDoesNotCopyTheArrays) {
  const std::string model = SaveConvModel(dir_ + "/conv.onnx");
  std::vector<std::vector<float>> arrays;
  CalibrateOptions options;
  for (uint32_t i = 0; i < 4; ++i) {
    arrays.push_back(SeededFloats(kSampleFloats, 200 + i));
    options.samples.push_back({ArrayOf(arrays.back().data(), {1, 3, 8, 8})});
  }
  options.model_path = model;
  options.target = "tflite-int8";
  options.quiet = true;
  options.num_threads = 1;
  options.output_path = dir_ + "/ranges.json";
  const InputArrayCounts before = CountInputArrays();
  auto summary = CalibrateModel(options);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  const InputArrayCounts after = CountInputArrays();
  EXPECT_EQ(summary->samples, 3);
  EXPECT_GE(after.read_in_place - before.read_in_place, 4 + 3);
  EXPECT_EQ(after.copied - before.copied, 0);
}

}  // namespace
}  // namespace qalign
