// Models that would crash ONNX's shape inference or import as nonsense: refused at import with
// one line naming the op or tensor (issue 21). Every model is built in code.
#include "onnx/model_check.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/limits.h"
#include "onnx/importer.h"
#include "onnx/onnx_proto_builder.h"

namespace qalign {
namespace {

using testing::AddInput;
using testing::AddNode;
using testing::AddOutput;
using testing::FloatTensor;
using testing::NewModel;

StatusOr<std::unique_ptr<Graph>> Import(const onnx::ModelProto& model, ImportOptions options = {}) {
  return ImportOnnxModelFromProto(model, ".", options, "test.onnx");
}

// The import fails with one line that contains every piece of `expected`.
void ExpectRefused(const onnx::ModelProto& model, const std::vector<std::string>& expected,
                   ImportOptions options = {}) {
  auto graph = Import(model, options);
  ASSERT_FALSE(graph.ok());
  const std::string& message = graph.status().message();
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_EQ(message.rfind("test.onnx: ", 0), 0u) << message;
  for (const std::string& piece : expected) {
    EXPECT_NE(message.find(piece), std::string::npos) << "'" << piece << "' not in: " << message;
  }
}

onnx::AttributeProto* AddInts(onnx::NodeProto* node, const std::string& name,
                              const std::vector<int64_t>& values) {
  auto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
  return a;
}

// x [1,1,8,8] -> `op_type` 'op' -> y; Conv gets a 1x1x3x3 weight. The caller adds attributes.
onnx::ModelProto ConvOrPool(const std::string& op_type, onnx::NodeProto** node) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"1", "1", "8", "8"});
  std::vector<std::string> inputs = {"x"};
  if (op_type == "Conv") {
    *g->add_initializer() = FloatTensor("w", {1, 1, 3, 3}, std::vector<float>(9, 1.0f));
    inputs.push_back("w");
  }
  *node = AddNode(g, op_type, inputs, {"y"}, "op");
  AddOutput(g, "y", {"?", "?", "?", "?"});
  return model;
}

TEST(ModelCheckTest, ZeroStridesAreRefusedBeforeShapeInference) {
  // These crashed every subcommand with SIGFPE inside convPoolShapeInference.
  for (const std::string op_type : {"Conv", "MaxPool", "AveragePool"}) {
    SCOPED_TRACE(op_type);
    onnx::NodeProto* node = nullptr;
    onnx::ModelProto model = ConvOrPool(op_type, &node);
    if (op_type != "Conv") AddInts(node, "kernel_shape", {2, 2});
    AddInts(node, "strides", {0, 1});
    ExpectRefused(model, {op_type + " 'op'", "'strides'", "value 0", "at least 1"});
  }
}

TEST(ModelCheckTest, NonPositiveKernelDilationsGroupAndNegativePadsAreRefused) {
  struct Case {
    std::string attribute;
    std::vector<int64_t> ints;
    bool scalar;
  };
  for (const Case& c : std::vector<Case>{{"kernel_shape", {0, 3}, false},
                                         {"dilations", {1, -1}, false},
                                         {"pads", {0, 0, -1, 0}, false},
                                         {"group", {0}, true}}) {
    SCOPED_TRACE(c.attribute);
    onnx::NodeProto* node = nullptr;
    onnx::ModelProto model = ConvOrPool("Conv", &node);
    if (c.scalar) {
      testing::AddIntAttribute(node, c.attribute, c.ints[0]);
    } else {
      AddInts(node, c.attribute, c.ints);
    }
    ExpectRefused(model, {"Conv 'op'", "'" + c.attribute + "'"});
  }
}

TEST(ModelCheckTest, AttributeOfTheWrongTypeIsRefused) {
  // strides as FLOATS used to import with the default strides (a wrong output shape, exit 0).
  {
    onnx::NodeProto* node = nullptr;
    onnx::ModelProto model = ConvOrPool("Conv", &node);
    auto* a = node->add_attribute();
    a->set_name("strides");
    a->set_type(onnx::AttributeProto::FLOATS);
    a->add_floats(2.0f);
    a->add_floats(2.0f);
    ExpectRefused(model, {"Conv 'op'", "attribute 'strides' is FLOATS", "needs INTS"});
  }
  {
    onnx::NodeProto* node = nullptr;
    onnx::ModelProto model = ConvOrPool("Conv", &node);
    auto* a = node->add_attribute();
    a->set_name("group");
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s("1");
    ExpectRefused(model, {"Conv 'op'", "attribute 'group' is STRING", "needs INT"});
  }
  {
    onnx::NodeProto* node = nullptr;
    onnx::ModelProto model = ConvOrPool("MaxPool", &node);
    testing::AddIntAttribute(node, "kernel_shape", 2);
    ExpectRefused(model, {"MaxPool 'op'", "attribute 'kernel_shape' is INT", "needs INTS"});
  }
}

