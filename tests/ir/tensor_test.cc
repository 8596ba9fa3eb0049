// Tests for Tensor and DataType helpers.
#include "ir/tensor.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

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

TEST(TensorTest, BorrowReadsTheCallersMemoryInPlace) {
  std::vector<float> caller = {1, 2, 3, 4, 5, 6};
  auto view = Tensor::Borrow(DataType::kFloat, {2, 3}, caller.data(), 24);
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  const Tensor& t = *view;
  EXPECT_TRUE(t.borrowed());
  EXPECT_EQ(t.raw_data(), caller.data());
  EXPECT_EQ(t.byte_size(), 24u);
  EXPECT_EQ(t.values<float>()[4], 5.0f);
  // A copy is another view of the same bytes; Reshape changes only the shape.
  Tensor copy = t;
  ASSERT_TRUE(copy.Reshape({6}).ok());
  EXPECT_TRUE(copy.borrowed());
  EXPECT_EQ(std::as_const(copy).raw_data(), caller.data());
  EXPECT_TRUE(t.BitwiseEqual(Tensor::FromVector<float>({2, 3}, caller)));
  EXPECT_FALSE(t.BitwiseEqual(Tensor::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, 7})));
}

TEST(TensorTest, WritingABorrowedTensorCopiesItFirst) {
  std::vector<float> caller = {1, 2, 3};
  Tensor t = *Tensor::Borrow(DataType::kFloat, {3}, caller.data(), 12);
  Tensor other_view = t;
  const int64_t copies_before = Tensor::BorrowedCopies();
  t.values<float>()[0] = 100.0f;  // mutable access: copy on write
  EXPECT_EQ(Tensor::BorrowedCopies(), copies_before + 1);
  EXPECT_FALSE(t.borrowed());
  EXPECT_NE(std::as_const(t).raw_data(), caller.data());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(std::as_const(t).raw_data()) % 64, 0u);
  EXPECT_EQ(*t.AsFloats(), (std::vector<float>{100, 2, 3}));
  // The caller's memory and the other view are untouched.
  EXPECT_EQ(caller, (std::vector<float>{1, 2, 3}));
  EXPECT_TRUE(other_view.borrowed());
  EXPECT_EQ(*other_view.AsFloats(), (std::vector<float>{1, 2, 3}));
  // Reading through const access never copies.
  (void)std::as_const(other_view).values<float>();
  EXPECT_EQ(Tensor::BorrowedCopies(), copies_before + 1);
}

TEST(TensorTest, BorrowedTensorAndItsCopiesHoldTheKeepalive) {
  auto owner = std::make_shared<std::vector<float>>(std::vector<float>{1, 2});
  std::weak_ptr<std::vector<float>> watch = owner;
  Tensor t = *Tensor::Borrow(DataType::kFloat, {2}, owner->data(), 8, owner);
  owner.reset();
  Tensor copy = t;
  t = Tensor();
  EXPECT_FALSE(watch.expired());  // the copy still reads it
  EXPECT_EQ(*copy.AsFloats(), (std::vector<float>{1, 2}));
  copy.values<float>()[1] = 3.0f;  // owned now: the memory is released
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(*copy.AsFloats(), (std::vector<float>{1, 3}));
}

TEST(TensorTest, BorrowChecksSizeAlignmentAndType) {
  alignas(8) float values[4] = {1, 2, 3, 4};
  auto size = Tensor::Borrow(DataType::kFloat, {4}, values, 12);
  ASSERT_FALSE(size.ok());
  EXPECT_NE(size.status().message().find("[4]"), std::string::npos);
  const auto* bytes = reinterpret_cast<const uint8_t*>(values);
  auto misaligned = Tensor::Borrow(DataType::kFloat, {2}, bytes + 2, 8);
  ASSERT_FALSE(misaligned.ok());
  EXPECT_NE(misaligned.status().message().find("not aligned"), std::string::npos);
  EXPECT_TRUE(Tensor::Borrow(DataType::kUint8, {2}, bytes + 1, 2).ok());
  EXPECT_FALSE(Tensor::Borrow(DataType::kString, {1}, values, 1).ok());
  // Empty: nothing to borrow.
  auto empty = Tensor::Borrow(DataType::kFloat, {0, 3}, nullptr, 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->borrowed());
  EXPECT_EQ(empty->num_elements(), 0);
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
