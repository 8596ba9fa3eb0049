// QDQ export structure on small graphs built in code: where Q/DQ pairs go, requantize pairs on
// exactly the recorded edges, int32 bias with scale = input_scale * weight_scale, per-channel axis,
// the opset bump, and the checker. The numbers against ONNX Runtime are in qdq_ort_test.cc.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "export/qdq_export.h"
#include "export/qdq_fixture.h"
#include "onnx/tensor_proto.h"

namespace qalign {
namespace {

using testing::QuantizeForTest;
using testing::SmallConvGraph;

// Index of the QDQ model: producers by output name, readers by input name, initializers by name.
struct ProtoIndex {
  explicit ProtoIndex(const onnx::ModelProto& m) : model(m) {
    for (const auto& n : m.graph().node()) {
      for (const auto& o : n.output()) producer[o] = &n;
      for (const auto& i : n.input()) readers[i].push_back(&n);
    }
    for (const auto& t : m.graph().initializer()) init[t.name()] = &t;
  }
  const onnx::NodeProto* Node(const std::string& name) const {
    for (const auto& n : model.graph().node()) {
      if (n.name() == name) return &n;
    }
    return nullptr;
  }
  std::vector<float> Floats(const std::string& name) const {
    auto t = TensorFromProto(*init.at(name), ".");
    EXPECT_TRUE(t.ok());
    return *t->AsFloats();
  }
  // Number of Q -> DQ pairs between the op reading `input` and the first non-QDQ producer.
  int QdqDepth(const std::string& input, std::string* source) const {
    int depth = 0;
    std::string current = input;
    while (producer.count(current) && producer.at(current)->op_type() == "DequantizeLinear") {
      const onnx::NodeProto* dq = producer.at(current);
      if (!producer.count(dq->input(0))) break;  // a parameter DQ
      const onnx::NodeProto* q = producer.at(dq->input(0));
      EXPECT_EQ(q->op_type(), "QuantizeLinear");
      ++depth;
      current = q->input(0);
    }
    if (source) *source = current;
    return depth;
  }
  const onnx::ModelProto& model;
  std::map<std::string, const onnx::NodeProto*> producer;
  std::map<std::string, std::vector<const onnx::NodeProto*>> readers;
  std::map<std::string, const onnx::TensorProto*> init;
};

int64_t DefaultOpset(const onnx::ModelProto& m) {
  for (const auto& o : m.opset_import()) {
    if (o.domain().empty()) return o.version();
  }
  return 0;
}

TEST(QdqExportTest, RequantizePairsOnExactlyTheRecordedEdges) {
  auto q = QuantizeForTest(SmallConvGraph(), "tflite-int8", /*force_overlap=*/false);
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->result.violations.empty()) << q->result.violations.front().message;
  const auto& requantizes = q->result.alignment.requantizes;
  ASSERT_FALSE(requantizes.empty());
  std::set<std::pair<std::string, std::string>> recorded;
  for (const RequantizeEdge& e : requantizes) recorded.insert({e.tensor->name(), e.consumer->name()});

