// ONNX export on small models built in code: what import read must come back out unchanged.
#include "onnx/exporter.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/file_util.h"
#include "onnx/importer.h"
#include "onnx/onnx_proto_builder.h"

namespace qalign {
namespace {

using testing::AddInput;
using testing::AddNode;
using testing::AddOutput;
using testing::FloatTensor;
using testing::NewModel;

std::unique_ptr<Graph> MustImport(const onnx::ModelProto& model) {
  auto graph = ImportOnnxModelFromProto(model, ".", {}, "test.onnx");
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return graph.ok() ? std::move(graph).value() : nullptr;
}

onnx::ModelProto MustExport(const Graph& graph) {
  auto model = ExportOnnxModel(graph);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? *model : onnx::ModelProto();
}

std::string CheckModel(const onnx::ModelProto& model) {
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::string Diff(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  google::protobuf::util::MessageDifferencer differencer;
  std::string report;
  differencer.ReportDifferencesToString(&report);
  differencer.Compare(a, b);
  return report;
}

// A model already in the exporter's canonical form: nodes sorted, initializers as raw_data,
// Constant values as unnamed tensors. Export must reproduce it field for field.
onnx::ModelProto CanonicalModel() {
  onnx::ModelProto model = NewModel(13);
  model.set_producer_name("qalign-test");
  model.set_producer_version("1.2");
  model.set_domain("org.test");
  model.set_model_version(5);
  model.set_doc_string("a model for export tests");
  auto* ms = model.add_opset_import();
  ms->set_domain("com.microsoft");
  ms->set_version(1);
  auto* prop = model.add_metadata_props();
  prop->set_key("author");
  prop->set_value("tests");
  auto* prop2 = model.add_metadata_props();
  prop2->set_key("license");
  prop2->set_value("none");

  auto* g = model.mutable_graph();
  g->set_doc_string("graph doc");
  AddInput(g, "x", {"batch", "3", "?"})->set_doc_string("the image");
  *g->add_initializer() = FloatTensor("scale", {3, 1}, {0.5f, 1.5f, 2.5f});
  auto* mul = AddNode(g, "Mul", {"x", "scale"}, {"scaled"}, "mul");
  mul->set_doc_string("scale each channel");
  auto* c = AddNode(g, "Constant", {}, {"bias"}, "bias_const");
  auto* value = c->add_attribute();
  value->set_name("value");
  value->set_type(onnx::AttributeProto::TENSOR);
  *value->mutable_t() = FloatTensor("", {3, 1}, {0.25f, -1.0f, 4.0f});
  AddNode(g, "Add", {"scaled", "bias"}, {"shifted"}, "add");
  auto* custom = AddNode(g, "CustomOp", {"shifted", ""}, {"y", ""}, "custom", "com.microsoft");
  auto* f = custom->add_attribute();
  f->set_name("alpha");
  f->set_type(onnx::AttributeProto::FLOAT);
  f->set_f(0.1f);
  f->set_doc_string("attribute doc");
  auto* i = custom->add_attribute();
  i->set_name("mode");
  i->set_type(onnx::AttributeProto::INT);
  i->set_i(-3);
  auto* s = custom->add_attribute();
  s->set_name("label");
  s->set_type(onnx::AttributeProto::STRING);
  s->set_s("text");
  auto* t = custom->add_attribute();
  t->set_name("table");
  t->set_type(onnx::AttributeProto::TENSOR);
  *t->mutable_t() = FloatTensor("", {2}, {7.0f, 8.0f});
  auto* fs = custom->add_attribute();
  fs->set_name("weights");
  fs->set_type(onnx::AttributeProto::FLOATS);
  fs->add_floats(1.0f);
  fs->add_floats(-0.0f);
  auto* is = custom->add_attribute();
  is->set_name("axes");
  is->set_type(onnx::AttributeProto::INTS);
  is->add_ints(0);
  is->add_ints(int64_t{1} << 50);
  auto* ss = custom->add_attribute();
  ss->set_name("tags");
  ss->set_type(onnx::AttributeProto::STRINGS);
  ss->add_strings("p");
  ss->add_strings("");
  auto* tp = custom->add_attribute();
  tp->set_name("dtype_proto");
  tp->set_type(onnx::AttributeProto::TYPE_PROTO);
  tp->mutable_tp()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::INT8);
  auto* sp = custom->add_attribute();
  sp->set_name("sparse");
  sp->set_type(onnx::AttributeProto::SPARSE_TENSOR);
  *sp->mutable_sparse_tensor()->mutable_values() = FloatTensor("v", {1}, {9.0f});
  sp->mutable_sparse_tensor()->add_dims(4);
  auto* indices = sp->mutable_sparse_tensor()->mutable_indices();
  indices->set_data_type(onnx::TensorProto::INT64);
  indices->add_dims(1);
  indices->add_int64_data(2);
  AddOutput(g, "y", {"batch", "3", "?"})->set_doc_string("the result");
  auto* info = g->add_value_info();
  info->set_name("scaled");
  testing::SetTensorType(info, onnx::TensorProto::FLOAT, {"batch", "3", "?"});

  auto* function = model.add_functions();
  function->set_name("Twice");
  function->set_domain("org.test.functions");
  function->add_input("a");
  function->add_output("b");
  auto* body = function->add_node();
  body->set_op_type("Add");
  body->add_input("a");
  body->add_input("a");
  body->add_output("b");
  auto* fn_import = function->add_opset_import();
  fn_import->set_domain("");
  fn_import->set_version(13);
  return model;
}

TEST(ExporterTest, CanonicalModelRoundTripsFieldForField) {
  const onnx::ModelProto original = CanonicalModel();
  auto graph = MustImport(original);
  ASSERT_NE(graph, nullptr);
  // Import decodes the kinds qalign reads and keeps the others serialized.
  const Operation* custom = graph->FindOperation("custom");
  ASSERT_NE(custom, nullptr);
  ASSERT_EQ(custom->attributes().size(), 9u);
  EXPECT_EQ(custom->FindAttribute("alpha")->kind, Attribute::Kind::kFloat);
  EXPECT_EQ(custom->FindAttribute("mode")->kind, Attribute::Kind::kInt);
  EXPECT_EQ(custom->FindAttribute("label")->kind, Attribute::Kind::kString);
  EXPECT_EQ(custom->FindAttribute("table")->kind, Attribute::Kind::kTensor);
  EXPECT_EQ(custom->FindAttribute("weights")->kind, Attribute::Kind::kFloats);
  EXPECT_EQ(custom->FindAttribute("axes")->kind, Attribute::Kind::kInts);
  EXPECT_EQ(custom->FindAttribute("tags")->kind, Attribute::Kind::kStrings);
  EXPECT_EQ(custom->FindAttribute("dtype_proto")->kind, Attribute::Kind::kOpaque);
  EXPECT_EQ(custom->FindAttribute("sparse")->kind, Attribute::Kind::kOpaque);
  EXPECT_EQ(custom->GetInts("axes")[1], int64_t{1} << 50);
  EXPECT_EQ(custom->input(1), nullptr);
  EXPECT_EQ(custom->output(1), nullptr);

  const onnx::ModelProto exported = MustExport(*graph);
  EXPECT_EQ(Diff(original, exported), "");
  EXPECT_EQ(exported.SerializeAsString(), original.SerializeAsString());
  EXPECT_EQ(CheckModel(exported), "");
}

TEST(ExporterTest, ConstantsAreReEmittedBeforeTheirFirstUse) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"2"});
  AddNode(g, "Relu", {"x"}, {"r"}, "relu");
  auto* c = AddNode(g, "Constant", {}, {"k"}, "k_const");
  auto* a = c->add_attribute();
  a->set_name("value_floats");  // re-emitted as an equivalent `value` tensor
  a->set_type(onnx::AttributeProto::FLOATS);
  a->add_floats(2.0f);
  a->add_floats(3.0f);
  auto* unused = AddNode(g, "Constant", {}, {"unused"}, "unused_const");
  a = unused->add_attribute();
  a->set_name("value_int");
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(11);
  AddNode(g, "Mul", {"r", "k"}, {"y"}, "mul");
  AddOutput(g, "y", {"2"});

  auto graph = MustImport(model);
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(graph->num_operations(), 2u);
  const onnx::ModelProto exported = MustExport(*graph);
  EXPECT_EQ(CheckModel(exported), "");
  const auto& nodes = exported.graph().node();
  ASSERT_EQ(nodes.size(), 4);  // Relu, Constant k, Mul, and the unused Constant kept at the end
  EXPECT_EQ(nodes[0].name(), "relu");
  EXPECT_EQ(nodes[1].op_type(), "Constant");
  EXPECT_EQ(nodes[1].name(), "k_const");
  EXPECT_EQ(nodes[1].output(0), "k");
  EXPECT_EQ(nodes[2].name(), "mul");
  EXPECT_EQ(nodes[3].name(), "unused_const");
  EXPECT_EQ(exported.graph().initializer_size(), 0);

  // Importing the export again gives the same values and the same counts as read.
  auto again = MustImport(exported);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->info().source_op_counts, graph->info().source_op_counts);
  const Tensor* k = again->FindVariable("k")->data();
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->values<float>()[1], 3.0f);
  EXPECT_EQ(again->FindVariable("unused")->data()->values<int64_t>()[0], 11);
}

