// Calibration cost per tensor: histogram accumulation throughput and each observer's search.
//   build-*/bench/calib_bench
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <vector>

#include "calib/histogram.h"
#include "calib/observer.h"

namespace qalign {
namespace {

std::vector<float> Laplacian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::exponential_distribution<float> exp(1.0f);
  std::bernoulli_distribution sign(0.5);
  std::vector<float> v(n);
  for (float& x : v) x = sign(rng) ? exp(rng) : -exp(rng);
  return v;
}

void BM_HistogramAdd(benchmark::State& state) {
  const std::vector<float> values = Laplacian(static_cast<size_t>(state.range(0)), 1);
  for (auto _ : state) {
    Histogram h;
    h.Add(values);
    benchmark::DoNotOptimize(h.total());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_HistogramAdd)->Arg(1 << 16)->Arg(1 << 20);

// A ReLU's output: half the values are 0, so runs of one bin are common.
void BM_HistogramAddRelu(benchmark::State& state) {
  std::vector<float> values = Laplacian(static_cast<size_t>(state.range(0)), 3);
  for (float& x : values) x = std::max(x, 0.0f);
  for (auto _ : state) {
    Histogram h;
    h.Add(values);
    benchmark::DoNotOptimize(h.total());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_HistogramAddRelu)->Arg(1 << 20);

void BM_Observer(benchmark::State& state) {
  Histogram h;
  h.Add(Laplacian(1 << 20, 2));
  ObserverOptions options;
  options.kind = static_cast<ObserverKind>(state.range(0));
  QuantScheme scheme;  // int8 asymmetric
  for (auto _ : state) {
    auto params = ObserveParams(h, scheme, options);
    benchmark::DoNotOptimize(params.ok());
  }
  state.SetLabel(ObserverKindName(options.kind));
}
BENCHMARK(BM_Observer)
    ->Arg(static_cast<int>(ObserverKind::kMinMax))
    ->Arg(static_cast<int>(ObserverKind::kPercentile))
    ->Arg(static_cast<int>(ObserverKind::kKl))
    ->Arg(static_cast<int>(ObserverKind::kMse))
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace qalign

BENCHMARK_MAIN();
