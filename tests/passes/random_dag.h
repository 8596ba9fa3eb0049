// Seeded random DAGs for the alignment pass (Conv, Relu, Concat, Add, pooling, Reshape, Resize,
// Sigmoid/Tanh) with random ranges, rules, force_overlap, FP32 tensors and uint8 ops: the
// invariant test and the golden test draw the same graphs.
#pragma once

#include <memory>
#include <random>
#include <set>
#include <string>

#include "align_testing.h"
#include "passes/alignment/alignment_pass.h"
#include "testing/graph_builder.h"

namespace qalign::testing {

struct RandomCase {
  std::unique_ptr<Graph> graph;
  RangeMap ranges;
  TargetProfile profile;
  AlignmentOptions options;
  std::set<std::string> fp32_tensors;  // all TQCs of these tensors are FP32
  std::set<std::string> uint8_ops;     // all activation TQCs of these ops are uint8
};

inline AlignMethod RandomMethod(std::mt19937& rng) {
  static const AlignMethod kMethods[] = {AlignMethod::kLarge, AlignMethod::kOutput,
                                         AlignMethod::kInput, AlignMethod::kNone,
                                         AlignMethod::kLarge};
  return kMethods[std::uniform_int_distribution<int>(0, 4)(rng)];
}

inline RandomCase MakeRandomCase(uint32_t seed) {
  std::mt19937 rng(seed);
  auto coin = [&rng](double p) { return std::bernoulli_distribution(p)(rng); };
  auto pick = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  GraphBuilder b;
  std::vector<Variable*> pool;
  const int num_inputs = pick(1, 2);
  for (int i = 0; i < num_inputs; ++i) pool.push_back(b.Input("in" + std::to_string(i), {1, 4, 8, 8}));
  const int num_ops = pick(6, 28);
  // Prefer recent tensors so chains form, but reach back for fan-out.
  auto any = [&]() -> Variable* {
    const int n = static_cast<int>(pool.size());
    return pool[coin(0.6) ? pick(std::max(0, n - 3), n - 1) : pick(0, n - 1)];
  };
  static const char* kTypes[] = {"Conv", "Relu", "Concat", "Add", "MaxPool", "AveragePool",
                                 "GlobalAveragePool", "Reshape", "Resize", "Sigmoid", "Tanh",
                                 "Concat", "Add", "Conv"};
  for (int i = 0; i < num_ops; ++i) {
    const std::string type = kTypes[pick(0, 13)];
    const std::string name = "op" + std::to_string(i) + "_" + type;
    Variable* out = nullptr;
    if (type == "Conv") {
      out = b.Op(type, name, {any(), b.RandomParam(name + "_w", {4, 4, 1, 1}, seed * 131 + i)});
    } else if (type == "Concat") {
      std::vector<Variable*> ins;
      const int k = pick(2, 3);
      for (int j = 0; j < k; ++j) ins.push_back(any());
      out = b.Op(type, name, ins, {{"axis", Attribute::Int(1)}});
    } else if (type == "Add") {
      out = b.Op(type, name, {any(), any()});
    } else if (type == "Reshape") {
      out = b.Op(type, name, {any(), b.Int64Param(name + "_shape", {1, 4, 8, 8})});
    } else if (type == "Resize") {
      Variable* scales = b.Param(name + "_scales", Tensor::FromVector<float>({4}, {1, 1, 2, 2}));
      out = b.Op(type, name, {any(), nullptr, scales});
    } else {
      out = b.Op(type, name, {any()});
    }
    pool.push_back(out);
  }
  b.Output(pool.back());
  for (size_t i = static_cast<size_t>(num_inputs); i + 1 < pool.size(); ++i) {
    if (coin(0.12)) b.Output(pool[i]);
  }
  RandomCase c;
  c.graph = b.Build();
  std::uniform_real_distribution<float> lo(-6.0f, 0.5f), width(0.01f, 8.0f);
  for (Variable* v : c.graph->variables()) {
    if (v->is_parameter()) continue;
    const float l = lo(rng);
    AddRange(&c.ranges, v->name(), l, l + width(rng));
  }
  // A random target: the usual rule shapes with random methods.
  std::vector<AlignmentRule> rules;
  if (coin(0.9)) rules.push_back(Rule("Concat", RuleKind::kShareInputsAndOutput, RandomMethod(rng)));
  if (coin(0.5)) rules.push_back(Rule("Add", RuleKind::kShareInputs, RandomMethod(rng)));
  for (const char* t : {"MaxPool", "AveragePool", "GlobalAveragePool", "Reshape", "Resize"}) {
    if (coin(0.7)) rules.push_back(Rule(t, RuleKind::kShareInputOutput, RandomMethod(rng)));
  }
  if (coin(0.6)) rules.push_back(FixedRule("Sigmoid", 1.0f / 256.0f, -128));
  if (coin(0.6)) rules.push_back(FixedRule("Tanh", 1.0f / 128.0f, 0));
  c.profile = MakeProfile("random" + std::to_string(seed), rules, coin(0.5));
  if (coin(0.3)) c.options.force_overlap = coin(0.5);
  if (coin(0.15)) c.options.method_by_op_type["Concat"] = RandomMethod(rng);
  // Some tensors stay float, some ops run in uint8 (then mismatches become requantizes).
  for (Variable* v : c.graph->variables()) {
    if (!v->is_parameter() && coin(0.06)) c.fp32_tensors.insert(v->name());
  }
  for (Operation* op : c.graph->operations()) {
    // (Not the fixed-range ops: their fixed int8 params do not fit uint8, an error by design.)
    if (coin(0.05) && op->type() != "Sigmoid" && op->type() != "Tanh") {
      c.uint8_ops.insert(op->name());
    }
  }
  c.options.requantize_on_scheme_mismatch = true;
  return c;
}

inline std::unique_ptr<QuantConfigTable> MakeCaseTable(const RandomCase& c) {
  auto table = MakeTable(*c.graph);
  for (TQC* t : table->all()) {
    if (t->role != TensorRole::kActivation) continue;
    if (c.uint8_ops.count(t->port.op->name())) t->scheme = Uint8Asym();
  }
  auto applied = ApplyRanges(c.ranges, table.get(), false);
  EXPECT_TRUE(applied.ok()) << applied.status().ToString();
  for (TQC* t : table->all()) {
    if (c.fp32_tensors.count(t->port.tensor->name()) && t->state != QuantState::kSoi) {
      t->state = QuantState::kFp32;
    }
  }
  return table;
}

}  // namespace qalign::testing
