// DataType (ONNX's element-type numbering) and Tensor: a dense array, owned and 64-byte aligned,
// or a read-only view of a caller's memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "qalign/status.h"

namespace qalign {

// Values equal ONNX TensorProto.DataType so import/export is a cast.
enum class DataType : int32_t {
  kUndefined = 0,
  kFloat = 1,
  kUint8 = 2,
  kInt8 = 3,
  kUint16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kDouble = 11,
  kUint32 = 12,
  kUint64 = 13,
  kComplex64 = 14,
  kComplex128 = 15,
  kBFloat16 = 16,
};

// Bytes per element; 0 for kUndefined and kString.
size_t DataTypeSize(DataType type);
// Short name used by the printer and reports: "f32", "u8", "i64", ...
const char* DataTypeName(DataType type);
bool IsFloatingPoint(DataType type);

template <typename T>
constexpr DataType DataTypeOf();
template <> constexpr DataType DataTypeOf<float>() { return DataType::kFloat; }
template <> constexpr DataType DataTypeOf<double>() { return DataType::kDouble; }
template <> constexpr DataType DataTypeOf<uint8_t>() { return DataType::kUint8; }
template <> constexpr DataType DataTypeOf<int8_t>() { return DataType::kInt8; }
template <> constexpr DataType DataTypeOf<uint16_t>() { return DataType::kUint16; }
template <> constexpr DataType DataTypeOf<int16_t>() { return DataType::kInt16; }
template <> constexpr DataType DataTypeOf<int32_t>() { return DataType::kInt32; }
template <> constexpr DataType DataTypeOf<int64_t>() { return DataType::kInt64; }
template <> constexpr DataType DataTypeOf<uint32_t>() { return DataType::kUint32; }
template <> constexpr DataType DataTypeOf<uint64_t>() { return DataType::kUint64; }
template <> constexpr DataType DataTypeOf<bool>() { return DataType::kBool; }

// Number of elements of a concrete shape (1 for a scalar).
int64_t NumElements(std::span<const int64_t> shape);
// "[1,3,640,640]"
std::string ShapeToString(std::span<const int64_t> shape);

// Bytes a tensor of `dtype` and `shape` takes (strings count as one byte per element), checked:
// no negative dim, no int64 overflow in elements * size, at most MaxTensorBytes(). The error
// names `what` (e.g. "input 'x'") and the shape.
StatusOr<int64_t> CheckedTensorBytes(DataType dtype, std::span<const int64_t> shape,
                                     const std::string& what);

// Thrown by the Tensor constructors when a shape fails CheckedTensorBytes; the executor turns it
// into a Status naming the op. Kernels allocate their outputs through the constructors, so a
// shape computed from hostile values (Resize scales of 1e6) stops here, before the allocator.
class TensorTooLargeError : public std::length_error {
 public:
  using std::length_error::length_error;
};

// Allocator giving 64-byte (cache-line) aligned storage. No kernel needs more than element
// alignment (they load vectors unaligned; oneDNN takes any user buffer), so borrowed tensors
// need only that.
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{64};
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}  // NOLINT
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlignment)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlignment); }
  // resize() without a value default-initializes: for bytes that is no write at all, which is
  // what Tensor::ForOverwrite needs. assign(n, value) and the other constructors are unchanged.
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
};

// A dense tensor. It owns its data (64-byte aligned), or, made by Borrow, reads a caller's memory
// in place. Strings are held separately from the numeric byte buffer.
//
// A borrowed tensor is read-only for the memory's owner: the const accessors read the caller's
// bytes, and the first mutable access (raw_data(), data<T>(), values<T>() on a non-const tensor)
// copies them into owned storage, so writes such as fake quantization of a graph input never
// reach the caller. Code that only reads a non-const Tensor& should read it through a const
// reference (std::as_const) to keep it a view. Copies of a borrowed tensor are views of the same
// memory; Reshape changes only the shape.
class Tensor {
 public:
  Tensor() = default;
  Tensor(DataType dtype, std::vector<int64_t> shape);  // zero-filled
  // A numeric tensor whose bytes are left as the allocator gave them, for a caller that writes
  // every element next (kernel outputs: zero-filling first costs a pass over memory). Strings
  // are still default-constructed.
  static Tensor ForOverwrite(DataType dtype, std::vector<int64_t> shape);

