// ONNX import on small models built in code: tensors, Constant folding, shapes, scoping, errors.
#include "onnx/importer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "core/file_util.h"
#include "onnx/onnx_proto_builder.h"

namespace qalign {
namespace {

using testing::AddInput;
using testing::AddNode;
using testing::AddOutput;
using testing::FloatTensor;
using testing::NewModel;

// A fresh folder under the system temp dir, removed at the end of the test.
class TempFolder {
 public:
  TempFolder() {
    path_ = (std::filesystem::temp_directory_path() /
             ("qalign_onnx_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++)))
                .string();
    std::filesystem::create_directories(path_);
  }
  ~TempFolder() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

void WriteModel(const onnx::ModelProto& model, const std::string& path) {
  std::string bytes;
  ASSERT_TRUE(model.SerializeToString(&bytes));
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
}

StatusOr<std::unique_ptr<Graph>> Import(const onnx::ModelProto& model, ImportOptions options = {}) {
  return ImportOnnxModelFromProto(model, ".", options, "test.onnx");
}

// ---------------------------------------------------------------- TensorFromProto

TEST(TensorFromProtoTest, TypedFieldsDecodeToTheSameValuesAsRawData) {
  onnx::TensorProto f;
  f.set_name("f");
  f.set_data_type(onnx::TensorProto::FLOAT);
  f.add_dims(2);
  f.add_float_data(1.5f);
  f.add_float_data(-2.25f);
  auto tf = TensorFromProto(f, ".");
  ASSERT_TRUE(tf.ok()) << tf.status().ToString();
  EXPECT_EQ(tf->dtype(), DataType::kFloat);
  EXPECT_EQ(tf->values<float>()[0], 1.5f);
  EXPECT_EQ(tf->values<float>()[1], -2.25f);

  onnx::TensorProto i8;  // int8 values packed one per int32_data entry
  i8.set_data_type(onnx::TensorProto::INT8);
  i8.add_dims(3);
  for (int v : {-128, 0, 127}) i8.add_int32_data(v);
  auto t8 = TensorFromProto(i8, ".");
  ASSERT_TRUE(t8.ok()) << t8.status().ToString();
  EXPECT_EQ(t8->values<int8_t>()[0], -128);
  EXPECT_EQ(t8->values<int8_t>()[2], 127);

  onnx::TensorProto u8;
  u8.set_data_type(onnx::TensorProto::UINT8);
  u8.add_dims(2);
  u8.add_int32_data(255);
  u8.add_int32_data(7);
  auto tu8 = TensorFromProto(u8, ".");
  ASSERT_TRUE(tu8.ok());
  EXPECT_EQ(tu8->values<uint8_t>()[0], 255);

  onnx::TensorProto b;
  b.set_data_type(onnx::TensorProto::BOOL);
  b.add_dims(2);
  b.add_int32_data(1);
  b.add_int32_data(0);
  auto tb = TensorFromProto(b, ".");
  ASSERT_TRUE(tb.ok());
  EXPECT_EQ(tb->dtype(), DataType::kBool);
  EXPECT_EQ(tb->data<uint8_t>()[0], 1);
  EXPECT_EQ(tb->data<uint8_t>()[1], 0);

  onnx::TensorProto h;  // float16 bit patterns: 1.0 = 0x3C00, -2.0 = 0xC000
  h.set_data_type(onnx::TensorProto::FLOAT16);
  h.add_dims(2);
  h.add_int32_data(0x3C00);
  h.add_int32_data(0xC000);
  auto th = TensorFromProto(h, ".");
  ASSERT_TRUE(th.ok());
  EXPECT_EQ(th->data<uint16_t>()[0], 0x3C00);
  EXPECT_EQ(th->data<uint16_t>()[1], 0xC000);

  onnx::TensorProto i64;
  i64.set_data_type(onnx::TensorProto::INT64);
  i64.add_dims(2);
  i64.add_int64_data(-5);
  i64.add_int64_data(int64_t{1} << 40);
  auto ti64 = TensorFromProto(i64, ".");
  ASSERT_TRUE(ti64.ok());
  EXPECT_EQ(ti64->values<int64_t>()[1], int64_t{1} << 40);

  onnx::TensorProto d;
  d.set_data_type(onnx::TensorProto::DOUBLE);
  d.add_double_data(0.1);  // a scalar: no dims, one value
  auto td = TensorFromProto(d, ".");
  ASSERT_TRUE(td.ok());
  EXPECT_EQ(td->rank(), 0);
  EXPECT_EQ(td->values<double>()[0], 0.1);

  onnx::TensorProto u64;
  u64.set_data_type(onnx::TensorProto::UINT64);
  u64.add_dims(1);
  u64.add_uint64_data(~uint64_t{0});
  auto tu64 = TensorFromProto(u64, ".");
  ASSERT_TRUE(tu64.ok());
  EXPECT_EQ(tu64->values<uint64_t>()[0], ~uint64_t{0});

  onnx::TensorProto s;
  s.set_data_type(onnx::TensorProto::STRING);
  s.add_dims(2);
  s.add_string_data("ab");
  s.add_string_data("");
  auto ts = TensorFromProto(s, ".");
  ASSERT_TRUE(ts.ok());
  ASSERT_EQ(ts->strings().size(), 2u);
  EXPECT_EQ(ts->strings()[0], "ab");
}

TEST(TensorFromProtoTest, CountMismatchIsAnErrorNamingTheTensor) {
  onnx::TensorProto f;
  f.set_name("weights");
  f.set_data_type(onnx::TensorProto::FLOAT);
  f.add_dims(3);
  f.add_float_data(1.0f);
  auto t = TensorFromProto(f, ".");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("weights"), std::string::npos) << t.status().message();

  onnx::TensorProto huge = FloatTensor("huge", {int64_t{1} << 31, int64_t{1} << 31}, {1.0f});
  auto h = TensorFromProto(huge, ".");  // must fail before allocating anything
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("huge"), std::string::npos);
  onnx::TensorProto big = FloatTensor("big", {int64_t{1} << 20, int64_t{1} << 20}, {});
  big.clear_raw_data();
  auto b = TensorFromProto(big, ".");
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("big"), std::string::npos);

