// How a group's params are chosen when rules meet or a range is missing: the `output` method beats
// `input` when both tie one group, and a rule whose method port has no range falls back to the
// union of the members' ranges (method `large`), saying so in the group's reason.
#include <gtest/gtest.h>

#include "align_testing.h"
#include "passes/alignment/alignment_pass.h"
#include "passes/alignment_verifier.h"
#include "testing/graph_builder.h"

namespace qalign {
namespace {

using testing::AddRange;
using testing::ExpectParams;
using testing::Params;
using testing::RunOk;
using testing::GraphBuilder;
using testing::In;
using testing::Int8Asym;
using testing::MakeProfile;
using testing::MakeTable;
using testing::Out;
using testing::Rule;

// x -> Relu "p" and Sigmoid "q" -> Concat "cat" (axis 1) -> output.
std::unique_ptr<Graph> ReluAndSigmoidConcat() {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 2, 8, 8});
  Variable* p = b.Op("Relu", "p", {x});
  Variable* q = b.Op("Sigmoid", "q", {x});
  b.Output(b.Op("Concat", "cat", {p, q}, {{"axis", Attribute::Int(1)}}));
  return b.Build();
}

// p -> MaxPool (method input) -> Reshape (method output): one group, where the output method wins
// by priority, so the group takes the Reshape's output range [0, 5], not the MaxPool input's
// [0, 2].
TEST(AlignmentMethods, OutputBeatsInputWhenBothMeetInOneGroup) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 2, 8, 8});
  Variable* p = b.Op("Relu", "p", {x});
  Variable* pool = b.Op("MaxPool", "pool", {p});
  Variable* reshape = b.Op("Reshape", "reshape", {pool, b.Int64Param("shape", {1, 128})});
  b.Output(reshape);
  auto g = b.Build();
  auto t = MakeTable(*g);
  RangeMap ranges;
  AddRange(&ranges, "x", -1, 1);
  AddRange(&ranges, "p_out", 0, 2);
  AddRange(&ranges, "pool_out", 0, 3);
  AddRange(&ranges, "reshape_out", 0, 5);
  ASSERT_TRUE(ApplyRanges(ranges, t.get(), false).ok());
  const TargetProfile profile = MakeProfile(
      "mixed", {Rule("MaxPool", RuleKind::kShareInputOutput, AlignMethod::kInput),
                Rule("Reshape", RuleKind::kShareInputOutput, AlignMethod::kOutput)},
      true);
  AlignmentResult r = RunOk(*g, profile, t.get());
  ASSERT_EQ(r.groups.size(), 1u);
  EXPECT_EQ(r.groups[0].method, "output");
  EXPECT_EQ(r.groups[0].reason,
            "MaxPool 'pool' target rule (input and output share) and 1 more; methods conflict "
            "(MaxPool 'pool' wants input, Reshape 'reshape' wants output), chose output by "
            "priority large > output > input");
  EXPECT_EQ(r.counters.method_conflicts, 1);
  for (const TQC* m : {Out(*t, *g, "p"), In(*t, *g, "pool"), Out(*t, *g, "reshape")}) {
    ExpectParams(*t, m, Params(Int8Asym(), 0, 5));
  }
}

// A Concat aligned to its output, whose output has no calibrated range: the group falls back to
// the union of the inputs' ranges, and the reason says so.
TEST(AlignmentMethods, MissingMethodPortRangeFallsBackToTheUnion) {
  auto g = ReluAndSigmoidConcat();
  auto t = MakeTable(*g);
  RangeMap ranges;
  AddRange(&ranges, "x", -1, 1);
  AddRange(&ranges, "p_out", -0.5f, 3);
  AddRange(&ranges, "q_out", 0, 1);
  AddRange(&ranges, "cat_out", 0, 3);
  ASSERT_TRUE(ApplyRanges(ranges, t.get(), false).ok());
  // The output port's range is gone (as when calibration never saw the tensor).
  Out(*t, *g, "cat")->stats = CalibrationStats{};
  const TargetProfile profile = MakeProfile(
      "concat-output", {Rule("Concat", RuleKind::kShareInputsAndOutput, AlignMethod::kOutput)},
      true);
  AlignmentResult r = RunOk(*g, profile, t.get());
  ASSERT_EQ(r.groups.size(), 1u);
  EXPECT_EQ(r.groups[0].method, "large");
  EXPECT_NE(r.groups[0].reason.find("the output port has no range, used the union of members"),
            std::string::npos)
      << r.groups[0].reason;
  EXPECT_EQ(r.counters.groups_without_range, 0);
  for (const TQC* m : {In(*t, *g, "cat", 0), In(*t, *g, "cat", 1), Out(*t, *g, "cat")}) {
    ExpectParams(*t, m, Params(Int8Asym(), -0.5f, 3));
  }
}

