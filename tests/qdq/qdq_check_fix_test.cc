// qalign check / fix on QDQ models built in code, structurally and without ONNX Runtime (so these
// run in the unit suite and under the sanitizers): check must name exactly the mis-aligned rules,
// fix must repair them (bias re-derived where an input scale moved), check must then be clean and
// the independent file verifier must agree. check_fix_ort_test.cc runs the results in ONNX Runtime.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <set>

#include "check_fix_fixture.h"
#include "cli/cli_runner.h"
#include "core/file_util.h"
#include "qdq/qdq_check.h"
#include "qdq/qdq_fix.h"
#include "qdq/qdq_verify.h"

namespace qalign {
namespace {

using testing::ForeignModel;
using testing::QdqCheckFixTest;
using testing::RescalePair;

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

TEST_F(QdqCheckFixTest, FixRepairsOnlyTheViolatedRules) {
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
  ASSERT_NE(again_view, nullptr);
  auto again = FixQdqModel(*again_view, {});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->changes.empty());
  auto clean_view = Import(aligned_);
  ASSERT_NE(clean_view, nullptr);
  auto clean = FixQdqModel(*clean_view, {});
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->changes.empty());
  EXPECT_TRUE(clean->before.violations.empty());
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
}

TEST(QdqFixTest, FixedOutputRangeIsRestored) {
  // tflite-int8 fixes a Sigmoid output at (1/256, -128); a model quantizing it otherwise is
  // reported and fixed to exactly those params.
  auto q = testing::QuantizeForTest(testing::SmallConvGraph(), "tflite-int8", std::nullopt);
  ASSERT_NE(q, nullptr);
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
