// The trt-int8 export of PP-OCR det, rec and cls against NVIDIA's explicit-quantization rules
// (TensorRT developer guide, "Q/DQ Layer-Placement Recommendations"; targets/trt-int8.json cites
// the pages). TensorRT is not run here: these are structure checks on the exported file.
//   1. Q/DQ on the activation input and on the weight of every Conv / ConvTranspose / Gemm /
//      MatMul with a constant weight; weights int8, per channel on the output-channel axis
//      (Conv 0, ConvTranspose 1), one scale per output channel.
//   2. Biases stay float: no int32 DequantizeLinear anywhere.
//   3. Symmetric int8: every zero point is 0, every quantized type int8.
//   4. Residual Adds (two activation inputs) read both inputs through a DequantizeLinear, so
//      TensorRT can fuse the Add into the Conv that produces one of them.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "export/qdq_export.h"
#include "export/qdq_fixture.h"
#include "onnx/importer.h"
#include "onnx/tensor_proto.h"
#include "passes/fold_into_conv.h"
#include "sim/fake_quant.h"

namespace qalign {
namespace {

struct Case {
  const char* file;
  std::vector<int64_t> shape;
};

class TrtConventionsTest : public ::testing::TestWithParam<Case> {};

TEST_P(TrtConventionsTest, ExportFollowsTensorRtQdqPlacement) {
  const Case& c = GetParam();
  const std::string path = std::string(QALIGN_MODEL_DIR) + "/" + c.file;
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " missing: run scripts/fetch_models.sh";
  ImportOptions import_options;
  import_options.input_shapes["x"] = c.shape;
  auto graph = ImportOnnxModel(path, import_options);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  ASSERT_TRUE(FoldIntoConv(graph->get()).ok());  // as `qalign quantize` does
  auto q = testing::QuantizeForTest(std::move(graph).value(), "trt-int8", std::nullopt,
                                    "random:2?seed=3&low=-1&high=1");
  ASSERT_NE(q, nullptr);
  // Shapes of one FP32 run: rec and cls need them to convert Softmax to opset 13.
  auto shapes = RecordTensorShapes(*q->graph, testing::RandomInput(*q->graph, 5), 0);
  ASSERT_TRUE(shapes.ok()) << shapes.status().ToString();
  auto model = ExportQdqModel(*q->graph, q->plan, nullptr, &*shapes);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const onnx::GraphProto& g = model->graph();

  std::map<std::string, const onnx::NodeProto*> producer;
  for (const auto& n : g.node()) {
    for (const auto& o : n.output()) producer[o] = &n;
  }
  // Constants: initializers and Constant nodes.
  std::map<std::string, const onnx::TensorProto*> initializer;
  for (const auto& t : g.initializer()) initializer[t.name()] = &t;
  for (const auto& n : g.node()) {
    if (n.op_type() != "Constant" || n.output_size() != 1) continue;
    for (const auto& a : n.attribute()) {
      if (a.name() == "value" && a.has_t()) initializer[n.output(0)] = &a.t();
    }
  }
  auto constant = [&](const std::string& name) -> std::optional<Tensor> {
    auto it = initializer.find(name);
    if (it == initializer.end()) return std::nullopt;
    auto t = TensorFromProto(*it->second, "");
    if (!t.ok()) return std::nullopt;
    return std::move(t).value();
  };
  auto dequantized = [&](const std::string& tensor) -> const onnx::NodeProto* {
    auto it = producer.find(tensor);
    return it != producer.end() && it->second->op_type() == "DequantizeLinear" ? it->second
                                                                               : nullptr;
  };

  // Rules 2 and 3 over every Q and DQ.
  int64_t quantize_nodes = 0;
  for (const auto& n : g.node()) {
    if (n.op_type() != "DequantizeLinear" && n.op_type() != "QuantizeLinear") continue;
    ++quantize_nodes;
    ASSERT_EQ(n.input_size(), 3) << n.name() << ": zero point missing";
    auto zp = constant(n.input(2));
    ASSERT_TRUE(zp.has_value()) << n.name() << ": zero point is not an initializer";
    EXPECT_EQ(zp->dtype(), DataType::kInt8) << n.name() << ": not int8";
    auto zero_points = zp->AsInt64s();
    ASSERT_TRUE(zero_points.ok()) << n.name();
    for (int64_t z : *zero_points) EXPECT_EQ(z, 0) << n.name();
    if (n.op_type() == "DequantizeLinear") {
      auto data = constant(n.input(0));
      if (data.has_value()) {
        EXPECT_EQ(data->dtype(), DataType::kInt8) << n.name() << ": an int32 bias?";
      }
    }
  }
  EXPECT_GT(quantize_nodes, 50);

  // Rules 1 and 4.
  int64_t weighted = 0, residual = 0;
  for (const auto& n : g.node()) {
    const std::string& t = n.op_type();
    if (t == "Conv" || t == "ConvTranspose" || t == "Gemm" || t == "MatMul") {
      const onnx::NodeProto* w_dq = dequantized(n.input(1));
      EXPECT_NE(dequantized(n.input(0)), nullptr) << t << " '" << n.name() << "': input not Q/DQ";
      if (w_dq != nullptr && !initializer.count(w_dq->input(0))) continue;  // activation x activation
      ++weighted;
      ASSERT_NE(w_dq, nullptr) << t << " '" << n.name() << "': weight not Q/DQ";
      auto w = constant(w_dq->input(0));
      auto scale = constant(w_dq->input(1));
      ASSERT_TRUE(w.has_value() && scale.has_value()) << n.name();
      if (t == "Conv" || t == "ConvTranspose") {
        const int64_t axis = t == "Conv" ? 0 : 1;
        int64_t dq_axis = 1;  // DequantizeLinear's default
        for (const auto& a : w_dq->attribute()) {
          if (a.name() == "axis") dq_axis = a.i();
        }
        EXPECT_EQ(dq_axis, axis) << n.name();
        EXPECT_EQ(scale->num_elements(), w->shape()[static_cast<size_t>(axis)]) << n.name();
      }
      if (n.input_size() >= 3 && !n.input(2).empty()) {
        EXPECT_EQ(dequantized(n.input(2)), nullptr) << n.name() << ": bias through a DQ";
        auto bias = constant(n.input(2));
        ASSERT_TRUE(bias.has_value()) << n.name() << ": bias is not an initializer";
        EXPECT_EQ(bias->dtype(), DataType::kFloat) << n.name();
      }
    }
    if (t == "Add" && n.input_size() == 2 && !initializer.count(n.input(0)) &&
        !initializer.count(n.input(1))) {
      const onnx::NodeProto* a = dequantized(n.input(0));
      const onnx::NodeProto* b = dequantized(n.input(1));
      // Both inputs are Q/DQ, or (a constant-derived input aside) neither is a DQ of a constant.
      if (a != nullptr && initializer.count(a->input(0))) continue;
      if (b != nullptr && initializer.count(b->input(0))) continue;
      ++residual;
      EXPECT_TRUE(a != nullptr && b != nullptr) << "Add '" << n.name() << "': both inputs Q/DQ";
    }
  }
  EXPECT_GT(weighted, 10);
  std::printf("[ trt ] %s: %lld Q/DQ nodes, %lld weighted ops, %lld two-activation Adds\n", c.file,
              static_cast<long long>(quantize_nodes), static_cast<long long>(weighted),
              static_cast<long long>(residual));
}

INSTANTIATE_TEST_SUITE_P(PpOcr, TrtConventionsTest,
                         ::testing::Values(Case{"ch_PP-OCRv4_det_infer.onnx", {1, 3, 320, 320}},
                                           Case{"ch_PP-OCRv4_rec_infer.onnx", {1, 3, 48, 320}},
                                           Case{"ch_ppocr_mobile_v2.0_cls_infer.onnx", {1, 3, 48, 192}}),
                         [](const auto& info) {
                           return std::string(info.param.file).substr(0, 13) == "ch_PP-OCRv4_d"
                                      ? std::string("det")
                                  : std::string(info.param.file).find("rec") != std::string::npos
                                      ? std::string("rec")
                                      : std::string("cls");
                         });

}  // namespace
}  // namespace qalign