// `optimal` hands the group's members to options.optimal_range (the pipeline's histogram search)
// and takes its range; without it the group is computed as `large`, and the reason says so.
TEST(AlignmentMethods, OptimalTakesTheRangeOfItsSearch) {
  auto g = ReluAndSigmoidConcat();
  const TargetProfile profile = MakeProfile(
      "concat-optimal", {Rule("Concat", RuleKind::kShareInputsAndOutput, AlignMethod::kOptimal)},
      true);
  for (bool with_search : {true, false}) {
    SCOPED_TRACE(with_search ? "with search" : "without");
    auto t = MakeTable(*g);
    RangeMap ranges;
    AddRange(&ranges, "x", -1, 1);
    AddRange(&ranges, "p_out", 0, 6);
    AddRange(&ranges, "q_out", 0, 1);
    AddRange(&ranges, "cat_out", 0, 6);
    ASSERT_TRUE(ApplyRanges(ranges, t.get(), false).ok());
    AlignmentOptions options;
    size_t members_seen = 0;
    if (with_search) {
      options.optimal_range = [&](const std::vector<TQC*>& members, float* lo, float* hi) {
        members_seen = members.size();
        *lo = 0.0f;
        *hi = 2.0f;
        return true;
      };
    }
    AlignmentResult r = RunOk(*g, profile, t.get(), options);
    ASSERT_EQ(r.groups.size(), 1u);
    EXPECT_EQ(r.groups[0].method, with_search ? "optimal" : "large");
    // Relu and Sigmoid outputs (producer side) and the Concat's three ports.
    EXPECT_EQ(members_seen, with_search ? 5u : 0u);
    for (const TQC* m : {In(*t, *g, "cat", 0), In(*t, *g, "cat", 1), Out(*t, *g, "cat")}) {
      ExpectParams(*t, m, Params(Int8Asym(), 0, with_search ? 2 : 6));
    }
  }
}

// A fixed output range is what the kernel computes: ResolveRule keeps the profile's rule whatever
// the overrides say, and the pass keeps the range, with a note.
TEST(AlignmentMethods, OverridesNeverChangeAFixedOutputRule) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 8});
  Variable* s = b.Op("Sigmoid", "sig", {x});
  b.Output(s);
  auto g = b.Build();
  auto t = MakeTable(*g);
  RangeMap ranges;
  AddRange(&ranges, "x", -4, 4);
  AddRange(&ranges, "sig_out", 0, 1);
  ASSERT_TRUE(ApplyRanges(ranges, t.get(), false).ok());
  const TargetProfile profile =
      MakeProfile("fixed", {testing::FixedRule("Sigmoid", 1.0f / 256.0f, -128)}, true);
  AlignmentOptions options;
  options.method_by_node["sig"] = AlignMethod::kLarge;
  options.method_by_op_type["Sigmoid"] = AlignMethod::kInput;
  auto rule = ResolveRule(*g->FindOperation("sig"), profile, options);
  ASSERT_TRUE(rule.ok()) << rule.status().ToString();
  EXPECT_EQ(rule->kind, RuleKind::kFixedOutput);
  EXPECT_EQ(rule->source, RuleSource::kProfile);
  EXPECT_EQ(rule->method, AlignMethod::kNone);
  AlignmentResult r = RunOk(*g, profile, t.get(), options);
  ExpectParams(*t, Out(*t, *g, "sig"), {1.0f / 256.0f, -128});
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("fixed output range kept"), std::string::npos) << r.notes[0];
}

}  // namespace
}  // namespace qalign
