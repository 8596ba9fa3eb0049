// Tests for Tensor and DataType helpers.
#include "ir/tensor.h"

#include <gtest/gtest.h>

namespace qalign {
namespace {

TEST(TensorTest, ShapeSizeAndAlignment) {
  Tensor t(DataType::kFloat, {2, 3, 4});
  EXPECT_EQ(t.num_elements(), 24);
  EXPECT_EQ(t.byte_size(), 96u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u);
  for (float x : t.values<float>()) EXPECT_EQ(x, 0.0f);
  Tensor scalar(DataType::kInt64, {});
  EXPECT_EQ(scalar.num_elements(), 1);
}

TEST(TensorTest, FromBytesChecksSize) {
  float values[3] = {1, 2, 3};
  EXPECT_TRUE(Tensor::FromBytes(DataType::kFloat, {3}, values, 12).ok());
  auto bad = Tensor::FromBytes(DataType::kFloat, {4}, values, 12);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("[4]"), std::string::npos);
}

TEST(TensorTest, IntegerConversions) {
  auto t = Tensor::FromVector<int32_t>({3}, {-1, 0, 7});
  EXPECT_EQ(*t.AsInt64s(), (std::vector<int64_t>{-1, 0, 7}));
  EXPECT_EQ(*t.AsFloats(), (std::vector<float>{-1.0f, 0.0f, 7.0f}));
  auto f = Tensor::FromVector<float>({1}, {1.5f});
  EXPECT_FALSE(f.AsInt64s().ok());
  EXPECT_TRUE(t.Reshape({3, 1}).ok());
  EXPECT_FALSE(t.Reshape({2}).ok());
}

TEST(TensorTest, DataTypeNamesAndSizes) {
  EXPECT_STREQ(DataTypeName(DataType::kInt8), "i8");
  EXPECT_EQ(DataTypeSize(DataType::kInt64), 8u);
  EXPECT_TRUE(IsFloatingPoint(DataType::kFloat16));
  EXPECT_FALSE(IsFloatingPoint(DataType::kInt32));
}

}  // namespace
}  // namespace qalign
