// InlineVector: a vector of trivially copyable values that keeps up to N of them in the object.
//
// A TQC's params are one (scale, zero_point) pair for a per-tensor scheme and one per channel for
// a per-channel weight. With std::vector every group root's params were two heap allocations
// (about a fifth of a 100k-op alignment pass's page faults, and two cache lines away from the
// TQC); an InlineVector holds the per-tensor case in the TQC itself and allocates only beyond N.
// It can also hold its values in storage it borrows (Adopt): the quantization table hands each
// per-channel weight's params out of one arena it owns, so deriving the weights allocates nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>
#include <type_traits>
#include <vector>

namespace qalign {

template <typename T, uint32_t N>
class InlineVector {
  static_assert(std::is_trivially_copyable_v<T>, "values are copied as bytes");
  static_assert(N >= 1, "at least one value inline");

 public:
  using value_type = T;
  using size_type = size_t;
  using iterator = T*;
  using const_iterator = const T*;
  using reference = T&;
  using const_reference = const T&;

  InlineVector() = default;
  InlineVector(std::initializer_list<T> values) { assign(values.begin(), values.end()); }
  InlineVector(const std::vector<T>& values) { assign(values.begin(), values.end()); }
  InlineVector(const InlineVector& other) { assign(other.begin(), other.end()); }
  InlineVector(InlineVector&& other) noexcept { Steal(&other); }
  InlineVector& operator=(const InlineVector& other) {
    if (this != &other) assign(other.begin(), other.end());
    return *this;
  }
  InlineVector& operator=(InlineVector&& other) noexcept {
    if (this != &other) {
      Free();
      Steal(&other);
    }
    return *this;
  }
  InlineVector& operator=(const std::vector<T>& values) {
    assign(values.begin(), values.end());
    return *this;
  }
  InlineVector& operator=(std::initializer_list<T> values) {
    assign(values.begin(), values.end());
    return *this;
  }
  ~InlineVector() { Free(); }

  // The values as a std::vector, for code that keeps them apart from the TQC.
  operator std::vector<T>() const { return std::vector<T>(begin(), end()); }
  operator std::span<const T>() const { return {data(), size_}; }

  void assign(size_t n, const T& value) {
    Reserve(n);
    std::fill_n(data(), n, value);
    size_ = static_cast<uint32_t>(n);
  }
  template <typename It>
  void assign(It first, It last) {
    const size_t n = static_cast<size_t>(std::distance(first, last));
    Reserve(n);
    std::copy(first, last, data());
    size_ = static_cast<uint32_t>(n);
  }
  void clear() { size_ = 0; }
  // Takes `storage` (already holding the values) as its own without owning it: it must outlive
  // this vector and every vector this one is moved into (a copy allocates its own). Later
  // assignments of at most storage.size() values write into it. Values that fit inline are
  // copied in instead.
  void Adopt(std::span<T> storage) {
    if (storage.size() <= N) {
      assign(storage.begin(), storage.end());
      return;
    }
    Free();
    heap_ = storage.data();
    size_ = static_cast<uint32_t>(storage.size());
    capacity_ = size_ | kBorrowed;
  }
  // Room for n values without allocating (inline, owned or borrowed).
  size_t capacity() const { return std::max<size_t>(Capacity(), N); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* data() { return Capacity() > N ? heap_ : inline_; }
  const T* data() const { return Capacity() > N ? heap_ : inline_; }
  T& operator[](size_t i) { return data()[i]; }
  const T& operator[](size_t i) const { return data()[i]; }
  T& front() { return data()[0]; }
  const T& front() const { return data()[0]; }
  T& back() { return data()[size_ - 1]; }
  const T& back() const { return data()[size_ - 1]; }
  T* begin() { return data(); }
  T* end() { return data() + size_; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size_; }

  friend bool operator==(const InlineVector& a, const InlineVector& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }
  friend bool operator==(const InlineVector& a, const std::vector<T>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  static constexpr uint32_t kBorrowed = uint32_t{1} << 31;  // in capacity_: heap_ is not ours
  uint32_t Capacity() const { return capacity_ & ~kBorrowed; }

  // Room for n values; the old values are not kept (every caller overwrites them all).
  void Reserve(size_t n) {
    if (n <= capacity()) return;
    Free();
    heap_ = new T[n];
    capacity_ = static_cast<uint32_t>(n);
  }
  void Free() {
    if (Capacity() > N && (capacity_ & kBorrowed) == 0) delete[] heap_;
    capacity_ = N;
    size_ = 0;
  }
  void Steal(InlineVector* other) {
    std::memcpy(static_cast<void*>(this), static_cast<const void*>(other), sizeof(*this));
    other->capacity_ = N;
    other->size_ = 0;
  }

  union {
    T inline_[N];
    T* heap_;
  };
  uint32_t size_ = 0;
  uint32_t capacity_ = N;  // > N: the values are on the heap (ours, or borrowed: kBorrowed set)
};

}  // namespace qalign
