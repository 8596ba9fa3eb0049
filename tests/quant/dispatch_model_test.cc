// Dispatch on the real PP-OCR models under every shipped profile: weight counts and axes, op
// counts, no activation TQC on an integer tensor, every Shape-derived tensor SOI, fusion pairs.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "onnx/importer.h"
#include "quant/dispatch.h"

namespace qalign {
namespace {

std::unique_ptr<Graph> LoadModel(const std::string& file) {
  const std::string path = std::string(QALIGN_MODEL_DIR) + "/" + file;
  // Missing models are a failure, not a skip: scripts/fetch_models.sh provides them.
  EXPECT_TRUE(std::filesystem::exists(path)) << path << " missing: run scripts/fetch_models.sh";
  auto graph = ImportOnnxModel(path, ImportOptions{});
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return graph.ok() ? std::move(graph).value() : nullptr;
}

TargetProfile Profile(const std::string& name) {
  auto profile = LoadTargetProfile(name);
  EXPECT_TRUE(profile.ok()) << profile.status().ToString();
  return profile.ok() ? *profile : TargetProfile();
}

std::map<std::string, int> OpCounts(const Graph& graph) {
  std::map<std::string, int> counts;
  for (const Operation* op : graph.operations()) ++counts[op->type()];
  return counts;
}

// Tensors reached from a Shape output through ops, as long as they are not float data.
std::set<const Variable*> ShapeDerived(const Graph& graph) {
  std::set<const Variable*> seen;
  std::vector<const Variable*> work;
  for (const Operation* op : graph.operations()) {
    if (op->type() == "Shape") {
      for (const Variable* v : op->outputs()) work.push_back(v);
    }
  }
  while (!work.empty()) {
    const Variable* v = work.back();
    work.pop_back();
    if (!seen.insert(v).second) continue;
    for (const Use& use : v->uses()) {
      if (use.implicit()) continue;
      for (const Variable* out : use.op->outputs()) {
        if (out != nullptr && out->dtype() != DataType::kFloat) work.push_back(out);
      }
    }
  }
  return seen;
}

// Checks that hold for every model and profile; returns the stats.
DispatchStats CheckInvariants(const Graph& graph, const TargetProfile& profile,
                              QuantConfigTable* table) {
  auto result = DispatchQuantization(graph, profile, table);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  if (!result.ok()) return DispatchStats();
  const DispatchStats& stats = *result;
  // Every present port has exactly one TQC.
  int64_t ports = 0;
  for (const Operation* op : graph.operations()) {
    for (const Variable* v : op->inputs()) ports += v != nullptr;
    for (const Variable* v : op->outputs()) ports += v != nullptr;
  }
  EXPECT_EQ(stats.tqcs, ports);
  EXPECT_EQ(static_cast<int64_t>(table->size()), ports);
  const std::set<const Variable*> derived = ShapeDerived(graph);
  int64_t conv_fused = 0, hardswish_interior = 0;
  for (const TQC* t : table->all()) {
    const DataType dtype = t->port.tensor->dtype();
    if (dtype != DataType::kFloat && dtype != DataType::kUndefined) {
      EXPECT_FALSE(IsQuantizedState(t->state)) << profile.name << ": " << DescribeTqc(*t);
    }
    if (dtype == DataType::kInt64 || dtype == DataType::kInt32 || dtype == DataType::kBool) {
      EXPECT_EQ(t->state, QuantState::kSoi) << profile.name << ": " << DescribeTqc(*t);
    }
    if (derived.count(t->port.tensor)) {
      EXPECT_EQ(t->state, QuantState::kSoi) << profile.name << ": " << DescribeTqc(*t);
    }
    if (!profile.Quantizes(t->port.op->type())) {
      EXPECT_FALSE(IsQuantizedState(t->state)) << profile.name << ": " << DescribeTqc(*t);
    }
    if (t->role == TensorRole::kWeight) {
      EXPECT_TRUE(t->port.tensor->is_parameter());
      EXPECT_EQ(t->scheme, profile.WeightSchemeFor(t->port.op->type()));
    }
    if (t->state == QuantState::kOverlapped) {
      const std::string& type = t->port.op->type();
      EXPECT_FALSE(t->port.tensor->is_graph_output()) << DescribeTqc(*t);
      if (type == "Add" || type == "Mul" || type == "HardSigmoid" || type == "Div" ||
          (type == "Clip" && !t->port.is_input)) {
        // Inside a decomposed HardSwish (quant/activation_patterns.h): a single-use tensor.
        EXPECT_EQ(t->port.tensor->uses().size(), 1u) << DescribeTqc(*t);
        ++hardswish_interior;
      } else if (t->port.is_input) {
        // Either a Conv/ConvTranspose/Gemm/MatMul output or the Relu/Clip input reading it.
        EXPECT_TRUE(type == "Relu" || type == "Clip") << DescribeTqc(*t);
        EXPECT_EQ(t->port.tensor->uses().size(), 1u);
        const Operation* producer = t->port.tensor->producer();
        if (producer != nullptr && (producer->type() == "Add")) ++hardswish_interior;
        else ++conv_fused;
      } else {
        EXPECT_TRUE(type == "Conv" || type == "ConvTranspose" || type == "Gemm" ||
                    type == "MatMul") << DescribeTqc(*t);
        ++conv_fused;
      }
    }
  }
  EXPECT_EQ(conv_fused, 2 * stats.fused_activations);
  EXPECT_EQ(stats.count(QuantState::kOverlapped), conv_fused + hardswish_interior);
  EXPECT_EQ(hardswish_interior > 0, stats.fused_hardswish > 0);
  // Dispatch links nothing.
  EXPECT_EQ(table->Groups().size(), table->size());
  return stats;
}

// Parameter weights of Conv/ConvTranspose/Gemm/MatMul, counted from the graph.
// The constant weights of weight ops (those `profile` quantizes, when given).
int CountParameterWeights(const Graph& graph, const TargetProfile* profile = nullptr) {
  int n = 0;
  for (const Operation* op : graph.operations()) {
    const std::string& t = op->type();
    if (profile != nullptr && !profile->Quantizes(t)) continue;
    if ((t == "Conv" || t == "ConvTranspose" || t == "Gemm" || t == "MatMul") &&
        op->input(1) != nullptr && op->input(1)->is_parameter()) {
      ++n;
    }
  }
  return n;
}

TEST(DispatchModelTest, DetUnderTflite) {
  auto graph = LoadModel("ch_PP-OCRv4_det_infer.onnx");
  ASSERT_NE(graph, nullptr);
  auto counts = OpCounts(*graph);
  ASSERT_EQ(counts["Conv"], 62);
  ASSERT_EQ(counts["ConvTranspose"], 2);
  QuantConfigTable table;
  DispatchStats stats = CheckInvariants(*graph, Profile("tflite-int8"), &table);
  // 62 Conv weights on axis 0, 2 ConvTranspose weights on axis 1.
  EXPECT_EQ(stats.count(TensorRole::kWeight), 64);
  int axis0 = 0, axis1 = 0;
  for (const TQC* t : table.all()) {
    if (t->role != TensorRole::kWeight) continue;
    axis0 += t->channel_axis == 0 && t->port.op->type() == "Conv";
    axis1 += t->channel_axis == 1 && t->port.op->type() == "ConvTranspose";
  }
  EXPECT_EQ(axis0, 62);
  EXPECT_EQ(axis1, 2);
  // tflite-int8 leaves Div (24) and BatchNormalization (3) in float: 330 - 27 quantized ops.
  EXPECT_EQ(stats.fp32_ops, 27);
  EXPECT_EQ(stats.quantized_ops, static_cast<int64_t>(graph->num_operations()) - 27);
  // No Shape op in det: the only SOI ports are Resize's roi/scales/sizes operands.
  int64_t resize_operands = 0;
  for (const Operation* op : graph->operations()) {
    if (op->type() != "Resize") continue;
    for (size_t i = 1; i < op->inputs().size(); ++i) resize_operands += op->input(i) != nullptr;
  }
  EXPECT_GE(resize_operands, 6);
  EXPECT_EQ(stats.count(QuantState::kSoi), resize_operands);
  // Each Relu/Clip directly after a single-use conv output is fused.
  EXPECT_GT(stats.fused_activations, 0);
  EXPECT_LE(stats.fused_activations, counts["Relu"] + counts["Clip"]);
  // Decomposed HardSwish, counted from the graph: Div(Mul(., Clip(.)), 6).
  int64_t hardswish = 0;
  for (const Operation* op : graph->operations()) {
    if (op->type() != "Div" || !op->input(1)->is_parameter()) continue;
    if (op->input(1)->data()->values<float>()[0] != 6.0f) continue;
    const Operation* mul = op->input(0)->producer();
    if (mul == nullptr || mul->type() != "Mul") continue;
    for (const Variable* in : mul->inputs()) {
      hardswish += in->producer() != nullptr && in->producer()->type() == "Clip";
    }
  }
  EXPECT_GT(hardswish, 10);
  EXPECT_EQ(stats.fused_hardswish, hardswish);
  std::cout << "det tflite-int8: " << stats.ToString() << "\n";
}

TEST(DispatchModelTest, RecAndClsUnderTflite) {
  for (const char* file : {"ch_PP-OCRv4_rec_infer.onnx", "ch_ppocr_mobile_v2.0_cls_infer.onnx"}) {
    SCOPED_TRACE(file);
    auto graph = LoadModel(file);
    ASSERT_NE(graph, nullptr);
    auto counts = OpCounts(*graph);
    QuantConfigTable table;
    DispatchStats stats = CheckInvariants(*graph, Profile("tflite-int8"), &table);
    EXPECT_EQ(stats.count(TensorRole::kWeight), CountParameterWeights(*graph));
    EXPECT_GE(stats.count(TensorRole::kWeight), counts["Conv"]);
    // Ops tflite-int8 does not quantize in these models.
    const int fp32 = counts["Div"] + counts["Cast"] + counts["BatchNormalization"] +
                     counts["Pow"] + counts["Sqrt"] + counts["Shape"];
    EXPECT_EQ(stats.fp32_ops, fp32);
    // Both read their input's shape (Shape -> ... -> Reshape/Slice): SOI ports exist.
    EXPECT_GT(counts["Shape"], 0);
    EXPECT_GT(stats.count(QuantState::kSoi), 0);
    EXPECT_FALSE(ShapeDerived(*graph).empty());
    std::cout << file << " tflite-int8: " << stats.ToString() << "\n";
  }
}

TEST(DispatchModelTest, EveryProfileOnEveryModel) {
  for (const char* file : {"ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx",
                           "ch_ppocr_mobile_v2.0_cls_infer.onnx"}) {
    auto graph = LoadModel(file);
    ASSERT_NE(graph, nullptr);
    for (const std::string& name : BuiltinTargetNames()) {
      SCOPED_TRACE(std::string(file) + " " + name);
      QuantConfigTable table;
      TargetProfile profile = Profile(name);
      DispatchStats stats = CheckInvariants(*graph, profile, &table);
      // ONNX Runtime's profiles leave ConvTranspose float (no integer kernel on its CPU).
      EXPECT_EQ(stats.count(TensorRole::kWeight), CountParameterWeights(*graph, &profile));
      for (const TQC* t : table.all()) {
        if (t->role == TensorRole::kWeight) {
          EXPECT_EQ(t->channel_axis >= 0,
                    profile.WeightSchemeFor(t->port.op->type()).policy.Has(kPerChannel));
        }
      }
    }
  }
}

}  // namespace
}  // namespace qalign
