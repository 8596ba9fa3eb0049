// qalign check / fix on QDQ models built in code: a small model quantized and exported by qalign,
// then mis-aligned on purpose (a MaxPool output, a Transpose output and one Concat input get their
// own scales, as another quantizer would leave them). check must name exactly those rules, fix
// must repair them (bias re-derived where an input scale moved), check must then be clean, the
// independent file verifier must agree, and ONNX Runtime must run the result with outputs as close
// to FP32 as the original aligned model's.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <set>

#include "cli/cli_runner.h"
#include "core/file_util.h"
#include "export/qdq_export.h"
#include "export/qdq_fixture.h"
#include "onnx/onnx_proto_builder.h"
#include "onnx/tensor_proto.h"
#include "qdq/qdq_check.h"
#include "qdq/qdq_fix.h"
#include "qdq/qdq_import.h"
#include "qdq/qdq_verify.h"
#include "runtime/executor.h"
#include "sim/metrics.h"
#include "testing/ort_runner.h"

namespace qalign {
namespace {

// x -> Conv1 -> Relu -> MaxPool --+
// x -> Conv2 (stride 2) ----------+-> Concat -> Conv3 (1x1, bias) -> y
//                                             \-> Transpose -> t
std::unique_ptr<Graph> PoolConcatGraph() {
  testing::GraphBuilder b(13);
  Variable* x = b.Input("x", {1, 3, 8, 8});
  const testing::AttributeList conv = {{"pads", Attribute::Ints({1, 1, 1, 1})},
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
  for (Variable* v : b.graph().variables()) {
    if (!v->is_parameter() && v->dtype() == DataType::kUndefined) v->set_dtype(DataType::kFloat);
  }
  auto clone = CloneGraph(b.graph());
  EXPECT_TRUE(clone.ok()) << clone.status().ToString();
  return std::move(clone).value();
}

// Gives the Q/DQ pair quantizing the output of node `op` (the QuantizeLinear reading it and that
// Q's DequantizeLinears) its own scale initializer, `factor` times the current one.
void RescalePair(onnx::ModelProto* model, const std::string& op, float factor) {
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
    q_ = testing::QuantizeForTest(PoolConcatGraph(), "tflite-int8", std::nullopt);
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

  std::unique_ptr<testing::QuantizedModel> q_;
  onnx::ModelProto aligned_, tampered_;
  TargetProfile profile_;
};

TEST_F(QdqCheckFixTest, ImportRebuildsTqcsFromQdqNodes) {
  auto view = Import(aligned_);
  ASSERT_NE(view, nullptr);
  // The float view has the original ops and no Q/DQ.
  std::multiset<std::string> types;
  for (const Operation* op : view->graph->operations()) types.insert(op->type());
  EXPECT_EQ(types.count("QuantizeLinear") + types.count("DequantizeLinear"), 0u);
  EXPECT_EQ(types.count("Conv"), 3u);
  EXPECT_EQ(types.count("Concat"), 1u);
  // Every quantized TQC of qalign's own table has exactly its params in the imported table.
  int compared = 0;
  for (Operation* op : q_->graph->operations()) {
    const OperationQuantConfig* mine = q_->table.FindOp(op);
    Operation* other = view->graph->FindOperation(op->name());
    ASSERT_NE(other, nullptr) << op->name();
    const OperationQuantConfig* theirs = view->table.FindOp(other);
    if (mine == nullptr || theirs == nullptr) continue;
    for (size_t i = 0; i < mine->inputs.size(); ++i) {
      const TQC* a = mine->inputs[i];
      const TQC* b = theirs->inputs[i];
      if (a == nullptr || b == nullptr || !IsQuantizedState(a->state) ||
          a->state == QuantState::kOverlapped) {
        continue;
      }
      ASSERT_EQ(b->state, QuantState::kActivated) << DescribeTqc(*b);
      EXPECT_EQ(b->scale.size(), q_->table.scale(a).size()) << DescribeTqc(*b);
      for (size_t c = 0; c < b->scale.size(); ++c) {
        EXPECT_FLOAT_EQ(b->scale[c], q_->table.scale(a)[c]) << DescribeTqc(*b);
      }
      ++compared;
    }
  }
  EXPECT_GE(compared, 10);  // activations, per-channel weights and int32 biases
  EXPECT_GT(view->stats.constant_dqs, 5);
  EXPECT_GT(view->stats.activation_pairs, 5);
  // qalign's own aligned export is clean.
  QdqCheckResult check = CheckQdqModel(*view);
  EXPECT_TRUE(check.violations.empty()) << check.violations.front().message;
  EXPECT_GE(check.biases_checked, 3);
}

TEST_F(QdqCheckFixTest, CheckNamesEachMisalignedRule) {
  auto view = Import(tampered_);
  ASSERT_NE(view, nullptr);
  QdqCheckResult check = CheckQdqModel(*view);
  std::set<std::string> ops;
  for (const QdqCheckViolation& v : check.violations) {
    ops.insert(v.op_type);
    EXPECT_GE(v.ports.size(), 2u) << v.message;
    EXPECT_NE(v.message.find(v.op), std::string::npos) << v.message;
  }
  EXPECT_EQ(ops, (std::set<std::string>{"MaxPool", "Concat", "Transpose"}));
  // The MaxPool violation shows both ports with their own scales.
  for (const QdqCheckViolation& v : check.violations) {
    if (v.op_type != "MaxPool") continue;
    EXPECT_EQ(v.rule, "share_input_output");
    ASSERT_EQ(v.ports.size(), 2u);
    EXPECT_NEAR(v.ports[1].scale[0] / v.ports[0].scale[0], 1.7, 1e-4);
  }
  // The independent file verifier sees the same ops.
  std::set<std::string> verified;
  for (const QdqRuleViolation& v : VerifyQdqModel(tampered_, profile_)) {
    verified.insert(v.node.substr(0, v.node.find(' ')));
  }
  EXPECT_EQ(verified, ops);
}

TEST_F(QdqCheckFixTest, FixRepairsAndOnnxRuntimeRunsIt) {
  auto view = Import(tampered_);
  ASSERT_NE(view, nullptr);
  auto fixed = FixQdqModel(*view, {});
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_EQ(fixed->before.violations.size(), 3u);
  EXPECT_TRUE(fixed->after.violations.empty()) << fixed->after.violations.front().message;
  EXPECT_TRUE(VerifyQdqModel(fixed->model, profile_).empty());
  ASSERT_TRUE(CheckOnnxModel(fixed->model, "fixed").ok());
  // Only Q/DQ params changed: same nodes, same op types in the same order.
  ASSERT_EQ(fixed->model.graph().node_size(), tampered_.graph().node_size());
  for (int k = 0; k < tampered_.graph().node_size(); ++k) {
    EXPECT_EQ(fixed->model.graph().node(k).op_type(), tampered_.graph().node(k).op_type());
    EXPECT_EQ(fixed->model.graph().node(k).name(), tampered_.graph().node(k).name());
  }
  // `large`: no new scale is finer than the old one it replaces (nothing representable is clipped).
  int activations = 0, biases = 0;
  for (const QdqFixChange& c : fixed->changes) {
    if (c.kind == "activation") {
      ++activations;
      EXPECT_GE(c.resolution_cost, 1.0 - 1e-6) << c.tensor;
    }
    if (c.kind == "bias") {
      ++biases;
      // The float bias moves by at most half a new step.
      EXPECT_LE(c.bias_max_abs_change, 0.5001 * c.new_scale[0] * 1.0001 + 1e-9) << c.tensor;
    }
  }
  EXPECT_GE(activations, 2);
  EXPECT_GE(biases, 1);  // conv3 reads the re-aligned Concat output
  // The report is JSON with the counts.
  auto report = nlohmann::json::parse(FixReportJson(*view, *fixed, "out.onnx"));
  EXPECT_EQ(report["summary"]["violations_before"], 3);
  EXPECT_EQ(report["summary"]["violations_after"], 0);
  EXPECT_EQ(report["changes"].size(), fixed->changes.size());

  // Fixing again changes nothing; fixing qalign's aligned export changes nothing.
  auto again_view = Import(fixed->model);
  auto again = FixQdqModel(*again_view, {});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->changes.empty());
  auto clean_view = Import(aligned_);
  auto clean = FixQdqModel(*clean_view, {});
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->changes.empty());
  EXPECT_TRUE(clean->before.violations.empty());

