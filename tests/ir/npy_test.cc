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

}  // namespace
}  // namespace qalign