  onnx::TensorProto raw = FloatTensor("raw", {4}, {1, 2, 3});
  auto r = TensorFromProto(raw, ".");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("raw"), std::string::npos);
}

TEST(TensorFromProtoTest, ReadsBackendTestTensorFiles) {
  TempFolder folder;
  onnx::TensorProto proto = FloatTensor("x", {2, 2}, {1, 2, 3, 4});
  ASSERT_TRUE(WriteFileAtomically(folder.File("input_0.pb"), proto.SerializeAsString()).ok());
  auto t = ReadTensorProtoFile(folder.File("input_0.pb"));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(t->values<float>()[3], 4.0f);

  ASSERT_TRUE(WriteFileAtomically(folder.File("junk.pb"), std::string("\xff\xff\xff", 3)).ok());
  auto bad = ReadTensorProtoFile(folder.File("junk.pb"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("junk.pb"), std::string::npos);
}

// ---------------------------------------------------------------- model import

TEST(ImporterTest, ConstantNodesOfEveryFormBecomeParameters) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"2"});
  auto* c_tensor = AddNode(g, "Constant", {}, {"c_tensor"}, "const_tensor");
  auto* a = c_tensor->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = FloatTensor("", {2}, {3.0f, 4.0f});
  auto* c_float = AddNode(g, "Constant", {}, {"c_float"}, "const_float");
  a = c_float->add_attribute();
  a->set_name("value_float");
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(0.5f);
  auto* c_ints = AddNode(g, "Constant", {}, {"c_ints"}, "const_ints");
  a = c_ints->add_attribute();
  a->set_name("value_ints");
  a->set_type(onnx::AttributeProto::INTS);
  a->add_ints(2);
  a->add_ints(1);
  auto* c_int = AddNode(g, "Constant", {}, {"c_int"}, "const_int");
  a = c_int->add_attribute();
  a->set_name("value_int");
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(-7);
  auto* c_floats = AddNode(g, "Constant", {}, {"c_floats"}, "");
  a = c_floats->add_attribute();
  a->set_name("value_floats");
  a->set_type(onnx::AttributeProto::FLOATS);
  a->add_floats(1.25f);
  auto* c_strings = AddNode(g, "Constant", {}, {"c_strings"}, "const_strings");
  a = c_strings->add_attribute();
  a->set_name("value_strings");
  a->set_type(onnx::AttributeProto::STRINGS);
  a->add_strings("a");
  a->add_strings("bc");
  AddNode(g, "Add", {"x", "c_tensor"}, {"sum"}, "add");
  AddNode(g, "Mul", {"sum", "c_float"}, {"prod"}, "mul");
  AddNode(g, "Reshape", {"prod", "c_ints"}, {"y"}, "reshape");
  AddOutput(g, "y", {"2", "1"});

  auto graph = Import(model);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const Graph& gr = **graph;
  EXPECT_EQ(gr.num_operations(), 3u);
  EXPECT_EQ(gr.info().source_op_counts.at("Constant"), 6);
  EXPECT_EQ(gr.info().source_op_counts.at("Add"), 1);

  const Variable* ct = gr.FindVariable("c_tensor");
  ASSERT_TRUE(ct && ct->is_parameter());
  EXPECT_EQ(ct->origin(), Variable::Origin::kConstantNode);
  EXPECT_EQ(ct->constant_node_name, "const_tensor");
  EXPECT_EQ(ct->data()->values<float>()[1], 4.0f);

  const Variable* cf = gr.FindVariable("c_float");
  ASSERT_TRUE(cf && cf->is_parameter());
  EXPECT_EQ(cf->data()->rank(), 0);
  EXPECT_EQ(cf->data()->values<float>()[0], 0.5f);

  const Variable* ci = gr.FindVariable("c_ints");
  EXPECT_EQ(ci->data()->dtype(), DataType::kInt64);
  EXPECT_EQ(ci->data()->shape(), (std::vector<int64_t>{2}));
  EXPECT_EQ(ci->data()->values<int64_t>()[0], 2);

  EXPECT_EQ(gr.FindVariable("c_int")->data()->values<int64_t>()[0], -7);
  EXPECT_EQ(gr.FindVariable("c_floats")->data()->values<float>()[0], 1.25f);
  EXPECT_EQ(gr.FindVariable("c_floats")->constant_node_name, "");
  EXPECT_EQ(gr.FindVariable("c_strings")->data()->strings()[1], "bc");

  // Shape inference runs through the folded constants: Reshape's target shape is known.
  EXPECT_EQ(gr.FindVariable("sum")->shape().ToString(), "[2]");
  EXPECT_EQ(gr.FindVariable("y")->shape().ToString(), "[2,1]");
}

