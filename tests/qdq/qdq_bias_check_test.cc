// qalign check's bias rule on QDQ models built in code, without ONNX Runtime: an int32 bias must be
// dequantized with scale[c] = input_scale * weight_scale[c] and zero point 0. qalign's own export
// passes; a bias scale 1% off, or a bias zero point of 3, is exactly one `bias` violation naming
// the op and the bias.
#include <gtest/gtest.h>

#include <string>

#include "export/qdq_export.h"
#include "export/qdq_fixture.h"
#include "onnx/tensor_proto.h"
#include "qdq/qdq_check.h"
#include "qdq/qdq_import.h"

namespace qalign {
namespace {

// The DequantizeLinear feeding input 2 (the bias) of node `op`.
onnx::NodeProto* BiasDequantize(onnx::ModelProto* model, const std::string& op) {
  std::string bias_input;
  for (const auto& n : model->graph().node()) {
    if (n.name() == op && n.input_size() >= 3) bias_input = n.input(2);
  }
  for (auto& n : *model->mutable_graph()->mutable_node()) {
    if (n.op_type() == "DequantizeLinear" && n.output(0) == bias_input) return &n;
  }
  return nullptr;
}

const onnx::TensorProto* Initializer(const onnx::ModelProto& model, const std::string& name) {
  for (const auto& t : model.graph().initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

class QdqBiasCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    q_ = testing::QuantizeForTest(testing::SmallConvGraph(), "tflite-int8", std::nullopt);
    ASSERT_TRUE(q_->result.violations.empty()) << q_->result.violations.front().message;
    auto proto = ExportQdqModel(*q_->graph, q_->plan);
    ASSERT_TRUE(proto.ok()) << proto.status().ToString();
    model_ = *proto;
  }

  QdqCheckResult Check(const onnx::ModelProto& model) {
    auto view = ImportQdqModel(model, ".", q_->profile, {}, "test.onnx");
    EXPECT_TRUE(view.ok()) << view.status().ToString();
    if (!view.ok()) return {};
    return CheckQdqModel(**view);
  }

  // Points conv1's bias DequantizeLinear at a new initializer for its input `index` (1: scale,
  // 2: zero point).
  void ReplaceBiasParam(int index, const Tensor& value) {
    onnx::NodeProto* dq = BiasDequantize(&model_, "conv1");
    ASSERT_NE(dq, nullptr);
    ASSERT_GT(dq->input_size(), index);
    const std::string name = "conv1_bias_tampered_" + std::to_string(index);
    *model_.mutable_graph()->add_initializer() = TensorToProto(value, name);
    dq->set_input(index, name);
  }

  void ExpectOneBiasViolation(const QdqCheckResult& check, const std::string& says) {
    ASSERT_EQ(check.violations.size(), 1u);
    const QdqCheckViolation& v = check.violations[0];
    EXPECT_EQ(v.rule, "bias");
    EXPECT_EQ(v.op, "conv1");
    EXPECT_EQ(v.ports.size(), 3u);
    EXPECT_NE(v.message.find("b1"), std::string::npos) << v.message;
    EXPECT_NE(v.message.find(says), std::string::npos) << v.message;
  }

  std::unique_ptr<testing::QuantizedModel> q_;
  onnx::ModelProto model_;
};

TEST_F(QdqBiasCheckTest, QalignsExportPassesTheBiasRule) {
  const QdqCheckResult check = Check(model_);
  EXPECT_TRUE(check.violations.empty()) << check.violations.front().message;
  EXPECT_EQ(check.biases_checked, 2);  // conv1 and conv2
}

TEST_F(QdqBiasCheckTest, BiasScaleOnePercentOffIsOneViolation) {
  onnx::NodeProto* dq = BiasDequantize(&model_, "conv1");
  ASSERT_NE(dq, nullptr);
  const onnx::TensorProto* scale = Initializer(model_, dq->input(1));
  ASSERT_NE(scale, nullptr);
  auto values = TensorFromProto(*scale, ".");
  ASSERT_TRUE(values.ok()) << values.status().ToString();
  std::vector<float> off = *values->AsFloats();
  ASSERT_EQ(off.size(), 4u);
  off[2] *= 1.01f;  // one channel: a tolerance loosened to 10% would let this pass
  ReplaceBiasParam(1, Tensor::FromVector<float>({4}, off));
  ExpectOneBiasViolation(Check(model_), "input_scale * weight_scale");
}

TEST_F(QdqBiasCheckTest, NonZeroBiasZeroPointIsOneViolation) {
  ReplaceBiasParam(2, Tensor::FromVector<int32_t>({4}, {0, 0, 3, 0}));
  ExpectOneBiasViolation(Check(model_), "zero point");
}

}  // namespace
}  // namespace qalign
