// Disjoint sets over dense ids: union by rank, path compression, root-to-root links.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace qalign {

class UnionFind {
 public:
  int32_t Add();  // a new singleton; returns its id
  // Root of x; every node on the way is pointed straight at the root (path compression), so
  // repeated finds cost O(1) amortized.
  int32_t Find(int32_t x);
  int32_t FindNoCompress(int32_t x) const;  // root of x, read-only
  // Merges the sets of a and b; returns false if they were already one set.
  bool Union(int32_t a, int32_t b);
  // Links two different roots (union by rank; on equal ranks `ra` stays root) and returns the
  // root that stays.
  int32_t LinkRoots(int32_t ra, int32_t rb);
  bool Same(int32_t a, int32_t b) { return Find(a) == Find(b); }
  size_t size() const { return parent_.size(); }
  int32_t parent(int32_t x) const { return parent_[static_cast<size_t>(x)]; }
  uint8_t rank(int32_t x) const { return rank_[static_cast<size_t>(x)]; }

 private:
  std::vector<int32_t> parent_;
  std::vector<uint8_t> rank_;
};

}  // namespace qalign