TEST(ImporterTest, InitializersAndOldIrInitializerInputs) {
  onnx::ModelProto model = NewModel(9, /*ir_version=*/3);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"1", "4"});
  AddInput(g, "w", {"4", "2"});  // IR 3 lists initializers among the inputs
  *g->add_initializer() = FloatTensor("w", {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  AddNode(g, "MatMul", {"x", "w"}, {"y"}, "matmul");
  AddOutput(g, "y", {"1", "2"});

  auto graph = Import(model);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  ASSERT_EQ((*graph)->inputs().size(), 1u);
  EXPECT_EQ((*graph)->inputs()[0]->name(), "x");
  const Variable* w = (*graph)->FindVariable("w");
  ASSERT_TRUE(w->is_parameter());
  EXPECT_FALSE(w->is_graph_input());
  EXPECT_EQ(w->origin(), Variable::Origin::kInitializer);
  EXPECT_EQ((*graph)->info().initializer_inputs, (std::vector<std::string>{"w"}));
  EXPECT_EQ((*graph)->ParameterCount(), 8);
  EXPECT_EQ((*graph)->ParameterBytes(), 32);
}

TEST(ImporterTest, SymbolicDimsAreKeptAndInputShapeFixesThem) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"batch", "3", "?"});
  AddNode(g, "Relu", {"x"}, {"r"}, "relu");
  AddNode(g, "Sigmoid", {"r"}, {"y"}, "sigmoid");
  AddOutput(g, "y", {"batch", "3", "?"});

  auto graph = Import(model);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ((*graph)->inputs()[0]->shape().ToString(), "[batch,3,?]");
  EXPECT_EQ((*graph)->FindVariable("r")->shape().ToString(), "[batch,3,?]");

  ImportOptions options;
  options.input_shapes["x"] = {2, 3, 5};
  auto fixed = Import(model, options);
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_EQ((*fixed)->inputs()[0]->shape().ToString(), "[2,3,5]");
  EXPECT_EQ((*fixed)->FindVariable("r")->shape().ToString(), "[2,3,5]");
  EXPECT_EQ((*fixed)->outputs()[0]->shape().ToString(), "[2,3,5]");

  ImportOptions wrong_name;
  wrong_name.input_shapes["nope"] = {1};
  auto e1 = Import(model, wrong_name);
  ASSERT_FALSE(e1.ok());
  EXPECT_NE(e1.status().message().find("'nope'"), std::string::npos) << e1.status().message();
  EXPECT_NE(e1.status().message().find("test.onnx"), std::string::npos);

  ImportOptions wrong_rank;
  wrong_rank.input_shapes["x"] = {1, 3};
  EXPECT_FALSE(Import(model, wrong_rank).ok());

  ImportOptions conflicting;  // dim 1 is fixed to 3 by the model
  conflicting.input_shapes["x"] = {1, 4, 5};
  auto e3 = Import(model, conflicting);
  ASSERT_FALSE(e3.ok());
  EXPECT_NE(e3.status().message().find("dim 1"), std::string::npos) << e3.status().message();
}