  QdqExportStats stats;
  auto model = ExportQdqModel(*q->graph, q->plan, &stats);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(stats.requantize_pairs, static_cast<int64_t>(q->plan.requantizes()));
  ProtoIndex index(*model);
  // Every float input of the Concat and the Add: two pairs on recorded edges, one elsewhere.
  int double_pairs = 0;
  for (const std::string op_name : {"concat", "add"}) {
    const onnx::NodeProto* node = index.Node(op_name);
    ASSERT_NE(node, nullptr) << op_name;
    for (const std::string& input : node->input()) {
      std::string source;
      const int depth = index.QdqDepth(input, &source);
      const bool is_requantize = recorded.count({source, op_name}) > 0;
      EXPECT_EQ(depth, is_requantize ? 2 : 1) << op_name << " reading " << source;
      double_pairs += depth == 2;
    }
  }
  EXPECT_EQ(double_pairs, static_cast<int>(recorded.size()));
}

TEST(QdqExportTest, ForceOverlapSharesOnePairPerTensor) {
  auto q = QuantizeForTest(SmallConvGraph(), "tflite-int8", /*force_overlap=*/true);
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->result.violations.empty());
  EXPECT_TRUE(q->result.alignment.requantizes.empty());
  auto model = ExportQdqModel(*q->graph, q->plan);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ProtoIndex index(*model);
  // relu1's output is read by the Concat and the Add through the same single DQ, and the Concat's
  // inputs and output all carry one scale (the rule).
  const onnx::NodeProto* concat = index.Node("concat");
  const onnx::NodeProto* add = index.Node("add");
  ASSERT_TRUE(concat && add);
  EXPECT_EQ(concat->input(0), add->input(0));
  std::set<float> scales;
  for (const std::string& input : concat->input()) {
    EXPECT_EQ(index.QdqDepth(input, nullptr), 1);
    scales.insert(index.Floats(index.producer.at(input)->input(1))[0]);
  }
  for (const onnx::NodeProto* r : index.readers.at(concat->output(0))) {
    if (r->op_type() == "QuantizeLinear") scales.insert(index.Floats(r->input(1))[0]);
  }
  EXPECT_EQ(scales.size(), 1u);
  // The fused Conv -> Relu has no Q/DQ between them.
  const onnx::NodeProto* relu = index.Node("relu1");
  ASSERT_NE(relu, nullptr);
  EXPECT_EQ(index.producer.at(relu->input(0))->op_type(), "Conv");
}

TEST(QdqExportTest, WeightsPerChannelAndBiasInt32WithDerivedScale) {
  auto q = QuantizeForTest(SmallConvGraph(), "tflite-int8", std::nullopt);
  ASSERT_NE(q, nullptr);
  auto model = ExportQdqModel(*q->graph, q->plan);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ProtoIndex index(*model);
  for (const std::string conv_name : {"conv1", "conv2"}) {
    const onnx::NodeProto* conv = index.Node(conv_name);
    ASSERT_NE(conv, nullptr);
    ASSERT_EQ(conv->input_size(), 3);
    const onnx::NodeProto* in_dq = index.producer.at(conv->input(0));
    const onnx::NodeProto* w_dq = index.producer.at(conv->input(1));
    const onnx::NodeProto* b_dq = index.producer.at(conv->input(2));
    ASSERT_EQ(w_dq->op_type(), "DequantizeLinear");
    ASSERT_EQ(b_dq->op_type(), "DequantizeLinear");
    ASSERT_EQ(in_dq->op_type(), "DequantizeLinear");
    // Weight: int8 initializer, 4 scales, axis 0, zero points 0 (symmetric).
    EXPECT_EQ(index.init.at(w_dq->input(0))->data_type(), onnx::TensorProto::INT8);
    ASSERT_EQ(w_dq->attribute_size(), 1);
    EXPECT_EQ(w_dq->attribute(0).name(), "axis");
    EXPECT_EQ(w_dq->attribute(0).i(), 0);
    const std::vector<float> w_scale = index.Floats(w_dq->input(1));
    ASSERT_EQ(w_scale.size(), 4u);
    for (float z : index.Floats(w_dq->input(2))) EXPECT_EQ(z, 0.0f);
    // Bias: int32, scale[c] = input_scale * weight_scale[c], zero point 0.
    EXPECT_EQ(index.init.at(b_dq->input(0))->data_type(), onnx::TensorProto::INT32);
    const float in_scale = index.Floats(in_dq->input(1))[0];
    const std::vector<float> b_scale = index.Floats(b_dq->input(1));
    ASSERT_EQ(b_scale.size(), 4u);
    for (size_t c = 0; c < 4; ++c) EXPECT_FLOAT_EQ(b_scale[c], in_scale * w_scale[c]) << c;
    for (float z : index.Floats(b_dq->input(2))) EXPECT_EQ(z, 0.0f);
    // The int32 values are round(b / scale) of the original bias.
    const std::string bias_name = q->graph->FindOperation(conv_name)->input(2)->name();
    const std::vector<float> bias = *q->graph->FindVariable(bias_name)->data()->AsFloats();
    const std::vector<float> stored = index.Floats(b_dq->input(0));
    for (size_t c = 0; c < 4; ++c) {
      EXPECT_EQ(stored[c], std::nearbyint(bias[c] / b_scale[c])) << c;
    }
    // No float copy of the weight is left behind.
    EXPECT_EQ(index.init.count(q->graph->FindOperation(conv_name)->input(1)->name()), 0u);
  }
  EXPECT_TRUE(CheckOnnxModel(*model, "test").ok());
}