  // ONNX Runtime runs the repaired model; its outputs stay close to FP32.
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "/qalign_fixed_pool_concat.onnx";
  ASSERT_TRUE(SaveFixedModel(fixed->model, path, "").ok());
  const std::string aligned_path = dir + "/qalign_aligned_pool_concat.onnx";
  {
    std::string bytes;
    ASSERT_TRUE(aligned_.SerializeToString(&bytes));
    ASSERT_TRUE(WriteFileAtomically(aligned_path, bytes).ok());
  }
  auto exec = Executor::Create(*q_->graph);
  ASSERT_TRUE(exec.ok());
  ErrorAccumulator fixed_err, aligned_err;
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    auto inputs = testing::RandomInput(*q_->graph, seed);
    auto ref = (*exec)->Run(inputs);
    ASSERT_TRUE(ref.ok());
    auto got = testing::RunInOnnxRuntime(path, inputs);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    auto base = testing::RunInOnnxRuntime(aligned_path, inputs);
    ASSERT_TRUE(base.ok()) << base.status().ToString();
    for (const char* out : {"conv3_out", "transpose_out"}) {
      ASSERT_TRUE(fixed_err.Add(ref->at(out), got->at(out), out).ok());
      ASSERT_TRUE(aligned_err.Add(ref->at(out), base->at(out), out).ok());
    }
  }
  std::printf("[ check/fix ] built graph: SNR vs FP32 in ONNX Runtime: fixed %.2f dB, aligned by "
              "qalign %.2f dB\n", fixed_err.SnrDb(), aligned_err.SnrDb());
  EXPECT_GT(fixed_err.SnrDb(), 20.0);
  EXPECT_GT(fixed_err.SnrDb(), aligned_err.SnrDb() - 3.0);
}