TEST(ImporterTest, ParseInputShapeFlag) {
  auto ok = ParseInputShapeFlag("x=1,3,640,640");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->first, "x");
  EXPECT_EQ(ok->second, (std::vector<int64_t>{1, 3, 640, 640}));
  auto eq_in_name = ParseInputShapeFlag("a=b=7");
  ASSERT_TRUE(eq_in_name.ok());
  EXPECT_EQ(eq_in_name->first, "a=b");
  for (const char* bad : {"x", "=1,2", "x=", "x=1,,2", "x=1,a", "x=-1", "x=1.5", "x=1,"}) {
    EXPECT_FALSE(ParseInputShapeFlag(bad).ok()) << bad;
  }
}

// An If whose branches read `outer`, a tensor produced by a Relu listed AFTER the If in the file.
onnx::ModelProto IfModel() {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"2"});
  AddInput(g, "cond", {}, onnx::TensorProto::BOOL);
  auto* if_node = AddNode(g, "If", {"cond"}, {"y"}, "branch");
  AddNode(g, "Relu", {"x"}, {"outer"}, "relu");

  auto* then_attr = if_node->add_attribute();
  then_attr->set_name("then_branch");
  then_attr->set_type(onnx::AttributeProto::GRAPH);
  auto* then_g = then_attr->mutable_g();
  then_g->set_name("then");
  *then_g->add_initializer() = FloatTensor("one", {1}, {1.0f});
  AddNode(then_g, "Add", {"outer", "one"}, {"then_out"}, "then_add");
  AddOutput(then_g, "then_out", {"2"});

  auto* else_attr = if_node->add_attribute();
  else_attr->set_name("else_branch");
  else_attr->set_type(onnx::AttributeProto::GRAPH);
  auto* else_g = else_attr->mutable_g();
  else_g->set_name("else");
  AddNode(else_g, "Neg", {"outer"}, {"else_out"}, "else_neg");
  AddOutput(else_g, "else_out", {"2"});

  AddOutput(g, "y", {"2"});
  return model;
}

