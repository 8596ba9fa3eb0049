// The alignment pass on graphs built in code: the seed's example, one regression test per mistake
// of the original implementation (named after it), methods, overrides, fixed ranges, derived params.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "align_testing.h"
#include "passes/alignment/alignment_pass.h"
#include "passes/alignment_verifier.h"
#include "passes/weight_bias_params.h"
#include "testing/graph_builder.h"

namespace qalign {
namespace {

using testing::AddRange;
using testing::BuildSeedExample;
using testing::ExpectParams;
using testing::Params;
using testing::RunOk;
using testing::SeedExample;
using testing::SeedProfile;
using testing::FixedRule;
using testing::GraphBuilder;
using testing::In;
using testing::Int8Asym;
using testing::MakeProfile;
using testing::MakeTable;
using testing::Out;
using testing::Rule;

void Apply(const RangeMap& ranges, QuantConfigTable* table) {
  auto applied = ApplyRanges(ranges, table, /*allow_missing=*/false);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
}

// ---------------------------------------------------------------- the seed's example

TEST(SeedExample, ForceOverlapOnPullsProducerAndEveryConsumerIn) {
  SeedExample ex = BuildSeedExample();
  Graph& g = *ex.graph;
  QuantConfigTable& t = *ex.table;
  AlignmentResult r = RunOk(g, SeedProfile(true), &t);
  // The Add's inputs, both producers and Conv3's input (the other consumer of Conv2_out).
  TQC* anchor = In(t, g, "Add1", 0);
  for (TQC* m : {Out(t, g, "Conv1"), In(t, g, "Add1", 1), Out(t, g, "Conv2"), In(t, g, "Conv3")}) {
    EXPECT_TRUE(t.SameGroup(anchor, m)) << DescribeTqc(*m);
  }
  // Not the Add's output, not the producers' own inputs or weights.
  for (TQC* m : {Out(t, g, "Add1"), In(t, g, "Conv1"), In(t, g, "Conv2"), Out(t, g, "Conv3")}) {
    EXPECT_FALSE(t.SameGroup(anchor, m)) << DescribeTqc(*m);
  }
  EXPECT_TRUE(r.requantizes.empty());
  ASSERT_EQ(r.groups.size(), 1u);
  EXPECT_EQ(r.groups[0].members.size(), 5u);
  EXPECT_EQ(r.groups[0].method, "large");
  ExpectParams(t, anchor, Params(Int8Asym(), -2, 6));  // union of [-2,2] and [-1,6]
}

TEST(SeedExample, ForceOverlapOffKeepsProducerAndRecordsRequantize) {
  SeedExample ex = BuildSeedExample();
  Graph& g = *ex.graph;
  QuantConfigTable& t = *ex.table;
  AlignmentResult r = RunOk(g, SeedProfile(false), &t);
  TQC* add0 = In(t, g, "Add1", 0);
  // Conv1_out has one consumer: its producer joins the Add's group.
  EXPECT_TRUE(t.SameGroup(add0, Out(t, g, "Conv1")));
  EXPECT_TRUE(t.SameGroup(add0, In(t, g, "Add1", 1)));
  // Conv2_out also feeds Conv3: Conv2 keeps its params, shared with Conv3 only.
  EXPECT_FALSE(t.SameGroup(add0, Out(t, g, "Conv2")));
  EXPECT_TRUE(t.SameGroup(Out(t, g, "Conv2"), In(t, g, "Conv3")));
  EXPECT_FALSE(t.SameGroup(add0, In(t, g, "Conv3")));
  ASSERT_EQ(r.requantizes.size(), 1u);
  EXPECT_EQ(r.requantizes[0].tensor->name(), "Conv2_out");
  EXPECT_EQ(r.requantizes[0].producer->name(), "Conv2");
  EXPECT_EQ(r.requantizes[0].consumer->name(), "Add1");
  EXPECT_NE(r.requantizes[0].reason.find("force_overlap"), std::string::npos);
  ExpectParams(t, add0, Params(Int8Asym(), -2, 6));
  ExpectParams(t, Out(t, g, "Conv2"), Params(Int8Asym(), -1, 6));
  // Without the recorded requantize the verifier flags the edge.
  auto violations = VerifyAlignment(g, t, SeedProfile(false), {});
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].check, "edge");
  EXPECT_NE(violations[0].message.find("Conv2_out"), std::string::npos);
}

TEST(SeedExample, RunningTwiceChangesNothing) {
  for (bool force : {true, false}) {
    SeedExample ex = BuildSeedExample();
    RunOk(*ex.graph, SeedProfile(force), ex.table.get());
    auto before = testing::TableSnapshot(*ex.table);
    AlignmentResult again = RunOk(*ex.graph, SeedProfile(force), ex.table.get());
    EXPECT_FALSE(again.counters.changed);
    EXPECT_EQ(again.counters.links_made, 0);
    EXPECT_EQ(testing::TableSnapshot(*ex.table), before);
  }
}