TEST_F(QdqCheckFixTest, ImportedRequantizeChainIsKept) {
  // A requantize chain the model already has (Q -> DQ -> Q -> DQ on the Concat's second input,
  // carrying the Concat's params) is imported as such and is not a violation.
  onnx::ModelProto model = aligned_;
  auto* g = model.mutable_graph();
  onnx::NodeProto* concat = nullptr;
  for (auto& n : *g->mutable_node()) {
    if (n.op_type() == "Concat") concat = &n;
  }
  ASSERT_NE(concat, nullptr);
  const std::string dq_out = concat->input(1);
  // Make the producer pair of conv2 finer and requantize to the old params before the Concat.
  std::string old_scale, old_zp;
  for (const auto& n : g->node()) {
    if (n.op_type() == "DequantizeLinear" && n.output(0) == dq_out) {
      old_scale = n.input(1);
      old_zp = n.input(2);
    }
  }
  RescalePair(&model, "conv2", 0.5f);
  onnx::ModelProto rebuilt = model;
  auto* rg = rebuilt.mutable_graph();
  rg->clear_node();
  for (const auto& n : g->node()) {
    if (n.op_type() == "Concat") {
      onnx::NodeProto q, d;
      q.set_op_type("QuantizeLinear");
      q.set_name("requant_q");
      q.add_input(dq_out);
      q.add_input(old_scale);
      q.add_input(old_zp);
      q.add_output("requant_q_out");
      d.set_op_type("DequantizeLinear");
      d.set_name("requant_dq");
      d.add_input("requant_q_out");
      d.add_input(old_scale);
      d.add_input(old_zp);
      d.add_output("requant_out");
      *rg->add_node() = q;
      *rg->add_node() = d;
      onnx::NodeProto c = n;
      c.set_input(1, "requant_out");
      *rg->add_node() = c;
    } else {
      *rg->add_node() = n;
    }
  }
  ASSERT_TRUE(CheckOnnxModel(rebuilt, "rebuilt").ok());
  auto view = Import(rebuilt);
  ASSERT_NE(view, nullptr);
  EXPECT_EQ(view->stats.requantize_pairs, 1);
  EXPECT_EQ(view->requantized_inputs.size(), 1u);
  QdqCheckResult check = CheckQdqModel(*view);
  EXPECT_TRUE(check.violations.empty()) << check.violations.front().message;
  auto fixed = FixQdqModel(*view, {});
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_TRUE(fixed->changes.empty());
}

