// Google Benchmark of the fast nn kernels on representative convolutions of PP-OCRv4 det at
// 640x640 (the shapes that dominate its run time), with the reference kernel where it is cheap
// enough to compare.
//
//   build-*/bench/nn_kernels_bench [--benchmark_filter=Conv]
//   QALIGN_NN_CONV_LAYOUT=blocked|plain forces one activation layout instead of timing both.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "runtime/kernel.h"
#include "runtime/kernels/nn/nn_kernels.h"

namespace qalign::nn {

struct ConvCase {
  const char* name;
  bool transpose;
  std::vector<int64_t> x, w;
  int64_t group, stride, pad;
};

// From the det model's profile: the largest convs by time, one of each kind.
const ConvCase kCases[] = {
    {"stem_3x3_s2_3to16_640", false, {1, 3, 640, 640}, {16, 3, 3, 3}, 1, 2, 1},
    {"dw_3x3_16_320", false, {1, 16, 320, 320}, {16, 1, 3, 3}, 16, 1, 1},
    {"pw_1x1_16to32_320", false, {1, 16, 320, 320}, {32, 16, 1, 1}, 1, 1, 0},
    {"dense_3x3_96to24_160", false, {1, 96, 160, 160}, {24, 96, 3, 3}, 1, 1, 1},
    {"pw_1x1_192to192_40", false, {1, 192, 40, 40}, {192, 192, 1, 1}, 1, 1, 0},
    {"dw_5x5_192_40", false, {1, 192, 40, 40}, {192, 1, 5, 5}, 192, 1, 2},
    {"deconv_2x2_s2_24to24_160", true, {1, 24, 160, 160}, {24, 24, 2, 2}, 1, 2, 0},
    {"deconv_2x2_s2_24to1_320", true, {1, 24, 320, 320}, {24, 1, 2, 2}, 1, 2, 0},
};

Tensor Random(std::vector<int64_t> shape, uint32_t seed) {
  Tensor t(DataType::kFloat, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& v : t.values<float>()) v = dist(rng);
  return t;
}

// A one-op graph: Conv / ConvTranspose of x, w, b with the case's attributes.
struct Fixture {
  Graph graph;
  Operation* op = nullptr;
  Tensor x, w, b;
};

std::unique_ptr<Fixture> MakeFixture(const ConvCase& c) {
  auto f = std::make_unique<Fixture>();
  f->graph.info().opset_imports[""] = 13;
  std::vector<Variable*> inputs;
  for (const char* name : {"x", "w", "b"}) inputs.push_back(*f->graph.AddVariable(name));
  Variable* y = *f->graph.AddVariable("y");
  f->op = *f->graph.AddOperation(c.transpose ? "ConvTranspose" : "Conv", c.name, inputs, {y});
  const int64_t rank = static_cast<int64_t>(c.x.size()) - 2;
  f->op->SetAttribute("strides", Attribute::Ints(std::vector<int64_t>(rank, c.stride)));
  f->op->SetAttribute("pads", Attribute::Ints(std::vector<int64_t>(2 * rank, c.pad)));
  f->op->SetAttribute("group", Attribute::Int(c.group));
  f->x = Random(c.x, 1);
  f->w = Random(c.w, 2);
  f->b = Random({c.transpose ? c.w[1] * c.group : c.w[0]}, 3);
  return f;
}

void BM_Conv(benchmark::State& state, const ConvCase* c) {
  auto f = MakeFixture(*c);
  auto kernel = c->transpose ? CreateConvTransposeFast(*f->op) : CreateConvFast(*f->op);
  if (!kernel.ok()) {
    state.SkipWithError(kernel.status().ToString().c_str());
    return;
  }
  std::vector<Tensor> outputs(1);
  KernelContext context;
  context.op = f->op;
  context.inputs = {&f->x, &f->w, &f->b};
  context.outputs = &outputs;
  Status first = (*kernel)->Run(context);  // builds and picks the primitive for this shape
  if (!first.ok()) {
    state.SkipWithError(first.ToString().c_str());
    return;
  }
  for (auto _ : state) {
    Status s = (*kernel)->Run(context);
    benchmark::DoNotOptimize(s);
  }
  // Multiply-adds of the convolution, reported as FLOP/s (2 per multiply-add).
  const Tensor& y = outputs[0];
  const int64_t k_size = c->w[2] * c->w[3];
  const double macs = c->transpose
                          ? static_cast<double>(f->x.num_elements()) * c->w[1] * k_size
                          : static_cast<double>(y.num_elements()) * c->w[1] * k_size;
  state.counters["GFLOPS"] =
      benchmark::Counter(2.0 * macs * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void BM_Gemm(benchmark::State& state) {
  // A rec-model-sized fully connected layer: [40, 120] x [120, 6625]^T.
  Graph graph;
  graph.info().opset_imports[""] = 13;
  std::vector<Variable*> inputs;
  for (const char* name : {"a", "b", "c"}) inputs.push_back(*graph.AddVariable(name));
  Variable* y = *graph.AddVariable("y");
  Operation* op = *graph.AddOperation("Gemm", "fc", inputs, {y});
  op->SetAttribute("transB", Attribute::Int(1));
  const Tensor a = Random({40, 120}, 1), b = Random({6625, 120}, 2), c = Random({6625}, 3);
  auto kernel = CreateGemmFast(*op);
  std::vector<Tensor> outputs(1);
  KernelContext context;
  context.op = op;
  context.inputs = {&a, &b, &c};
  context.outputs = &outputs;
  for (auto _ : state) {
    Status s = (*kernel)->Run(context);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_Gemm)->Unit(benchmark::kMillisecond)->UseRealTime();

void RegisterConvBenchmarks() {
  for (const ConvCase& c : kCases) {
    // Real time: oneDNN's OpenMP threads do the work, the calling thread's CPU time misses it.
    benchmark::RegisterBenchmark((std::string("BM_Conv/") + c.name).c_str(), BM_Conv, &c)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

}  // namespace qalign::nn

int main(int argc, char** argv) {
  qalign::nn::RegisterConvBenchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