TEST(SeedExample, WeightsPerChannelAndBiasDerivedAfterAlignment) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 2, 4, 4});
  Tensor w(DataType::kFloat, {2, 2, 1, 1});
  auto wv = w.values<float>();
  wv[0] = 0.5f; wv[1] = -1.0f;   // channel 0: max |w| = 1
  wv[2] = 0.25f; wv[3] = 0.125f; // channel 1: max |w| = 0.25
  Variable* wp = b.Param("w", std::move(w));
  Variable* bias = b.Param("bias", Tensor::FromVector<float>({2}, {0.1f, -0.2f}));
  Variable* c = b.Op("Conv", "conv", {x, wp, bias});
  b.Output(c);
  auto g = b.Build();
  auto t = MakeTable(*g);
  RangeMap ranges;
  AddRange(&ranges, "x", -1, 3);
  AddRange(&ranges, "conv_out", -2, 2);
  Apply(ranges, t.get());
  RunOk(*g, MakeProfile("p", {}, true), t.get());
  const TQC* wt = In(*t, *g, "conv", 1);
  ASSERT_EQ(t->scale(wt).size(), 2u);
  EXPECT_FLOAT_EQ(t->scale(wt)[0], 1.0f / 127.0f);
  EXPECT_FLOAT_EQ(t->scale(wt)[1], 0.25f / 127.0f);
  EXPECT_EQ(t->zero_point(wt), (std::vector<int64_t>{0, 0}));
  const float in_scale = Params(Int8Asym(), -1, 3).first;
  const TQC* bt = In(*t, *g, "conv", 2);
  ASSERT_EQ(t->scale(bt).size(), 2u);
  EXPECT_FLOAT_EQ(t->scale(bt)[0], in_scale / 127.0f);
  EXPECT_FLOAT_EQ(t->scale(bt)[1], in_scale * 0.25f / 127.0f);
  EXPECT_EQ(t->zero_point(bt), (std::vector<int64_t>{0, 0}));
}

// Bias b[c] must fit int32 at scale input_scale * weight_scale[c]. A near-dead input (range
// [0, 1e-11], scale ~4e-14) makes every channel's bias overflow: each weight scale is raised to
// |b[c]| / (2^31 - 1) / input_scale, just above, and the bias scale follows. With a live input only
// an all-zero weight channel (scale 2^-23) overflows, and only its scale moves.
TEST(WeightBiasParams, WeightScalesRiseSoEveryBiasFitsInt32) {
  struct Case {
    float input_max;
    std::vector<float> weights;  // 2 output channels x 2 inputs
    std::vector<float> bias;
    std::vector<bool> raised;
  };
  const std::vector<Case> cases = {
      {1e-11f, {0.5f, -1.0f, 0.25f, 0.125f}, {0.1f, -0.2f}, {true, true}},
      {3.0f, {0.5f, -1.0f, 0.0f, 0.0f}, {0.1f, 40.0f}, {false, true}},
      {3.0f, {0.5f, -1.0f, 0.25f, 0.125f}, {0.1f, -0.2f}, {false, false}},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.input_max);
    GraphBuilder b;
    Variable* x = b.Input("x", {1, 2, 4, 4});
    Variable* wp = b.Param("w", Tensor::FromVector<float>({2, 2, 1, 1}, k.weights));
    Variable* bias = b.Param("bias", Tensor::FromVector<float>({2}, k.bias));
    b.Output(b.Op("Conv", "conv", {x, wp, bias}));
    auto g = b.Build();
    auto t = MakeTable(*g);
    RangeMap ranges;
    AddRange(&ranges, "x", 0, k.input_max);
    AddRange(&ranges, "conv_out", -2, 2);
    Apply(ranges, t.get());
    AlignmentResult result = RunOk(*g, MakeProfile("p", {}, true), t.get());
    (void)result;
    auto derived = DeriveWeightAndBiasParams(t.get());
    ASSERT_TRUE(derived.ok()) << derived.status().ToString();
    const float in_scale = t->scale(In(*t, *g, "conv", 0))[0];
    const std::vector<float>& ws = t->scale(In(*t, *g, "conv", 1));
    const std::vector<float>& bs = t->scale(In(*t, *g, "conv", 2));
    ASSERT_EQ(ws.size(), 2u);
    ASSERT_EQ(bs.size(), 2u);
    int64_t raised = 0;
    for (size_t c = 0; c < 2; ++c) {
      SCOPED_TRACE(c);
      const double own = std::max(std::fabs(k.weights[2 * c]), std::fabs(k.weights[2 * c + 1]));
      const double need = std::fabs(k.bias[c]) / 2147483647.0 / in_scale;
      if (k.raised[c]) {
        ++raised;
        EXPECT_GE(ws[c], need);
        EXPECT_LE(ws[c], need * 1.0001);
      } else {
        EXPECT_FLOAT_EQ(ws[c], static_cast<float>(own / 127.0));
      }
      EXPECT_FLOAT_EQ(bs[c], in_scale * ws[c]);
      EXPECT_LE(std::fabs(k.bias[c]) / bs[c], 2147483647.0);
    }
    EXPECT_EQ(derived->raised_weight_channels, raised);
    EXPECT_EQ(derived->notes.size(), raised > 0 ? 1u : 0u);
  }
}

// ---------------------------------------------------------------- the original's mistakes

TargetProfile TfliteLike(bool force_overlap, AlignMethod concat = AlignMethod::kLarge) {
  return MakeProfile(
      "tflite-like",
      {Rule("Concat", RuleKind::kShareInputsAndOutput, concat),
       Rule("MaxPool", RuleKind::kShareInputOutput, AlignMethod::kOutput),
       Rule("Reshape", RuleKind::kShareInputOutput, AlignMethod::kOutput),
       FixedRule("Sigmoid", 1.0f / 256.0f, -128), FixedRule("Tanh", 1.0f / 128.0f, 0)},
      force_overlap);
}