TEST(ExporterTest, TypedInitializersAreWrittenAsRawDataWithTheSameValues) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"2"}, onnx::TensorProto::INT64);
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::INT64);
  w->add_dims(2);
  w->add_int64_data(-4);
  w->add_int64_data(9);
  AddNode(g, "Add", {"x", "w"}, {"y"}, "add");
  AddOutput(g, "y", {"2"}, onnx::TensorProto::INT64);
  auto graph = MustImport(model);
  ASSERT_NE(graph, nullptr);
  const onnx::ModelProto exported = MustExport(*graph);
  ASSERT_EQ(exported.graph().initializer_size(), 1);
  const onnx::TensorProto& out = exported.graph().initializer(0);
  EXPECT_EQ(out.name(), "w");
  EXPECT_TRUE(out.has_raw_data());
  EXPECT_EQ(out.int64_data_size(), 0);
  auto decoded = TensorFromProto(out, ".");
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->values<int64_t>()[0], -4);
  EXPECT_EQ(decoded->values<int64_t>()[1], 9);
}

TEST(ExporterTest, OldIrInitializerInputsAreListedAgain) {
  onnx::ModelProto model = NewModel(9, /*ir_version=*/3);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"1", "2"});
  AddInput(g, "w", {"2", "2"});
  *g->add_initializer() = FloatTensor("w", {2, 2}, {1, 0, 0, 1});
  AddNode(g, "MatMul", {"x", "w"}, {"y"}, "matmul");
  AddOutput(g, "y", {"1", "2"});
  auto graph = MustImport(model);
  ASSERT_NE(graph, nullptr);
  const onnx::ModelProto exported = MustExport(*graph);
  EXPECT_EQ(exported.ir_version(), 3);
  ASSERT_EQ(exported.graph().input_size(), 2);
  EXPECT_EQ(exported.graph().input(1).name(), "w");
  EXPECT_EQ(CheckModel(exported), "");
}

