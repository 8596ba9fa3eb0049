// Import -> export of each PP-OCR model must leave ONNX Runtime's outputs bit-identical.
#include <gtest/gtest.h>
#include <onnx/checker.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "core/file_util.h"
#include "onnx/exporter.h"
#include "onnx/importer.h"
#include "onnx/onnx_proto_builder.h"
#include "testing/ort_runner.h"

namespace qalign {
namespace {

struct RoundTripCase {
  const char* file;
  std::vector<int64_t> input_shape;
  uint32_t seed;
};

Tensor RandomInput(const std::vector<int64_t>& shape, uint32_t seed) {
  Tensor t(DataType::kFloat, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(0.0f, 1.0f);
  for (float& x : t.values<float>()) x = dist(rng);
  return t;
}

class OrtRoundTripTest : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(OrtRoundTripTest, ExportedModelGivesBitIdenticalOutputs) {
  const RoundTripCase& c = GetParam();
  const std::string model_path = std::string(QALIGN_MODEL_DIR) + "/" + c.file;
  ASSERT_TRUE(std::filesystem::exists(model_path))
      << model_path << " is missing; run scripts/fetch_models.sh";

  auto graph = ImportOnnxModel(model_path);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  ASSERT_EQ((*graph)->inputs().size(), 1u);
  const std::string input_name = (*graph)->inputs()[0]->name();

  auto exported = ExportOnnxModel(**graph);
  ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  EXPECT_NO_THROW(onnx::checker::check_model(*exported));

  const std::string out_path = (std::filesystem::temp_directory_path() /
                                ("qalign_roundtrip_" + std::to_string(::getpid()) + "_" + c.file))
                                   .string();
  ASSERT_TRUE(SaveOnnxModel(**graph, out_path, model_path).ok());

  std::map<std::string, Tensor> inputs;
  inputs.emplace(input_name, RandomInput(c.input_shape, c.seed));
  auto original = testing::RunInOnnxRuntime(model_path, inputs);
  auto round_tripped = testing::RunInOnnxRuntime(out_path, inputs);
  std::filesystem::remove(out_path);
  ASSERT_TRUE(original.ok()) << original.status().ToString();
  ASSERT_TRUE(round_tripped.ok()) << round_tripped.status().ToString();

  ASSERT_EQ(original->size(), round_tripped->size());
  ASSERT_FALSE(original->empty());
  for (const auto& [name, expected] : *original) {
    auto it = round_tripped->find(name);
    ASSERT_NE(it, round_tripped->end()) << "output " << name << " missing after the round trip";
    const Tensor& got = it->second;
    EXPECT_EQ(got.dtype(), expected.dtype()) << name;
    EXPECT_EQ(got.shape(), expected.shape()) << name;
    ASSERT_EQ(got.byte_size(), expected.byte_size()) << name;
    ASSERT_GT(expected.byte_size(), 0u) << name;
    EXPECT_EQ(std::memcmp(got.raw_data(), expected.raw_data(), expected.byte_size()), 0)
        << "output " << name << " differs after import -> export";
  }
}

// An If whose branches read an outer tensor: ONNX Runtime gives the same answers before and after
// the round trip, for both branches, and the answers are the branch formulas.
TEST(OrtSubgraphTest, IfModelRunsTheSameAfterARoundTrip) {
  onnx::ModelProto model = testing::NewModel(13);
  auto* g = model.mutable_graph();
  testing::AddInput(g, "x", {"3"});
  testing::AddInput(g, "cond", {}, onnx::TensorProto::BOOL);
  testing::AddNode(g, "Relu", {"x"}, {"outer"}, "relu");
  auto* if_node = testing::AddNode(g, "If", {"cond"}, {"y"}, "branch");
  auto* then_attr = if_node->add_attribute();
  then_attr->set_name("then_branch");
  then_attr->set_type(onnx::AttributeProto::GRAPH);
  auto* then_g = then_attr->mutable_g();
  then_g->set_name("then");
  *then_g->add_initializer() = testing::FloatTensor("one", {1}, {1.0f});
  testing::AddNode(then_g, "Add", {"outer", "one"}, {"then_out"}, "then_add");
  testing::AddOutput(then_g, "then_out", {"3"});
  auto* else_attr = if_node->add_attribute();
  else_attr->set_name("else_branch");
  else_attr->set_type(onnx::AttributeProto::GRAPH);
  auto* else_g = else_attr->mutable_g();
  else_g->set_name("else");
  testing::AddNode(else_g, "Neg", {"outer"}, {"else_out"}, "else_neg");
  testing::AddOutput(else_g, "else_out", {"3"});
  testing::AddOutput(g, "y", {"3"});

  const std::string base =
      (std::filesystem::temp_directory_path() / ("qalign_if_" + std::to_string(::getpid())))
          .string();
  const std::string original_path = base + "_in.onnx", exported_path = base + "_out.onnx";
  ASSERT_TRUE(WriteFileAtomically(original_path, model.SerializeAsString()).ok());
  auto graph = ImportOnnxModel(original_path);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  ASSERT_TRUE(SaveOnnxModel(**graph, exported_path, original_path).ok());

  const std::vector<float> x = {-1.5f, 0.25f, 2.0f};
  for (bool cond : {true, false}) {
    std::map<std::string, Tensor> inputs;
    inputs.emplace("x", Tensor::FromVector<float>({3}, x));
    inputs.emplace("cond", Tensor::FromVector<bool>({}, {cond}));
    auto a = testing::RunInOnnxRuntime(original_path, inputs);
    auto b = testing::RunInOnnxRuntime(exported_path, inputs);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    const Tensor& ya = a->at("y");
    const Tensor& yb = b->at("y");
    ASSERT_TRUE(ya.BitwiseEqual(yb)) << "cond " << cond;
    for (size_t i = 0; i < x.size(); ++i) {
      const float relu = std::max(x[i], 0.0f);
      EXPECT_EQ(yb.values<float>()[i], cond ? relu + 1.0f : -relu) << "cond " << cond << " i " << i;
    }
  }
  std::filesystem::remove(original_path);
  std::filesystem::remove(exported_path);
}

// The runner's .npy reader and writer: Identity passes every dtype through unchanged, and output
// names that are not file names (slashes, colons) still come back under their own names.
TEST(OrtRunnerTest, IdentityPassesEveryDtypeThrough) {
  struct Case {
    std::string name;
    int32_t elem_type;
    Tensor value;
  };
  std::vector<Case> cases;
  cases.push_back({"f32", onnx::TensorProto::FLOAT,
                   Tensor::FromVector<float>({2, 2}, {1.5f, -0.0f, 3e-38f, 7.0f})});
  cases.push_back(
      {"f64", onnx::TensorProto::DOUBLE, Tensor::FromVector<double>({3}, {0.1, -2.0, 1e300})});
  cases.push_back({"i64", onnx::TensorProto::INT64,
                   Tensor::FromVector<int64_t>({2}, {-(int64_t{1} << 60), 5})});
  cases.push_back({"i32", onnx::TensorProto::INT32, Tensor::FromVector<int32_t>({1}, {-123456})});
  cases.push_back(
      {"u8", onnx::TensorProto::UINT8, Tensor::FromVector<uint8_t>({4}, {0, 1, 128, 255})});
  cases.push_back({"i8", onnx::TensorProto::INT8, Tensor::FromVector<int8_t>({2}, {-128, 127})});
  cases.push_back(
      {"b", onnx::TensorProto::BOOL, Tensor::FromVector<bool>({3}, {true, false, true})});
  cases.push_back({"scalar", onnx::TensorProto::FLOAT, Tensor::FromVector<float>({}, {42.0f})});

  onnx::ModelProto model = testing::NewModel(13);
  auto* g = model.mutable_graph();
  std::map<std::string, Tensor> inputs;
  for (const Case& c : cases) {
    std::vector<std::string> dims;
    for (int64_t d : c.value.shape()) dims.push_back(std::to_string(d));
    testing::AddInput(g, "in_" + c.name, dims, c.elem_type);
    const std::string out = "out/" + c.name + ":0";
    testing::AddNode(g, "Identity", {"in_" + c.name}, {out}, "id_" + c.name);
    testing::AddOutput(g, out, dims, c.elem_type);
    inputs.emplace("in_" + c.name, c.value);
  }
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("qalign_identity_" + std::to_string(::getpid()) + ".onnx"))
                               .string();
  ASSERT_TRUE(WriteFileAtomically(path, model.SerializeAsString()).ok());
  auto outputs = testing::RunInOnnxRuntime(path, inputs);
  std::filesystem::remove(path);
  ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
  ASSERT_EQ(outputs->size(), cases.size());
  for (const Case& c : cases) {
    auto it = outputs->find("out/" + c.name + ":0");
    ASSERT_NE(it, outputs->end()) << c.name;
    EXPECT_EQ(it->second.dtype(), c.value.dtype()) << c.name;
    EXPECT_EQ(it->second.shape(), c.value.shape()) << c.name;
    EXPECT_TRUE(it->second.BitwiseEqual(c.value)) << c.name;
  }
}

TEST(OrtRunnerTest, ErrorsCarryOnnxRuntimesMessage) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("qalign_not_a_model_" + std::to_string(::getpid()) + ".onnx"))
                               .string();
  ASSERT_TRUE(WriteFileAtomically(path, "not a model").ok());
  auto outputs = testing::RunInOnnxRuntime(path, {});
  std::filesystem::remove(path);
  ASSERT_FALSE(outputs.ok());
  EXPECT_NE(outputs.status().message().find(path), std::string::npos) << outputs.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    PpOcr, OrtRoundTripTest,
    ::testing::Values(RoundTripCase{"ch_PP-OCRv4_det_infer.onnx", {1, 3, 640, 640}, 11},
                      RoundTripCase{"ch_PP-OCRv4_rec_infer.onnx", {1, 3, 48, 320}, 12},
                      RoundTripCase{"ch_ppocr_mobile_v2.0_cls_infer.onnx", {1, 3, 48, 192}, 13}),
    [](const ::testing::TestParamInfo<RoundTripCase>& info) {
      std::string name = info.param.file;
      name = name.substr(0, name.rfind('.'));
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

}  // namespace
}  // namespace qalign