RangeMap RangesForAll(const Graph& g, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> lo(-4.0f, 0.0f), hi(0.1f, 6.0f);
  RangeMap ranges;
  for (Variable* v : g.variables()) {
    if (!v->is_parameter()) AddRange(&ranges, v->name(), lo(rng), hi(rng));
  }
  return ranges;
}

// Mistake: "binding a slave re-points the slave itself, not its group root: an earlier link (e.g.
// MaxPool input<->output) is silently dropped".
TEST(OriginalMistakes, BindingSlaveNotRootDropsEarlierMaxPoolLink) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 2, 8, 8});
  Variable* a = b.Op("Relu", "a", {x});
  Variable* m = b.Op("MaxPool", "pool", {a});
  Variable* c = b.Op("Relu", "c", {x});
  Variable* cat = b.Op("Concat", "cat", {m, c}, {{"axis", Attribute::Int(1)}});
  b.Output(cat);
  auto g = b.Build();
  auto t = MakeTable(*g);
  Apply(RangesForAll(*g, 7), t.get());
  RunOk(*g, TfliteLike(true), t.get());
  TQC* root = Out(*t, *g, "cat");
  for (TQC* member : {In(*t, *g, "pool"), Out(*t, *g, "pool"), Out(*t, *g, "a"), In(*t, *g, "cat", 0),
                      In(*t, *g, "cat", 1), Out(*t, *g, "c")}) {
    EXPECT_TRUE(t->SameGroup(root, member)) << DescribeTqc(*member);
  }
}

// Mistake: "when one producer feeds two Concats the last one wins".
TEST(OriginalMistakes, BindingSlaveNotRootLastConcatWins) {
  for (AlignMethod method : {AlignMethod::kLarge, AlignMethod::kOutput}) {
    GraphBuilder b;
    Variable* x = b.Input("x", {1, 2, 8, 8});
    Variable* p = b.Op("Relu", "p", {x});
    Variable* q = b.Op("Relu", "q", {x});
    Variable* r = b.Op("Relu", "r", {x});
    Variable* cat1 = b.Op("Concat", "cat1", {p, q}, {{"axis", Attribute::Int(1)}});
    Variable* cat2 = b.Op("Concat", "cat2", {r, p}, {{"axis", Attribute::Int(1)}});
    b.Output(cat1);
    b.Output(cat2);
    auto g = b.Build();
    auto t = MakeTable(*g);
    RangeMap ranges;
    AddRange(&ranges, "x", -1, 1);
    AddRange(&ranges, "p_out", 0, 1);
    AddRange(&ranges, "q_out", 0, 2);
    AddRange(&ranges, "r_out", 0, 3);
    AddRange(&ranges, "cat1_out", 0, 4.5f);  // the widest: the first Concat must count
    AddRange(&ranges, "cat2_out", 0, 3.5f);
    Apply(ranges, t.get());
    AlignmentResult res = RunOk(*g, TfliteLike(true, method), t.get());
    // Both Concats, all three producers: one group (the producer p ties them together).
    TQC* anchor = Out(*t, *g, "p");
    for (const char* op : {"q", "r", "cat1", "cat2"}) {
      EXPECT_TRUE(t->SameGroup(anchor, Out(*t, *g, op))) << op;
    }
    ASSERT_EQ(res.groups.size(), 1u);
    EXPECT_EQ(res.groups[0].members.size(), 9u);  // 3 producer outs, 4 concat ins, 2 concat outs
    // large: every member's range; output: both Concat outputs' ranges, not the last one's.
    ExpectParams(*t, anchor, Params(Int8Asym(), 0, 4.5f));
    if (method == AlignMethod::kOutput) {
      EXPECT_EQ(res.groups[0].method, "output");
    }
  }
}

Graph* BuildConcatWithExtraInput(GraphBuilder& b) {
  Variable* x = b.Input("x", {1, 2, 8, 8});
  Variable* p = b.Op("Relu", "p", {x});
  Variable* q = b.Op("Relu", "q", {x});
  Variable* cat = b.Op("Concat", "cat", {p, q}, {{"axis", Attribute::Int(1)}});
  b.Output(cat);
  return &b.graph();
}

// Mistake: "Align to Large checks the state of the wrong loop variable, so FP32 inputs get bound
// and quantized".
TEST(OriginalMistakes, AlignToLargeBindsFp32Inputs) {
  GraphBuilder b;
  BuildConcatWithExtraInput(b);
  auto g = b.Build();
  auto t = MakeTable(*g);
  RangeMap ranges;
  AddRange(&ranges, "x", -1, 1);
  AddRange(&ranges, "p_out", -1, 1);
  AddRange(&ranges, "q_out", -100, 100);
  AddRange(&ranges, "cat_out", -1, 2);
  Apply(ranges, t.get());
  // q's output and the Concat's input 1 stay float (as if q were not quantized).
  Out(*t, *g, "q")->state = QuantState::kFp32;
  In(*t, *g, "cat", 1)->state = QuantState::kFp32;
  AlignmentResult r = RunOk(*g, TfliteLike(true), t.get());
  EXPECT_FALSE(t->SameGroup(In(*t, *g, "cat", 0), In(*t, *g, "cat", 1)));
  EXPECT_TRUE(t->scale(In(*t, *g, "cat", 1)).empty());  // never quantized
  EXPECT_EQ(In(*t, *g, "cat", 1)->state, QuantState::kFp32);
  // Its [-100, 100] does not widen the group.
  ExpectParams(*t, In(*t, *g, "cat", 0), Params(Int8Asym(), -1, 2));
  ASSERT_EQ(r.groups.size(), 1u);
  for (const TQC* m : r.groups[0].members) EXPECT_NE(m->state, QuantState::kFp32);
}