TEST_F(QdqCheckFixTest, NoForceOverlapAddsRequantizePair) {
  // The Transpose reads the Concat output, which conv3 reads too. Its output quantized 1.5x
  // coarser breaks its rule; with force_overlap off, fix leaves the Concat's pair (and conv3's
  // bias) alone and gives the Transpose input a requantize pair with the Transpose's params.
  onnx::ModelProto model = aligned_;
  RescalePair(&model, "transpose", 1.5f);
  auto view = Import(model);
  ASSERT_NE(view, nullptr);
  QdqFixOptions options;
  options.alignment.force_overlap = false;
  auto fixed = FixQdqModel(*view, options);
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_EQ(fixed->before.violations.size(), 1u);
  EXPECT_TRUE(fixed->after.violations.empty()) << fixed->after.violations.front().message;
  EXPECT_TRUE(VerifyQdqModel(fixed->model, profile_).empty());
  ASSERT_TRUE(CheckOnnxModel(fixed->model, "fixed").ok());
  int added = 0, biases = 0;
  for (const QdqFixChange& c : fixed->changes) {
    added += c.kind == "requantize_added";
    biases += c.kind == "bias";
  }
  EXPECT_EQ(added, 1);
  EXPECT_EQ(biases, 0);
  EXPECT_EQ(fixed->model.graph().node_size(), model.graph().node_size() + 2);
  const std::string path = ::testing::TempDir() + "/qalign_fixed_requant.onnx";
  ASSERT_TRUE(SaveFixedModel(fixed->model, path, "").ok());
  auto got = testing::RunInOnnxRuntime(path, testing::RandomInput(*q_->graph, 5));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->count("transpose_out"), 1u);
}

TEST(QdqFixTest, FixedOutputRangeIsRestored) {
  // tflite-int8 fixes a Sigmoid output at (1/256, -128); a model quantizing it otherwise is
  // reported and fixed to exactly those params.
  auto q = testing::QuantizeForTest(testing::SmallConvGraph(), "tflite-int8", std::nullopt);
  auto proto = ExportQdqModel(*q->graph, q->plan);
  ASSERT_TRUE(proto.ok()) << proto.status().ToString();
  onnx::ModelProto model = *proto;
  RescalePair(&model, "sigmoid", 0.5f);
  auto view = ImportQdqModel(model, ".", q->profile, {}, "sig.onnx");
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  QdqCheckResult check = CheckQdqModel(**view);
  ASSERT_EQ(check.violations.size(), 1u);
  EXPECT_EQ(check.violations[0].rule, "fixed_output");
  EXPECT_EQ(check.violations[0].op_type, "Sigmoid");
  auto fixed = FixQdqModel(**view, {});
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_TRUE(fixed->after.violations.empty()) << fixed->after.violations.front().message;
  ASSERT_EQ(fixed->changes.size(), 1u);
  EXPECT_FLOAT_EQ(fixed->changes[0].new_scale[0], 1.0f / 256.0f);
  EXPECT_EQ(fixed->changes[0].new_zero_point[0], -128);
  EXPECT_TRUE(VerifyQdqModel(fixed->model, q->profile).empty());
}

