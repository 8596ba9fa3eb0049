// Dispatch on graphs built in code: roles, schemes, channel axes, SOI/FP32 states, fusion.
#include "quant/dispatch.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <tuple>
#include <vector>

#include "testing/graph_builder.h"

namespace qalign {
namespace {

using testing::GraphBuilder;

TargetProfile Tflite() {
  auto profile = LoadTargetProfileFile(std::string(QALIGN_SOURCE_DIR) + "/targets/tflite-int8.json");
  EXPECT_TRUE(profile.ok()) << profile.status().ToString();
  return *profile;
}

class DispatchTest : public ::testing::Test {
 protected:
  DispatchStats Run(const TargetProfile& profile) {
    auto stats = DispatchQuantization(b_.graph(), profile, &table_);
    EXPECT_TRUE(stats.ok()) << stats.status().ToString();
    return stats.ok() ? *stats : DispatchStats();
  }
  TQC* In(const std::string& op, int i) {
    const OperationQuantConfig* c = table_.FindOp(b_.graph().FindOperation(op));
    EXPECT_NE(c, nullptr) << op;
    return c != nullptr && static_cast<size_t>(i) < c->inputs.size() ? c->inputs[i] : nullptr;
  }
  TQC* Out(const std::string& op, int i) {
    const OperationQuantConfig* c = table_.FindOp(b_.graph().FindOperation(op));
    EXPECT_NE(c, nullptr) << op;
    return c != nullptr && static_cast<size_t>(i) < c->outputs.size() ? c->outputs[i] : nullptr;
  }
  Variable* Conv(const std::string& name, Variable* x, int64_t cin, int64_t cout, uint32_t seed) {
    Variable* w = b_.RandomParam(name + "_w", {cout, cin, 3, 3}, seed);
    Variable* bias = b_.RandomParam(name + "_b", {cout}, seed + 1);
    return b_.Op("Conv", name, {x, w, bias}, {{"pads", Attribute::Ints({1, 1, 1, 1})}});
  }

  GraphBuilder b_;
  QuantConfigTable table_;
};

TEST_F(DispatchTest, ConvReluPoolRolesSchemesAndFusion) {
  Variable* x = b_.Input("x", {1, 3, 8, 8});
  Variable* c = Conv("conv", x, 3, 8, 1);
  Variable* r = b_.Op("Relu", "relu", {c});
  Variable* p = b_.Op("MaxPool", "pool", {r}, {{"kernel_shape", Attribute::Ints({2, 2})}});
  b_.Output(p);
  const TargetProfile profile = Tflite();
  DispatchStats stats = Run(profile);

  TQC* w = In("conv", 1);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->role, TensorRole::kWeight);
  EXPECT_EQ(w->scheme, profile.weight);
  EXPECT_EQ(w->channel_axis, 0);
  EXPECT_EQ(w->state, QuantState::kInitial);
  TQC* bias = In("conv", 2);
  EXPECT_EQ(bias->role, TensorRole::kBias);
  EXPECT_EQ(bias->scheme.num_bits, 32);
  EXPECT_EQ(In("conv", 0)->role, TensorRole::kActivation);
  EXPECT_EQ(In("conv", 0)->scheme, profile.activation);
  EXPECT_EQ(In("conv", 0)->state, QuantState::kInitial);
  // One quantization point after the activation.
  EXPECT_EQ(Out("conv", 0)->state, QuantState::kOverlapped);
  EXPECT_EQ(In("relu", 0)->state, QuantState::kOverlapped);
  EXPECT_EQ(Out("relu", 0)->state, QuantState::kInitial);
  EXPECT_EQ(In("pool", 0)->state, QuantState::kInitial);
  EXPECT_EQ(Out("pool", 0)->state, QuantState::kInitial);

