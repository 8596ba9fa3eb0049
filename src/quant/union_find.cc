// UnionFind: union by rank and path compression over dense ids.
#include "quant/union_find.h"

#include <utility>

namespace qalign {

int32_t UnionFind::Add() {
  parent_.push_back(static_cast<int32_t>(parent_.size()));
  rank_.push_back(0);
  return parent_.back();
}

int32_t UnionFind::FindNoCompress(int32_t x) const {
  while (parent_[static_cast<size_t>(x)] != x) x = parent_[static_cast<size_t>(x)];
  return x;
}

int32_t UnionFind::Find(int32_t x) {
  // Two walks: find the root, then point every node on the path at it. Iterative, so a long
  // chain cannot overflow the stack (union by rank keeps chains at most log2(n) long anyway).
  const int32_t root = FindNoCompress(x);
  while (parent_[static_cast<size_t>(x)] != root) {
    const int32_t next = parent_[static_cast<size_t>(x)];
    parent_[static_cast<size_t>(x)] = root;
    x = next;
  }
  return root;
}

bool UnionFind::Union(int32_t a, int32_t b) {
  const int32_t ra = Find(a);
  const int32_t rb = Find(b);
  if (ra == rb) return false;
  LinkRoots(ra, rb);
  return true;
}

int32_t UnionFind::LinkRoots(int32_t ra, int32_t rb) {
  // Union by rank: the shallower tree hangs under the deeper root, so a tree of rank r has at
  // least 2^r nodes and every parent chain has at most log2(n) links.
  if (rank_[static_cast<size_t>(ra)] < rank_[static_cast<size_t>(rb)]) std::swap(ra, rb);
  parent_[static_cast<size_t>(rb)] = ra;  // root to root
  if (rank_[static_cast<size_t>(ra)] == rank_[static_cast<size_t>(rb)]) {
    ++rank_[static_cast<size_t>(ra)];
  }
  return ra;
}

}  // namespace qalign
