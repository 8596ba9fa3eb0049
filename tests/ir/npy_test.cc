// Tests for .npy reading and writing, against bytes numpy itself writes.
#include "ir/npy.h"

#include <gtest/gtest.h>

namespace qalign {
namespace {

TEST(NpyTest, RoundTripKeepsShapeTypeAndValues) {
  auto t = Tensor::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, -6.5f});
  auto bytes = SerializeNpy(t);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->size() % 64, 24u);  // header padded to 64, then 24 data bytes
  auto back = ParseNpy(*bytes, "mem");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->BitwiseEqual(t));
}

TEST(NpyTest, ReadsNumpyWrittenHeader) {
  // np.save of np.arange(3, dtype=np.int64): header as numpy 1.24 writes it.
  std::string header = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }";
  header.append(128 - 10 - header.size() - 1, ' ');  // numpy pads to a multiple of 64
  header.push_back('\n');
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes.push_back(static_cast<char>(header.size()));
  bytes.push_back(0);
  bytes += header;
  int64_t values[3] = {0, 1, 2};
  bytes.append(reinterpret_cast<const char*>(values), sizeof(values));
  auto t = ParseNpy(bytes, "arange.npy");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->dtype(), DataType::kInt64);
  EXPECT_EQ(t->shape(), (std::vector<int64_t>{3}));
  EXPECT_EQ(t->data<int64_t>()[2], 2);
}

TEST(NpyTest, ScalarAndErrorsNameTheSource) {
  auto scalar = Tensor::FromVector<int32_t>({}, {7});
  auto back = ParseNpy(*SerializeNpy(scalar), "s.npy");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->rank(), 0);
  EXPECT_EQ(back->data<int32_t>()[0], 7);
  auto bad = ParseNpy("not numpy", "input.npy");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("input.npy"), std::string::npos);
  std::string truncated = *SerializeNpy(Tensor::FromVector<float>({4}, {1, 2, 3, 4}));
  truncated.resize(truncated.size() - 4);
  auto short_data = ParseNpy(truncated, "short.npy");
  ASSERT_FALSE(short_data.ok());
  EXPECT_NE(short_data.status().message().find("short.npy"), std::string::npos);
}

// A float32 .npy file whose header says `shape` (as written between the parentheses).
std::string NpyWithShape(const std::string& shape, size_t data_bytes) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes.push_back(static_cast<char>(header.size() & 0xff));
  bytes.push_back(static_cast<char>(header.size() >> 8));
  return bytes + header + std::string(data_bytes, '\0');
}

TEST(NpyTest, NegativeDimsAreRefused) {
  // (-3, 4) used to read as (3, 4): the '-' was skipped.
  auto t = ParseNpy(NpyWithShape("-3, 4", 48), "neg.npy");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("neg.npy: .npy shape (-3, 4) has dim '-3'"),
            std::string::npos)
      << t.status().message();
}

TEST(NpyTest, MalformedAndHugeDimsAreRefusedWithoutThrowing) {
  for (const std::string shape : {"3x, 4", "99999999999999999999999, 1", ",", "2,,3"}) {
    auto t = ParseNpy(NpyWithShape(shape, 16), "bad.npy");
    ASSERT_FALSE(t.ok()) << shape;
    EXPECT_NE(t.status().message().find("bad.npy"), std::string::npos) << t.status().message();
  }
  // Fits int64 per dim, overflows the count: checked before any size arithmetic.
  auto overflow = ParseNpy(NpyWithShape("4611686018427387904, 4", 16), "big.npy");
  ASSERT_FALSE(overflow.ok());
  EXPECT_NE(overflow.status().message().find("64-bit"), std::string::npos)
      << overflow.status().message();
}

TEST(NpyTest, ShapeSpellingsNumpyWrites) {
  auto vector = ParseNpy(NpyWithShape("3,", 12), "v.npy");
  ASSERT_TRUE(vector.ok()) << vector.status().message();
  EXPECT_EQ(vector->shape(), (std::vector<int64_t>{3}));
  auto matrix = ParseNpy(NpyWithShape("2, 3", 24), "m.npy");
  ASSERT_TRUE(matrix.ok()) << matrix.status().message();
  EXPECT_EQ(matrix->shape(), (std::vector<int64_t>{2, 3}));
  // A zero dim beside dims whose product overflows: empty, no overflow (found by fuzzing).
  auto huge_empty = ParseNpy(NpyWithShape("1111111111125, 222222222221, 0", 0), "z.npy");
  ASSERT_TRUE(huge_empty.ok()) << huge_empty.status().message();
  EXPECT_EQ(huge_empty->num_elements(), 0);
  auto empty = ParseNpy(NpyWithShape("0, 5", 0), "e.npy");
  ASSERT_TRUE(empty.ok()) << empty.status().message();
  EXPECT_EQ(empty->num_elements(), 0);
}

}  // namespace
}  // namespace qalign