  EXPECT_EQ(stats.tqcs, 8);  // conv 3 in + 1 out, relu 1 + 1, pool 1 + 1
  EXPECT_EQ(stats.fused_activations, 1);
  EXPECT_EQ(stats.count(TensorRole::kWeight), 1);
  EXPECT_EQ(stats.count(TensorRole::kBias), 1);
  EXPECT_EQ(stats.count(QuantState::kOverlapped), 2);
  EXPECT_EQ(stats.count(TensorRole::kActivation, QuantState::kInitial), 4);
  EXPECT_EQ(stats.quantized_ops, 3);
  // No links: every TQC is its own group.
  EXPECT_EQ(table_.Groups().size(), table_.size());
  EXPECT_NE(stats.ToString().find("OVERLAPPED=2"), std::string::npos) << stats.ToString();
}

TEST_F(DispatchTest, NoFusionWhenTheOutputIsSharedOrAGraphOutputOrFusionIsOff) {
  Variable* x = b_.Input("x", {1, 3, 8, 8});
  Variable* c1 = Conv("c1", x, 3, 3, 1);       // feeds Relu and Add: two uses
  Variable* r1 = b_.Op("Relu", "r1", {c1});
  Variable* sum = b_.Op("Add", "add", {r1, c1});
  Variable* c2 = Conv("c2", sum, 3, 3, 3);     // graph output and Relu input
  Variable* r2 = b_.Op("Relu", "r2", {c2});
  Variable* c3 = Conv("c3", r2, 3, 3, 5);      // Clip: fusable
  Variable* k = b_.Op("Clip", "clip", {c3, b_.Param("lo", Tensor::FromVector<float>({}, {0.0f})),
                                       b_.Param("hi", Tensor::FromVector<float>({}, {6.0f}))});
  b_.Output(c2);
  b_.Output(k);
  TargetProfile profile = Tflite();
  DispatchStats stats = Run(profile);
  EXPECT_EQ(Out("c1", 0)->state, QuantState::kInitial);
  EXPECT_EQ(In("r1", 0)->state, QuantState::kInitial);
  EXPECT_EQ(Out("c2", 0)->state, QuantState::kInitial);
  EXPECT_EQ(In("r2", 0)->state, QuantState::kInitial);
  EXPECT_EQ(Out("c3", 0)->state, QuantState::kOverlapped);
  EXPECT_EQ(In("clip", 0)->state, QuantState::kOverlapped);
  EXPECT_EQ(In("clip", 1)->state, QuantState::kFp32);  // min/max are attributes in disguise
  EXPECT_EQ(In("clip", 2)->state, QuantState::kFp32);
  EXPECT_EQ(stats.fused_activations, 1);

  QuantConfigTable unfused;
  profile.fuse_activations = false;
  auto again = DispatchQuantization(b_.graph(), profile, &unfused);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->fused_activations, 0);
  EXPECT_EQ(again->count(QuantState::kOverlapped), 0);
  // A second dispatch into a used table is refused.
  auto twice = DispatchQuantization(b_.graph(), profile, &unfused);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(DispatchTest, WeightChannelAxes) {
  Variable* x = b_.Input("x", {2, 16});
  Variable* g1 = b_.Op("Gemm", "gemm_t", {x, b_.RandomParam("b1", {32, 16}, 1),
                                          b_.RandomParam("c1", {32}, 2)},
                       {{"transB", Attribute::Int(1)}});
  Variable* g2 = b_.Op("Gemm", "gemm", {g1, b_.RandomParam("b2", {32, 8}, 3)});
  Variable* m = b_.Op("MatMul", "matmul", {g2, b_.RandomParam("b3", {8, 4}, 4)});
  Variable* y = b_.Input("y", {4, 4});
  Variable* mm = b_.Op("MatMul", "matmul_act", {m, y});
  Variable* img = b_.Input("img", {1, 4, 5, 5});
  Variable* ct = b_.Op("ConvTranspose", "deconv", {img, b_.RandomParam("wt", {4, 2, 3, 3}, 5)});
  b_.Output(mm);
  b_.Output(ct);
  DispatchStats stats = Run(Tflite());
  EXPECT_EQ(In("gemm_t", 1)->channel_axis, 0);
  EXPECT_EQ(In("gemm_t", 2)->role, TensorRole::kBias);
  EXPECT_EQ(In("gemm", 1)->channel_axis, 1);
  EXPECT_EQ(In("matmul", 1)->role, TensorRole::kWeight);
  EXPECT_EQ(In("matmul", 1)->channel_axis, 1);
  EXPECT_EQ(In("matmul_act", 1)->role, TensorRole::kActivation);  // not a parameter
  EXPECT_EQ(In("deconv", 1)->channel_axis, 1);
  EXPECT_EQ(stats.count(TensorRole::kWeight), 4);
  EXPECT_EQ(stats.count(TensorRole::kBias), 1);
  EXPECT_EQ(WeightChannelAxis(*b_.graph().FindOperation("deconv")), 1);
  EXPECT_EQ(WeightChannelAxis(*b_.graph().FindOperation("gemm")), 1);

  // A per-tensor weight scheme gets no channel axis.
  TargetProfile per_tensor = Tflite();
  per_tensor.weight.policy.flags = kPerTensor | kSymmetric | kLinear;
  QuantConfigTable table;
  ASSERT_TRUE(DispatchQuantization(b_.graph(), per_tensor, &table).ok());
  for (TQC* t : table.all()) {
    if (t->role == TensorRole::kWeight) {
      EXPECT_EQ(t->channel_axis, -1);
    }
  }
}

// Shape -> Gather -> Unsqueeze -> Concat -> Reshape: every shape tensor and operand is SOI; the
// reshaped data stays an activation.
TEST_F(DispatchTest, ShapeArithmeticIsSoi) {
  Variable* x = b_.Input("x", {2, 3, 4});
  Variable* s = b_.Op("Shape", "shape", {x});
  Variable* g = b_.Op("Gather", "gather", {s, b_.Int64Param("idx", {0})});
  Variable* u = b_.Op("Unsqueeze", "unsq", {g, b_.Int64Param("axes", {0})});
  Variable* shape = b_.Op("Concat", "cat", {u, b_.Int64Param("rest", {-1})},
                          {{"axis", Attribute::Int(0)}});
  Variable* r = b_.Op("Reshape", "reshape", {x, shape});
  b_.Output(r);
  // Leave the dtypes of the shape chain unknown: SOI must follow from the Shape op, not dtypes.
  DispatchStats stats = Run(Tflite());
  for (auto [op, port] : std::vector<std::pair<std::string, int>>{
           {"gather", 0}, {"gather", 1}, {"unsq", 0}, {"unsq", 1}, {"cat", 0}, {"cat", 1},
           {"reshape", 1}}) {
    ASSERT_NE(In(op, port), nullptr);
    EXPECT_EQ(In(op, port)->state, QuantState::kSoi) << op << " input " << port;
    EXPECT_EQ(In(op, port)->role, TensorRole::kShape);
  }
  for (const char* op : {"shape", "gather", "unsq", "cat"}) {
    EXPECT_EQ(Out(op, 0)->state, QuantState::kSoi) << op;
  }
  EXPECT_EQ(In("shape", 0)->state, QuantState::kFp32);  // Shape is not quantized
  EXPECT_EQ(In("reshape", 0)->state, QuantState::kInitial);
  EXPECT_EQ(Out("reshape", 0)->state, QuantState::kInitial);
  EXPECT_EQ(stats.count(QuantState::kSoi), 11);
}

// Resize scales computed in float from the input's shape: the float arithmetic is SOI too (used
// only as a shape operand), while ConstantOfShape's float zeros are data again.
TEST_F(DispatchTest, FloatShapeArithmeticAndConstantOfShape) {
  Variable* x = b_.Input("x", {1, 2, 4, 4});
  Variable* s = b_.Op("Shape", "shape", {x});
  Variable* f = b_.Op("Cast", "cast", {s}, {{"to", Attribute::Int(1)}});
  f->set_dtype(DataType::kFloat);
  Variable* scales = b_.Op("Div", "div", {f, b_.Param("two", Tensor::FromVector<float>({}, {2.0f}))});
  scales->set_dtype(DataType::kFloat);
  Variable* resized = b_.Op("Resize", "resize", {x, b_.Param("roi", Tensor(DataType::kFloat, {0})),
                                                 scales}, {{"mode", Attribute::String("nearest")}});
  Variable* zeros = b_.Op("ConstantOfShape", "zeros", {b_.Op("Shape", "shape2", {resized})});
  zeros->set_dtype(DataType::kFloat);
  Variable* sum = b_.Op("Add", "add", {resized, zeros});
  b_.Output(sum);
  Run(Tflite());
  EXPECT_EQ(Out("cast", 0)->state, QuantState::kSoi);
  EXPECT_EQ(Out("div", 0)->state, QuantState::kSoi);
  EXPECT_EQ(In("div", 1)->state, QuantState::kSoi);  // the float constant of the arithmetic
  EXPECT_EQ(In("resize", 1)->state, QuantState::kSoi);
  EXPECT_EQ(In("resize", 2)->state, QuantState::kSoi);
  EXPECT_EQ(In("resize", 0)->state, QuantState::kInitial);
  EXPECT_EQ(In("zeros", 0)->state, QuantState::kSoi);
  EXPECT_EQ(Out("zeros", 0)->state, QuantState::kFp32);   // ConstantOfShape is not quantized
  EXPECT_EQ(In("add", 1)->state, QuantState::kInitial);  // but its zeros are data
  EXPECT_EQ(In("add", 1)->role, TensorRole::kActivation);
}

TEST_F(DispatchTest, UnquantizedOpsAndNonFloatTensors) {
  Variable* x = b_.Input("x", {1, 4});
  Variable* ids = b_.Input("ids", {3}, DataType::kInt64);
  Variable* half = b_.Input("h", {1, 4}, DataType::kFloat16);
  Variable* e = b_.Op("Exp", "exp", {x});  // tflite-int8 does not quantize Exp
  e->set_dtype(DataType::kFloat);
  Variable* g = b_.Op("Gather", "gather", {e, ids}, {{"axis", Attribute::Int(1)}});
  Variable* h = b_.Op("Relu", "relu16", {half});
  h->set_dtype(DataType::kFloat16);
  b_.Output(g);
  b_.Output(h);
  DispatchStats stats = Run(Tflite());
  EXPECT_EQ(In("exp", 0)->state, QuantState::kFp32);
  EXPECT_EQ(Out("exp", 0)->state, QuantState::kFp32);
  EXPECT_EQ(In("gather", 0)->state, QuantState::kInitial);
  EXPECT_EQ(In("gather", 1)->state, QuantState::kSoi);
  EXPECT_EQ(In("relu16", 0)->state, QuantState::kFp32);  // not an fp32 tensor
  EXPECT_EQ(stats.fp32_ops, 1);
  EXPECT_EQ(stats.quantized_ops, 2);
  for (TQC* t : table_.all()) {
    if (t->port.tensor->dtype() == DataType::kInt64) {
      EXPECT_EQ(t->state, QuantState::kSoi) << DescribeTqc(*t);
    }
  }
}

// standalone_activations false (ONNX Runtime): a Relu a Conv absorbs is fused as before; a Relu
// after a float op (ConvTranspose, which ORT has no integer kernel for) runs in float, so no
// Q -> DQ lands between the two float ops. quantize_bias false leaves the Conv's bias float.
TEST_F(DispatchTest, StandaloneActivationsAndFloatBiasesFollowTheProfile) {
  Variable* x = b_.Input("x", {1, 3, 8, 8});
  Variable* c = Conv("conv", x, 3, 4, 1);
  Variable* r1 = b_.Op("Relu", "relu1", {c});
  Variable* up = b_.Op("ConvTranspose", "up", {r1, b_.RandomParam("up_w", {4, 4, 2, 2}, 3)},
                       {{"strides", Attribute::Ints({2, 2})}});
  Variable* r2 = b_.Op("Relu", "relu2", {up});
  Variable* out = Conv("conv2", r2, 4, 2, 4);
  b_.Output(out);
  TargetProfile profile = Tflite();
  profile.quantized_op_types.erase(std::find(profile.quantized_op_types.begin(),
                                             profile.quantized_op_types.end(), "ConvTranspose"));
  profile.standalone_activations = false;
  profile.quantize_bias = false;
  DispatchStats stats = Run(profile);
  EXPECT_EQ(stats.fused_activations, 1);
  EXPECT_EQ(In("relu1", 0)->state, QuantState::kOverlapped);
  EXPECT_EQ(Out("relu1", 0)->state, QuantState::kInitial);
  EXPECT_EQ(In("relu2", 0)->state, QuantState::kFp32);
  EXPECT_EQ(Out("relu2", 0)->state, QuantState::kFp32);
  EXPECT_EQ(In("conv2", 0)->state, QuantState::kInitial);  // the Conv still reads integers
  EXPECT_EQ(In("conv", 1)->role, TensorRole::kWeight);
  EXPECT_EQ(In("conv", 2)->role, TensorRole::kBias);
  EXPECT_EQ(In("conv", 2)->state, QuantState::kFp32);
  EXPECT_EQ(In("conv", 1)->state, QuantState::kInitial);
}

// quantize_constant_adds false (TensorRT): an Add or Sub of a constant runs in float, so the
// Conv after it quantizes the shifted tensor once; a residual Add of two activations stays
// quantized.
TEST_F(DispatchTest, ConstantAddsRunInFloatWhenTheProfileSaysSo) {
  Variable* x = b_.Input("x", {1, 3, 8, 8});
  Variable* c = Conv("conv", x, 3, 4, 1);
  Variable* shifted = b_.Op("Add", "shift", {c, b_.RandomParam("offset", {1}, 5)});
  Variable* lowered = b_.Op("Sub", "lower", {shifted, b_.RandomParam("offset2", {1}, 6)});
  Variable* c2 = Conv("conv2", lowered, 4, 4, 1);
  Variable* sum = b_.Op("Add", "residual", {c2, c});
  b_.Output(Conv("conv3", sum, 4, 2, 1));
  for (bool quantize_constant_adds : {true, false}) {
    SCOPED_TRACE(quantize_constant_adds ? "quantized" : "float");
    TargetProfile profile = Tflite();
    profile.quantized_op_types.push_back("Sub");
    profile.quantize_constant_adds = quantize_constant_adds;
    table_ = QuantConfigTable();
    Run(profile);
    const QuantState shift = quantize_constant_adds ? QuantState::kInitial : QuantState::kFp32;
    for (const char* op : {"shift", "lower"}) {
      EXPECT_EQ(In(op, 0)->state, shift) << op;
      EXPECT_EQ(Out(op, 0)->state, shift) << op;
    }
    EXPECT_EQ(In("conv2", 0)->state, QuantState::kInitial);
    EXPECT_EQ(In("residual", 0)->state, QuantState::kInitial);
    EXPECT_EQ(In("residual", 1)->state, QuantState::kInitial);
    EXPECT_EQ(Out("residual", 0)->state, QuantState::kInitial);
  }
}

TEST_F(DispatchTest, DecomposedHardSwishKeepsOnePointAfterIt) {
  // x -> Add(x, 3) -> Clip(0, 6) -> Mul(x, .) -> Div(., 6), as Paddle2ONNX writes HardSwish; and
  // x * HardSigmoid(x) with alpha 1/6, beta 1/2; and a look-alike with Clip(0, 5) that is not one.
  Variable* x = b_.Input("x", {1, 3, 8, 8});
  Variable* c = Conv("conv", x, 3, 4, 1);
  auto scalar = [&](const std::string& name, float v) {
    return b_.Param(name, Tensor::FromVector<float>({1}, {v}));
  };
  Variable* plus3 = b_.Op("Add", "add3", {c, scalar("three", 3.0f)});
  Variable* clip = b_.Op("Clip", "clip", {plus3, scalar("zero", 0.0f), scalar("six", 6.0f)});
  Variable* prod = b_.Op("Mul", "mul", {clip, c});
  Variable* hs = b_.Op("Div", "div", {prod, scalar("six2", 6.0f)});
  Variable* gate = b_.Op("HardSigmoid", "hsig", {hs},
                         {{"alpha", Attribute::Float(1.0f / 6.0f)}, {"beta", Attribute::Float(0.5f)}});
  Variable* hs2 = b_.Op("Mul", "gated", {hs, gate});
  Variable* p3 = b_.Op("Add", "add3b", {hs2, scalar("three_b", 3.0f)});
  Variable* clip5 = b_.Op("Clip", "clip5", {p3, scalar("zero_b", 0.0f), scalar("five", 5.0f)});
  Variable* prod5 = b_.Op("Mul", "mul5", {hs2, clip5});
  Variable* out = b_.Op("Div", "div5", {prod5, scalar("six_b", 6.0f)});
  b_.Output(out);
  DispatchStats stats = Run(Tflite());
  EXPECT_EQ(stats.fused_hardswish, 2);
  // Interior points are not quantized; the input and the output of each activation are.
  for (auto [op, input, index] : std::vector<std::tuple<std::string, bool, int>>{
           {"add3", false, 0}, {"clip", true, 0}, {"clip", false, 0}, {"mul", true, 0},
           {"mul", false, 0}, {"hsig", false, 0}, {"gated", true, 1}}) {
    TQC* t = input ? In(op, index) : Out(op, index);
    ASSERT_NE(t, nullptr) << op;
    EXPECT_EQ(t->state, QuantState::kOverlapped) << op << (input ? " input " : " output ") << index;
  }
  EXPECT_EQ(In("add3", 0)->state, QuantState::kInitial);
  EXPECT_EQ(In("mul", 1)->state, QuantState::kInitial);
  // TFLite has no int8 Div: the Div stays FP32, and its output is quantized where the
  // (quantized) HardSigmoid reads it.
  EXPECT_EQ(In("div", 0)->state, QuantState::kFp32);
  EXPECT_EQ(Out("div", 0)->state, QuantState::kFp32);
  EXPECT_EQ(In("hsig", 0)->state, QuantState::kInitial);
  EXPECT_EQ(Out("gated", 0)->state, QuantState::kInitial);
  // The constants 3, 0, 6 stay float inside the fused activation.
  EXPECT_EQ(In("add3", 1)->state, QuantState::kFp32);
  EXPECT_EQ(In("clip", 2)->state, QuantState::kFp32);
  EXPECT_EQ(In("div", 1)->state, QuantState::kFp32);
  // Clip(0, 5) is not HardSwish: every point stays.
  EXPECT_EQ(Out("add3b", 0)->state, QuantState::kInitial);
  EXPECT_EQ(Out("clip5", 0)->state, QuantState::kInitial);
  EXPECT_EQ(Out("mul5", 0)->state, QuantState::kInitial);
}

// qnn-u8: per-channel int8 weights for Conv, per-tensor for MatMul (per_tensor_weight_ops).
TEST(DispatchWeightSchemeTest, PerTensorWeightOpsOverrideThePerChannelScheme) {
  auto profile = LoadTargetProfileFile(std::string(QALIGN_SOURCE_DIR) + "/targets/qnn-u8.json");
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  testing::GraphBuilder b;
  Variable* x = b.Input("x", {1, 4, 2, 2});
  Variable* conv = b.Op("Conv", "conv", {x, b.RandomParam("w", {4, 4, 1, 1}, 1)});
  Variable* flat = b.Op("Reshape", "flat", {conv, b.Int64Param("shape", {1, 16})});
  b.Output(b.Op("MatMul", "fc", {flat, b.RandomParam("m", {16, 3}, 2)}));
  QuantConfigTable table;
  ASSERT_TRUE(DispatchQuantization(b.graph(), *profile, &table).ok());
  const TQC* conv_w = table.FindOp(b.graph().FindOperation("conv"))->inputs[1];
  const TQC* fc_w = table.FindOp(b.graph().FindOperation("fc"))->inputs[1];
  EXPECT_TRUE(conv_w->per_channel());
  EXPECT_EQ(conv_w->channel_axis, 0);
  EXPECT_FALSE(fc_w->per_channel());
  EXPECT_EQ(fc_w->channel_axis, -1);
  EXPECT_EQ(fc_w->scheme.quant_min, -127);  // still the int8 symmetric weight range
}

}  // namespace
}  // namespace qalign