// Mistake: "it ties the inputs but not the Concat output".
TEST(OriginalMistakes, AlignToLargeLeavesConcatOutputUntied) {
  GraphBuilder b;
  BuildConcatWithExtraInput(b);
  auto g = b.Build();
  auto t = MakeTable(*g);
  RangeMap ranges;
  AddRange(&ranges, "x", -1, 1);
  AddRange(&ranges, "p_out", -1, 1);
  AddRange(&ranges, "q_out", -0.5f, 2);
  AddRange(&ranges, "cat_out", -3, 5);  // the widest: must count in "large"
  Apply(ranges, t.get());
  RunOk(*g, TfliteLike(true), t.get());
  EXPECT_TRUE(t->SameGroup(In(*t, *g, "cat", 0), Out(*t, *g, "cat")));
  ExpectParams(*t, Out(*t, *g, "cat"), Params(Int8Asym(), -3, 5));
}

// Mistake: "it crashes on per-channel configs".
TEST(OriginalMistakes, AlignToLargeCrashesOnPerChannel) {
  GraphBuilder b;
  BuildConcatWithExtraInput(b);
  auto g = b.Build();
  auto t = MakeTable(*g);
  Apply(RangesForAll(*g, 3), t.get());
  // A per-channel config on a Concat input (and its producer) never joins a group.
  Out(*t, *g, "q")->scheme = testing::Int8SymPerChannel();
  In(*t, *g, "cat", 1)->scheme = testing::Int8SymPerChannel();
  AlignmentResult r = RunOk(*g, TfliteLike(true), t.get());
  EXPECT_FALSE(t->SameGroup(In(*t, *g, "cat", 0), In(*t, *g, "cat", 1)));
  EXPECT_TRUE(t->SameGroup(In(*t, *g, "cat", 0), Out(*t, *g, "cat")));
  ASSERT_EQ(r.groups.size(), 1u);
  for (const TQC* m : r.groups[0].members) EXPECT_FALSE(m->per_channel());
}

// Mistake: "the per-op manual override ignores the requested method, and cannot override listed
// op types".
TEST(OriginalMistakes, ManualOverrideIgnoresMethodAndListedTypes) {
  GraphBuilder b;
  BuildConcatWithExtraInput(b);
  auto g = b.Build();
  RangeMap ranges;
  AddRange(&ranges, "x", -1, 1);
  AddRange(&ranges, "p_out", -1, 1);
  AddRange(&ranges, "q_out", -2, 4);
  AddRange(&ranges, "cat_out", -1.5f, 3);
  const TargetProfile profile = TfliteLike(true, AlignMethod::kOutput);  // Concat is listed
  struct Case {
    AlignmentOptions options;
    float min, max;
    std::string method;
  };
  std::vector<Case> cases(4);
  cases[0] = {{}, -1.5f, 3, "output"};  // the profile's own method
  cases[1].options.method_by_op_type["Concat"] = AlignMethod::kInput;
  cases[1].min = -1; cases[1].max = 1; cases[1].method = "input";
  cases[2].options.method_by_op_type["Concat"] = AlignMethod::kInput;
  cases[2].options.method_by_node["cat"] = AlignMethod::kLarge;  // node beats op type
  cases[2].min = -2; cases[2].max = 4; cases[2].method = "large";
  cases[3].options.method_by_node["cat"] = AlignMethod::kOutput;
  cases[3].min = -1.5f; cases[3].max = 3; cases[3].method = "output";
  for (const Case& c : cases) {
    auto t = MakeTable(*g);
    Apply(ranges, t.get());
    AlignmentResult r = RunOk(*g, profile, t.get(), c.options);
    ASSERT_EQ(r.groups.size(), 1u);
    EXPECT_EQ(r.groups[0].method, c.method);
    ExpectParams(*t, Out(*t, *g, "cat"), Params(Int8Asym(), c.min, c.max));
  }
  // "none" removes the listed rule: the Concat's ports keep their own params.
  AlignmentOptions none;
  none.method_by_op_type["Concat"] = AlignMethod::kNone;
  auto t = MakeTable(*g);
  Apply(ranges, t.get());
  AlignmentResult r = RunOk(*g, profile, t.get(), none);
  EXPECT_TRUE(r.groups.empty());
  EXPECT_FALSE(t->SameGroup(In(*t, *g, "cat", 0), In(*t, *g, "cat", 1)));
}

