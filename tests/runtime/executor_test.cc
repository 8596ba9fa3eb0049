// Executor and ThreadPool: order, hooks, early frees, peak memory, input checks, errors up front.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>

#include "runtime/executor.h"
#include "core/thread_pool.h"
#include "testing/graph_builder.h"
#include "op_runner.h"

namespace qalign {
namespace {

using testing::GraphBuilder;

TEST(ThreadPoolTest, ParallelForCoversEveryIndexOnce) {
  ThreadPool pool(4);
  EXPECT_EQ(pool.num_threads(), 4);
  for (int64_t n : {1, 7, 100, 10007}) {
    std::vector<std::atomic<int>> hits(n);
    pool.ParallelFor(n, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) hits[i]++;
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
  }
}

TEST(ThreadPoolTest, AbsurdThreadCountIsCappedInsteadOfThrowing) {
  // --threads 100000 threw std::system_error out of main where the system refused the threads.
  ThreadPool pool(100000);
  const int cap = std::max(256, 4 * static_cast<int>(std::thread::hardware_concurrency()));
  EXPECT_LE(pool.num_threads(), cap);
  EXPECT_GE(pool.num_threads(), 1);
  std::atomic<int64_t> total{0};
  pool.ParallelFor(1000, [&](int64_t begin, int64_t end) { total += end - begin; });
  EXPECT_EQ(total.load(), 1000);
}

TEST(ThreadPoolTest, NestedCallsRunInline) {
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  pool.ParallelFor(8, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      pool.ParallelFor(10, [&](int64_t b, int64_t e) { total += e - b; });
    }
  });
  EXPECT_EQ(total.load(), 80);
}

// x -> Relu -> a; a * a -> b; b + x -> y
std::unique_ptr<Graph> SmallGraph() {
  GraphBuilder b;
  Variable* x = b.Input("x", {2, 3});
  Variable* a = b.Op("Relu", "relu", {x});
  Variable* m = b.Op("Mul", "mul", {a, a});
  Variable* y = b.Op("Add", "add", {m, x});
  b.Output(y);
  return b.Build();
}

TEST(ExecutorTest, RunsInOrderAndCallsTheHookOnEveryTensor) {
  auto graph = SmallGraph();
  auto ex = Executor::Create(*graph);
  ASSERT_TRUE(ex.ok()) << ex.status().ToString();
  std::vector<std::string> seen;
  (*ex)->set_hook([&](const Variable& v, Tensor& t) { seen.push_back(v.name()); });
  Tensor x = Tensor::FromVector<float>({2, 3}, {-1, 2, -3, 4, 0.5f, -0.5f});
  auto out = (*ex)->Run({{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(seen, (std::vector<std::string>{"x", "relu_out", "mul_out", "add_out"}));
  const Tensor& y = out->at("add_out");
  const std::vector<float> xs = {-1, 2, -3, 4, 0.5f, -0.5f};
  for (size_t i = 0; i < xs.size(); ++i) {
    const float r = xs[i] > 0 ? xs[i] : 0;
    EXPECT_FLOAT_EQ(y.data<float>()[i], r * r + xs[i]);
  }
  EXPECT_EQ(out->size(), 1u);  // intermediates are not returned
}

TEST(ExecutorTest, HookCanSubstituteValues) {
  auto graph = SmallGraph();
  auto ex = Executor::Create(*graph);
  ASSERT_TRUE(ex.ok());
  // Zero the Relu output: then y = x.
  (*ex)->set_hook([](const Variable& v, Tensor& t) {
    if (v.name() == "relu_out") for (float& f : t.values<float>()) f = 0;
  });
  Tensor x = Tensor::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto out = (*ex)->Run({{"x", x}});
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->at("add_out").BitwiseEqual(x));
}

TEST(ExecutorTest, FreesIntermediatesAfterTheirLastUse) {
  // A chain of 6 Relus on a 1 MB tensor: at most input, two neighbours, and the output live.
  GraphBuilder b;
  Variable* v = b.Input("x", {256, 1024});
  for (int i = 0; i < 6; ++i) v = b.Op("Relu", "r" + std::to_string(i), {v});
  b.Output(v);
  auto graph = b.Build();
  auto ex = Executor::Create(*graph);
  ASSERT_TRUE(ex.ok());
  auto out = (*ex)->Run({{"x", Tensor(DataType::kFloat, {256, 1024})}});
  ASSERT_TRUE(out.ok());
  const int64_t one = 256 * 1024 * 4;
  EXPECT_GE((*ex)->peak_bytes(), 2 * one);
  EXPECT_LE((*ex)->peak_bytes(), 3 * one);

  ExecutorOptions keep_all;
  keep_all.keep_all = true;
  auto ex2 = Executor::Create(*graph, keep_all);
  ASSERT_TRUE(ex2.ok());
  auto out2 = (*ex2)->Run({{"x", Tensor(DataType::kFloat, {256, 1024})}});
  ASSERT_TRUE(out2.ok());
  EXPECT_EQ((*ex2)->peak_bytes(), 7 * one);
  EXPECT_EQ(out2->size(), 7u);
}

TEST(ExecutorTest, KeepReturnsAskedIntermediates) {
  auto graph = SmallGraph();
  ExecutorOptions options;
  options.keep = {"mul_out"};
  auto ex = Executor::Create(*graph, options);
  ASSERT_TRUE(ex.ok());
  auto out = (*ex)->Run({{"x", Tensor(DataType::kFloat, {2, 3})}});
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->count("mul_out"));
  EXPECT_TRUE(out->count("add_out"));
}

TEST(ExecutorTest, UnsupportedOpFailsAtCreationNamingTypeNameAndOpset) {
  GraphBuilder b(11);
  Variable* x = b.Input("x", {2});
  Variable* y = b.Op("Relu", "fine", {x});
  b.Output(b.Op("FancyOp", "my_fancy_node", {y}));
  auto graph = b.Build();
  auto ex = Executor::Create(*graph);
  ASSERT_FALSE(ex.ok());
  EXPECT_EQ(ex.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(ex.status().message().find("FancyOp"), std::string::npos);
  EXPECT_NE(ex.status().message().find("my_fancy_node"), std::string::npos);
  EXPECT_NE(ex.status().message().find("11"), std::string::npos);
}

TEST(ExecutorTest, ChecksInputShapeAndType) {
  auto graph = SmallGraph();
  auto ex = Executor::Create(*graph);
  ASSERT_TRUE(ex.ok());
  auto bad_shape = (*ex)->Run({{"x", Tensor(DataType::kFloat, {3, 2})}});
  ASSERT_FALSE(bad_shape.ok());
  EXPECT_NE(bad_shape.status().message().find("'x'"), std::string::npos);
  auto bad_type = (*ex)->Run({{"x", Tensor(DataType::kInt64, {2, 3})}});
  ASSERT_FALSE(bad_type.ok());
  EXPECT_NE(bad_type.status().message().find("'x'"), std::string::npos);
  auto missing = (*ex)->Run({});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("'x'"), std::string::npos);
  auto extra = (*ex)->Run({{"x", Tensor(DataType::kFloat, {2, 3})}, {"zz", Tensor()}});
  ASSERT_FALSE(extra.ok());
  EXPECT_NE(extra.status().message().find("'zz'"), std::string::npos);
}

TEST(ExecutorTest, SymbolicDimsAcceptAnySize) {
  GraphBuilder b;
  Variable* x = b.Input("x", {1, 3});
  Shape s = Shape::Of({1, 3});
  s.dims[1] = Dim{-1, "width"};
  x->set_shape(s);
  b.Output(b.Op("Relu", "relu", {x}));
  auto graph = b.Build();
  auto ex = Executor::Create(*graph);
  ASSERT_TRUE(ex.ok());
  auto out = (*ex)->Run({{"x", Tensor(DataType::kFloat, {1, 17})}});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->at("relu_out").shape(), (std::vector<int64_t>{1, 17}));
}