TEST(ImporterTest, SubgraphsStayOpaqueAndOuterNamesBecomeImplicitInputs) {
  onnx::ModelProto model = IfModel();
  auto graph = Import(model);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const Operation* if_op = (*graph)->FindOperation("branch");
  ASSERT_NE(if_op, nullptr);
  ASSERT_EQ(if_op->implicit_inputs().size(), 1u);
  EXPECT_EQ(if_op->implicit_inputs()[0]->name(), "outer");
  const Attribute* then_branch = if_op->FindAttribute("then_branch");
  ASSERT_NE(then_branch, nullptr);
  EXPECT_EQ(then_branch->kind, Attribute::Kind::kOpaque);
  EXPECT_EQ(then_branch->opaque, model.graph().node(0).attribute(0).SerializeAsString());

  // The Relu producing `outer` must run before the If even though the file lists it after.
  auto order = (*graph)->TopologicalOrder();
  ASSERT_TRUE(order.ok());
  ASSERT_EQ(order->size(), 2u);
  EXPECT_EQ((*order)[0]->name(), "relu");
  EXPECT_EQ((*order)[1]->name(), "branch");
}

TEST(ImporterTest, SubgraphReadingAnUndefinedNameIsDangling) {
  onnx::ModelProto model = IfModel();
  model.mutable_graph()->mutable_node()->RemoveLast();  // drop the Relu producing `outer`
  auto graph = Import(model);
  ASSERT_FALSE(graph.ok());
  EXPECT_NE(graph.status().message().find("outer"), std::string::npos) << graph.status().message();
  EXPECT_NE(graph.status().message().find("If 'branch'"), std::string::npos);
}

TEST(ImporterTest, ExternalDataIsReadRelativeToTheModelFolder) {
  TempFolder folder;
  std::vector<float> values = {0.0f, 0.0f, 1.5f, -2.0f, 3.25f, 4.0f};  // first 8 bytes skipped
  {
    std::ofstream side(folder.File("weights.bin"), std::ios::binary);
    side.write(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  }
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"4"});
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(4);
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  auto add_entry = [&](const char* key, const std::string& value) {
    auto* e = w->add_external_data();
    e->set_key(key);
    e->set_value(value);
  };
  add_entry("location", "weights.bin");
  add_entry("offset", "8");
  add_entry("length", "16");
  AddNode(g, "Add", {"x", "w"}, {"y"}, "add");
  AddOutput(g, "y", {"4"});
  WriteModel(model, folder.File("model.onnx"));

  auto graph = ImportOnnxModel(folder.File("model.onnx"));
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const Tensor* data = (*graph)->FindVariable("w")->data();
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(std::vector<float>(data->values<float>().begin(), data->values<float>().end()),
            (std::vector<float>{1.5f, -2.0f, 3.25f, 4.0f}));

  // Reading past the end of the side file names the tensor and the file.
  w->mutable_external_data(1)->set_value("16");
  WriteModel(model, folder.File("short.onnx"));
  auto too_short = ImportOnnxModel(folder.File("short.onnx"));
  ASSERT_FALSE(too_short.ok());
  EXPECT_NE(too_short.status().message().find("'w'"), std::string::npos);
  EXPECT_NE(too_short.status().message().find("weights.bin"), std::string::npos);

  // A missing side file too.
  w->mutable_external_data(0)->set_value("missing.bin");
  WriteModel(model, folder.File("missing.onnx"));
  auto missing = ImportOnnxModel(folder.File("missing.onnx"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing.bin"), std::string::npos);
  EXPECT_NE(missing.status().message().find("missing.onnx"), std::string::npos);
}

onnx::ModelProto ReluModel(int64_t opset) {
  onnx::ModelProto model = NewModel(opset);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"2"});
  AddNode(g, "Relu", {"x"}, {"y"}, "relu");
  AddOutput(g, "y", {"2"});
  return model;
}

TEST(ImporterTest, OpsetOlderThan7IsRejected) {
  auto graph = Import(ReluModel(6));
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(graph.status().message().find("test.onnx"), std::string::npos);
  EXPECT_NE(graph.status().message().find("opset 6"), std::string::npos)
      << graph.status().message();
  EXPECT_TRUE(Import(ReluModel(7)).ok());
  EXPECT_TRUE(Import(ReluModel(17)).ok());
}

