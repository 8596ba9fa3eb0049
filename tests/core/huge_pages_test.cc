// HugeVector: small arrays from operator new, large ones mapped on 2 MiB boundaries; both hold
// what is written, survive growth and free cleanly (the ASan build checks the frees).
#include "core/huge_pages.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <new>
#include <numeric>
#include <vector>

namespace qalign {
namespace {

TEST(HugePagesTest, LargeArraysAreAlignedToHugePagesAndHoldTheirValues) {
  HugeVector<int32_t> v(3'000'000);  // 12 MB: mapped on its own
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kHugePageSize, 0u);
  std::iota(v.begin(), v.end(), 7);
  int64_t sum = 0;
  for (int32_t x : v) sum += x;
  EXPECT_EQ(sum, int64_t{3'000'000} * 7 + int64_t{3'000'000} * 2'999'999 / 2);
}

TEST(HugePagesTest, GrowingAcrossTheThresholdKeepsTheElements) {
  HugeVector<int64_t> v;
  for (int64_t i = 0; i < 400'000; ++i) v.push_back(i * 3);  // 3.2 MB at the end
  ASSERT_EQ(v.size(), 400'000u);
  for (int64_t i = 0; i < 400'000; i += 997) ASSERT_EQ(v[static_cast<size_t>(i)], i * 3);
  v.clear();
  v.shrink_to_fit();
  EXPECT_EQ(v.capacity(), 0u);
}

TEST(HugePagesTest, SmallArraysUseOrdinaryAllocations) {
  HugeVector<double> v(10, 1.5);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % alignof(double), 0u);
  EXPECT_DOUBLE_EQ(v[9], 1.5);
  HugeVector<double> moved = std::move(v);
  EXPECT_DOUBLE_EQ(moved[0], 1.5);
}

TEST(HugePagesTest, AllocateHugeReturnsAlignedWritableMemory) {
  const size_t bytes = kHugeAllocationMin + 12345;
  auto* p = static_cast<unsigned char*>(AllocateHuge(bytes));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHugePageSize, 0u);
  for (size_t i = 0; i < bytes; i += 4096) p[i] = static_cast<unsigned char>(i >> 12);
  p[bytes - 1] = 42;  // the last byte asked for is usable
  size_t wrong = 0;
  for (size_t i = 0; i < bytes; i += 4096) wrong += p[i] != static_cast<unsigned char>(i >> 12);
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(p[bytes - 1], 42);
  FreeHuge(p, bytes);
}

TEST(HugePagesTest, AFreedBlockIsReusedForTheSameSizeAndReleasedOnRequest) {
  ReleaseCachedHugeBlocks();
  ASSERT_EQ(CachedHugeBytes(), 0u);
  const size_t bytes = 3 * kHugePageSize - 100;  // rounds up to three huge pages
  auto* first = static_cast<unsigned char*>(AllocateHuge(bytes));
  first[0] = 1;
  FreeHuge(first, bytes);
  EXPECT_EQ(CachedHugeBytes(), 3 * kHugePageSize);
  // Another size does not take it; the same rounded size does.
  void* other = AllocateHuge(kHugePageSize);
  EXPECT_NE(other, first);
  EXPECT_EQ(CachedHugeBytes(), 3 * kHugePageSize);
  auto* again = static_cast<unsigned char*>(AllocateHuge(3 * kHugePageSize));
  EXPECT_EQ(again, first);
  EXPECT_EQ(CachedHugeBytes(), 0u);
  again[bytes - 1] = 7;  // writable again (and unpoisoned under ASan)
  FreeHuge(again, 3 * kHugePageSize);
  FreeHuge(other, kHugePageSize);
  EXPECT_EQ(CachedHugeBytes(), 4 * kHugePageSize);
  EXPECT_EQ(ReleaseCachedHugeBlocks(), 4 * kHugePageSize);
  EXPECT_EQ(CachedHugeBytes(), 0u);
}

// A quarter of the cache's limit now, in whole huge pages (at least 64 MiB).
size_t QuarterOfLimit() { return HugeCacheLimit() / 4 / kHugePageSize * kHugePageSize; }

TEST(HugePagesTest, TheCacheStaysWithinItsLimitDroppingTheOldestBlocks) {
  ReleaseCachedHugeBlocks();
  const size_t limit = HugeCacheLimit();
  EXPECT_GE(limit, kHugeCacheMinBytes);
  const size_t block = QuarterOfLimit();
  std::vector<void*> blocks;
  for (int i = 0; i < 4; ++i) blocks.push_back(AllocateHuge(block));
  for (void* p : blocks) FreeHuge(p, block);
  EXPECT_EQ(CachedHugeBytes(), 4 * block);  // all four fit
  EXPECT_EQ(HugeCacheLimit(), limit);
  // A new size is mapped afresh; in use plus kept must stay within the limit, so the two oldest
  // blocks go (4 * block <= limit < 5 * block).
  void* other = AllocateHuge(2 * block);
  EXPECT_EQ(CachedHugeBytes(), 2 * block);
  // The two most recently freed are kept, the newest handed out first.
  EXPECT_EQ(AllocateHuge(block), blocks[3]);
  EXPECT_EQ(AllocateHuge(block), blocks[2]);
  EXPECT_EQ(CachedHugeBytes(), 0u);
  FreeHuge(blocks[3], block);
  FreeHuge(blocks[2], block);
  FreeHuge(other, 2 * block);
  EXPECT_EQ(CachedHugeBytes(), 4 * block);
  ReleaseCachedHugeBlocks();
}

// A mapping the kernel refuses (4 EiB: more than the address space) throws, and neither the bytes
// in use nor the limit keep counting the block that never existed.
TEST(HugePagesTest, AFailedMappingLeavesTheLimitAsItWas) {
  ReleaseCachedHugeBlocks();
  const size_t limit = HugeCacheLimit();
  EXPECT_THROW(AllocateHuge(size_t{1} << 62), std::bad_alloc);
  EXPECT_EQ(HugeCacheLimit(), limit);
  // The cache still works: a block freed now is kept.
  const size_t block = QuarterOfLimit();
  void* p = AllocateHuge(block);
  FreeHuge(p, block);
  EXPECT_EQ(CachedHugeBytes(), block);
  ReleaseCachedHugeBlocks();
}

TEST(HugePagesTest, TheLimitGrowsToTheMostInUseAtOnce) {
  ReleaseCachedHugeBlocks();
  const size_t block = QuarterOfLimit();
  // Six quarters in use at once: more than the limit was, so the limit rises to cover them and
  // all six are kept when freed (a repeat of this job maps nothing new).
  std::vector<void*> blocks;
  for (int i = 0; i < 6; ++i) blocks.push_back(AllocateHuge(block));
  EXPECT_GE(HugeCacheLimit(), 6 * block);
  for (void* p : blocks) FreeHuge(p, block);
  EXPECT_EQ(CachedHugeBytes(), 6 * block);
  for (int i = 5; i >= 0; --i) EXPECT_EQ(AllocateHuge(block), blocks[static_cast<size_t>(i)]);
  EXPECT_EQ(CachedHugeBytes(), 0u);
  for (void* p : blocks) FreeHuge(p, block);
  EXPECT_EQ(ReleaseCachedHugeBlocks(), 6 * block);
  EXPECT_EQ(CachedHugeBytes(), 0u);
}

TEST(HugePagesTest, VectorsReuseTheCachedBlocksOfEarlierOnes) {
  ReleaseCachedHugeBlocks();
  const int32_t* first = nullptr;
  {
    HugeVector<int32_t> v(1'000'000, 5);
    first = v.data();
  }
  HugeVector<int32_t> w(1'000'000, 9);  // same rounded size: the same pages, refilled
  EXPECT_EQ(w.data(), first);
  EXPECT_EQ(std::count(w.begin(), w.end(), 9), 1'000'000);
}

}  // namespace
}  // namespace qalign