// The weight DequantizeLinear's `axis` is the output-channel axis of each weight layout, with one
// scale per channel along it: Gemm's B is [N, K] with transB and [K, N] without, MatMul's B is
// [K, N] (the last axis), ConvTranspose's W is [C_in, C_out / group, k...] (axis 1). A wrong axis
// would still export a valid model whenever the dims happen to match, so the dims differ here.
TEST(QdqExportTest, WeightAxisFollowsEachWeightLayout) {
  testing::GraphBuilder b(13);
  Variable* x = b.Input("x", {1, 8});
  Variable* gt = b.Op("Gemm", "gemm_tb",
                      {x, b.RandomParam("w_tb", {6, 8}, 21), b.RandomParam("b_tb", {6}, 22)},
                      {{"transB", Attribute::Int(1)}});
  Variable* gn = b.Op("Gemm", "gemm_n",
                      {gt, b.RandomParam("w_n", {6, 5}, 23), b.RandomParam("b_n", {5}, 24)});
  Variable* mm = b.Op("MatMul", "matmul", {gn, b.RandomParam("w_mm", {5, 7}, 25)});
  Variable* img = b.Input("img", {1, 3, 4, 4});
  Variable* ct = b.Op("ConvTranspose", "deconv",
                      {img, b.RandomParam("w_ct", {3, 2, 2, 2}, 26), b.RandomParam("b_ct", {2}, 27)},
                      {{"kernel_shape", Attribute::Ints({2, 2})}, {"strides", Attribute::Ints({2, 2})}});
  b.Output(mm);
  b.Output(ct);
  auto q = QuantizeForTest(testing::WithInferredShapes(b), "tflite-int8", std::nullopt);
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->result.violations.empty()) << q->result.violations.front().message;
  auto model = ExportQdqModel(*q->graph, q->plan);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ProtoIndex index(*model);
  struct Expected {
    const char* op;
    int64_t axis;
    size_t channels;
  };
  for (const Expected& e : {Expected{"gemm_tb", 0, 6}, Expected{"gemm_n", 1, 5},
                            Expected{"matmul", 1, 7}, Expected{"deconv", 1, 2}}) {
    SCOPED_TRACE(e.op);
    const onnx::NodeProto* node = index.Node(e.op);
    ASSERT_NE(node, nullptr);
    ASSERT_GE(node->input_size(), 2);
    ASSERT_TRUE(index.producer.count(node->input(1)));
    const onnx::NodeProto* w_dq = index.producer.at(node->input(1));
    ASSERT_EQ(w_dq->op_type(), "DequantizeLinear");
    ASSERT_EQ(w_dq->attribute_size(), 1);
    EXPECT_EQ(w_dq->attribute(0).name(), "axis");
    EXPECT_EQ(w_dq->attribute(0).i(), e.axis);
    EXPECT_EQ(index.Floats(w_dq->input(1)).size(), e.channels);
  }
  EXPECT_TRUE(CheckOnnxModel(*model, "test").ok());
}

