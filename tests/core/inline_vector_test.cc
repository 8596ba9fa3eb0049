// InlineVector: values inline up to N, on the heap beyond, with std::vector's value semantics.
#include "core/inline_vector.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace qalign {
namespace {

using Floats = InlineVector<float, 1>;

// Where the values live: inside the object or elsewhere.
bool Inline(const Floats& v) {
  const auto* p = reinterpret_cast<const char*>(v.data());
  const auto* self = reinterpret_cast<const char*>(&v);
  return p >= self && p < self + sizeof(v);
}

TEST(InlineVectorTest, OneValueStaysInTheObjectMoreGoToTheHeap) {
  Floats v;
  EXPECT_TRUE(v.empty());
  v.assign(1, 0.5f);
  EXPECT_EQ(v.size(), 1u);
  EXPECT_TRUE(Inline(v));
  EXPECT_EQ(v[0], 0.5f);
  const std::vector<float> three = {1.0f, 2.0f, 3.0f};
  v = three;
  EXPECT_FALSE(Inline(v));
  EXPECT_EQ(v, three);
  EXPECT_EQ(std::vector<float>(v), three);
  // Shrinking keeps the heap room; the values are the new ones.
  v.assign(1, 7.0f);
  EXPECT_EQ(v, (std::vector<float>{7.0f}));
  EXPECT_EQ(v.front(), 7.0f);
  EXPECT_EQ(v.back(), 7.0f);
  v.clear();
  EXPECT_TRUE(v.empty());
}

TEST(InlineVectorTest, CopiesAndMovesKeepValuesAndOwnership) {
  Floats small = {0.25f};
  Floats big = {1.0f, 2.0f, 3.0f, 4.0f};
  Floats small_copy = small, big_copy = big;
  EXPECT_EQ(small_copy, small);
  EXPECT_EQ(big_copy, big);
  EXPECT_NE(big_copy.data(), big.data());  // a copy owns its own heap values
  const float* heap = big.data();
  Floats moved = std::move(big);
  EXPECT_EQ(moved.data(), heap);  // a move takes the heap values over
  EXPECT_TRUE(big.empty());       // NOLINT(bugprone-use-after-move): the moved-from state
  big = small;                    // and the moved-from object is usable
  EXPECT_EQ(big, small);
  moved = std::move(small_copy);
  EXPECT_EQ(moved, (std::vector<float>{0.25f}));
  EXPECT_TRUE(Inline(moved));
  Floats self = {5.0f, 6.0f};
  Floats& alias = self;
  self = alias;
  EXPECT_EQ(self, (std::vector<float>{5.0f, 6.0f}));
  const std::span<const float> view = self;
  EXPECT_EQ(view.size(), 2u);
  EXPECT_EQ(view[1], 6.0f);
}

// Adopted storage is used in place and never freed by the vector (ASan would flag freeing this
// stack array); values up to its size are written into it, more go to the vector's own heap.
TEST(InlineVectorTest, AdoptedStorageIsBorrowedNotOwned) {
  float storage[3] = {1.0f, 2.0f, 3.0f};
  {
    Floats v;
    v.Adopt(storage);
    EXPECT_EQ(v.data(), storage);
    EXPECT_EQ(v, (std::vector<float>{1.0f, 2.0f, 3.0f}));
    EXPECT_EQ(v.capacity(), 3u);
    v.assign(2, 9.0f);  // fits: written into the borrowed storage
    EXPECT_EQ(v.data(), storage);
    EXPECT_EQ(storage[0], 9.0f);
    Floats copy = v;  // a copy owns its values
    EXPECT_NE(copy.data(), storage);
    Floats moved = std::move(v);  // a move keeps borrowing
    EXPECT_EQ(moved.data(), storage);
    moved.assign(4, 5.0f);  // does not fit: own heap values; the storage is left as it was
    EXPECT_NE(moved.data(), storage);
    EXPECT_EQ(storage[2], 3.0f);
  }
  float one[1] = {4.0f};
  Floats v;
  v.Adopt(one);  // fits inline: copied in
  EXPECT_NE(v.data(), one);
  EXPECT_EQ(v, (std::vector<float>{4.0f}));
}

// Seeded random assignments, copies and moves against std::vector (ASan checks the memory).
TEST(InlineVectorTest, RandomOperationsMatchStdVector) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> op(0, 3), len(0, 6);
  std::uniform_int_distribution<int64_t> value(-1000, 1000);
  std::vector<InlineVector<int64_t, 1>> ours(4);
  std::vector<std::vector<int64_t>> theirs(4);
  for (int step = 0; step < 2000; ++step) {
    const size_t a = rng() % 4, b = rng() % 4;
    switch (op(rng)) {
      case 0: {
        std::vector<int64_t> v(static_cast<size_t>(len(rng)));
        for (int64_t& x : v) x = value(rng);
        ours[a].assign(v.begin(), v.end());
        theirs[a] = v;
        break;
      }
      case 1:
        ours[a] = ours[b];
        theirs[a] = theirs[b];
        break;
      case 2:
        if (a != b) {
          ours[a] = std::move(ours[b]);
          theirs[a] = std::move(theirs[b]);
          theirs[b].clear();  // ours leaves the moved-from vector empty; std::vector's is unspecified
        }
        break;
      default: {
        const size_t n = static_cast<size_t>(len(rng));
        const int64_t x = value(rng);
        ours[a].assign(n, x);
        theirs[a].assign(n, x);
      }
    }
    for (size_t k = 0; k < 4; ++k) ASSERT_EQ(ours[k], theirs[k]) << "step " << step;
  }
}

}  // namespace
}  // namespace qalign