// Mistake: "the list of pass-through ops misses a comma, so Slice and Dropout are never treated
// as such".
TEST(OriginalMistakes, PassThroughListMissesSliceAndDropout) {
  ASSERT_TRUE(DefaultRuleKind("Slice").has_value());
  ASSERT_TRUE(DefaultRuleKind("Dropout").has_value());
  EXPECT_EQ(*DefaultRuleKind("Slice"), RuleKind::kShareInputOutput);
  EXPECT_EQ(*DefaultRuleKind("Dropout"), RuleKind::kShareInputOutput);
  EXPECT_FALSE(DefaultRuleKind("SliceDropout").has_value());
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 2, 8, 8});
  Variable* s = b.Op("Slice", "slice", {x, b.Int64Param("starts", {0}), b.Int64Param("ends", {1}),
                                        b.Int64Param("axes", {1})});
  Variable* d = b.Op("Dropout", "drop", {s});
  b.Output(d);
  auto g = b.Build();
  // Both as profile rules and as overrides on a profile that lists neither.
  const TargetProfile listed = MakeProfile(
      "listed", {Rule("Slice", RuleKind::kShareInputOutput, AlignMethod::kInput),
                 Rule("Dropout", RuleKind::kShareInputOutput, AlignMethod::kInput)},
      true);
  AlignmentOptions overrides;
  overrides.method_by_op_type["Slice"] = AlignMethod::kInput;
  overrides.method_by_op_type["Dropout"] = AlignMethod::kInput;
  for (int i = 0; i < 2; ++i) {
    auto t = MakeTable(*g);
    Apply(RangesForAll(*g, 11), t.get());
    AlignmentResult r = i == 0 ? RunOk(*g, listed, t.get())
                               : RunOk(*g, MakeProfile("empty", {}, true), t.get(), overrides);
    EXPECT_TRUE(t->SameGroup(In(*t, *g, "slice"), Out(*t, *g, "slice")));
    EXPECT_TRUE(t->SameGroup(In(*t, *g, "drop"), Out(*t, *g, "drop")));
    EXPECT_TRUE(t->SameGroup(In(*t, *g, "slice"), Out(*t, *g, "drop")));
    EXPECT_EQ(In(*t, *g, "slice", 1)->state, QuantState::kSoi);  // starts: never a member
    EXPECT_EQ(r.groups.size(), 1u);
  }
}

// Mistake: "no scheme check: int8 and uint8 members, or symmetric and asymmetric, can share a
// scale".
TEST(OriginalMistakes, NoSchemeCheckLetsInt8AndUint8Share) {
  GraphBuilder b;
  BuildConcatWithExtraInput(b);
  auto g = b.Build();
  for (int variant = 0; variant < 2; ++variant) {
    QuantScheme other = testing::Uint8Asym();
    if (variant == 1) {
      other = Int8Asym();
      other.policy.flags = kPerTensor | kSymmetric | kLinear;
    }
    auto t = MakeTable(*g);
    Apply(RangesForAll(*g, 5), t.get());
    Out(*t, *g, "q")->scheme = other;
    In(*t, *g, "cat", 1)->scheme = other;
    const TargetProfile profile = TfliteLike(true);
    auto failed = RunAlignmentPass(*g, profile, {}, t.get());
    ASSERT_FALSE(failed.ok());
    EXPECT_NE(failed.status().message().find("scheme mismatch"), std::string::npos);
    EXPECT_NE(failed.status().message().find("Concat 'cat'"), std::string::npos);
    EXPECT_NE(failed.status().message().find("q_out"), std::string::npos);

    auto relaxed_table = MakeTable(*g);
    Apply(RangesForAll(*g, 5), relaxed_table.get());
    Out(*relaxed_table, *g, "q")->scheme = other;
    In(*relaxed_table, *g, "cat", 1)->scheme = other;
    AlignmentOptions relax;
    relax.requantize_on_scheme_mismatch = true;
    AlignmentResult r = RunOk(*g, profile, relaxed_table.get(), relax);
    EXPECT_FALSE(relaxed_table->SameGroup(In(*relaxed_table, *g, "cat", 0),
                                          In(*relaxed_table, *g, "cat", 1)));
    ASSERT_EQ(r.requantizes.size(), 1u);
    EXPECT_EQ(r.requantizes[0].tensor->name(), "q_out");
    EXPECT_EQ(r.requantizes[0].consumer->name(), "cat");
    EXPECT_NE(r.requantizes[0].reason.find("scheme mismatch"), std::string::npos);
    EXPECT_EQ(r.counters.conflicts, 1);
  }
}

// Mistake: "the cascade guard counts consumers of the producing op instead of the tensor".
TEST(OriginalMistakes, CascadeGuardCountsOpConsumersNotTensorConsumers) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 4, 8, 8});
  std::vector<Variable*> parts = b.OpN("Split", "split", {x}, 2, {{"axis", Attribute::Int(1)}});
  Variable* other = b.Op("Relu", "other", {x});
  Variable* cat = b.Op("Concat", "cat", {parts[0], other}, {{"axis", Attribute::Int(1)}});
  Variable* r = b.Op("Relu", "r", {parts[1]});  // the split op's second consumer
  b.Output(cat);
  b.Output(r);
  auto g = b.Build();
  auto t = MakeTable(*g);
  Apply(RangesForAll(*g, 9), t.get());
  AlignmentResult res = RunOk(*g, TfliteLike(false), t.get());
  // split_out0 has one consumer (the Concat): its producer joins, no requantize.
  EXPECT_TRUE(res.requantizes.empty());
  EXPECT_TRUE(t->SameGroup(Out(*t, *g, "split", 0), In(*t, *g, "cat", 0)));
  EXPECT_FALSE(t->SameGroup(Out(*t, *g, "split", 1), In(*t, *g, "cat", 0)));
}

