// Large arrays in transparent huge pages, and the cache of freed blocks (see huge_pages.h).
#include "core/huge_pages.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define QALIGN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QALIGN_ASAN 1
#endif
#endif
#if defined(QALIGN_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace qalign {
namespace {

size_t RoundUpToHugePage(size_t bytes) { return (bytes + kHugePageSize - 1) & ~(kHugePageSize - 1); }

// A cached block is poisoned under AddressSanitizer, so a use after FreeHuge is still reported.
void Poison(void* p, size_t size) {
#if defined(QALIGN_ASAN)
  ASAN_POISON_MEMORY_REGION(p, size);
#else
  (void)p;
  (void)size;
#endif
}
void Unpoison(void* p, size_t size) {
#if defined(QALIGN_ASAN)
  ASAN_UNPOISON_MEMORY_REGION(p, size);
#else
  (void)p;
  (void)size;
#endif
}

#if defined(__linux__)

void* MapHuge(size_t size) {
  // Map one huge page more than needed, then unmap the ends so the block starts on a 2 MiB
  // boundary: only aligned 2 MiB ranges can be huge pages.
  const size_t mapped = size + kHugePageSize;
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t begin = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (begin + kHugePageSize - 1) & ~uintptr_t{kHugePageSize - 1};
  if (aligned > begin) munmap(raw, aligned - begin);
  const uintptr_t end = begin + mapped;
  if (end > aligned + size) munmap(reinterpret_cast<void*>(aligned + size), end - (aligned + size));
  void* p = reinterpret_cast<void*>(aligned);
  madvise(p, size, MADV_HUGEPAGE);  // advice only: without THP the pages are ordinary ones
  return p;
}

void UnmapHuge(void* p, size_t size) { munmap(p, size); }

#else

void* MapHuge(size_t size) {
  void* p = std::aligned_alloc(kHugePageSize, size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void UnmapHuge(void* p, size_t) { std::free(p); }

#endif

// Freed blocks by age (oldest first), with the bytes in use, kept within Limit() together.
class BlockCache {
 public:
  // Hands out a block of `size` bytes: the most recently freed one of exactly that size, or a
  // new mapping (unmapping the oldest kept blocks if the total would pass the limit).
  void* Allocate(size_t size) {
    std::vector<Block> evicted;
    size_t peak_before = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = blocks_.size(); i-- > 0;) {
        if (blocks_[i].size != size) continue;
        void* p = blocks_[i].p;
        blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(i));
        cached_ -= size;
        AddInUse(size);
        Unpoison(p, size);
        return p;
      }
      peak_before = peak_in_use_;
      AddInUse(size);
      evicted = EvictOverLimit();
    }
    Unmap(evicted);
    try {
      return MapHuge(size);
    } catch (...) {
      // The block was never in use: neither the bytes in use nor their peak (the cache's limit)
      // may keep counting it.
      std::lock_guard<std::mutex> lock(mu_);
      in_use_ -= size;
      peak_in_use_ = std::max(peak_before, in_use_);
      throw;
    }
  }

  // Keeps the block, unmapping the oldest ones while the total is over the limit.
  void Put(void* p, size_t size) {
    std::vector<Block> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_use_ -= size;
      Poison(p, size);
      blocks_.push_back({p, size});
      cached_ += size;
      evicted = EvictOverLimit();
    }
    Unmap(evicted);
  }

  size_t Release() {
    std::vector<Block> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      all.swap(blocks_);
      cached_ = 0;
    }
    return Unmap(all);
  }

  size_t bytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }

  size_t limit() {
    std::lock_guard<std::mutex> lock(mu_);
    return Limit();
  }

 private:
  struct Block {
    void* p;
    size_t size;
  };

  size_t Limit() const { return std::max(kHugeCacheMinBytes, peak_in_use_); }

  void AddInUse(size_t size) {
    in_use_ += size;
    peak_in_use_ = std::max(peak_in_use_, in_use_);
  }

  // Removes the oldest blocks until in use plus kept fits the limit (always possible: the limit
  // is at least the bytes in use). Called under the lock; the caller unmaps them after it.
  std::vector<Block> EvictOverLimit() {
    size_t drop = 0;
    while (in_use_ + cached_ > Limit()) cached_ -= blocks_[drop++].size;
    const auto kept = blocks_.begin() + static_cast<std::ptrdiff_t>(drop);
    std::vector<Block> evicted(blocks_.begin(), kept);
    blocks_.erase(blocks_.begin(), kept);
    return evicted;
  }

  // Outside the lock: unmapping takes the kernel's time, not other threads'.
  static size_t Unmap(const std::vector<Block>& blocks) {
    size_t total = 0;
    for (const Block& b : blocks) {
      Unpoison(b.p, b.size);  // the address range may be mapped again for someone else
      UnmapHuge(b.p, b.size);
      total += b.size;
    }
    return total;
  }

  std::mutex mu_;
  std::vector<Block> blocks_;
  size_t cached_ = 0;       // bytes in blocks_
  size_t in_use_ = 0;       // bytes handed out and not yet freed
  size_t peak_in_use_ = 0;  // the most in_use_ has been
};

// Never destroyed: blocks freed by static destructors after main still find it.
BlockCache& Cache() {
  static BlockCache* cache = new BlockCache();
  return *cache;
}

}  // namespace

void* AllocateHuge(size_t bytes) { return Cache().Allocate(RoundUpToHugePage(bytes)); }

void FreeHuge(void* p, size_t bytes) {
  if (p != nullptr) Cache().Put(p, RoundUpToHugePage(bytes));
}

size_t ReleaseCachedHugeBlocks() { return Cache().Release(); }

size_t CachedHugeBytes() { return Cache().bytes(); }

size_t HugeCacheLimit() { return Cache().limit(); }

}  // namespace qalign
