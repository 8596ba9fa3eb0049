// Shared by the check / fix tests: a small model quantized and exported by qalign, then
// mis-aligned on purpose (a MaxPool output and a Transpose output get their own scales, as another
// quantizer would leave them), and a QDQ model written the way other quantizers write them.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "export/qdq_export.h"
#include "export/qdq_fixture.h"
#include "onnx/onnx_proto_builder.h"
#include "onnx/tensor_proto.h"
#include "qdq/qdq_import.h"

namespace qalign::testing {

// x -> Conv1 -> Relu -> MaxPool --+
// x -> Conv2 (stride 2) ----------+-> Concat -> Conv3 (1x1, bias) -> y
//                                             \-> Transpose -> t
inline std::unique_ptr<Graph> PoolConcatGraph() {
  GraphBuilder b(13);
  Variable* x = b.Input("x", {1, 3, 8, 8});
  const AttributeList conv = {{"pads", Attribute::Ints({1, 1, 1, 1})},
                              {"kernel_shape", Attribute::Ints({3, 3})}};
  Variable* c1 = b.Op("Conv", "conv1",
                      {x, b.RandomParam("w1", {4, 3, 3, 3}, 21), b.RandomParam("b1", {4}, 22)}, conv);
  Variable* r1 = b.Op("Relu", "relu1", {c1});
  Variable* mp = b.Op("MaxPool", "pool",
                      {r1}, {{"kernel_shape", Attribute::Ints({2, 2})},
                             {"strides", Attribute::Ints({2, 2})}});
  Variable* c2 = b.Op("Conv", "conv2",
                      {x, b.RandomParam("w2", {4, 3, 3, 3}, 23, -0.5f, 0.5f),
                       b.RandomParam("b2", {4}, 24)},
                      {{"pads", Attribute::Ints({1, 1, 1, 1})},
                       {"kernel_shape", Attribute::Ints({3, 3})},
                       {"strides", Attribute::Ints({2, 2})}});
  Variable* cat = b.Op("Concat", "concat", {mp, c2}, {{"axis", Attribute::Int(1)}});
  Variable* y = b.Op("Conv", "conv3",
                     {cat, b.RandomParam("w3", {2, 8, 1, 1}, 25), b.RandomParam("b3", {2}, 26)},
                     {{"kernel_shape", Attribute::Ints({1, 1})}});
  Variable* t = b.Op("Transpose", "transpose", {cat}, {{"perm", Attribute::Ints({0, 1, 3, 2})}});
  b.Output(y);
  b.Output(t);
  return WithInferredShapes(b);
}

// Gives the Q/DQ pair quantizing the output of node `op` (the QuantizeLinear reading it and that
// Q's DequantizeLinears) its own scale initializer, `factor` times the current one.
inline void RescalePair(onnx::ModelProto* model, const std::string& op, float factor) {
  auto* g = model->mutable_graph();
  std::string tensor;
  for (const auto& n : g->node()) {
    if (n.name() == op) tensor = n.output(0);
  }
  ASSERT_FALSE(tensor.empty()) << "no node " << op;
  std::string q_out, scale_name;
  for (auto& n : *g->mutable_node()) {
    if (n.op_type() == "QuantizeLinear" && n.input(0) == tensor) {
      q_out = n.output(0);
      scale_name = n.input(1);
    }
  }
  ASSERT_FALSE(q_out.empty()) << "no QuantizeLinear reads " << tensor;
  float scale = 0.0f;
  for (const auto& t : g->initializer()) {
    if (t.name() == scale_name) scale = TensorFromProto(t, ".")->AsFloats()->at(0);
  }
  ASSERT_GT(scale, 0.0f);
  const std::string name = tensor + "_tampered_scale";
  *g->add_initializer() = TensorToProto(Tensor::FromVector<float>({}, {scale * factor}), name);
  for (auto& n : *g->mutable_node()) {
    if ((n.op_type() == "QuantizeLinear" && n.input(0) == tensor) ||
        (n.op_type() == "DequantizeLinear" && n.input(0) == q_out)) {
      n.set_input(1, name);
    }
  }
}

class QdqCheckFixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    q_ = QuantizeForTest(PoolConcatGraph(), "tflite-int8", std::nullopt);
    ASSERT_NE(q_, nullptr);
    ASSERT_TRUE(q_->result.violations.empty());
    auto proto = ExportQdqModel(*q_->graph, q_->plan);
    ASSERT_TRUE(proto.ok()) << proto.status().ToString();
    aligned_ = *proto;
    tampered_ = aligned_;
    RescalePair(&tampered_, "pool", 1.7f);       // MaxPool output (also a Concat input)
    RescalePair(&tampered_, "transpose", 0.6f);  // Transpose output
    profile_ = q_->profile;
  }

  std::unique_ptr<QdqModelView> Import(const onnx::ModelProto& model) {
    auto view = ImportQdqModel(model, ".", profile_, {}, "test.onnx");
    EXPECT_TRUE(view.ok()) << view.status().ToString();
    return view.ok() ? std::move(view).value() : nullptr;
  }

  std::unique_ptr<QuantizedModel> q_;
  onnx::ModelProto aligned_, tampered_;
  TargetProfile profile_;
};

