// Gemm and MatMul: hand-computed reference cases and a seeded fast-vs-reference sweep
// (transposes, alpha / beta, C broadcasting, 1-D operands, batch broadcasting).
#include <gtest/gtest.h>

#include <random>

#include "nn_test_util.h"

namespace qalign::nn {
namespace {

using qalign::testing::AttributeList;
using testing::Close;
using testing::FastMatchesReference;
using testing::Floats;
using testing::MakeOp;
using testing::RandomTensor;
using testing::RunKernel;

Tensor RunReference(const std::string& type, const std::vector<const Tensor*>& inputs,
                    AttributeList attrs = {}) {
  std::vector<std::optional<std::vector<int64_t>>> shapes;
  for (const Tensor* t : inputs) shapes.push_back(t->shape());
  auto one = MakeOp(type, shapes, std::move(attrs));
  auto kernel = type == "Gemm" ? CreateGemmReference(*one.op) : CreateMatMulReference(*one.op);
  EXPECT_TRUE(kernel.ok()) << kernel.status().ToString();
  auto y = RunKernel(**kernel, *one.op, inputs);
  EXPECT_TRUE(y.ok()) << y.status().ToString();
  return y.ok() ? std::move(*y) : Tensor();
}

TEST(GemmReferenceTest, ByHand) {
  const Tensor a = Floats({2, 2}, {1, 2, 3, 4});
  const Tensor b = Floats({2, 2}, {5, 6, 7, 8});
  EXPECT_TRUE(Close(RunReference("Gemm", {&a, &b}), Floats({2, 2}, {19, 22, 43, 50})));
  // 2 * AB + 0.5 * [1, 2] (a row broadcast over M).
  const Tensor c = Floats({2}, {1, 2});
  EXPECT_TRUE(Close(RunReference("Gemm", {&a, &b, &c},
                                 {{"alpha", Attribute::Float(2)}, {"beta", Attribute::Float(0.5f)}}),
                    Floats({2, 2}, {38.5f, 45, 86.5f, 101})));
  // A^T B.
  EXPECT_TRUE(Close(RunReference("Gemm", {&a, &b}, {{"transA", Attribute::Int(1)}}),
                    Floats({2, 2}, {26, 30, 38, 44})));
  // A B^T with a column C [M, 1].
  const Tensor col = Floats({2, 1}, {10, 20});
  EXPECT_TRUE(Close(RunReference("Gemm", {&a, &b, &col}, {{"transB", Attribute::Int(1)}}),
                    Floats({2, 2}, {27, 33, 59, 73})));
}

TEST(MatMulReferenceTest, ByHand) {
  const Tensor v = Floats({2}, {1, 2});
  const Tensor m = Floats({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_TRUE(Close(RunReference("MatMul", {&v, &m}), Floats({3}, {9, 12, 15})));
  const Tensor sq = Floats({2, 2}, {1, 2, 3, 4});
  const Tensor ones = Floats({2}, {1, 1});
  EXPECT_TRUE(Close(RunReference("MatMul", {&sq, &ones}), Floats({2}, {3, 7})));
  // [2, 1, 2] x [2, 2]: each batch row times the same matrix; and [2, 2] x [2, 2, 1] broadcasts A.
  const Tensor rows = Floats({2, 1, 2}, {1, 0, 0, 1});
  EXPECT_TRUE(Close(RunReference("MatMul", {&rows, &sq}), Floats({2, 1, 2}, {1, 2, 3, 4})));
  const Tensor cols = Floats({2, 2, 1}, {1, 0, 0, 1});
  EXPECT_TRUE(Close(RunReference("MatMul", {&sq, &cols}), Floats({2, 2, 1}, {1, 3, 2, 4})));
}

TEST(GemmFastTest, MatchesReferenceOnSeededSweep) {
  std::mt19937 rng(31337);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 80; ++trial) {
    const int64_t m = pick(1, 17), k = pick(1, 17), n = pick(1, 17);
    const bool ta = pick(0, 1), tb = pick(0, 1);
    const float alpha = pick(0, 2) == 0 ? 1.0f : std::uniform_real_distribution<float>(-2, 2)(rng);
    const float beta = pick(0, 2) == 0 ? 1.0f : std::uniform_real_distribution<float>(-2, 2)(rng);
    const int c_kind = pick(0, 6);
    const std::vector<std::vector<int64_t>> c_shapes = {{}, {n}, {1, n}, {m, 1}, {m, n}, {1}, {1, 1}};
    const Tensor a = RandomTensor(ta ? std::vector<int64_t>{k, m} : std::vector<int64_t>{m, k}, rng);
    const Tensor b = RandomTensor(tb ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n}, rng);
    const Tensor c = RandomTensor(c_shapes[c_kind], rng);
    const bool has_c = pick(0, 3) != 0;
    AttributeList attrs = {{"alpha", Attribute::Float(alpha)},
                           {"beta", Attribute::Float(beta)},
                           {"transA", Attribute::Int(ta)},
                           {"transB", Attribute::Int(tb)}};
    std::vector<std::optional<std::vector<int64_t>>> shapes = {a.shape(), b.shape()};
    std::vector<const Tensor*> inputs = {&a, &b};
    if (has_c) {
      shapes.push_back(c.shape());
      inputs.push_back(&c);
    }
    auto one = MakeOp("Gemm", shapes, attrs);
    EXPECT_TRUE(FastMatchesReference(CreateGemmFast, CreateGemmReference, *one.op, inputs))
        << "trial " << trial << " m " << m << " k " << k << " n " << n << " transA " << ta
        << " transB " << tb << " alpha " << alpha << " beta " << beta << " C "
        << (has_c ? ShapeToString(c.shape()) : "none");
  }
}

TEST(MatMulFastTest, MatchesReferenceOnSeededSweep) {
  std::mt19937 rng(2718);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 80; ++trial) {
    const int64_t m = pick(1, 9), k = pick(1, 9), n = pick(1, 9);
    const int a_rank = pick(1, 4), b_rank = pick(1, 4);
    const int batch_rank = std::max(a_rank, b_rank) - 2;
    std::vector<int64_t> batch;
    for (int i = 0; i < batch_rank; ++i) batch.push_back(pick(1, 3));
    // Each operand takes the trailing part of the batch dims, some of them replaced by 1.
    auto batch_of = [&](int rank) {
      std::vector<int64_t> dims;
      for (int i = batch_rank - (rank - 2); i < batch_rank; ++i) {
        dims.push_back(pick(0, 2) == 0 ? 1 : batch[i]);
      }
      return dims;
    };
    std::vector<int64_t> a_shape = a_rank == 1 ? std::vector<int64_t>{k} : batch_of(a_rank);
    std::vector<int64_t> b_shape = b_rank == 1 ? std::vector<int64_t>{k} : batch_of(b_rank);
    if (a_rank > 1) a_shape.insert(a_shape.end(), {m, k});
    if (b_rank > 1) b_shape.insert(b_shape.end(), {k, n});
    const Tensor a = RandomTensor(a_shape, rng);
    const Tensor b = RandomTensor(b_shape, rng);
    auto one = MakeOp("MatMul", {a_shape, b_shape});
    EXPECT_TRUE(FastMatchesReference(CreateMatMulFast, CreateMatMulReference, *one.op, {&a, &b}))
        << "trial " << trial << " A " << ShapeToString(a_shape) << " B " << ShapeToString(b_shape);
  }
}

TEST(MatMulFastTest, MismatchedInnerDimsAreAnError) {
  auto one = MakeOp("MatMul", {std::vector<int64_t>{2, 3}, std::vector<int64_t>{4, 2}});
  auto fast = CreateMatMulFast(*one.op);
  ASSERT_TRUE(fast.ok());
  const Tensor a(DataType::kFloat, {2, 3});
  const Tensor b(DataType::kFloat, {4, 2});
  auto y = RunKernel(**fast, *one.op, {&a, &b});
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("MatMul 'node'"), std::string::npos);
  EXPECT_NE(y.status().message().find("x0"), std::string::npos);
}

}  // namespace
}  // namespace qalign::nn
