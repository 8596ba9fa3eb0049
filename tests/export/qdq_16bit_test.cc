// 16-bit activations (a target's activation16 scheme): the ops --int16 names and every group they
// join are 16-bit (one bit width per group), the export writes them as com.microsoft
// QuantizeLinear / DequantizeLinear with uint16 zero points at the model's opset, qalign's executor
// runs that file as the simulation does, the QDQ importer reads it back, and `check` and the
// verifier reject a group whose members have different bit widths.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "export/qdq_export.h"
#include "export/qdq_fixture.h"
#include "onnx/importer.h"
#include "passes/alignment_verifier.h"
#include "qdq/qdq_check.h"
#include "qdq/qdq_fix.h"
#include "qdq/qdq_import.h"
#include "onnx/tensor_proto.h"
#include "sim/qdq_kernels.h"

namespace qalign {
namespace {

// SmallConvGraph under qnn-u8 with conv2 at 16 bits. conv2 reads x (also read by conv1) and
// writes conv2_out, which the Concat (inputs and output share) and the Add (inputs share) tie to
// relu1_out and concat_out: that group and x's go 16-bit; the Add's output and the Sigmoid stay
// 8-bit.
std::unique_ptr<testing::QuantizedModel> Conv2At16Bits(std::optional<bool> force_overlap = true) {
  return testing::QuantizeForTest(testing::SmallConvGraph(), "qnn-u8", force_overlap,
                                  "random:4?seed=7&low=-1&high=1", {"conv2"});
}

const std::set<std::string> kSixteenBitTensors = {"x", "relu1_out", "conv2_out", "concat_out"};

// The bit width of every activation tensor the plan quantizes right after its producer or, for a
// graph input, on its edges.
std::map<std::string, DataType> ActivationTypes(const QuantPlan& plan) {
  std::map<std::string, DataType> out;
  for (const ActivationPoint& p : plan.activations) out[p.tensor->name()] = p.params.dtype;
  return out;
}

TEST(Qdq16BitTest, GroupsTouchedByA16BitOpAre16BitAsAWhole) {
  auto q = Conv2At16Bits();
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(q->result.violations.empty()) << q->result.violations.front().message;
  EXPECT_GT(q->result.alignment.counters.widened_to_16_bits, 0);
  const auto types = ActivationTypes(q->plan);
  for (const auto& [tensor, dtype] : types) {
    SCOPED_TRACE(tensor);
    EXPECT_EQ(dtype, kSixteenBitTensors.count(tensor) ? DataType::kUint16 : DataType::kUint8);
  }
  EXPECT_EQ(types.count("add_out"), 1u);
  // Every group has one bit width.
  for (const auto& group : q->table.Groups()) {
    for (const TQC* m : group) EXPECT_EQ(m->scheme.num_bits, group.front()->scheme.num_bits);
  }
  // Weights stay 8-bit (A16W8) and conv2's bias scale is its 16-bit input scale * weight scale.
  for (const ParameterPoint& p : q->plan.parameters) {
    EXPECT_TRUE(p.params.dtype == DataType::kInt8 || p.params.dtype == DataType::kInt32)
        << p.tensor->name();
  }
}

TEST(Qdq16BitTest, WithoutForceOverlapGroupsStillHaveOneWidth) {
  auto q = Conv2At16Bits(false);
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(q->result.violations.empty()) << q->result.violations.front().message;
  for (const auto& group : q->table.Groups()) {
    for (const TQC* m : group) EXPECT_EQ(m->scheme.num_bits, group.front()->scheme.num_bits);
  }
}

TEST(Qdq16BitTest, ExportWritesMicrosoftQdqForThe16BitTensorsOnly) {
  auto q = Conv2At16Bits();
  ASSERT_NE(q, nullptr);
  QdqExportStats stats;
  auto model = ExportQdqModel(*q->graph, q->plan, &stats);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(stats.opset, 13);  // the rest of the model keeps its opset
  bool imports_microsoft = false;
  for (const auto& o : model->opset_import()) {
    if (o.domain() == "com.microsoft") imports_microsoft = o.version() == 1;
  }
  EXPECT_TRUE(imports_microsoft);
  std::map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : model->graph().initializer()) inits[t.name()] = &t;
  int sixteen = 0, eight = 0;
  for (const auto& n : model->graph().node()) {
    if (n.op_type() != "QuantizeLinear" && n.op_type() != "DequantizeLinear") continue;
    ASSERT_GE(n.input_size(), 3) << n.name();
    const auto zp = inits.find(n.input(2));
    ASSERT_NE(zp, inits.end()) << n.name();
    const int32_t type = zp->second->data_type();
    if (type == onnx::TensorProto::UINT16) {
      EXPECT_EQ(n.domain(), "com.microsoft") << n.name();
      ++sixteen;
    } else {
      EXPECT_TRUE(n.domain().empty()) << n.name();
      ++eight;
    }
  }
  EXPECT_EQ(sixteen, 2 * static_cast<int>(kSixteenBitTensors.size()));  // one Q and one DQ each
  EXPECT_GT(eight, 0);
}

// The exported file, run by qalign's executor with its Q/DQ kernels (com.microsoft's included),
// gives the simulation's numbers bit for bit.
TEST(Qdq16BitTest, ExecutorRunOfTheExportEqualsTheSimulation) {
  auto q = Conv2At16Bits();
  ASSERT_NE(q, nullptr);
  const std::string path = ::testing::TempDir() + "/qdq16_exec.onnx";
  ASSERT_TRUE(SaveQdqModel(*q->graph, q->plan, path, "").ok());
  auto exported = ImportOnnxModel(path);
  ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  ExecutorOptions options;
  options.registry = &SimKernelRegistry();
  options.num_threads = 1;
  auto exec = Executor::Create(**exported, options);
  ASSERT_TRUE(exec.ok()) << exec.status().ToString();
  auto sim = FakeQuantSimulator::Create(*q->graph, q->plan);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  const auto inputs = testing::RandomInput(*q->graph, 5);
  auto got = (*exec)->Run(inputs);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  auto want = (*sim)->Run(inputs);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  for (const Variable* out : q->graph->outputs()) {
    const auto a = got->at(out->name()).values<float>();
    const auto b = want->at(out->name()).values<float>();
    ASSERT_EQ(a.size(), b.size());
    int64_t differ = 0;
    for (size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
    EXPECT_EQ(differ, 0) << out->name();
  }
  // concat_out lies on a 16-bit grid: more distinct values than 256.
  std::set<float> distinct;
  for (float v : want->at("concat_out").values<float>()) distinct.insert(v);
  EXPECT_GT(distinct.size(), 256u);
}

TEST(Qdq16BitTest, ImporterReadsThe16BitPairsBackAndCheckPasses) {
  auto q = Conv2At16Bits();
  ASSERT_NE(q, nullptr);
  auto model = ExportQdqModel(*q->graph, q->plan);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto view = ImportQdqModel(*model, "", q->profile, {}, "qdq16.onnx");
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_TRUE((*view)->notes.empty()) << (*view)->notes.front();  // no scheme mismatch noted
  int sixteen = 0;
  for (const TQC* t : (*view)->table.all()) {
    if (t->role != TensorRole::kActivation || t->state != QuantState::kActivated) continue;
    // A graph output's producer writes "<name>_prequant" in the export.
    std::string name = t->port.tensor->name();
    if (name.size() > 9 && name.compare(name.size() - 9, 9, "_prequant") == 0) {
      name.resize(name.size() - 9);
    }
    const bool wide = kSixteenBitTensors.count(name) > 0;
    EXPECT_EQ(t->scheme.num_bits, wide ? 16 : 8) << DescribeTqc(*t);
    sixteen += wide;
    // The params read back are the ones the table had.
    const auto p = q->plan.ProducerPoint(name);
    if (p >= 0) {
      EXPECT_EQ(t->scale, q->plan.activations[static_cast<size_t>(p)].params.scale);
      EXPECT_EQ(t->zero_point, q->plan.activations[static_cast<size_t>(p)].params.zero_point);
    }
  }
  EXPECT_GT(sixteen, 0);
  const QdqCheckResult check = CheckQdqModel(**view);
  EXPECT_TRUE(check.violations.empty()) << check.violations.front().message;
  EXPECT_GT(check.ops_checked, 0);
}

// The Concat's members given equal numbers (scale 0.01, zero point 0) but conv2_out's pair made
// 8-bit: only the bit widths differ, and check reports the rule.
TEST(Qdq16BitTest, CheckRejectsAGroupOfMixedWidths) {
  auto q = Conv2At16Bits();
  ASSERT_NE(q, nullptr);
  auto model = ExportQdqModel(*q->graph, q->plan);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto* g = model->mutable_graph();
  std::set<std::string> params;  // scale and zero point names of the group's pairs
  for (auto& n : *g->mutable_node()) {
    if (n.op_type() != "QuantizeLinear" && n.op_type() != "DequantizeLinear") continue;
    const std::string& in = n.input(0);
    bool group = false;
    for (const char* name : {"relu1_out", "conv2_out", "concat_out"}) {
      group = group || in.rfind(name, 0) == 0;
    }
    if (!group) continue;
    params.insert(n.input(1));
    params.insert(n.input(2));
    if (in.rfind("conv2_out", 0) == 0) n.clear_domain();  // an 8-bit pair
  }
  ASSERT_EQ(params.size(), 6u);
  for (auto& t : *g->mutable_initializer()) {
    if (!params.count(t.name())) continue;
    if (t.data_type() == onnx::TensorProto::FLOAT) {
      t.clear_raw_data();
      t.clear_float_data();
      t.add_float_data(0.01f);
    } else {
      const bool eight = t.name().rfind("conv2_out", 0) == 0;
      t.clear_raw_data();
      t.clear_int32_data();
      t.set_data_type(eight ? onnx::TensorProto::UINT8 : onnx::TensorProto::UINT16);
      t.add_int32_data(0);
    }
  }
  auto view = ImportQdqModel(*model, "", q->profile, {}, "mixed.onnx");
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  const QdqCheckResult check = CheckQdqModel(**view);
  ASSERT_FALSE(check.violations.empty());
  bool concat = false;
  for (const QdqCheckViolation& v : check.violations) {
    concat = concat || (v.op_type == "Concat" && v.message.find("16-bit") != std::string::npos);
  }
  EXPECT_TRUE(concat) << check.violations.front().message;
}

// fix on a 16-bit group whose params disagree (conv2_out's scale doubled): the group is re-aligned
// at 16 bits, its zero points written as uint16, and check finds it clean after.
TEST(Qdq16BitTest, FixRealignsA16BitGroupAndKeepsItsZeroPointType) {
  auto q = Conv2At16Bits();
  ASSERT_NE(q, nullptr);
  auto model = ExportQdqModel(*q->graph, q->plan);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  bool doubled = false;
  for (auto& t : *model->mutable_graph()->mutable_initializer()) {
    if (t.name() != "conv2_out_scale") continue;
    auto value = TensorFromProto(t, "");
    ASSERT_TRUE(value.ok());
    t = TensorToProto(Tensor::FromVector<float>({}, {value->values<float>()[0] * 2.0f}), t.name());
    doubled = true;
  }
  ASSERT_TRUE(doubled);
  auto view = ImportQdqModel(*model, "", q->profile, {}, "broken16.onnx");
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  ASSERT_FALSE(CheckQdqModel(**view).violations.empty());
  auto fixed = FixQdqModel(**view, {});
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_TRUE(fixed->after.violations.empty()) << fixed->after.violations.front().message;
  EXPECT_FALSE(fixed->changes.empty());
  // The group's zero points, uint16 and equal; conv2_out is mostly negative and relu1_out not,
  // so the shared zero point is far above 255 (a uint8 write would have cut it).
  std::map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : fixed->model.graph().initializer()) inits[t.name()] = &t;
  std::map<std::string, int64_t> zero_points;  // of the QuantizeLinear reading each tensor
  for (const auto& n : fixed->model.graph().node()) {
    if (n.op_type() != "QuantizeLinear" || n.input_size() < 3) continue;
    if (n.input(0) != "conv2_out" && n.input(0) != "relu1_out") continue;
    ASSERT_EQ(inits.count(n.input(2)), 1u) << n.input(2);
    const onnx::TensorProto& t = *inits[n.input(2)];
    EXPECT_EQ(t.data_type(), onnx::TensorProto::UINT16) << t.name();
    auto value = TensorFromProto(t, "");
    ASSERT_TRUE(value.ok()) << t.name();
    auto ints = value->AsInt64s();
    ASSERT_TRUE(ints.ok() && ints->size() == 1u) << t.name();
    zero_points[n.input(0)] = ints->front();
  }
  ASSERT_EQ(zero_points.size(), 2u);
  EXPECT_EQ(zero_points["conv2_out"], zero_points["relu1_out"]);
  EXPECT_GT(zero_points["conv2_out"], 255);
}

// The verifier: a group (or a producer -> consumer edge) whose members have different bit widths
// is a violation, even with equal params.
TEST(Qdq16BitTest, VerifierRejectsMixedWidths) {
  auto q = Conv2At16Bits();
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->result.violations.empty());
  TQC* narrowed = nullptr;
  for (TQC* t : q->table.all()) {
    if (t->port.tensor != nullptr && t->port.tensor->name() == "conv2_out" && !t->port.is_input &&
        IsJoinable(*t)) {
      narrowed = t;
    }
  }
  ASSERT_NE(narrowed, nullptr);
  narrowed->scheme = q->profile.activation;  // 8-bit, its group 16-bit, the params unchanged
  const auto violations = VerifyAlignment(*q->graph, q->table, q->profile,
                                          q->result.alignment.requantizes);
  bool width = false;
  for (const AlignmentViolation& v : violations) {
    width = width || (v.check == "width" && v.message.find("conv2") != std::string::npos);
  }
  EXPECT_TRUE(width) << (violations.empty() ? "no violation" : violations.front().message);
}

