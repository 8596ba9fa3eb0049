// Union-find speed: 1,000,000 unions plus 1,000,000 finds over 1,000,000 nodes (issue 2: well
// under a second). Pairs come from a seeded generator, so runs are comparable.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "quant/quant_config.h"

namespace {

constexpr int32_t kNodes = 1'000'000;
constexpr int kOps = 1'000'000;

std::vector<std::pair<int32_t, int32_t>> RandomPairs(uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> pick(0, kNodes - 1);
  std::vector<std::pair<int32_t, int32_t>> pairs(kOps);
  for (auto& p : pairs) p = {pick(rng), pick(rng)};
  return pairs;
}

// Random pairs: the usual shape of alignment (scattered groups that merge).
void BM_UnionFindRandom(benchmark::State& state) {
  const auto unions = RandomPairs(1);
  const auto finds = RandomPairs(2);
  for (auto _ : state) {
    qalign::UnionFind uf;
    for (int32_t i = 0; i < kNodes; ++i) uf.Add();
    int64_t merged = 0;
    for (auto [a, b] : unions) merged += uf.Union(a, b);
    int64_t roots = 0;
    for (auto [a, b] : finds) roots += uf.Find(a) == uf.Find(b);
    benchmark::DoNotOptimize(merged);
    benchmark::DoNotOptimize(roots);
  }
  state.SetItemsProcessed(state.iterations() * int64_t{3} * kOps);  // unions + 2 finds each
}
BENCHMARK(BM_UnionFindRandom)->Unit(benchmark::kMillisecond);

// A chain: union(i, i+1) for every i, the worst case for a union-find without rank.
void BM_UnionFindChain(benchmark::State& state) {
  for (auto _ : state) {
    qalign::UnionFind uf;
    for (int32_t i = 0; i < kNodes; ++i) uf.Add();
    for (int32_t i = 0; i + 1 < kNodes; ++i) uf.Union(i, i + 1);
    int64_t sum = 0;
    for (int32_t i = 0; i < kNodes; ++i) sum += uf.Find(i);
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * int64_t{2} * kNodes);
}
BENCHMARK(BM_UnionFindChain)->Unit(benchmark::kMillisecond);

// Through the TQC table: Create 1,000,000 TQCs, Link 1,000,000 random pairs (with the scheme
// checks and state updates), then read the group root of each.
void BM_QuantConfigTableLink(benchmark::State& state) {
  const auto links = RandomPairs(3);
  for (auto _ : state) {
    qalign::QuantConfigTable table;
    qalign::QuantScheme scheme;
    for (int32_t i = 0; i < kNodes; ++i) {
      table.Create(qalign::Port{}, qalign::TensorRole::kActivation, scheme);
    }
    int64_t merged = 0;
    for (auto [a, b] : links) merged += *table.Link(table.Get(a), table.Get(b));
    int64_t sum = 0;
    for (int32_t i = 0; i < kNodes; ++i) sum += table.Root(table.Get(i))->id;
    benchmark::DoNotOptimize(merged);
    benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(BM_QuantConfigTableLink)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
