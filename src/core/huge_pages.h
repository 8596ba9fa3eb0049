// Large arrays in transparent huge pages.
//
// A pass over a graph of 100k ops builds tens of megabytes of dense arrays and drops them at the
// end. On a virtual machine each first touch of a 4 KiB page is a fault costing microseconds, so
// paging in those arrays can cost more than the pass's own work (measured here: 16 MiB in 4 KiB
// pages 14 ms, in 2 MiB pages 2.7 ms). Arrays of at least kHugeAllocationMin bytes are therefore
// mapped on their own, aligned to 2 MiB and marked MADV_HUGEPAGE, so the kernel backs them with
// huge pages where it can (one fault per 2 MiB, fewer TLB misses); smaller ones use operator new.
// Without huge-page support the mapping still works with ordinary pages.
//
// The kernel zeroes every page it faults in, so paging in tens of megabytes is still about a
// quarter of such a pass's time (and far more on a virtual machine whose host must first back the
// memory). Freed blocks are therefore kept and handed out again for a request of the same rounded
// size: a pass that runs again in the same process (over the same or a similar graph: the
// benchmark, a tool aligning several models, a search over options) reuses pages already faulted
// in. Blocks are kept while the bytes mapped in all (in use plus kept) stay within
// HugeCacheLimit(): the larger of kHugeCacheMinBytes and the most this process has had in use at
// once. So the cache never makes the process map more than its own peak need (or the minimum),
// and a repeat of its largest job finds every block it needs. When the limit would be passed the
// oldest kept blocks are unmapped first; ReleaseCachedHugeBlocks() unmaps them all.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace qalign {

inline constexpr size_t kHugePageSize = size_t{2} << 20;
inline constexpr size_t kHugeAllocationMin = size_t{1} << 20;
inline constexpr size_t kHugeCacheMinBytes = size_t{256} << 20;

// `bytes` (>= kHugeAllocationMin) of memory aligned to kHugePageSize, backed by huge
// pages where the kernel allows. Throws std::bad_alloc when the system has no memory left.
void* AllocateHuge(size_t bytes);
// Releases memory from AllocateHuge; `bytes` is the size it was asked for. The block is kept
// for reuse while HugeCacheLimit() allows. Its contents are not cleared: AllocateHuge may return
// memory holding old values (callers construct what they use, as with operator new).
void FreeHuge(void* p, size_t bytes);
// Unmaps every block the cache keeps; returns how many bytes that gave back.
size_t ReleaseCachedHugeBlocks();
// Bytes the cache keeps now.
size_t CachedHugeBytes();
// The most bytes AllocateHuge's blocks may occupy in use and kept together before kept blocks are
// unmapped: max(kHugeCacheMinBytes, the most in use at once so far).
size_t HugeCacheLimit();

// A std::allocator that sends large arrays to AllocateHuge. Stateless: any two compare equal.
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() noexcept = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes >= kHugeAllocationMin) return static_cast<T*>(AllocateHuge(bytes));
    return static_cast<T*>(::operator new(bytes, std::align_val_t{alignof(T)}));
  }
  void deallocate(T* p, size_t n) noexcept {
    const size_t bytes = n * sizeof(T);
    if (bytes >= kHugeAllocationMin) {
      FreeHuge(p, bytes);
    } else {
      ::operator delete(p, std::align_val_t{alignof(T)});
    }
  }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const noexcept {
    return true;
  }
};

// A vector whose large buffers live in huge pages. Reserving an upper bound costs address space
// only: pages are faulted in as the elements are written.
template <typename T>
using HugeVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace qalign