// With histograms (the percentile, kl and mse observers keep them) a 16-bit port takes the
// histogram's extent instead of the observer's clip, which was chosen for 256 levels; an 8-bit
// port keeps the clip. Every tensor here: range [-1, 1], histogram of 8 bins over [-4, 4].
TEST(Qdq16BitTest, SixteenBitPortsTakeTheHistogramExtent) {
  auto graph = testing::SmallConvGraph();
  auto profile = LoadTargetProfile("qnn-u8");
  ASSERT_TRUE(profile.ok());
  const CalibrateFn calibrate =
      [](const std::vector<const Variable*>& tensors) -> StatusOr<RangeMap> {
    RangeMap map;
    for (const Variable* v : tensors) {
      TensorRange r;
      r.min = -1.0f;
      r.max = 1.0f;
      r.has_histogram = true;
      r.hist_min = -4.0f;
      r.hist_max = 4.0f;
      r.counts.assign(8, 1.0f);
      map.ranges[v->name()] = r;
    }
    return map;
  };
  QuantizePipelineOptions options;
  options.int16_ops = {graph->FindOperation("conv2")};
  QuantConfigTable table;
  auto result = RunQuantizePipeline(*graph, *profile, options, calibrate, &table);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_TRUE(result->violations.empty()) << result->violations.front().message;
  int checked = 0;
  for (const TQC* t : table.all()) {
    if (t->port.is_input || !IsJoinable(*t) || t->role != TensorRole::kActivation) continue;
    const std::string& name = t->port.tensor->name();
    if (name == "conv2_out" || name == "concat_out") {  // 16-bit: [-4, 4] over 65535 steps
      EXPECT_NEAR(table.scale(t)[0], 8.0 / 65535, 1e-9) << name;
      ++checked;
    } else if (name == "add_out") {  // 8-bit: the clipped [-1, 1] over 255 steps
      EXPECT_NEAR(table.scale(t)[0], 2.0 / 255, 1e-7) << name;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3);
}

TEST(Qdq16BitTest, TargetWithout16BitSchemeRefusesInt16Ops) {
  auto profile = LoadTargetProfile("tflite-int8");
  ASSERT_TRUE(profile.ok());
  auto graph = testing::SmallConvGraph();
  QuantizePipelineOptions options;
  options.int16_ops = {graph->FindOperation("conv2")};
  ASSERT_NE(options.int16_ops.front(), nullptr);
  QuantConfigTable table;
  auto result = RunQuantizePipeline(
      *graph, *profile, options,
      [](const std::vector<const Variable*>&) -> StatusOr<RangeMap> { return RangeMap(); }, &table);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("no 16-bit activation scheme"), std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("conv2"), std::string::npos);
}

}  // namespace
}  // namespace qalign