TEST(ModelCheckTest, WellTypedConvStillImports) {
  onnx::NodeProto* node = nullptr;
  onnx::ModelProto model = ConvOrPool("Conv", &node);
  AddInts(node, "strides", {2, 2});
  AddInts(node, "pads", {1, 1, 1, 1});
  testing::AddIntAttribute(node, "group", 1);
  auto graph = Import(model);
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  // (8 + 2 - 3) / 2 + 1 = 4: the strides were read.
  EXPECT_EQ((*graph)->FindVariable("y")->shape().ToString(), "[1,1,4,4]");
}

TEST(ModelCheckTest, ConvWeightRankUnlikeTheInputsStopsShapeInferenceNotTheProcess) {
  // A rank-6 weight on a rank-4 input made ONNX's convPoolShapeInference read past the input's
  // dims (SIGSEGV, found by fuzz/fuzz_onnx_import). The guard fails inference instead: the
  // model imports with the output's shape unknown, as for any model inference cannot follow.
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"1", "1", "8", "8"});
  *g->add_initializer() = FloatTensor("w", {1, 1, 3, 3, 1, 1}, std::vector<float>(9, 1.0f));
  AddNode(g, "Conv", {"x", "w"}, {"y"}, "op");
  AddOutput(g, "y", {})->mutable_type()->mutable_tensor_type()->clear_shape();
  auto graph = Import(model);
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  EXPECT_FALSE((*graph)->FindVariable("y")->shape().rank_known);
  // Per-axis attributes must match the spatial rank too.
  onnx::NodeProto* node = nullptr;
  onnx::ModelProto pads = ConvOrPool("MaxPool", &node);
  AddInts(node, "kernel_shape", {2, 2});
  AddInts(node, "pads", {1, 1});
  auto pooled = Import(pads);
  ASSERT_TRUE(pooled.ok()) << pooled.status().message();
  EXPECT_FALSE((*pooled)->FindVariable("y")->shape().fully_known());
}

TEST(ModelCheckTest, UntypedInputStopsShapeInferenceNotTheProcess) {
  // Shape on a graph input declared without a type: ONNX's inference dereferenced the null type
  // (SIGSEGV, found by fuzz/fuzz_onnx_import). Same for the output of an op ONNX does not know.
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  g->add_input()->set_name("x");
  AddNode(g, "Shape", {"x"}, {"s"}, "shape");
  AddInput(g, "u", {"2", "3"});
  AddNode(g, "Co(stant", {"u"}, {"v"}, "unknown");
  AddNode(g, "Shape", {"v"}, {"t"}, "shape_of_unknown");
  AddOutput(g, "s", {})->mutable_type()->mutable_tensor_type()->clear_shape();
  AddOutput(g, "t", {})->mutable_type()->mutable_tensor_type()->clear_shape();
  auto graph = Import(model);
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  EXPECT_FALSE((*graph)->FindVariable("s")->shape().rank_known);
  EXPECT_FALSE((*graph)->FindVariable("t")->shape().rank_known);
}

TEST(ModelCheckTest, GraphWithoutOutputsIsRefused) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"4"});
  AddNode(g, "Relu", {"x"}, {"y"}, "relu");
  ExpectRefused(model, {"no outputs"});
}

TEST(ModelCheckTest, NegativeDeclaredDimIsRefused) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  auto* x = AddInput(g, "x", {"1", "4"});
  x->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(1)->set_dim_value(-3);
  AddNode(g, "Relu", {"x"}, {"y"}, "relu");
  AddOutput(g, "y", {"1", "4"});
  ExpectRefused(model, {"input 'x'", "dim -3"});
}

onnx::ModelProto ReluWithInput(const std::vector<int64_t>& dims) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  auto* x = AddInput(g, "x", {});
  auto* shape = x->mutable_type()->mutable_tensor_type()->mutable_shape();
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
  AddNode(g, "Relu", {"x"}, {"y"}, "relu");
  AddOutput(g, "y", {})->mutable_type()->mutable_tensor_type()->clear_shape();
  return model;
}