// Cascade control counts consumers that read a tensor's values: a Shape or Size op reading only
// its shape does not keep the producer out of the Concat's group, a Relu does (and the count in
// the requantize's reason leaves the Shape out).
TEST(AlignmentPass, CascadeControlIgnoresShapeOnlyConsumers) {
  for (const char* other : {"Shape", "Size", "Relu"}) {
    GraphBuilder b;
    Variable* x = b.Input("x", {1, 4, 8, 8});
    Variable* p = b.Op("Relu", "p", {x});
    Variable* q = b.Op("Relu", "q", {x});
    Variable* cat = b.Op("Concat", "cat", {p, q}, {{"axis", Attribute::Int(1)}});
    Variable* side = b.Op(other, "side", {p});
    Variable* shape = b.Op("Shape", "shape", {p});
    b.Output(cat);
    b.Output(side);
    b.Output(shape);
    auto g = b.Build();
    auto t = MakeTable(*g);
    Apply(RangesForAll(*g, 17), t.get());
    AlignmentResult r = RunOk(*g, TfliteLike(false), t.get());
    const bool values = std::string(other) == "Relu";
    EXPECT_EQ(t->SameGroup(Out(*t, *g, "p"), In(*t, *g, "cat", 0)), !values) << other;
    EXPECT_TRUE(t->SameGroup(Out(*t, *g, "q"), In(*t, *g, "cat", 1))) << other;
    if (values) {
      ASSERT_EQ(r.requantizes.size(), 1u);
      EXPECT_EQ(r.requantizes[0].tensor->name(), "p_out");
      // cat and side read the values, shape only the shape.
      EXPECT_NE(r.requantizes[0].reason.find("has 2 consumer(s)"), std::string::npos)
          << r.requantizes[0].reason;
    } else {
      EXPECT_TRUE(r.requantizes.empty()) << other;
    }
    EXPECT_TRUE(VerifyAlignment(*g, *t, TfliteLike(false), r.requantizes).empty()) << other;
  }
}

// Mistake: the cascade guard "ignores graph outputs".
TEST(OriginalMistakes, CascadeGuardIgnoresGraphOutputs) {
  for (bool force : {false, true}) {
    GraphBuilder b;
    BuildConcatWithExtraInput(b);
    b.Output(b.graph().FindVariable("p_out"));  // also a graph output, single consumer
    auto g = b.Build();
    auto t = MakeTable(*g);
    Apply(RangesForAll(*g, 13), t.get());
    AlignmentResult r = RunOk(*g, TfliteLike(force), t.get());
    EXPECT_EQ(t->SameGroup(Out(*t, *g, "p"), In(*t, *g, "cat", 0)), force);
    if (force) {
      EXPECT_TRUE(r.requantizes.empty());
    } else {
      ASSERT_EQ(r.requantizes.size(), 1u);
      EXPECT_EQ(r.requantizes[0].tensor->name(), "p_out");
      EXPECT_NE(r.requantizes[0].reason.find("graph output"), std::string::npos);
      // The graph output keeps its own range's params.
      ExpectParams(*t, Out(*t, *g, "p"),
                   Params(Int8Asym(), Out(*t, *g, "p")->stats.min, Out(*t, *g, "p")->stats.max));
    }
  }
}

// Mistake: the cascade guard "also rebinds that op's own inputs".
TEST(OriginalMistakes, CascadeGuardRebindsProducerInputs) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 2, 8, 8});
  Variable* p = b.Op("Relu", "p", {x});
  Variable* conv = b.Op("Conv", "conv", {p, b.RandomParam("w", {2, 2, 1, 1}, 4)});
  Variable* q = b.Op("Relu", "q", {p});
  Variable* cat = b.Op("Concat", "cat", {conv, q}, {{"axis", Attribute::Int(1)}});
  b.Output(cat);
  auto g = b.Build();
  auto t = MakeTable(*g);
  Apply(RangesForAll(*g, 17), t.get());
  RunOk(*g, TfliteLike(true), t.get());
  TQC* group = In(*t, *g, "cat", 0);
  EXPECT_TRUE(t->SameGroup(group, Out(*t, *g, "conv")));
  EXPECT_TRUE(t->SameGroup(group, Out(*t, *g, "q")));
  // The producers' inputs are not pulled in.
  EXPECT_FALSE(t->SameGroup(group, In(*t, *g, "conv", 0)));
  EXPECT_FALSE(t->SameGroup(group, In(*t, *g, "q", 0)));
  EXPECT_FALSE(t->SameGroup(group, Out(*t, *g, "p")));
}

