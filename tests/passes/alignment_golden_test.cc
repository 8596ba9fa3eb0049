// Golden files for the alignment pass on graphs built in code: the seed's example (force_overlap on
// and off) and 40 seeded random DAGs. The dump holds every TQC's state, root and params, the
// groups, the requantize edges and the notes, and a second run's counters, so a refactor of the
// pass that changes any decision fails here. Update: QALIGN_UPDATE_GOLDEN=1 ctest -R golden.
#include <gtest/gtest.h>

#include "align_testing.h"
#include "alignment_outcome.h"
#include "passes/alignment/alignment_pass.h"
#include "random_dag.h"
#include "testing/graph_builder.h"

namespace qalign {
namespace {

using testing::AddRange;
using testing::GraphBuilder;

// Runs the pass twice: the dump of the first run, then the second run's counters (idempotence).
std::string RunAndPrint(const Graph& graph, const TargetProfile& profile,
                        const AlignmentOptions& options, QuantConfigTable* table) {
  auto first = testing::RunAlignmentStep(graph, profile, options, table);
  if (!first.ok()) return "error " + first.status().ToString() + "\n";
  std::string text = testing::PrintAlignmentOutcome(*table, *first);
  auto second = testing::RunAlignmentStep(graph, profile, options, table);
  if (!second.ok()) return text + "second run: error " + second.status().ToString() + "\n";
  text += "second run: changed=" + std::to_string(second->changed()) +
          " links_made=" + std::to_string(second->result.counters.links_made) + "\n";
  return text;
}

// The seed document's example: Conv1 and Conv2 feed Add1 (inputs share, aligned to the large
// range); Conv2 also feeds Conv3.
TEST(AlignmentGolden, SeedExample) {
  for (bool force : {true, false}) {
    GraphBuilder b;
    Variable* x = b.Input("x", {1, 3, 8, 8});
    Variable* c1 = b.Op("Conv", "Conv1", {x, b.RandomParam("w1", {4, 3, 1, 1}, 1)});
    Variable* c2 = b.Op("Conv", "Conv2", {x, b.RandomParam("w2", {4, 3, 1, 1}, 2)});
    Variable* a = b.Op("Add", "Add1", {c1, c2});
    Variable* c3 = b.Op("Conv", "Conv3", {c2, b.RandomParam("w3", {4, 4, 1, 1}, 3)});
    b.Output(a);
    b.Output(c3);
    auto graph = b.Build();
    auto table = testing::MakeTable(*graph);
    RangeMap ranges;
    AddRange(&ranges, "x", -1, 1);
    AddRange(&ranges, "Conv1_out", -2, 2);
    AddRange(&ranges, "Conv2_out", -1, 6);
    AddRange(&ranges, "Add1_out", -3, 8);
    AddRange(&ranges, "Conv3_out", -4, 4);
    ASSERT_TRUE(ApplyRanges(ranges, table.get(), false).ok());
    const TargetProfile profile = testing::MakeProfile(
        "seed", {testing::Rule("Add", RuleKind::kShareInputs, AlignMethod::kLarge)}, force);
    testing::ExpectMatchesGolden(force ? "seed_force_overlap" : "seed_no_force_overlap",
                                 RunAndPrint(*graph, profile, {}, table.get()));
  }
}

// Random DAGs cover what the real models do not: conflicting fixed ranges, uint8 members next to
// int8 ones, FP32 tensors, method conflicts, overrides.
TEST(AlignmentGolden, RandomDags) {
  std::string text;
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    testing::RandomCase c = testing::MakeRandomCase(seed);
    auto table = testing::MakeCaseTable(c);
    text += "# seed " + std::to_string(seed) + "\n";
    text += RunAndPrint(*c.graph, c.profile, c.options, table.get());
  }
  testing::ExpectMatchesGolden("random_dags", text);
}

}  // namespace
}  // namespace qalign
