// The alignment pass and its verifier on synthetic graphs of 10k, 100k and 1M ops: blocks of
// Conv -> Relu -> AveragePool -> Concat(pool, x) -> Conv -> Add(conv, x), so every block has a
// Concat and an Add rule, a pooling rule, a fused Conv/Relu pair and a tensor with three
// consumers (cascade control). Goal: 10k ops under 10 ms, 100k ops under 150 ms, growing linearly.
// Timed: RunAlignmentPass and then DeriveWeightAndBiasParams, as the pipeline runs them
// (BM_AlignmentPass), or VerifyAlignment on their output (BM_VerifyAlignment). Not timed:
// building the graph, dispatch and ranges (a fresh table per iteration), freeing the table.
// Second argument: force_overlap on (1) or off (0). Times are wall clock and CPU time.
//
//   ./build/bench/align_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <random>

#include "ir/graph.h"
#include "passes/alignment/alignment_pass.h"
#include "passes/alignment_verifier.h"
#include "passes/weight_bias_params.h"
#include "quant/dispatch.h"
#include "quant/quant_config.h"
#include "quant/target_profile.h"

namespace qalign {
namespace {

template <typename T>
T Must(StatusOr<T> v) {
  if (!v.ok()) {
    std::fprintf(stderr, "align_bench: %s\n", v.status().ToString().c_str());
    std::abort();
  }
  return std::move(v).value();
}

std::unique_ptr<Graph> BuildBlocks(int64_t num_ops) {
  auto g = std::make_unique<Graph>();
  g->info().opset_imports[""] = 13;
  Variable* x = Must(g->AddVariable("x"));
  x->set_dtype(DataType::kFloat);
  g->AddInput(x);
  Tensor w(DataType::kFloat, {4, 4, 1, 1});
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& v : w.values<float>()) v = dist(rng);
  int64_t ops = 0;
  int64_t block = 0;
  auto out = [&](const std::string& name) {
    Variable* v = Must(g->AddVariable(name));
    v->set_dtype(DataType::kFloat);
    return v;
  };
  auto param = [&](const std::string& name) { return Must(g->AddParameter(name, w)); };
  while (ops + 6 <= num_ops) {
    const std::string p = "b" + std::to_string(block++) + "_";
    Variable* conv = out(p + "conv");
    Must(g->AddOperation("Conv", p + "conv", {x, param(p + "w1")}, {conv}));
    Variable* relu = out(p + "relu");
    Must(g->AddOperation("Relu", p + "relu", {conv}, {relu}));
    Variable* pool = out(p + "pool");
    Must(g->AddOperation("AveragePool", p + "pool", {relu}, {pool}));
    Variable* cat = out(p + "cat");
    Operation* concat = Must(g->AddOperation("Concat", p + "cat", {pool, x}, {cat}));
    concat->SetAttribute("axis", Attribute::Int(1));
    Variable* conv2 = out(p + "conv2");
    Must(g->AddOperation("Conv", p + "conv2", {cat, param(p + "w2")}, {conv2}));
    Variable* add = out(p + "add");
    Must(g->AddOperation("Add", p + "add", {conv2, x}, {add}));
    x = add;
    ops += 6;
  }
  g->AddOutput(x);
  return g;
}

TargetProfile BenchProfile(bool force_overlap) {
  TargetProfile p = Must(LoadTargetProfile("tflite-int8"));
  p.name = "bench";
  AlignmentRule add;
  add.op_type = "Add";
  add.kind = RuleKind::kShareInputs;
  add.method = AlignMethod::kLarge;
  p.rules.push_back(add);
  p.force_overlap = force_overlap;
  return p;
}

std::unique_ptr<QuantConfigTable> FreshTable(const Graph& g, const TargetProfile& profile) {
  auto table = std::make_unique<QuantConfigTable>();
  Must(DispatchQuantization(g, profile, table.get()));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> lo(-4.0f, 0.0f), hi(0.1f, 6.0f);
  for (TQC* t : table->all()) {
    if (t->role != TensorRole::kActivation) continue;
    t->stats.has_range = true;
    t->stats.min = lo(rng);
    t->stats.max = hi(rng);
  }
  return table;
}

void BM_AlignmentPass(benchmark::State& state) {
  const int64_t num_ops = state.range(0);
  const bool force_overlap = state.range(1) != 0;
  auto graph = BuildBlocks(num_ops);
  const TargetProfile profile = BenchProfile(force_overlap);
  AlignmentOptions options;
  options.collect_groups = false;
  AlignmentCounters counters;
  for (auto _ : state) {
    state.PauseTiming();
    auto table = FreshTable(*graph, profile);
    state.ResumeTiming();
    auto result = RunAlignmentPass(*graph, profile, options, table.get());
    if (!result.ok()) {
      state.SkipWithError(result.status().ToString().c_str());
      break;
    }
    auto derived = DeriveWeightAndBiasParams(table.get());
    if (!derived.ok()) {
      state.SkipWithError(derived.status().ToString().c_str());
      break;
    }
    counters = result->counters;
    state.PauseTiming();
    table.reset();  // freeing the table is not the pass's time
    state.ResumeTiming();
  }
  state.counters["ops"] = static_cast<double>(graph->num_operations());
  state.counters["groups"] = static_cast<double>(counters.groups);
  state.counters["requantize"] = static_cast<double>(counters.requantizes);
  state.counters["ns_per_op"] = benchmark::Counter(
      static_cast<double>(graph->num_operations()),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void BM_VerifyAlignment(benchmark::State& state) {
  const int64_t num_ops = state.range(0);
  const bool force_overlap = state.range(1) != 0;
  auto graph = BuildBlocks(num_ops);
  const TargetProfile profile = BenchProfile(force_overlap);
  AlignmentOptions options;
  options.collect_groups = false;
  auto table = FreshTable(*graph, profile);
  auto result = RunAlignmentPass(*graph, profile, options, table.get());
  if (!result.ok() || !DeriveWeightAndBiasParams(table.get()).ok()) {
    state.SkipWithError("the pass failed");
    return;
  }
  size_t violations = 0;
  for (auto _ : state) {
    violations = VerifyAlignment(*graph, *table, profile, result->requantizes, options).size();
  }
  if (violations != 0) state.SkipWithError("the pass's output has violations");
  state.counters["ops"] = static_cast<double>(graph->num_operations());
  state.counters["violations"] = static_cast<double>(violations);
  state.counters["ns_per_op"] = benchmark::Counter(
      static_cast<double>(graph->num_operations()),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

BENCHMARK(BM_AlignmentPass)
    ->ArgsProduct({{10'000, 100'000, 1'000'000}, {1, 0}})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();
BENCHMARK(BM_VerifyAlignment)
    ->ArgsProduct({{10'000, 100'000, 1'000'000}, {1, 0}})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

}  // namespace
}  // namespace qalign

BENCHMARK_MAIN();
