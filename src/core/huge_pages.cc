// Large arrays in transparent huge pages (see huge_pages.h).
#include "core/huge_pages.h"

#include <cstdint>
#include <cstdlib>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace qalign {
namespace {

size_t RoundUpToHugePage(size_t bytes) { return (bytes + kHugePageSize - 1) & ~(kHugePageSize - 1); }

}  // namespace

#if defined(__linux__)

void* AllocateHuge(size_t bytes) {
  const size_t size = RoundUpToHugePage(bytes);
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

void FreeHuge(void* p, size_t bytes) {
  if (p != nullptr) munmap(p, RoundUpToHugePage(bytes));
}

#else

void* AllocateHuge(size_t bytes) {
  void* p = std::aligned_alloc(kHugePageSize, RoundUpToHugePage(bytes));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void FreeHuge(void* p, size_t) { std::free(p); }

#endif

}  // namespace qalign