TEST(ModelCheckTest, InputWhoseElementCountOverflowsIsRefused) {
  // These reached oneDNN (SIGFPE) or gave the random input 3 floats of storage.
  constexpr int64_t kMax = INT64_MAX;
  for (const auto& dims :
       std::vector<std::vector<int64_t>>{{1, 3, int64_t{1} << 32, int64_t{1} << 32},
                                         {1, 3, int64_t{1} << 62, 4},
                                         {1, 3, kMax, kMax}}) {
    SCOPED_TRACE(ShapeToString(dims));
    ExpectRefused(ReluWithInput(dims), {"input 'x'", "64-bit"});
  }
}

TEST(ModelCheckTest, InputOverTheTensorLimitIsRefusedAndTheLimitIsSettable) {
  const onnx::ModelProto model = ReluWithInput({1, 3, 1024, 1024});  // 12 MiB of f32
  SetMaxTensorBytes(int64_t{1} << 20);
  ExpectRefused(model,
                {"input 'x'", "12582912 bytes", "limit of 1048576", "QALIGN_MAX_TENSOR_BYTES"});
  SetMaxTensorBytes(0);  // the default again
  EXPECT_EQ(MaxTensorBytes(), kDefaultMaxTensorBytes);
  EXPECT_TRUE(Import(model).ok());
}

TEST(ModelCheckTest, InputShapeFlagOverTheLimitIsRefused) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"n", "c", "h", "w"});
  AddNode(g, "Relu", {"x"}, {"y"}, "relu");
  AddOutput(g, "y", {"n", "c", "h", "w"});
  ImportOptions options;
  options.input_shapes["x"] = {100000, 3, INT64_MAX, 1};
  ExpectRefused(model, {"--input-shape x", "64-bit"}, options);
  options.input_shapes["x"] = {1, 3, 48000, 192000};
  ExpectRefused(model, {"--input-shape x", "bytes, more than the limit"}, options);
}

TEST(ModelCheckTest, InitializerOverTheTensorLimitIsRefused) {
  onnx::ModelProto model = ReluWithInput({4});
  onnx::TensorProto* big = model.mutable_graph()->add_initializer();
  big->set_name("big");
  big->set_data_type(onnx::TensorProto::FLOAT);
  big->add_dims(int64_t{1} << 40);
  big->add_dims(16);
  ExpectRefused(model, {"tensor 'big'", "more than the limit"});
}

TEST(ModelCheckTest, NamesThatAreNotUtf8AreRefusedAndEscaped) {
  const std::string bad = std::string("x\xff\xfe", 3);
  {
    onnx::ModelProto model = NewModel(13);
    auto* g = model.mutable_graph();
    AddInput(g, "x", {"4"});
    AddNode(g, "Relu", {"x"}, {bad}, "relu");
    AddNode(g, "Relu", {bad}, {"y"}, "relu2");
    AddOutput(g, "y", {"4"});
    ExpectRefused(model, {"Relu 'relu'", "output name 'x\\xff\\xfe'", "not valid UTF-8"});
  }
  {
    onnx::ModelProto model = NewModel(13);
    auto* g = model.mutable_graph();
    AddInput(g, "x", {"4"});
    AddNode(g, "Relu", {"x"}, {"y"}, std::string("n\xc0\xaf", 3));  // overlong '/'
    AddOutput(g, "y", {"4"});
    ExpectRefused(model, {"node name 'n\\xc0\\xaf'", "not valid UTF-8"});
  }
  {
    onnx::ModelProto model = NewModel(13);
    auto* g = model.mutable_graph();
    AddInput(g, bad, {"4"});
    AddNode(g, "Relu", {bad}, {"y"}, "relu");
    AddOutput(g, "y", {"4"});
    ExpectRefused(model, {"input name", "not valid UTF-8"});
  }
}

TEST(ModelCheckTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("conv_1/weights"));
  EXPECT_TRUE(IsValidUtf8("\xe5\x8d\xb7\xe7\xa7\xaf"));  // 卷积
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));          // U+1F600
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));          // overlong NUL
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_EQ(EscapeBytes(std::string("a\xff\n", 3)), "a\\xff\\x0a");
}

}  // namespace
}  // namespace qalign