// Zero points are written as the plan holds them, in the point's integer type: uint8 activations
// for ort-qdq-u8s8 (zero points anywhere in 0..255), int8 for tflite-int8. Every QuantizeLinear
// of a producer point is compared with its point.
TEST(QdqExportTest, ZeroPointsAreWrittenInTheirIntegerType) {
  for (const char* target : {"ort-qdq-u8s8", "tflite-int8"}) {
    SCOPED_TRACE(target);
    auto q = QuantizeForTest(SmallConvGraph(), target, std::nullopt);
    ASSERT_NE(q, nullptr);
    auto model = ExportQdqModel(*q->graph, q->plan);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    ProtoIndex index(*model);
    int compared = 0, nonzero = 0;
    for (const ActivationPoint& point : q->plan.activations) {
      if (!point.producer_side || point.feeds_graph_output) continue;  // outputs keep their names
      const onnx::NodeProto* quantize = nullptr;
      for (const onnx::NodeProto* reader : index.readers[point.tensor->name()]) {
        if (reader->op_type() == "QuantizeLinear") quantize = reader;
      }
      ASSERT_NE(quantize, nullptr) << point.tensor->name();
      ASSERT_EQ(quantize->input_size(), 3);
      const onnx::TensorProto* zp = index.init.at(quantize->input(2));
      EXPECT_EQ(zp->data_type(), point.params.dtype == DataType::kUint8
                                     ? onnx::TensorProto::UINT8
                                     : onnx::TensorProto::INT8);
      const std::vector<float> written = index.Floats(quantize->input(2));
      ASSERT_EQ(written.size(), 1u);
      EXPECT_EQ(static_cast<int64_t>(written[0]), point.params.zero_point[0]) << point.tensor->name();
      EXPECT_FLOAT_EQ(index.Floats(quantize->input(1))[0], point.params.scale[0]);
      nonzero += point.params.zero_point[0] != 0 ? 1 : 0;
      ++compared;
    }
    EXPECT_GE(compared, 3);
    EXPECT_GE(nonzero, 2);  // the comparison must see zero points that a wrong conversion moves
  }
}

TEST(QdqExportTest, FixedOutputAndGraphOutputsKeepTheirNames) {
  auto q = QuantizeForTest(SmallConvGraph(), "tflite-int8", std::nullopt);
  ASSERT_NE(q, nullptr);
  auto model = ExportQdqModel(*q->graph, q->plan);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ProtoIndex index(*model);
  std::set<std::string> outputs;
  for (const auto& o : model->graph().output()) outputs.insert(o.name());
  EXPECT_EQ(outputs, (std::set<std::string>{"concat_out", "sigmoid_out"}));
  // The Sigmoid output is a graph output produced by a DQ with TFLite's fixed (1/256, -128).
  const onnx::NodeProto* dq = index.producer.at("sigmoid_out");
  ASSERT_EQ(dq->op_type(), "DequantizeLinear");
  EXPECT_EQ(index.Floats(dq->input(1))[0], 1.0f / 256.0f);
  EXPECT_EQ(index.Floats(dq->input(2))[0], -128.0f);
}

TEST(QdqExportTest, OldOpsetIsConvertedTo13) {
  // Opset 9: Clip takes min/max as attributes; opset 13 needs them as inputs.
  testing::GraphBuilder b(9);
  Variable* x = b.Input("x", {1, 2, 4, 4});
  Variable* c = b.Op("Conv", "conv", {x, b.RandomParam("w", {2, 2, 1, 1}, 3), b.RandomParam("b", {2}, 4)},
                     {{"kernel_shape", Attribute::Ints({1, 1})}});
  Variable* clip = b.Op("Clip", "clip", {c}, {{"min", Attribute::Float(0.0f)}, {"max", Attribute::Float(6.0f)}});
  Variable* pool = b.Op("MaxPool", "pool", {clip}, {{"kernel_shape", Attribute::Ints({2, 2})}});
  b.Output(pool);
  auto q = QuantizeForTest(testing::WithInferredShapes(b), "tflite-int8", std::nullopt);
  ASSERT_NE(q, nullptr);
  QdqExportStats stats;
  auto model = ExportQdqModel(*q->graph, q->plan, &stats);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(stats.source_opset, 9);
  EXPECT_EQ(DefaultOpset(*model), 13);
  EXPECT_GE(model->ir_version(), 7);
  ProtoIndex index(*model);
  const onnx::NodeProto* clip_node = nullptr;
  for (const auto& n : model->graph().node()) {
    if (n.op_type() == "Clip") clip_node = &n;
  }
  ASSERT_NE(clip_node, nullptr);
  EXPECT_EQ(clip_node->input_size(), 3);
  EXPECT_EQ(clip_node->attribute_size(), 0);
}

