// BatchNormalization (inference): a hand-computed case and fast-vs-reference on seeded inputs.
#include <gtest/gtest.h>

#include <random>

#include "nn_test_util.h"

namespace qalign::nn {
namespace {

using testing::Close;
using testing::FastMatchesReference;
using testing::Floats;
using testing::MakeOp;
using testing::RandomTensor;
using testing::RunKernel;

TEST(BatchNormReferenceTest, ByHand) {
  // y = scale * (x - mean) / sqrt(var + eps) + B with eps = 1:
  // channel 0: 2 * (1 - 1) / 2 + 0 = 0; channel 1: 1 * (2 - 0) / 1 + 1 = 3.
  const Tensor x = Floats({1, 2, 1, 1}, {1, 2});
  const Tensor scale = Floats({2}, {2, 1}), bias = Floats({2}, {0, 1});
  const Tensor mean = Floats({2}, {1, 0}), var = Floats({2}, {3, 0});
  auto one = MakeOp("BatchNormalization", {x.shape(), scale.shape(), bias.shape(), mean.shape(),
                                           var.shape()},
                    {{"epsilon", Attribute::Float(1.0f)}});
  auto kernel = CreateBatchNormalizationReference(*one.op);
  ASSERT_TRUE(kernel.ok());
  auto y = RunKernel(**kernel, *one.op, {&x, &scale, &bias, &mean, &var});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_TRUE(Close(*y, Floats({1, 2, 1, 1}, {0, 3})));
}

TEST(BatchNormFastTest, MatchesReference) {
  std::mt19937 rng(8);
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{2, 3}, {1, 4, 7}, {2, 5, 3, 4}, {1, 2, 2, 2, 3}}) {
    const int64_t c = shape[1];
    const Tensor x = RandomTensor(shape, rng, -3, 3);
    const Tensor scale = RandomTensor({c}, rng), bias = RandomTensor({c}, rng);
    const Tensor mean = RandomTensor({c}, rng), var = RandomTensor({c}, rng, 0.1f, 2.0f);
    auto one = MakeOp("BatchNormalization", {shape, std::vector<int64_t>{c},
                                             std::vector<int64_t>{c}, std::vector<int64_t>{c},
                                             std::vector<int64_t>{c}});
    EXPECT_TRUE(FastMatchesReference(CreateBatchNormalizationFast,
                                     CreateBatchNormalizationReference, *one.op,
                                     {&x, &scale, &bias, &mean, &var}))
        << ShapeToString(shape);
  }
}

TEST(BatchNormFastTest, PerActivationStatisticsOfOldOpsets) {
  // Opset 7 with spatial=0: one statistic per (channel, position).
  std::mt19937 rng(9);
  const std::vector<int64_t> shape = {2, 3, 4}, stat = {3, 4};
  const Tensor x = RandomTensor(shape, rng);
  const Tensor scale = RandomTensor(stat, rng), bias = RandomTensor(stat, rng);
  const Tensor mean = RandomTensor(stat, rng), var = RandomTensor(stat, rng, 0.1f, 2.0f);
  auto one = MakeOp("BatchNormalization", {shape, stat, stat, stat, stat},
                    {{"spatial", Attribute::Int(0)}}, 7);
  EXPECT_TRUE(FastMatchesReference(CreateBatchNormalizationFast, CreateBatchNormalizationReference,
                                   *one.op, {&x, &scale, &bias, &mean, &var}));
}

TEST(BatchNormFastTest, TrainingModeIsUnsupported) {
  auto one = MakeOp("BatchNormalization", {std::vector<int64_t>{1, 2}, std::vector<int64_t>{2},
                                           std::vector<int64_t>{2}, std::vector<int64_t>{2},
                                           std::vector<int64_t>{2}},
                    {{"training_mode", Attribute::Int(1)}}, 15);
  auto kernel = CreateBatchNormalizationFast(*one.op);
  ASSERT_FALSE(kernel.ok());
  EXPECT_NE(kernel.status().message().find("BatchNormalization 'node'"), std::string::npos);
}

}  // namespace
}  // namespace qalign::nn
