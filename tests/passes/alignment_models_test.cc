// Every shipped target profile on the three PP-OCR models with seeded synthetic ranges: zero
// violations, and group and requantize counts equal to an independent count made here from the
// graph, the profile's rules and the dispatch states (a naive union-find over port ids, not the
// pass's code).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "align_testing.h"
#include "export/alignment_report.h"
#include "onnx/importer.h"
#include "passes/alignment/alignment_pass.h"
#include "passes/alignment_verifier.h"
#include "quant/dispatch.h"
#include "quant/ranges.h"
#include "quant/target_profile.h"

namespace qalign {
namespace {

using testing::SyntheticRanges;

const char* const kModels[] = {"ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx",
                               "ch_ppocr_mobile_v2.0_cls_infer.onnx"};

// ---- the independent count

bool Quantized(const TQC* t) {
  if (t == nullptr) return false;
  if (t->state == QuantState::kFp32 || t->state == QuantState::kSoi ||
      t->state == QuantState::kOverlapped) {
    return false;
  }
  if (t->scheme.policy.Has(kPerChannel) || t->scheme.policy.Has(kFloating)) return false;
  return t->role == TensorRole::kActivation || t->role == TensorRole::kWeight;
}

struct NaiveSets {
  std::map<int32_t, int32_t> parent;
  int32_t Find(int32_t x) {
    auto it = parent.find(x);
    if (it == parent.end() || it->second == x) return x;
    return it->second = Find(it->second);
  }
  void Join(int32_t a, int32_t b) {
    a = Find(a);
    b = Find(b);
    if (a != b) parent[a] = b;
  }
};

struct ExpectedCounts {
  int64_t groups = 0;
  int64_t requantizes = 0;
  int64_t rule_ops = 0;
};

ExpectedCounts CountIndependently(const Graph& g, const QuantConfigTable& table,
                                  const TargetProfile& profile, bool force_overlap) {
  ExpectedCounts out;
  NaiveSets sets;
  std::set<int32_t> rule_ports;
  std::set<int32_t> cut;  // consumer-side ports the cascade rule detaches from their producer
  for (Operation* op : g.operations()) {
    const OperationQuantConfig* cfg = table.FindOp(op);
    const AlignmentRule* rule = profile.FindRule(op->type());
    if (cfg == nullptr || rule == nullptr) continue;
    std::vector<TQC*> ports;
    if (rule->kind == RuleKind::kFixedOutput) {
      bool any = false;
      for (TQC* t : cfg->outputs) {
        if (Quantized(t)) {
          rule_ports.insert(t->id);
          any = true;
        }
      }
      out.rule_ops += any ? 1 : 0;
      continue;
    }
    if (rule->method == AlignMethod::kNone) continue;
    if (rule->kind != RuleKind::kShareInputOutput) {
      for (TQC* t : cfg->inputs) {
        if (Quantized(t)) ports.push_back(t);
      }
    } else if (!cfg->inputs.empty() && Quantized(cfg->inputs[0])) {
      ports.push_back(cfg->inputs[0]);
    }
    if (rule->kind != RuleKind::kShareInputs) {
      for (TQC* t : cfg->outputs) {
        if (Quantized(t)) ports.push_back(t);
      }
    }
    // An inputs rule aligned to the output still gives a lone quantized input the output's params.
    const bool lone_ok = ports.size() == 1 && rule->kind == RuleKind::kShareInputs &&
                         rule->method == AlignMethod::kOutput;
    if (ports.size() < 2 && !lone_ok) continue;
    ++out.rule_ops;
    for (TQC* t : ports) {
      rule_ports.insert(t->id);
      sets.Join(ports[0]->id, t->id);
      if (force_overlap || !t->port.is_input) continue;
      int others = 0;
      for (Operation* c : t->port.tensor->consumers()) {
        if (c != op && c->type() != "Shape" && c->type() != "Size") ++others;
      }
      if (others > 0 || t->port.tensor->is_graph_output()) cut.insert(t->id);
    }
  }
  std::set<std::pair<std::string, std::string>> requantized;
  std::map<const Variable*, int32_t> first_consumer;
  for (Operation* op : g.operations()) {
    const OperationQuantConfig* cfg = table.FindOp(op);
    if (cfg == nullptr) continue;
    for (TQC* c : cfg->inputs) {
      if (!Quantized(c)) continue;
      const Variable* v = c->port.tensor;
      const TQC* p = nullptr;
      if (v->producer() != nullptr) {
        const OperationQuantConfig* pc = table.FindOp(v->producer());
        if (pc != nullptr && static_cast<size_t>(v->producer_index()) < pc->outputs.size()) {
          p = pc->outputs[v->producer_index()];
        }
      }
      if (cut.count(c->id)) {
        if (Quantized(p)) requantized.insert({v->name(), op->name()});
        continue;
      }
      if (Quantized(p)) {
        sets.Join(p->id, c->id);
      } else {
        auto [it, inserted] = first_consumer.emplace(v, c->id);
        if (!inserted) sets.Join(it->second, c->id);
      }
    }
  }
  std::set<int32_t> roots;
  for (int32_t id : rule_ports) roots.insert(sets.Find(id));
  out.groups = static_cast<int64_t>(roots.size());
  out.requantizes = static_cast<int64_t>(requantized.size());
  return out;
}

TEST(AlignmentModels, EveryProfileOnEveryPpOcrModel) {
  const std::vector<std::string> targets = BuiltinTargetNames();
  ASSERT_GE(targets.size(), 5u) << "targets dir: " << TargetsDir();
  for (const char* model : kModels) {
    const std::string path = std::string(QALIGN_MODEL_DIR) + "/" + model;
    ASSERT_TRUE(std::filesystem::exists(path)) << path << " is missing: run scripts/fetch_models.sh";
    auto graph = ImportOnnxModel(path);
    ASSERT_TRUE(graph.ok()) << graph.status().ToString();
    const Graph& g = **graph;
    const RangeMap ranges = SyntheticRanges(g, 2024);
    for (const std::string& name : targets) {
      auto profile = LoadTargetProfile(name);
      ASSERT_TRUE(profile.ok()) << profile.status().ToString();
      for (bool force : {true, false}) {
        SCOPED_TRACE(std::string(model) + " / " + name + (force ? " / force_overlap" : " / no force_overlap"));
        QuantConfigTable table;
        auto dispatched = DispatchQuantization(g, *profile, &table);
        ASSERT_TRUE(dispatched.ok()) << dispatched.status().ToString();
        auto applied = ApplyRanges(ranges, &table, false);
        ASSERT_TRUE(applied.ok()) << applied.status().ToString();
        const ExpectedCounts expected = CountIndependently(g, table, *profile, force);
        AlignmentOptions options;
        options.force_overlap = force;
        auto result = RunAlignmentPass(g, *profile, options, &table);
        ASSERT_TRUE(result.ok()) << result.status().ToString();
        auto violations = VerifyAlignment(g, table, *profile, result->requantizes, options);
        for (const auto& v : violations) ADD_FAILURE() << "[" << v.check << "] " << v.message;
        EXPECT_TRUE(violations.empty());
        EXPECT_EQ(result->counters.conflicts, 0);
        EXPECT_EQ(result->counters.groups, expected.groups);
        EXPECT_EQ(result->counters.requantizes, expected.requantizes);
        EXPECT_EQ(result->counters.rule_ops, expected.rule_ops);
        if (force) {
          EXPECT_EQ(result->counters.requantizes, 0);
        }
        std::printf("[counts] %-36s %-13s force_overlap=%d rule_ops=%lld groups=%lld members=%lld "
                    "requantize=%lld\n",
                    model, name.c_str(), force ? 1 : 0,
                    static_cast<long long>(result->counters.rule_ops),
                    static_cast<long long>(result->counters.groups),
                    static_cast<long long>(result->counters.members),
                    static_cast<long long>(result->counters.requantizes));
        // Idempotent on the real models too.
        auto again = RunAlignmentPass(g, *profile, options, &table);
        ASSERT_TRUE(again.ok());
        EXPECT_FALSE(again->counters.changed);
        // The report is valid JSON with the same summary.
        const std::string json = AlignmentReportJson(profile->name, *result, table, violations);
        EXPECT_NE(json.find("\"violations\": 0"), std::string::npos);
      }
    }
  }
}

// `qalign align` end to end on the cls model: ranges.json written by SaveRanges, the JSON report
// written atomically, exit codes 0 / 1 (missing range) / 2 (bad flag).
TEST(AlignmentModels, CliAlignWritesReport) {
  const std::string model = std::string(QALIGN_MODEL_DIR) + "/ch_ppocr_mobile_v2.0_cls_infer.onnx";
  ASSERT_TRUE(std::filesystem::exists(model)) << model;
  auto graph = ImportOnnxModel(model);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const std::string dir = ::testing::TempDir() + "/qalign_cli_align";
  std::filesystem::create_directories(dir);
  RangeMap ranges = SyntheticRanges(**graph, 7);
  ASSERT_TRUE(SaveRanges(ranges, dir + "/ranges.json").ok());
  const std::string cli = QALIGN_CLI_PATH;
  const std::string base = cli + " align " + model + " --target tflite-int8 --ranges ";
  const std::string report = dir + "/report.json";
  std::filesystem::remove(report);
  int rc = std::system((base + dir + "/ranges.json --report " + report +
                        " --no-force-overlap --align Concat=output > " + dir + "/out.txt 2>&1").c_str());
  ASSERT_EQ(WEXITSTATUS(rc), 0);
  std::ifstream in(report);
  ASSERT_TRUE(in.good());
  nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["target"], "tflite-int8");
  EXPECT_EQ(j["summary"]["violations"], 0);
  EXPECT_GT(j["summary"]["groups"].get<int>(), 0);
  std::ifstream out_text(dir + "/out.txt");
  std::stringstream text;
  text << out_text.rdbuf();
  EXPECT_NE(text.str().find("alignment for target tflite-int8"), std::string::npos) << text.str();

  // A tensor missing from ranges.json: exit 1 naming it; --allow-missing: exit 0.
  const std::string missing = ranges.ranges.rbegin()->first;
  ranges.ranges.erase(missing);
  ASSERT_TRUE(SaveRanges(ranges, dir + "/partial.json").ok());
  rc = std::system((base + dir + "/partial.json > " + dir + "/err.txt 2>&1").c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 1);
  std::ifstream err(dir + "/err.txt");
  std::stringstream err_text;
  err_text << err.rdbuf();
  EXPECT_NE(err_text.str().find(missing), std::string::npos) << err_text.str();
  rc = std::system((base + dir + "/partial.json --allow-missing > /dev/null 2>&1").c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 0);
  rc = std::system((base + dir + "/ranges.json --align Concat=biggest > /dev/null 2>&1").c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 2);
}

}  // namespace
}  // namespace qalign