// ort-qdq-u8s8 (hardswish_op): a decomposed HardSwish between two Convs becomes one HardSwish op
// at opset 14 reading x's DequantizeLinear, with nothing quantized inside; its constants go.
TEST(QdqExportTest, DecomposedHardSwishIsWrittenAsOneOpForOrt) {
  auto make_graph = [] {
    testing::GraphBuilder b(11);
    Variable* x = b.Input("x", {1, 2, 4, 4});
    const testing::AttributeList k1 = {{"kernel_shape", Attribute::Ints({1, 1})}};
    Variable* c1 = b.Op("Conv", "conv1", {x, b.RandomParam("w1", {2, 2, 1, 1}, 3), b.RandomParam("b1", {2}, 4)}, k1);
    Variable* add = b.Op("Add", "add", {c1, b.Param("three", Tensor::FromVector<float>({}, {3.0f}))});
    Variable* clip = b.Op("Clip", "clip", {add, b.Param("lo", Tensor::FromVector<float>({}, {0.0f})),
                                           b.Param("hi", Tensor::FromVector<float>({}, {6.0f}))});
    Variable* mul = b.Op("Mul", "mul", {c1, clip});
    Variable* div = b.Op("Div", "div", {mul, b.Param("six", Tensor::FromVector<float>({}, {6.0f}))});
    Variable* c2 = b.Op("Conv", "conv2", {div, b.RandomParam("w2", {2, 2, 1, 1}, 5), b.RandomParam("b2", {2}, 6)}, k1);
    b.Output(c2);
    return std::make_pair(testing::WithInferredShapes(b), div->name());
  };
  for (const bool hardswish_op : {true, false}) {
    SCOPED_TRACE(hardswish_op ? "hardswish_op" : "decomposed");
    auto [graph, div_out] = make_graph();
    auto q = QuantizeForTest(std::move(graph), "ort-qdq-u8s8", std::nullopt);
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(q->profile.hardswish_op);
    QdqExportStats stats;
    QdqExportOptions options;
    options.hardswish_op = hardswish_op;
    auto model = ExportQdqModel(*q->graph, q->plan, &stats, nullptr, options);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    std::map<std::string, int> ops;
    for (const auto& n : model->graph().node()) ++ops[n.op_type()];
    if (!hardswish_op) {
      EXPECT_EQ(DefaultOpset(*model), 13);
      EXPECT_EQ(ops["Div"], 1);
      EXPECT_EQ(ops.count("HardSwish"), 0u);
      continue;
    }
    EXPECT_EQ(DefaultOpset(*model), 14);
    EXPECT_EQ(stats.hardswish_ops, 1);
    EXPECT_EQ(ops["HardSwish"], 1);
    for (const char* gone : {"Add", "Clip", "Mul", "Div"}) EXPECT_EQ(ops.count(gone), 0u) << gone;
    ProtoIndex index(*model);
    const onnx::NodeProto* hs = index.producer.at(div_out);
    ASSERT_EQ(hs->op_type(), "HardSwish");
    EXPECT_EQ(index.producer.at(hs->input(0))->op_type(), "DequantizeLinear");
    for (const auto& init : model->graph().initializer()) {
      for (const char* gone : {"three", "lo", "hi", "six"}) EXPECT_NE(init.name(), gone);
    }
  }
}

