// The `optimal` alignment method through the pipeline (pipeline.cc's OptimalRange): the group's
// range minimizes the members' summed error, which counts a tensor by its element count, so two
// kinds of member keep their ends whatever their weight: a constant (an Add's offset, clipped,
// would move every output of the op) and an end its observer may not clip (what an averaging op
// reads, observer_choice.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "pipeline/pipeline.h"
#include "quant/target_profile.h"
#include "testing/graph_builder.h"

namespace qalign {
namespace {

using testing::GraphBuilder;

// A range [lo, hi] with a histogram of 64 bins: 10,000 values spread evenly over the bins inside
// [mass_lo, mass_hi] and, when `tail`, one more in the last bin.
TensorRange Spread(float lo, float hi, float mass_lo, float mass_hi, bool tail = false) {
  TensorRange r;
  r.min = lo;
  r.max = hi;
  r.has_histogram = true;
  r.hist_min = lo;
  r.hist_max = hi;
  r.counts.assign(64, 0.0f);
  const float width = (hi - lo) / 64.0f;
  std::vector<size_t> inside;
  for (size_t i = 0; i < 64; ++i) {
    const float center = lo + width * (static_cast<float>(i) + 0.5f);
    if (center >= mass_lo && center <= mass_hi) inside.push_back(i);
  }
  for (size_t i : inside) r.counts[i] = 10000.0f / static_cast<float>(inside.size());
  if (tail) r.counts.back() += 1.0f;
  return r;
}

// Runs qnn-u8 (Add: share_inputs) with Add aligned by `optimal` and returns the dequantized
// value of `value` at input `index` of the Add named "add".
float DequantizedAtAddInput(const Graph& graph, const RangeMap& ranges, int index, float value) {
  auto profile = LoadTargetProfile("qnn-u8");
  EXPECT_TRUE(profile.ok()) << profile.status().ToString();
  QuantizePipelineOptions options;
  options.saturation_ranges = false;
  options.alignment.method_by_op_type["Add"] = AlignMethod::kOptimal;
  QuantConfigTable table;
  auto result = RunQuantizePipeline(
      graph, *profile, options,
      [&ranges](const std::vector<const Variable*>&) -> StatusOr<RangeMap> { return ranges; },
      &table);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  if (!result.ok()) return NAN;
  EXPECT_TRUE(result->violations.empty());
  for (const TQC* t : table.all()) {
    if (!t->port.is_input || t->port.op->name() != "add" || t->port.index != index) continue;
    const float scale = table.scale(t).at(0);
    const double zero_point = static_cast<double>(table.zero_point(t).at(0));
    const double q = std::clamp(std::nearbyint(value / scale) + zero_point,
                                static_cast<double>(t->scheme.quant_min),
                                static_cast<double>(t->scheme.quant_max));
    return static_cast<float>((q - zero_point) * scale);
  }
  ADD_FAILURE() << "no TQC for input " << index << " of add";
  return NAN;
}

// y = Conv(x) + 3: the Conv output's 10,000 values lie in [-1, 1]; the constant 3 is one value.
TEST(OptimalRanges, AConstantOperandKeepsItsValue) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 1, 8, 8});
  Variable* c = b.Op("Conv", "conv", {x, b.RandomParam("w", {1, 1, 1, 1}, 7, 0.5f, 1.0f)});
  Tensor three = Tensor::FromVector<float>({1}, {3.0f});
  b.Output(b.Op("Add", "add", {c, b.Param("offset", three)}));
  RangeMap ranges;
  ranges.ranges["x"] = Spread(-1.0f, 1.0f, -1.0f, 1.0f);
  ranges.ranges["conv_out"] = Spread(-1.0f, 1.0f, -1.0f, 1.0f);
  ranges.ranges["add_out"] = Spread(2.0f, 4.0f, 2.0f, 4.0f);
  const float offset = DequantizedAtAddInput(b.graph(), ranges, 1, 3.0f);
  // The shared range reaches 3 (clipped to the Conv output's [-1, 1] it would read 1): 256 codes
  // over [-1, 3] are 0.016 apart.
  EXPECT_NEAR(offset, 3.0f, 0.01f);
}

// y = Conv(x) + z where ReduceMean also reads z: z's one value at 8 stays in range.
TEST(OptimalRanges, WhatAnAveragingOpReadsKeepsItsMaximum) {
  for (bool averaged : {false, true}) {
    SCOPED_TRACE(averaged ? "z averaged" : "z not averaged");
    GraphBuilder b;
    Variable* x = b.Input("x", {1, 1, 8, 8});
    Variable* z = b.Input("z", {1, 1, 8, 8});
    Variable* c = b.Op("Conv", "conv", {x, b.RandomParam("w", {1, 1, 1, 1}, 7, 0.5f, 1.0f)});
    b.Output(b.Op("Add", "add", {c, z}));
    if (averaged) b.Output(b.Op("ReduceMean", "mean", {z}));
    RangeMap ranges;
    ranges.ranges["x"] = Spread(-1.0f, 1.0f, -1.0f, 1.0f);
    ranges.ranges["conv_out"] = Spread(-1.0f, 1.0f, -1.0f, 1.0f);
    ranges.ranges["z"] = Spread(-1.0f, 8.0f, -1.0f, 1.0f, /*tail=*/true);
    ranges.ranges["add_out"] = Spread(-2.0f, 9.0f, -2.0f, 2.0f);
    ranges.ranges["mean_out"] = Spread(-0.1f, 0.1f, -0.1f, 0.1f);
    const float top = DequantizedAtAddInput(b.graph(), ranges, 1, 8.0f);
    if (averaged) {
      EXPECT_NEAR(top, 8.0f, 0.03f);
    } else {
      EXPECT_LT(top, 7.9f);  // optimal alone clips the lone value at 8
    }
  }
}

}  // namespace
}  // namespace qalign