TEST(ExporterTest, InputShapeIsWrittenIntoTheExport) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"n", "4"});
  AddNode(g, "Relu", {"x"}, {"y"}, "relu");
  AddOutput(g, "y", {"n", "4"});
  ImportOptions options;
  options.input_shapes["x"] = {8, 4};
  auto graph = ImportOnnxModelFromProto(model, ".", options, "test.onnx");
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const onnx::ModelProto exported = MustExport(**graph);
  const auto& dims = exported.graph().input(0).type().tensor_type().shape().dim();
  ASSERT_EQ(dims.size(), 2);
  EXPECT_EQ(dims[0].dim_value(), 8);
  EXPECT_FALSE(dims[0].has_dim_param());
  EXPECT_EQ(exported.graph().output(0).type().tensor_type().shape().dim(0).dim_value(), 8);
}

TEST(ExporterTest, IfSubgraphsSurviveARoundTripAndTheOuterProducerMovesFirst) {
  onnx::ModelProto model = NewModel(13);
  auto* g = model.mutable_graph();
  AddInput(g, "x", {"2"});
  AddInput(g, "cond", {}, onnx::TensorProto::BOOL);
  auto* if_node = AddNode(g, "If", {"cond"}, {"y"}, "branch");
  AddNode(g, "Relu", {"x"}, {"outer"}, "relu");  // listed after its reader on purpose
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

  auto graph = MustImport(model);
  ASSERT_NE(graph, nullptr);
  const onnx::ModelProto exported = MustExport(*graph);
  EXPECT_EQ(CheckModel(exported), "");
  ASSERT_EQ(exported.graph().node_size(), 2);
  EXPECT_EQ(exported.graph().node(0).name(), "relu");
  const onnx::NodeProto& exported_if = exported.graph().node(1);
  EXPECT_EQ(exported_if.name(), "branch");
  ASSERT_EQ(exported_if.attribute_size(), 2);
  EXPECT_EQ(Diff(exported_if.attribute(0), if_node->attribute(0)), "");
  EXPECT_EQ(Diff(exported_if.attribute(1), if_node->attribute(1)), "");
}

TEST(ExporterTest, SaveRefusesToOverwriteTheInputAndWritesALoadableFile) {
  const std::string folder = (std::filesystem::temp_directory_path() /
                              ("qalign_export_test_" + std::to_string(::getpid())))
                                 .string();
  std::filesystem::create_directories(folder);
  const onnx::ModelProto model = CanonicalModel();
  const std::string input = folder + "/in.onnx";
  ASSERT_TRUE(WriteFileAtomically(input, model.SerializeAsString()).ok());
  auto graph = ImportOnnxModel(input);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();

  Status refused = SaveOnnxModel(**graph, input, input);
  EXPECT_FALSE(refused.ok());
  const std::string output = folder + "/out.onnx";
  ASSERT_TRUE(SaveOnnxModel(**graph, output, input).ok());
  auto reread = ImportOnnxModel(output);
  ASSERT_TRUE(reread.ok()) << reread.status().ToString();
  EXPECT_EQ((*reread)->info().metadata_props, (*graph)->info().metadata_props);
  EXPECT_EQ((*reread)->num_operations(), (*graph)->num_operations());
  std::filesystem::remove_all(folder);
}

}  // namespace
}  // namespace qalign
