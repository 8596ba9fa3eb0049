// Invariants of the alignment pass on 240 seeded random DAGs (Conv, Relu, Concat, Add, pooling,
// Reshape, Resize, Sigmoid/Tanh), random ranges, random rules and force_overlap, some FP32
// tensors and some uint8 ops: every rule holds or has a recorded requantize, a second run changes
// nothing, shuffling the stored op order gives the same groups, params and requantizes, and the
// union-find has no cycles.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "align_testing.h"
#include "random_dag.h"
#include "passes/alignment/alignment_pass.h"
#include "passes/alignment_verifier.h"
#include "testing/graph_builder.h"

namespace qalign {
namespace {

using testing::MakeCaseTable;
using testing::MakeRandomCase;
using testing::RandomCase;

TEST(AlignmentRandomDags, InvariantsHoldOn240SeededGraphs) {
  int with_requantize = 0, with_groups = 0, with_conflicts = 0;
  for (uint32_t seed = 1; seed <= 240; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    RandomCase c = MakeRandomCase(seed);
    Graph& g = *c.graph;
    auto table = MakeCaseTable(c);
    auto first = RunAlignmentPass(g, c.profile, c.options, table.get());
    ASSERT_TRUE(first.ok()) << first.status().ToString();

    // Every rule holds or has a recorded requantize; no FP32/per-channel member, one scheme per
    // group, no cycle (all checked by the verifier).
    auto violations = VerifyAlignment(g, *table, c.profile, first->requantizes, c.options);
    for (const auto& v : violations) ADD_FAILURE() << "[" << v.check << "] " << v.message;
    ASSERT_TRUE(violations.empty());
    // With force_overlap on, the only requantizes are dropped conflicts (a rule tie and the
    // default edge dropped on the same edge give one requantize).
    if (c.options.force_overlap.value_or(c.profile.force_overlap)) {
      EXPECT_LE(first->counters.requantizes, first->counters.conflicts);
      EXPECT_EQ(first->counters.requantizes > 0, first->counters.conflicts > 0);
      for (const RequantizeEdge& e : first->requantizes) {
        EXPECT_EQ(e.reason.find("force_overlap"), std::string::npos) << e.reason;
      }
    }
    with_requantize += first->requantizes.empty() ? 0 : 1;
    with_groups += first->groups.empty() ? 0 : 1;
    with_conflicts += first->counters.conflicts > 0 ? 1 : 0;

    // Idempotent.
    const auto snapshot = testing::TableSnapshot(*table);
    const auto signature = testing::GroupSignature(*table);
    const auto requantizes = testing::RequantizeSet(first->requantizes);
    auto second = RunAlignmentPass(g, c.profile, c.options, table.get());
    ASSERT_TRUE(second.ok()) << second.status().ToString();
    EXPECT_FALSE(second->counters.changed);
    EXPECT_EQ(testing::TableSnapshot(*table), snapshot);
    EXPECT_EQ(testing::RequantizeSet(second->requantizes), requantizes);

    // Order-independent: a shuffled storage order gives a fresh table with new TQC ids.
    std::vector<Operation*> order = g.operations();
    std::mt19937 rng(seed * 7919u);
    for (int shuffle = 0; shuffle < 2; ++shuffle) {
      std::shuffle(order.begin(), order.end(), rng);
      ASSERT_TRUE(g.SetStorageOrder(order).ok());
      auto shuffled = MakeCaseTable(c);
      auto r = RunAlignmentPass(g, c.profile, c.options, shuffled.get());
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(testing::GroupSignature(*shuffled), signature);
      EXPECT_EQ(testing::RequantizeSet(r->requantizes), requantizes);
      ASSERT_EQ(r->groups.size(), first->groups.size());
      for (size_t i = 0; i < r->groups.size(); ++i) {
        EXPECT_EQ(r->groups[i].method, first->groups[i].method);
        EXPECT_EQ(r->groups[i].reason, first->groups[i].reason);
        EXPECT_EQ(r->groups[i].members.size(), first->groups[i].members.size());
      }
    }
  }
  // The generator must exercise every path, or the invariants prove little.
  EXPECT_GT(with_requantize, 20);
  EXPECT_GT(with_groups, 150);
  EXPECT_GT(with_conflicts, 5);
}

}  // namespace
}  // namespace qalign