// Mistake: "one pass in storage order, no worklist: results depend on op order".
TEST(OriginalMistakes, ResultsDependOnStorageOrder) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 2, 8, 8});
  Variable* s = b.Op("Sigmoid", "sig", {x});
  Variable* h = b.Op("Tanh", "tanh", {x});
  Variable* p = b.Op("MaxPool", "pool", {s});
  Variable* cat = b.Op("Concat", "cat", {p, h}, {{"axis", Attribute::Int(1)}});
  Variable* cat2 = b.Op("Concat", "cat2", {h, s}, {{"axis", Attribute::Int(1)}});
  b.Output(cat);
  b.Output(cat2);
  auto g = b.Build();
  const RangeMap ranges = RangesForAll(*g, 21);
  std::vector<std::string> reference;
  std::set<std::string> reference_rq;
  std::vector<Operation*> order = g->operations();
  std::mt19937 rng(99);
  for (int trial = 0; trial < 12; ++trial) {
    ASSERT_TRUE(g->SetStorageOrder(order).ok());
    for (bool force : {true}) {
      auto t = MakeTable(*g);
      Apply(ranges, t.get());
      AlignmentResult r = RunOk(*g, TfliteLike(force), t.get());
      if (trial == 0) {
        reference = testing::GroupSignature(*t);
        reference_rq = testing::RequantizeSet(r.requantizes);
        EXPECT_FALSE(reference_rq.empty());  // the fixed ranges conflict somewhere
      } else {
        EXPECT_EQ(testing::GroupSignature(*t), reference) << "trial " << trial;
        EXPECT_EQ(testing::RequantizeSet(r.requantizes), reference_rq) << "trial " << trial;
      }
    }
    std::shuffle(order.begin(), order.end(), rng);
  }
}

// Mistake: "conflicts become invisible double quantization, with no report and no verifier".
TEST(OriginalMistakes, ConflictsBecomeInvisibleDoubleQuantization) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 2, 8, 8});
  Variable* s = b.Op("Sigmoid", "sig", {x});
  Variable* h = b.Op("Tanh", "tanh", {x});
  Variable* cat = b.Op("Concat", "cat", {s, h}, {{"axis", Attribute::Int(1)}});
  b.Output(cat);
  auto g = b.Build();
  const TargetProfile profile = TfliteLike(true);
  {
    // Before the pass the verifier sees the untied Concat and the missing fixed ranges.
    auto t = MakeTable(*g);
    Apply(RangesForAll(*g, 23), t.get());
    auto violations = VerifyAlignment(*g, *t, profile, {});
    bool rule = false, fixed = false;
    for (const auto& v : violations) {
      rule |= v.check == "rule";
      fixed |= v.check == "fixed";
    }
    EXPECT_TRUE(rule);
    EXPECT_TRUE(fixed);
  }
  auto t = MakeTable(*g);
  Apply(RangesForAll(*g, 23), t.get());
  AlignmentResult r = RunOk(*g, profile, t.get());
  // Sigmoid (1/256, -128) and Tanh (1/128, 0) cannot share: one edge is requantized, reported.
  ASSERT_EQ(r.requantizes.size(), 1u);
  EXPECT_NE(r.requantizes[0].reason.find("conflicting fixed params"), std::string::npos);
  EXPECT_EQ(r.counters.conflicts, 1);
  EXPECT_FALSE(r.notes.empty());
  // Both fixed outputs keep their fixed params; the Concat takes exactly one of them.
  ExpectParams(*t, Out(*t, *g, "sig"), {1.0f / 256.0f, -128});
  ExpectParams(*t, Out(*t, *g, "tanh"), {1.0f / 128.0f, 0});
  const float cat_scale = t->scale(Out(*t, *g, "cat"))[0];
  EXPECT_TRUE(cat_scale == 1.0f / 256.0f || cat_scale == 1.0f / 128.0f);
}

// ---------------------------------------------------------------- more behaviour

TEST(AlignmentPass, FixedOutputRangePropagatesThroughPassThroughOps) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 8});
  Variable* s = b.Op("Sigmoid", "sig", {x});
  Variable* r = b.Op("Reshape", "reshape", {s, b.Int64Param("shape", {8})});
  b.Output(r);
  auto g = b.Build();
  auto t = MakeTable(*g);
  Apply(RangesForAll(*g, 29), t.get());
  AlignmentResult res = RunOk(*g, TfliteLike(true), t.get());
  ExpectParams(*t, Out(*t, *g, "reshape"), {1.0f / 256.0f, -128});
  ASSERT_EQ(res.groups.size(), 1u);
  EXPECT_EQ(res.groups[0].method, "fixed");
}

