// Test helpers for the alignment pass: a small explicit dispatch for graphs built in code,
// profiles in code, ranges, and canonical snapshots of groups and params.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/alignment/alignment_pass.h"
#include "passes/alignment_verifier.h"
#include "passes/weight_bias_params.h"
#include "testing/graph_builder.h"
#include "quant/op_kinds.h"
#include "quant/quant_config.h"
#include "quant/ranges.h"
#include "quant/target_profile.h"

namespace qalign::testing {

inline QuantScheme Int8Asym() {
  QuantScheme s;
  s.policy.flags = kPerTensor | kAsymmetric | kLinear;
  s.num_bits = 8;
  s.quant_min = -128;
  s.quant_max = 127;
  return s;
}
inline QuantScheme Uint8Asym() {
  QuantScheme s = Int8Asym();
  s.quant_min = 0;
  s.quant_max = 255;
  return s;
}
inline QuantScheme Int8SymPerChannel() {
  QuantScheme s;
  s.policy.flags = kPerChannel | kSymmetric | kLinear;
  s.quant_min = -127;
  s.quant_max = 127;
  return s;
}
inline QuantScheme Int32Bias() {
  QuantScheme s;
  s.policy.flags = kPerChannel | kSymmetric | kLinear;
  s.num_bits = 32;
  s.quant_min = -2147483647LL;
  s.quant_max = 2147483647LL;
  return s;
}

inline AlignmentRule Rule(const std::string& op_type, RuleKind kind, AlignMethod method) {
  AlignmentRule r;
  r.op_type = op_type;
  r.kind = kind;
  r.method = method;
  return r;
}
inline AlignmentRule FixedRule(const std::string& op_type, float scale, int64_t zero_point) {
  AlignmentRule r;
  r.op_type = op_type;
  r.kind = RuleKind::kFixedOutput;
  r.method = AlignMethod::kNone;
  r.fixed_scale = scale;
  r.fixed_zero_point = zero_point;
  return r;
}

inline TargetProfile MakeProfile(const std::string& name, std::vector<AlignmentRule> rules,
                                 bool force_overlap) {
  TargetProfile p;
  p.name = name;
  p.activation = Int8Asym();
  p.weight = Int8SymPerChannel();
  p.bias = Int32Bias();
  p.rules = std::move(rules);
  p.force_overlap = force_overlap;
  return p;
}

// Inputs never quantized, as the op-kind table says: shapes, indices and sizes, and float operands
// that act as attributes (Pad's constant value).
inline bool IsShapeInput(const std::string& type, size_t index) {
  const int i = static_cast<int>(index);
  return IsShapeOperand(type, i) || IsFloatAttributeOperand(type, i);
}

// A plain dispatch for graphs built in code: every op quantized, Conv/Gemm input 1 a per-channel
// weight and input 2 an int32 bias, shape inputs SOI, everything else an activation.
inline std::unique_ptr<QuantConfigTable> MakeTable(const Graph& graph,
                                                   const QuantScheme& act = Int8Asym()) {
  auto table = std::make_unique<QuantConfigTable>();
  for (Operation* op : graph.operations()) {
    const bool has_weights = op->type() == "Conv" || op->type() == "Gemm";
    for (size_t i = 0; i < op->inputs().size(); ++i) {
      Variable* v = op->inputs()[i];
      if (v == nullptr) continue;
      Port port{op, true, static_cast<int>(i), v};
      if (IsShapeInput(op->type(), i)) {
        table->Create(port, TensorRole::kShape, act, QuantState::kSoi);
      } else if (has_weights && i == 1) {
        TQC* w = table->Create(port, TensorRole::kWeight, Int8SymPerChannel());
        w->channel_axis = 0;
      } else if (has_weights && i == 2) {
        table->Create(port, TensorRole::kBias, Int32Bias());
      } else {
        table->Create(port, TensorRole::kActivation, act);
      }
    }
    for (size_t i = 0; i < op->outputs().size(); ++i) {
      Variable* v = op->outputs()[i];
      if (v == nullptr) continue;
      table->Create(Port{op, false, static_cast<int>(i), v}, TensorRole::kActivation, act);
    }
  }
  return table;
}

inline TQC* TqcAt(QuantConfigTable& table, const Graph& graph, const std::string& op, bool input,
                  int index) {
  Operation* o = graph.FindOperation(op);
  EXPECT_NE(o, nullptr) << op;
  if (o == nullptr) return nullptr;
  const OperationQuantConfig* config = table.FindOp(o);
  if (config == nullptr) return nullptr;
  const auto& slots = input ? config->inputs : config->outputs;
  return static_cast<size_t>(index) < slots.size() ? slots[index] : nullptr;
}
inline TQC* In(QuantConfigTable& t, const Graph& g, const std::string& op, int i = 0) {
  return TqcAt(t, g, op, true, i);
}
inline TQC* Out(QuantConfigTable& t, const Graph& g, const std::string& op, int i = 0) {
  return TqcAt(t, g, op, false, i);
}

inline void AddRange(RangeMap* map, const std::string& tensor, float min, float max) {
  TensorRange r;
  r.min = min;
  r.max = max;
  map->ranges[tensor] = r;
}

inline std::string PortName(const TQC& t) {
  return t.port.op->name() + "/" + t.port.ToString();
}

// Every group with more than one member or with params, as sorted "op/port" lists with params:
// identical for two tables exactly when the partition and the params agree.
inline std::vector<std::string> GroupSignature(QuantConfigTable& table) {
  std::vector<std::string> lines;
  for (const std::vector<TQC*>& group : table.Groups()) {
    std::vector<std::string> names;
    for (const TQC* m : group) names.push_back(PortName(*m));
    std::sort(names.begin(), names.end());
    std::string line;
    for (const std::string& n : names) line += n + ",";
    line += " =";
    for (float s : table.scale(group.front())) line += " " + std::to_string(s);
    line += " /";
    for (int64_t z : table.zero_point(group.front())) line += " " + std::to_string(z);
    lines.push_back(std::move(line));
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

// Everything the pass may change: per TQC (by port name) its state, group root's port name
// (order-dependent, so only for comparing runs on the same table) and params.
inline std::vector<std::string> TableSnapshot(QuantConfigTable& table) {
  std::vector<std::string> lines;
  for (TQC* t : table.all()) {
    std::string line = PortName(*t) + " " + QuantStateName(t->state) + " root=" +
                       PortName(*table.Root(t));
    for (float s : table.scale(t)) line += " " + std::to_string(s);
    for (int64_t z : table.zero_point(t)) line += " " + std::to_string(z);
    lines.push_back(std::move(line));
  }
  return lines;
}

inline std::set<std::string> RequantizeSet(const std::vector<RequantizeEdge>& edges) {
  std::set<std::string> out;
  for (const RequantizeEdge& e : edges) {
    out.insert(e.tensor->name() + ":" + (e.producer ? e.producer->name() : "") + "->" +
               (e.consumer ? e.consumer->name() : ""));
  }
  return out;
}

// Seeded ranges for every non-parameter tensor: [lo, lo + width] with lo <= 0.
inline RangeMap SyntheticRanges(const Graph& g, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> lo(-8.0f, 0.0f), width(0.05f, 12.0f);
  RangeMap map;
  map.source = "synthetic";
  for (Variable* v : g.variables()) {
    if (v->is_parameter()) continue;
    const float l = lo(rng);
    TensorRange r;
    r.min = l;
    r.max = l + width(rng);
    map.ranges[v->name()] = r;
  }
  return map;
}


// (scale, zero_point) that ComputeParams gives for [min, max] under `scheme`.
inline std::pair<float, int64_t> Params(const QuantScheme& scheme, float min, float max) {
  float s = 0;
  int64_t z = 0;
  EXPECT_TRUE(ComputeParams(scheme, min, max, &s, &z).ok());
  return {s, z};
}

// The group params of t are exactly `expected`.
inline void ExpectParams(QuantConfigTable& table, const TQC* t, std::pair<float, int64_t> expected) {
  ASSERT_EQ(table.scale(t).size(), 1u) << DescribeTqc(*t);
  EXPECT_FLOAT_EQ(table.scale(t)[0], expected.first) << DescribeTqc(*t);
  EXPECT_EQ(table.zero_point(t)[0], expected.second) << DescribeTqc(*t);
}

// The seed document's example: Conv1 and Conv2 feed Add1; Conv2 also feeds Conv3. Ranges: x
// [-1, 1], Conv1_out [-2, 2], Conv2_out [-1, 6], Add1_out [-3, 8], Conv3_out [-4, 4].
struct SeedExample {
  std::unique_ptr<Graph> graph;
  std::unique_ptr<QuantConfigTable> table;
};
inline SeedExample BuildSeedExample() {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 3, 8, 8});
  Variable* c1 = b.Op("Conv", "Conv1", {x, b.RandomParam("w1", {4, 3, 1, 1}, 1)});
  Variable* c2 = b.Op("Conv", "Conv2", {x, b.RandomParam("w2", {4, 3, 1, 1}, 2)});
  Variable* a = b.Op("Add", "Add1", {c1, c2});
  Variable* c3 = b.Op("Conv", "Conv3", {c2, b.RandomParam("w3", {4, 4, 1, 1}, 3)});
  b.Output(a);
  b.Output(c3);
  SeedExample ex;
  ex.graph = b.Build();
  ex.table = MakeTable(*ex.graph);
  RangeMap ranges;
  AddRange(&ranges, "x", -1, 1);
  AddRange(&ranges, "Conv1_out", -2, 2);
  AddRange(&ranges, "Conv2_out", -1, 6);
  AddRange(&ranges, "Add1_out", -3, 8);
  AddRange(&ranges, "Conv3_out", -4, 4);
  ValueOrThrow(ApplyRanges(ranges, ex.table.get(), false), "ApplyRanges");
  return ex;
}
// PPQ's elementwise rule, as in the seed: Add's inputs share, aligned to the large range.
inline TargetProfile SeedProfile(bool force_overlap) {
  return MakeProfile("seed", {Rule("Add", RuleKind::kShareInputs, AlignMethod::kLarge)},
                     force_overlap);
}

// Runs the pass and the weight/bias step as the pipeline does, and fails on any violation.
inline AlignmentResult RunOk(const Graph& g, const TargetProfile& p, QuantConfigTable* table,
                             const AlignmentOptions& options = {}) {
  auto result = RunAlignmentPass(g, p, options, table);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  if (!result.ok()) return {};
  auto derived = DeriveWeightAndBiasParams(table);
  EXPECT_TRUE(derived.ok()) << derived.status().ToString();
  auto violations = VerifyAlignment(g, *table, p, result->requantizes, options);
  for (const auto& v : violations) ADD_FAILURE() << "[" << v.check << "] " << v.message;
  return std::move(result).value();
}

}  // namespace qalign::testing