TEST(QdqExportTest, QuantizeValueRoundsHalfToEvenAndSaturates) {
  EXPECT_EQ(QuantizeValue(0.5f, 1.0f, 0, -128, 127), 0);
  EXPECT_EQ(QuantizeValue(1.5f, 1.0f, 0, -128, 127), 2);
  EXPECT_EQ(QuantizeValue(2.5f, 1.0f, 0, -128, 127), 2);
  EXPECT_EQ(QuantizeValue(-2.5f, 1.0f, 0, -128, 127), -2);
  EXPECT_EQ(QuantizeValue(1000.0f, 1.0f, 0, -128, 127), 127);
  EXPECT_EQ(QuantizeValue(-1000.0f, 1.0f, 3, 0, 255), 0);
  EXPECT_EQ(QuantizeValue(0.25f, 0.1f, 10, 0, 255), 12);  // round(2.5) = 2, + 10
  EXPECT_FLOAT_EQ(FakeQuantizeValue(0.26f, 0.1f, 10, 0, 255), 0.3f);
}

// The simulator's in-place fake quantization is a vectorizable rewrite of FakeQuantizeValue: it
// must give the same bits for every input, including ties, saturation, NaN, Inf and tiny scales.
TEST(QdqExportTest, FakeQuantizeInPlaceMatchesFakeQuantizeValueBitwise) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> wide(-300.0f, 300.0f);
  std::vector<float> inputs = {0.0f, -0.0f, 0.5f, 1.5f, 2.5f, -2.5f, -0.5f, 126.5f, 127.5f,
                               -128.5f, 1e30f, -1e30f, 1e-30f, std::nanf(""),
                               std::numeric_limits<float>::infinity(),
                               -std::numeric_limits<float>::infinity()};
  for (int i = 0; i < 20000; ++i) inputs.push_back(wide(rng));
  for (int i = -300; i <= 300; ++i) inputs.push_back(static_cast<float>(i) + 0.5f);  // ties
  struct Case {
    float scale;
    int64_t zero_point, qmin, qmax;
  };
  for (const Case& c : {Case{1.0f, 0, -128, 127}, Case{0.37f, -5, -128, 127},
                        Case{1.0f, 128, 0, 255}, Case{0.0123f, 17, 0, 255},
                        Case{1e-20f, 0, -128, 127}, Case{3.0f, -128, -128, 127}}) {
    QdqParams params;
    params.scale = {c.scale};
    params.zero_point = {c.zero_point};
    params.quant_min = c.qmin;
    params.quant_max = c.qmax;
    std::vector<float> got = inputs;
    FakeQuantizeInPlace(std::span<float>(got), params);
    for (size_t i = 0; i < inputs.size(); ++i) {
      const float want = FakeQuantizeValue(inputs[i], c.scale, c.zero_point, c.qmin, c.qmax);
      uint32_t a, b;
      std::memcpy(&a, &got[i], 4);
      std::memcpy(&b, &want, 4);
      ASSERT_EQ(a, b) << "x=" << inputs[i] << " scale=" << c.scale << " zp=" << c.zero_point
                      << ": " << got[i] << " vs " << want;
    }
  }
}

TEST(QdqExportTest, SaveNeverOverwritesTheInput) {
  auto q = QuantizeForTest(SmallConvGraph(), "ort-qdq-u8s8", std::nullopt);
  ASSERT_NE(q, nullptr);
  const std::string dir = ::testing::TempDir();
  const std::string input = dir + "/qdq_export_input.onnx";
  ASSERT_TRUE(WriteFileAtomically(input, "not a model").ok());
  Status s = SaveQdqModel(*q->graph, q->plan, input, input);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(*ReadFileToString(input), "not a model");
  const std::string out = dir + "/qdq_export_out.onnx";
  ASSERT_TRUE(SaveQdqModel(*q->graph, q->plan, out, input).ok());
  onnx::ModelProto reread;
  ASSERT_TRUE(reread.ParseFromString(*ReadFileToString(out)));
  EXPECT_TRUE(CheckOnnxModel(reread, out).ok());
}

}  // namespace
}  // namespace qalign