TEST(ExecutorTest, KernelErrorsNameTheOp) {
  auto result = testing::RunOp("Add", {testing::Fed(Tensor(DataType::kFloat, {2, 3})),
                                       testing::Fed(Tensor(DataType::kFloat, {4}))});
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("Add 'op'"), std::string::npos)
      << result.status().message();
}


TEST(KernelRegistryTest, FindsByOpsetRangeAndPrefersTheAskedFlavor) {
  KernelRegistry registry;
  auto entry = [](int64_t since, int64_t until, KernelFlavor flavor) {
    KernelEntry e;
    e.op_type = "Foo";
    e.since_version = since;
    e.until_version = until;
    e.flavor = flavor;
    e.factory = [](const Operation&) -> StatusOr<std::unique_ptr<Kernel>> {
      return UnimplementedError("dummy");
    };
    return e;
  };
  registry.Register(entry(7, 12, KernelFlavor::kFast));
  registry.Register(entry(7, 12, KernelFlavor::kReference));
  registry.Register(entry(13, 17, KernelFlavor::kFast));
  const KernelEntry* fast = registry.Find("", "Foo", 11);
  const KernelEntry* ref = registry.Find("ai.onnx", "Foo", 11, KernelFlavor::kReference);
  ASSERT_TRUE(fast && ref);
  EXPECT_EQ(fast->flavor, KernelFlavor::kFast);
  EXPECT_EQ(ref->flavor, KernelFlavor::kReference);
  // No reference kernel at opset 13: the fast one stands in.
  const KernelEntry* fallback = registry.Find("", "Foo", 13, KernelFlavor::kReference);
  ASSERT_TRUE(fallback);
  EXPECT_EQ(fallback->since_version, 13);
  EXPECT_EQ(registry.Find("", "Foo", 6), nullptr);
  EXPECT_EQ(registry.Find("", "Foo", 18), nullptr);
  EXPECT_EQ(registry.Find("com.microsoft", "Foo", 11), nullptr);
}

TEST(KernelRegistryTest, DefaultRegistryCoversTheIssueOpList) {
  const KernelRegistry& registry = DefaultKernelRegistry();
  for (const char* op :
       {"Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Erf", "Tanh", "Sigmoid",
        "HardSigmoid", "HardSwish", "Relu", "LeakyRelu", "PRelu", "Clip", "Softmax", "LogSoftmax",
        "Resize", "Concat", "Split", "Slice", "Reshape", "Flatten", "Transpose", "Squeeze",
        "Unsqueeze", "Expand", "Tile", "Pad", "Gather", "Shape", "Cast", "ConstantOfShape",
        "Range", "Where", "Equal", "Less", "Greater", "Not", "And", "Neg", "Abs", "Floor", "Ceil",
        "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "Identity", "Dropout"}) {
    for (int64_t opset : {14, 17}) {  // HardSwish exists from opset 14
      EXPECT_NE(registry.Find("", op, opset), nullptr) << op << " opset " << opset;
    }
  }
  EXPECT_NE(registry.Find("", "Upsample", 9), nullptr);
  EXPECT_NE(registry.Find("", "LayerNormalization", 17), nullptr);
}

}  // namespace
}  // namespace qalign