TEST(AlignmentPass, MethodConflictResolvedByPriorityAndReported) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 2, 8, 8});
  Variable* p = b.Op("Relu", "p", {x});
  Variable* q = b.Op("Relu", "q", {x});
  Variable* cat = b.Op("Concat", "cat", {p, q}, {{"axis", Attribute::Int(1)}});
  Variable* pool = b.Op("MaxPool", "pool", {cat});
  b.Output(pool);
  auto g = b.Build();
  auto t = MakeTable(*g);
  RangeMap ranges;
  AddRange(&ranges, "x", -1, 1);
  AddRange(&ranges, "p_out", 0, 1);
  AddRange(&ranges, "q_out", 0, 5);
  AddRange(&ranges, "cat_out", 0, 4);
  AddRange(&ranges, "pool_out", 0, 3);
  Apply(ranges, t.get());
  // Concat wants large, MaxPool wants output: one group; large wins.
  AlignmentResult r = RunOk(*g, TfliteLike(true, AlignMethod::kLarge), t.get());
  ASSERT_EQ(r.groups.size(), 1u);
  EXPECT_EQ(r.groups[0].method, "large");
  EXPECT_EQ(r.groups[0].reason,
            "Concat 'cat' target rule (inputs and output share) and 1 more; methods conflict "
            "(Concat 'cat' wants large, MaxPool 'pool' wants output), chose large by priority "
            "large > output > input");
  EXPECT_EQ(r.counters.method_conflicts, 1);
  ExpectParams(*t, Out(*t, *g, "pool"), Params(Int8Asym(), 0, 5));
  // The note names the group by its root and gives the same reason, also when the group list
  // (and so the group's reason) is not built.
  ASSERT_EQ(r.notes.size(), 1u);
  const std::string note = r.notes[0];
  EXPECT_EQ(note.rfind("group of ", 0), 0u) << note;
  EXPECT_EQ(note.substr(note.find(": ") + 2), r.groups[0].reason);
  AlignmentOptions no_list;
  no_list.collect_groups = false;
  AlignmentResult again = RunOk(*g, TfliteLike(true, AlignMethod::kLarge), t.get(), no_list);
  EXPECT_TRUE(again.groups.empty());
  ASSERT_EQ(again.notes.size(), 1u);
  EXPECT_EQ(again.notes[0], note);
}

TEST(AlignmentPass, BakedMemberBeatsRuleMethodButNotUserOverride) {
  GraphBuilder b;
  BuildConcatWithExtraInput(b);
  auto g = b.Build();
  for (bool override_it : {false, true}) {
    auto t = MakeTable(*g);
    Apply(RangesForAll(*g, 31), t.get());
    TQC* baked = Out(*t, *g, "q");
    baked->state = QuantState::kBaked;
    baked->scale = {0.5f};
    baked->zero_point = {3};
    AlignmentOptions options;
    if (override_it) options.method_by_node["cat"] = AlignMethod::kInput;
    AlignmentResult r = RunOk(*g, TfliteLike(true), t.get(), options);
    ASSERT_EQ(r.groups.size(), 1u);
    if (override_it) {
      EXPECT_EQ(r.groups[0].method, "input");
      const TQC* in0 = In(*t, *g, "cat", 0);
      ExpectParams(*t, in0, Params(Int8Asym(), in0->stats.min, in0->stats.max));
    } else {
      EXPECT_EQ(r.groups[0].method, "baked");
      ExpectParams(*t, In(*t, *g, "cat", 0), {0.5f, 3});
    }
  }
}

TEST(AlignmentPass, OverridesAreValidated) {
  GraphBuilder b;
  BuildConcatWithExtraInput(b);
  auto g = b.Build();
  auto t = MakeTable(*g);
  Apply(RangesForAll(*g, 1), t.get());
  AlignmentOptions bad_node;
  bad_node.method_by_node["nope"] = AlignMethod::kLarge;
  auto r1 = RunAlignmentPass(*g, TfliteLike(true), bad_node, t.get());
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.status().message().find("'nope'"), std::string::npos);
  AlignmentOptions bad_type;
  bad_type.method_by_op_type["Conv"] = AlignMethod::kLarge;  // no sharing kind for Conv
  auto r2 = RunAlignmentPass(*g, TfliteLike(true), bad_type, t.get());
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("Conv"), std::string::npos);

  std::map<std::string, AlignMethod> parsed;
  EXPECT_TRUE(ParseAlignAssignment("Concat=large", &parsed).ok());
  EXPECT_TRUE(ParseAlignAssignment("a=b=output", &parsed).ok());
  EXPECT_EQ(parsed.at("Concat"), AlignMethod::kLarge);
  EXPECT_EQ(parsed.at("a=b"), AlignMethod::kOutput);
  EXPECT_FALSE(ParseAlignAssignment("Concat", &parsed).ok());
  EXPECT_FALSE(ParseAlignAssignment("Concat=biggest", &parsed).ok());
}

TEST(AlignmentPass, AlignConfigFileMergesAndNamesErrors) {
  const std::string dir = ::testing::TempDir() + "/qalign_align_config";
  std::filesystem::create_directories(dir);
  auto write = [&dir](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  AlignmentOptions options;
  const std::string good = write("good.json", R"({"op_types": {"Concat": "large"},
      "nodes": {"cat_3": "output"}, "force_overlap": false, "requantize_on_scheme_mismatch": true})");
  ASSERT_TRUE(LoadAlignConfig(good, &options).ok());
  EXPECT_EQ(options.method_by_op_type.at("Concat"), AlignMethod::kLarge);
  EXPECT_EQ(options.method_by_node.at("cat_3"), AlignMethod::kOutput);
  ASSERT_TRUE(options.force_overlap.has_value());
  EXPECT_FALSE(*options.force_overlap);
  EXPECT_TRUE(options.requantize_on_scheme_mismatch);
  for (const auto& [name, text, expect] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"unknown.json", R"({"op_type": {}})", "unknown key \"op_type\""},
           {"method.json", R"({"nodes": {"n": "widest"}})", "widest"},
           {"bool.json", R"({"force_overlap": "yes"})", "force_overlap"},
           {"array.json", "[]", "expected a JSON object"}}) {
    AlignmentOptions o;
    const std::string path = write(name, text);
    Status s = LoadAlignConfig(path, &o);
    ASSERT_FALSE(s.ok()) << name;
    EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(expect), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace qalign