  template <typename T>
  static Tensor FromVector(std::vector<int64_t> shape, const std::vector<T>& values) {
    Tensor t(DataTypeOf<T>(), std::move(shape));
    if constexpr (std::is_same_v<T, bool>) {
      for (size_t i = 0; i < values.size() && i < t.bytes_.size(); ++i) t.bytes_[i] = values[i];
    } else {
      std::memcpy(t.bytes_.data(), values.data(),
                  std::min(t.bytes_.size(), values.size() * sizeof(T)));
    }
    return t;
  }
  // Builds a tensor from raw little-endian bytes; fails if the size does not match the shape.
  static StatusOr<Tensor> FromBytes(DataType dtype, std::vector<int64_t> shape, const void* data,
                                    size_t size);
  // A read-only view of `size` bytes at `data` (dense, row-major, native byte order), which must
  // stay valid and unchanged while the tensor or a copy of it is alive; `keepalive`, when given,
  // is held that long. Fails as FromBytes does on a size mismatch, for strings, and when `data`
  // is not aligned to the element size (elements are read through typed pointers).
  static StatusOr<Tensor> Borrow(DataType dtype, std::vector<int64_t> shape, const void* data,
                                 size_t size, std::shared_ptr<const void> keepalive = {});

  DataType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t num_elements() const { return NumElements(shape_); }
  size_t byte_size() const { return borrowed_ != nullptr ? borrowed_size_ : bytes_.size(); }
  // True while the tensor reads a caller's memory (made by Borrow, not yet written).
  bool borrowed() const { return borrowed_ != nullptr; }

  // Mutable access: a borrowed tensor first copies its bytes into owned storage.
  void* raw_data() {
    if (borrowed_ != nullptr) CopyBorrowedBytes();
    return bytes_.data();
  }
  const void* raw_data() const { return borrowed_ != nullptr ? borrowed_ : bytes_.data(); }

  template <typename T>
  T* data() {
    return reinterpret_cast<T*>(raw_data());
  }
  template <typename T>
  const T* data() const {
    return reinterpret_cast<const T*>(raw_data());
  }
  template <typename T>
  std::span<T> values() {
    return {data<T>(), static_cast<size_t>(num_elements())};
  }
  template <typename T>
  std::span<const T> values() const {
    return {data<T>(), static_cast<size_t>(num_elements())};
  }

  // Reads any integer tensor (int32/int64/uint8/...) as int64 values, for shape/axes inputs.
  StatusOr<std::vector<int64_t>> AsInt64s() const;
  // Reads any float/integer tensor as float values, converting element by element.
  StatusOr<std::vector<float>> AsFloats() const;

  std::vector<std::string>& strings() { return strings_; }
  const std::vector<std::string>& strings() const { return strings_; }

  // Same element count, new shape; fails if the counts differ.
  Status Reshape(std::vector<int64_t> shape);
  bool BitwiseEqual(const Tensor& other) const;

  // How many borrowed tensors this process has copied into owned storage (mutable access), for
  // the tests that check a path reads its inputs in place.
  static int64_t BorrowedCopies();

 private:
  // Copies the borrowed bytes into bytes_ and drops the view.
  void CopyBorrowedBytes();

  DataType dtype_ = DataType::kUndefined;
  std::vector<int64_t> shape_;
  std::vector<uint8_t, AlignedAllocator<uint8_t>> bytes_;
  std::vector<std::string> strings_;
  // Set for a view made by Borrow: the caller's bytes (read-only), their size and what keeps
  // them alive (may be empty). bytes_ is empty meanwhile.
  const uint8_t* borrowed_ = nullptr;
  size_t borrowed_size_ = 0;
  std::shared_ptr<const void> keepalive_;
};

}  // namespace qalign
