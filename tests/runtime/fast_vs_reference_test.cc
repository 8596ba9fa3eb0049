// Fast kernels against the reference kernels (the oracle) on a seeded sweep of broadcast shapes.
#include <gtest/gtest.h>

#include <random>

#include "op_runner.h"

namespace qalign::testing {
namespace {

// Random shape pairs that broadcast: each dim of b is the dim of a or 1; ranks may differ.
std::pair<std::vector<int64_t>, std::vector<int64_t>> RandomShapes(std::mt19937& rng) {
  std::uniform_int_distribution<int> rank_dist(0, 4), dim_dist(1, 9), coin(0, 2);
  const int rank = rank_dist(rng);
  std::vector<int64_t> a, b;
  for (int d = 0; d < rank; ++d) a.push_back(coin(rng) == 0 ? 1 : dim_dist(rng));
  const int drop = std::uniform_int_distribution<int>(0, rank)(rng);
  for (int d = drop; d < rank; ++d) b.push_back(coin(rng) == 0 ? 1 : a[d]);
  if (coin(rng) == 0) std::swap(a, b);
  return {a, b};
}

TEST(FastVsReferenceTest, BinaryOpsAgreeOnBroadcastSweep) {
  std::mt19937 rng(1234);
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "PRelu", "Max", "Min", "Equal", "Greater"}) {
    for (int trial = 0; trial < 30; ++trial) {
      auto [sa, sb] = RandomShapes(rng);
      if (std::string(op) == "PRelu" && sb.size() > sa.size()) std::swap(sa, sb);
      Tensor a = RandomF32(sa, rng(), 0.1f, 3.0f);
      Tensor b = RandomF32(sb, rng(), -2.0f, 2.0f);
      if (std::string(op) == "PRelu") {  // slope must broadcast to x's shape
        bool fits = true;
        for (size_t i = 0; i < sb.size(); ++i) {
          const int64_t da = sa[sa.size() - sb.size() + i];
          if (sb[i] != 1 && sb[i] != da) fits = false;
        }
        if (!fits) continue;
      }
      auto fast = RunOp(op, {Fed(a), Fed(b)}, {}, 1, 13, KernelFlavor::kFast, 4);
      auto ref = RunOp(op, {Fed(a), Fed(b)}, {}, 1, 13, KernelFlavor::kReference, 1);
      ASSERT_TRUE(fast.ok()) << op << ": " << fast.status().ToString();
      ASSERT_TRUE(ref.ok()) << op << ": " << ref.status().ToString();
      ASSERT_TRUE((*fast)[0].BitwiseEqual((*ref)[0]))
          << op << " " << ShapeToString(sa) << " x " << ShapeToString(sb);
    }
  }
}

TEST(FastVsReferenceTest, LargeTensorsSplitAcrossThreads) {
  // Big enough that the fast kernel runs in parallel chunks, including a one-row case.
  Tensor a = RandomF32({3, 64, 40, 40}, 21);
  Tensor b = RandomF32({64, 1, 1}, 22);
  Tensor flat = RandomF32({3 * 64 * 40 * 40}, 23);
  for (const char* op : {"Add", "Mul"}) {
    auto fast = RunOp(op, {Fed(a), Fed(b)}, {}, 1, 13, KernelFlavor::kFast, 4);
    auto ref = RunOp(op, {Fed(a), Fed(b)}, {}, 1, 13, KernelFlavor::kReference, 1);
    ASSERT_TRUE(fast.ok() && ref.ok());
    EXPECT_TRUE((*fast)[0].BitwiseEqual((*ref)[0])) << op;
  }
  for (const char* op : {"Sigmoid", "Tanh", "HardSwish"}) {
    auto fast = RunOp(op, {Fed(flat)}, {}, 1, 14, KernelFlavor::kFast, 4);
    auto ref = RunOp(op, {Fed(flat)}, {}, 1, 14, KernelFlavor::kReference, 1);
    ASSERT_TRUE(fast.ok() && ref.ok());
    EXPECT_TRUE((*fast)[0].BitwiseEqual((*ref)[0])) << op;
  }
}

}  // namespace
}  // namespace qalign::testing
