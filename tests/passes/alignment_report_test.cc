// The alignment report: JSON fields, resolution loss, requantize edges, summary, text table.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "align_testing.h"
#include "export/alignment_report.h"
#include "passes/alignment/alignment_pass.h"
#include "passes/alignment_verifier.h"
#include "testing/graph_builder.h"

namespace qalign {
namespace {

using testing::AddRange;
using testing::GraphBuilder;
using testing::Int8Asym;

float ScaleOf(float min, float max) {
  float s = 0;
  int64_t z = 0;
  EXPECT_TRUE(ComputeParams(Int8Asym(), min, max, &s, &z).ok());
  return s;
}

TEST(AlignmentReport, JsonListsGroupsMembersLossRequantizesAndSummary) {
  // The seed's example with force_overlap off: one Add group, one requantize edge.
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 3, 8, 8});
  Variable* c1 = b.Op("Conv", "Conv1", {x, b.RandomParam("w1", {4, 3, 1, 1}, 1)});
  Variable* c2 = b.Op("Conv", "Conv2", {x, b.RandomParam("w2", {4, 3, 1, 1}, 2)});
  Variable* a = b.Op("Add", "Add1", {c1, c2});
  Variable* c3 = b.Op("Conv", "Conv3", {c2, b.RandomParam("w3", {4, 4, 1, 1}, 3)});
  b.Output(a);
  b.Output(c3);
  auto g = b.Build();
  auto t = testing::MakeTable(*g);
  RangeMap ranges;
  AddRange(&ranges, "x", -1, 1);
  AddRange(&ranges, "Conv1_out", -2, 2);
  AddRange(&ranges, "Conv2_out", -1, 6);
  AddRange(&ranges, "Add1_out", -3, 8);
  AddRange(&ranges, "Conv3_out", -4, 4);
  ASSERT_TRUE(ApplyRanges(ranges, t.get(), false).ok());
  const TargetProfile profile = testing::MakeProfile(
      "seed", {testing::Rule("Add", RuleKind::kShareInputs, AlignMethod::kLarge)}, false);
  auto result = RunAlignmentPass(*g, profile, {}, t.get());
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  auto violations = VerifyAlignment(*g, *t, profile, result->requantizes);
  ASSERT_TRUE(violations.empty());

  nlohmann::json j = nlohmann::json::parse(AlignmentReportJson("seed", *result, *t, violations));
  EXPECT_EQ(j["target"], "seed");
  ASSERT_EQ(j["groups"].size(), 1u);
  const auto& group = j["groups"][0];
  EXPECT_EQ(group["id"], 0);
  EXPECT_EQ(group["method"], "large");
  EXPECT_NE(group["reason"].get<std::string>().find("Add 'Add1'"), std::string::npos);
  const float shared = ScaleOf(-2, 6);
  EXPECT_FLOAT_EQ(group["scale"][0].get<float>(), shared);
  ASSERT_EQ(group["members"].size(), 3u);  // Add1 input:0, input:1, Conv1 output:0
  // Members sorted by op name then port: Add1 input:0, Add1 input:1, Conv1 output:0.
  EXPECT_EQ(group["members"][0]["op"], "Add1");
  EXPECT_EQ(group["members"][0]["port"], "input:0");
  EXPECT_EQ(group["members"][0]["tensor"], "Conv1_out");
  EXPECT_EQ(group["members"][1]["port"], "input:1");
  EXPECT_EQ(group["members"][1]["tensor"], "Conv2_out");
  EXPECT_EQ(group["members"][2]["op"], "Conv1");
  EXPECT_EQ(group["members"][2]["port"], "output:0");
  // resolution_loss = shared_scale / own_scale.
  EXPECT_FLOAT_EQ(group["members"][0]["own_min"].get<float>(), -2.0f);
  EXPECT_NEAR(group["members"][0]["resolution_loss"].get<double>(), shared / ScaleOf(-2, 2), 1e-6);
  EXPECT_NEAR(group["members"][1]["resolution_loss"].get<double>(), shared / ScaleOf(-1, 6), 1e-6);
  ASSERT_EQ(j["requantize"].size(), 1u);
  EXPECT_EQ(j["requantize"][0]["tensor"], "Conv2_out");
  EXPECT_EQ(j["requantize"][0]["producer"], "Conv2");
  EXPECT_EQ(j["requantize"][0]["consumer"], "Add1");
  EXPECT_FALSE(j["requantize"][0]["reason"].get<std::string>().empty());
  EXPECT_EQ(j["summary"]["groups"], 1);
  EXPECT_EQ(j["summary"]["members"], 3);
  EXPECT_EQ(j["summary"]["requantize"], 1);
  EXPECT_EQ(j["summary"]["violations"], 0);

  const std::string text = AlignmentReportText("seed", *result, *t, violations);
  EXPECT_NE(text.find("1 groups, 3 members, 1 requantize edges, 0 violations"), std::string::npos)
      << text;
  EXPECT_NE(text.find("tensor 'Conv2_out' Conv 'Conv2' -> Add 'Add1'"), std::string::npos) << text;
}

}  // namespace
}  // namespace qalign