TEST(ImporterTest, Opset18ImportsWithAWarning) {
  ::testing::internal::CaptureStderr();
  auto graph = Import(ReluModel(18));
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ((*graph)->info().opset_imports.at(""), 18);
  EXPECT_NE(err.find("warning"), std::string::npos) << err;
  EXPECT_NE(err.find("opset 18"), std::string::npos) << err;
}

TEST(ImporterTest, DomainsMicrosoftMlAndLocalFunctionsAreToleratedOthersAreNot) {
  onnx::ModelProto model = NewModel(13);
  auto* ms = model.add_opset_import();
  ms->set_domain("com.microsoft");
  ms->set_version(1);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"2"});
  AddNode(g, "FusedGelu", {"x"}, {"a"}, "gelu", "com.microsoft");
  AddNode(g, "Relu", {"a"}, {"y"}, "relu");
  AddOutput(g, "y", {"2"});
  auto graph = Import(model);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ((*graph)->FindOperation("gelu")->domain(), "com.microsoft");
  EXPECT_EQ((*graph)->FindOperation("gelu")->opset(), 1);

  g->mutable_node(0)->set_domain("com.example.custom");
  auto bad = Import(model);
  ASSERT_FALSE(bad.ok());
  const std::string& message = bad.status().message();
  EXPECT_NE(message.find("com.example.custom"), std::string::npos) << message;
  EXPECT_NE(message.find("FusedGelu 'gelu'"), std::string::npos) << message;

  auto* custom_import = model.add_opset_import();
  custom_import->set_domain("com.example.custom");
  custom_import->set_version(1);
  auto* function = model.add_functions();  // a model-local function defines the domain
  function->set_name("FusedGelu");
  function->set_domain("com.example.custom");
  function->add_input("i");
  function->add_output("o");
  auto* body = function->add_node();
  body->set_op_type("Relu");
  body->add_input("i");
  body->add_output("o");
  auto* fn_import = function->add_opset_import();
  fn_import->set_domain("");
  fn_import->set_version(13);
  EXPECT_TRUE(Import(model).ok());
}

TEST(ImporterTest, CyclesAndDanglingInputsAreErrorsNamingTheOp) {
  onnx::ModelProto cycle = NewModel(13);
  auto* g = cycle.mutable_graph();
  AddInput(g, "x", {"2"});
  AddNode(g, "Add", {"x", "b"}, {"a"}, "first");
  AddNode(g, "Relu", {"a"}, {"b"}, "second");
  AddOutput(g, "b", {"2"});
  auto c = Import(cycle);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("cycle"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("test.onnx"), std::string::npos);

  onnx::ModelProto dangling = NewModel(13);
  g = dangling.mutable_graph();
  AddInput(g, "x", {"2"});
  AddNode(g, "Add", {"x", "ghost"}, {"y"}, "adder");
  AddOutput(g, "y", {"2"});
  auto d = Import(dangling);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("'ghost'"), std::string::npos) << d.status().message();
  EXPECT_NE(d.status().message().find("Add 'adder'"), std::string::npos);
}

TEST(ImporterTest, UnparsableFilesAreErrorsNamingTheFile) {
  TempFolder folder;
  std::mt19937 rng(42);
  std::string junk(4096, '\0');
  for (char& c : junk) c = static_cast<char>(rng() & 0xff);
  ASSERT_TRUE(WriteFileAtomically(folder.File("junk.onnx"), junk).ok());
  auto j = ImportOnnxModel(folder.File("junk.onnx"));
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.status().message().find("junk.onnx"), std::string::npos);

  auto missing = ImportOnnxModel(folder.File("absent.onnx"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("absent.onnx"), std::string::npos);

  auto dir = ImportOnnxModel(folder.path());
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find("directory"), std::string::npos);
}

}  // namespace
}  // namespace qalign