TEST_F(QdqCheckFixTest, CommandLine) {
  const std::string dir = ::testing::TempDir();
  const std::string in = dir + "/qalign_cli_tampered.onnx";
  std::string bytes;
  ASSERT_TRUE(tampered_.SerializeToString(&bytes));
  ASSERT_TRUE(WriteFileAtomically(in, bytes).ok());
  // Usage errors exit 2, failures 1, each with one line on stderr.
  EXPECT_EQ(testing::RunCli({"check", in}).exit_code, 2);
  EXPECT_EQ(testing::RunCli({"fix", in, "--target", "tflite-int8"}).exit_code, 2);
  EXPECT_EQ(testing::RunCli({"fix", in, "--target", "tflite-int8", "-o", dir + "/x.onnx",
                             "--align", "Concat=bogus"}).exit_code, 2);
  auto missing = testing::RunCli({"check", dir + "/no_such.onnx", "--target", "tflite-int8"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.StderrLines(), 1) << missing.err;
  // Violations: exit 1, one line each in the text form.
  auto check = testing::RunCli({"check", in, "--target", "tflite-int8"});
  EXPECT_EQ(check.exit_code, 1) << check.err;
  EXPECT_NE(check.out.find("violation [share_input_output] MaxPool 'pool'"), std::string::npos)
      << check.out;
  // fix writes the model and the report; the input file is unchanged; check is then clean.
  const std::string out = dir + "/qalign_cli_fixed.onnx";
  auto fix = testing::RunCli({"fix", in, "--target", "tflite-int8", "-o", out, "--report",
                              dir + "/qalign_cli_fix.json"});
  EXPECT_EQ(fix.exit_code, 0) << fix.err;
  EXPECT_EQ(*ReadFileToString(in), bytes);
  EXPECT_EQ(testing::RunCli({"check", out, "--target", "tflite-int8"}).exit_code, 0);
  auto report = nlohmann::json::parse(*ReadFileToString(dir + "/qalign_cli_fix.json"));
  EXPECT_EQ(report["summary"]["violations_after"], 0);
  EXPECT_EQ(testing::RunCli({"fix", in, "--target", "tflite-int8", "-o", in}).exit_code, 1);
  EXPECT_EQ(*ReadFileToString(in), bytes);
}

// A QDQ model written the way other quantizers write them: unnamed nodes, uint8 activations with
// the zero point omitted on one pair, a dedicated Q -> DQ pair per consumer, graph inputs
// quantized directly and the output read through a DequantizeLinear.
//   x -> Q/DQ -> MaxPool -> Q/DQ --+
//   y -> Q/DQ ---------------------+-> Concat -> Q/DQ -> out
//                      y -> Q/DQ (second pair) -> Relu -> Q/DQ -> out2
onnx::ModelProto ForeignModel() {
  using namespace testing;
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

TEST(QdqForeignModelTest, CheckAndFixUnnamedUint8Model) {
  onnx::ModelProto model = ForeignModel();
  ASSERT_TRUE(CheckOnnxModel(model, "foreign").ok());
  auto profile = LoadTargetProfile("qnn-u8");
  ASSERT_TRUE(profile.ok());
  auto view = ImportQdqModel(model, ".", *profile, {}, "foreign.onnx");
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ((*view)->stats.activation_pairs, 6);
  QdqCheckResult check = CheckQdqModel(**view);
  std::set<std::string> ops;
  for (const auto& v : check.violations) {
    ops.insert(v.op_type);
    EXPECT_TRUE(v.op.empty()) << v.op;  // the model's own (empty) node name is reported
  }
  EXPECT_TRUE(ops.count("MaxPool")) << CheckReportText(**view, check);
  EXPECT_TRUE(ops.count("Concat")) << CheckReportText(**view, check);
  auto fixed = FixQdqModel(**view, {});
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_TRUE(fixed->after.violations.empty()) << fixed->after.violations.front().message;
  EXPECT_TRUE(VerifyQdqModel(fixed->model, *profile).empty());
  ASSERT_TRUE(CheckOnnxModel(fixed->model, "fixed").ok());
  // The Relu branch reads y through its own pair and has no rule: untouched.
  for (const auto& n : fixed->model.graph().node()) {
    if (n.output(0) == "y_q2" || n.output(0) == "out2") {
      EXPECT_EQ(n.input(1), n.output(0) == "y_q2" ? "s_y" : "s_r");
    }
  }
  const std::string path = ::testing::TempDir() + "/qalign_foreign_fixed.onnx";
  ASSERT_TRUE(SaveFixedModel(fixed->model, path, "").ok());
  std::map<std::string, Tensor> inputs;
  Tensor x(DataType::kFloat, {1, 2, 4, 4}), y(DataType::kFloat, {1, 2, 2, 2});
  for (size_t i = 0; i < 32; ++i) x.values<float>()[i] = 0.1f * static_cast<float>(i % 7);
  for (size_t i = 0; i < 8; ++i) y.values<float>()[i] = -2.0f + 0.6f * static_cast<float>(i);
  inputs["x"] = x;
  inputs["y"] = y;
  auto got = testing::RunInOnnxRuntime(path, inputs);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  // The Concat output now covers both inputs' ranges: y's values come through within a step.
  const auto out = got->at("out").values<float>();
  ASSERT_EQ(out.size(), 16u);
  for (size_t i = 0; i < 8; ++i) {
    const float want = std::clamp(y.values<float>()[i], -128 * 0.05f, 127 * 0.05f);
    EXPECT_NEAR(out[8 + i], want, 0.08f) << i;
  }
}

TEST(QdqImportTest, RefusesQOperatorModels) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.add_opset_import()->set_version(13);
  auto* n = model.mutable_graph()->add_node();
  n->set_op_type("QLinearConv");
  n->set_name("qconv");
  auto profile = LoadTargetProfile("tflite-int8");
  ASSERT_TRUE(profile.ok());
  auto view = ImportQdqModel(model, ".", *profile, {}, "q.onnx");
  ASSERT_FALSE(view.ok());
  EXPECT_NE(view.status().message().find("QLinearConv 'qconv'"), std::string::npos)
      << view.status().message();
  EXPECT_NE(view.status().message().find("QOperator"), std::string::npos);
}

}  // namespace
}  // namespace qalign