// A QDQ model written the way other quantizers write them: unnamed nodes, uint8 activations with
// the zero point omitted on one pair, a dedicated Q -> DQ pair per consumer, graph inputs
// quantized directly and the output read through a DequantizeLinear.
//   x -> Q/DQ -> MaxPool -> Q/DQ --+
//   y -> Q/DQ ---------------------+-> Concat -> Q/DQ -> out
//                      y -> Q/DQ (second pair) -> Relu -> Q/DQ -> out2
inline onnx::ModelProto ForeignModel() {
  onnx::ModelProto m = NewModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", {"1", "2", "4", "4"});
  AddInput(g, "y", {"1", "2", "2", "2"});
  AddOutput(g, "out", {"1", "4", "2", "2"});
  AddOutput(g, "out2", {"1", "2", "2", "2"});
  auto scalar = [&](const std::string& name, float v) {
    *g->add_initializer() = FloatTensor(name, {}, {v});
  };
  auto zp = [&](const std::string& name, uint8_t v) {
    onnx::TensorProto t;
    t.set_name(name);
    t.set_data_type(onnx::TensorProto::UINT8);
    t.set_raw_data(std::string(1, static_cast<char>(v)));
    *g->add_initializer() = t;
  };
  scalar("s_x", 0.02f);
  scalar("s_mp", 0.012f);
  zp("z_mp", 10);
  scalar("s_y", 0.05f);
  zp("z_y", 128);
  scalar("s_cat", 0.04f);
  zp("z_cat", 100);
  scalar("s_r", 0.03f);
  zp("z_r", 0);
  AddNode(g, "QuantizeLinear", {"x", "s_x"}, {"x_q"});  // zero point omitted: uint8, 0
  AddNode(g, "DequantizeLinear", {"x_q", "s_x"}, {"x_dq"});
  auto* pool = AddNode(g, "MaxPool", {"x_dq"}, {"mp"});
  auto* k = pool->add_attribute();
  k->set_name("kernel_shape");
  k->set_type(onnx::AttributeProto::INTS);
  k->add_ints(2);
  k->add_ints(2);
  auto* st = pool->add_attribute();
  st->set_name("strides");
  st->set_type(onnx::AttributeProto::INTS);
  st->add_ints(2);
  st->add_ints(2);
  AddNode(g, "QuantizeLinear", {"mp", "s_mp", "z_mp"}, {"mp_q"});
  AddNode(g, "DequantizeLinear", {"mp_q", "s_mp", "z_mp"}, {"mp_dq"});
  AddNode(g, "QuantizeLinear", {"y", "s_y", "z_y"}, {"y_q"});
  AddNode(g, "DequantizeLinear", {"y_q", "s_y", "z_y"}, {"y_dq"});
  AddNode(g, "QuantizeLinear", {"y", "s_y", "z_y"}, {"y_q2"});
  AddNode(g, "DequantizeLinear", {"y_q2", "s_y", "z_y"}, {"y_dq2"});
  auto* cat = AddNode(g, "Concat", {"mp_dq", "y_dq"}, {"cat"});
  AddIntAttribute(cat, "axis", 1);
  AddNode(g, "QuantizeLinear", {"cat", "s_cat", "z_cat"}, {"cat_q"});
  AddNode(g, "DequantizeLinear", {"cat_q", "s_cat", "z_cat"}, {"out"});
  AddNode(g, "Relu", {"y_dq2"}, {"r"});
  AddNode(g, "QuantizeLinear", {"r", "s_r", "z_r"}, {"r_q"});
  AddNode(g, "DequantizeLinear", {"r_q", "s_r", "z_r"}, {"out2"});
  return m;
}

}  // namespace qalign::testing
