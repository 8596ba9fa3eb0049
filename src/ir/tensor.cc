// DataType helpers and Tensor.
#include "ir/tensor.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <sstream>

#include "core/limits.h"

namespace qalign {

size_t DataTypeSize(DataType type) {
  switch (type) {
    case DataType::kFloat: return 4;
    case DataType::kUint8: return 1;
    case DataType::kInt8: return 1;
    case DataType::kUint16: return 2;
    case DataType::kInt16: return 2;
    case DataType::kInt32: return 4;
    case DataType::kInt64: return 8;
    case DataType::kBool: return 1;
    case DataType::kFloat16: return 2;
    case DataType::kDouble: return 8;
    case DataType::kUint32: return 4;
    case DataType::kUint64: return 8;
    case DataType::kComplex64: return 8;
    case DataType::kComplex128: return 16;
    case DataType::kBFloat16: return 2;
    case DataType::kString:
    case DataType::kUndefined: return 0;
  }
  return 0;
}

const char* DataTypeName(DataType type) {
  switch (type) {
    case DataType::kUndefined: return "undefined";
    case DataType::kFloat: return "f32";
    case DataType::kUint8: return "u8";
    case DataType::kInt8: return "i8";
    case DataType::kUint16: return "u16";
    case DataType::kInt16: return "i16";
    case DataType::kInt32: return "i32";
    case DataType::kInt64: return "i64";
    case DataType::kString: return "string";
    case DataType::kBool: return "bool";
    case DataType::kFloat16: return "f16";
    case DataType::kDouble: return "f64";
    case DataType::kUint32: return "u32";
    case DataType::kUint64: return "u64";
    case DataType::kComplex64: return "c64";
    case DataType::kComplex128: return "c128";
    case DataType::kBFloat16: return "bf16";
  }
  return "unknown";
}

bool IsFloatingPoint(DataType type) {
  return type == DataType::kFloat || type == DataType::kDouble || type == DataType::kFloat16 ||
         type == DataType::kBFloat16;
}

int64_t NumElements(std::span<const int64_t> shape) {
  // A zero dim empties the tensor whatever the others are; checked first so that huge dims
  // beside it do not overflow the product. A product past int64 saturates (callers that
  // allocate check shapes with CheckedTensorBytes first).
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (!MultiplyChecked(n, d, &n)) return std::numeric_limits<int64_t>::max();
  }
  return n;
}

std::string ShapeToString(std::span<const int64_t> shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? "," : "") << shape[i];
  out << ']';
  return out.str();
}

StatusOr<int64_t> CheckedTensorBytes(DataType dtype, std::span<const int64_t> shape,
                                     const std::string& what) {
  const int64_t element_size =
      dtype == DataType::kString ? 1 : static_cast<int64_t>(DataTypeSize(dtype));
  int64_t bytes = element_size;
  bool overflow = false;
  for (int64_t d : shape) {
    if (d < 0) {
      return InvalidArgumentError(what, ": negative dimension in shape ", ShapeToString(shape));
    }
    overflow = overflow || !MultiplyChecked(bytes, d, &bytes);
  }
  // A zero dim makes the tensor empty however large the others are.
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  if (overflow) {
    return InvalidArgumentError(what, ": shape ", ShapeToString(shape),
                                " has more elements than a 64-bit count holds");
  }
  if (bytes > MaxTensorBytes()) {
    return InvalidArgumentError(what, ": shape ", ShapeToString(shape), " of ",
                                DataTypeName(dtype), " needs ", bytes,
                                " bytes, more than the limit of ", MaxTensorBytes(),
                                " (set QALIGN_MAX_TENSOR_BYTES to raise it)");
  }
  return bytes;
}

namespace {

// Elements of a shape the constructors are about to allocate; throws TensorTooLargeError.
int64_t ElementsToAllocate(DataType dtype, const std::vector<int64_t>& shape) {
  auto bytes = CheckedTensorBytes(dtype, shape, "tensor");
  if (!bytes.ok()) throw TensorTooLargeError(bytes.status().message());
  return NumElements(shape);
}

}  // namespace

Tensor::Tensor(DataType dtype, std::vector<int64_t> shape)
    : dtype_(dtype), shape_(std::move(shape)) {
  const int64_t n = ElementsToAllocate(dtype_, shape_);
  if (dtype_ == DataType::kString) {
    strings_.resize(static_cast<size_t>(std::max<int64_t>(n, 0)));
  } else {
    bytes_.assign(static_cast<size_t>(std::max<int64_t>(n, 0)) * DataTypeSize(dtype_), 0);
  }
}

Tensor Tensor::ForOverwrite(DataType dtype, std::vector<int64_t> shape) {
  if (dtype == DataType::kString) return Tensor(dtype, std::move(shape));
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.bytes_.resize(static_cast<size_t>(std::max<int64_t>(ElementsToAllocate(dtype, t.shape_), 0)) *
                  DataTypeSize(dtype));
  return t;
}

StatusOr<Tensor> Tensor::FromBytes(DataType dtype, std::vector<int64_t> shape, const void* data,
                                   size_t size) {
  Tensor t(dtype, std::move(shape));
  if (size != t.bytes_.size()) {
    return InvalidArgumentError("tensor data has ", size, " bytes but shape ",
                                ShapeToString(t.shape_), " of ", DataTypeName(dtype), " needs ",
                                t.bytes_.size());
  }
  if (size > 0) std::memcpy(t.bytes_.data(), data, size);
  return t;
}

StatusOr<Tensor> Tensor::Borrow(DataType dtype, std::vector<int64_t> shape, const void* data,
                                size_t size, std::shared_ptr<const void> keepalive) {
  const size_t element_size = DataTypeSize(dtype);
  if (element_size == 0) {
    return InvalidArgumentError("a ", DataTypeName(dtype), " tensor cannot borrow its data");
  }
  QALIGN_ASSIGN_OR_RETURN(const int64_t needed, CheckedTensorBytes(dtype, shape, "tensor"));
  if (size != static_cast<size_t>(needed)) {
    return InvalidArgumentError("tensor data has ", size, " bytes but shape ",
                                ShapeToString(shape), " of ", DataTypeName(dtype), " needs ",
                                needed);
  }
  if (reinterpret_cast<uintptr_t>(data) % element_size != 0) {
    return InvalidArgumentError("tensor data at ", data, " is not aligned to its ", element_size,
                                "-byte elements");
  }
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  // An empty tensor has nothing to borrow: it owns its empty storage like any other.
  if (size == 0) return t;
  t.borrowed_ = static_cast<const uint8_t*>(data);
  t.borrowed_size_ = size;
  t.keepalive_ = std::move(keepalive);
  return t;
}

namespace {
std::atomic<int64_t> borrowed_copies{0};
}  // namespace

int64_t Tensor::BorrowedCopies() { return borrowed_copies.load(); }

void Tensor::CopyBorrowedBytes() {
  bytes_.assign(borrowed_, borrowed_ + borrowed_size_);
  borrowed_ = nullptr;
  borrowed_size_ = 0;
  keepalive_.reset();
  ++borrowed_copies;
}

namespace {
template <typename Out, typename In>
void ConvertAll(const Tensor& t, std::vector<Out>& out) {
  const In* p = t.data<In>();
  for (int64_t i = 0; i < t.num_elements(); ++i) out.push_back(static_cast<Out>(p[i]));
}
}  // namespace

StatusOr<std::vector<int64_t>> Tensor::AsInt64s() const {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(num_elements()));
  switch (dtype_) {
    case DataType::kInt64: ConvertAll<int64_t, int64_t>(*this, out); break;
    case DataType::kInt32: ConvertAll<int64_t, int32_t>(*this, out); break;
    case DataType::kInt16: ConvertAll<int64_t, int16_t>(*this, out); break;
    case DataType::kInt8: ConvertAll<int64_t, int8_t>(*this, out); break;
    case DataType::kUint8: ConvertAll<int64_t, uint8_t>(*this, out); break;
    case DataType::kUint16: ConvertAll<int64_t, uint16_t>(*this, out); break;
    case DataType::kUint32: ConvertAll<int64_t, uint32_t>(*this, out); break;
    case DataType::kUint64: ConvertAll<int64_t, uint64_t>(*this, out); break;
    case DataType::kBool: ConvertAll<int64_t, uint8_t>(*this, out); break;
    default:
      return InvalidArgumentError("expected an integer tensor, got ", DataTypeName(dtype_));
  }
  return out;
}

StatusOr<std::vector<float>> Tensor::AsFloats() const {
  std::vector<float> out;
  out.reserve(static_cast<size_t>(num_elements()));
  switch (dtype_) {
    case DataType::kFloat: ConvertAll<float, float>(*this, out); break;
    case DataType::kDouble: ConvertAll<float, double>(*this, out); break;
    case DataType::kInt64: ConvertAll<float, int64_t>(*this, out); break;
    case DataType::kInt32: ConvertAll<float, int32_t>(*this, out); break;
    case DataType::kInt8: ConvertAll<float, int8_t>(*this, out); break;
    case DataType::kUint8: ConvertAll<float, uint8_t>(*this, out); break;
    case DataType::kBool: ConvertAll<float, uint8_t>(*this, out); break;
    default:
      return InvalidArgumentError("cannot read a ", DataTypeName(dtype_), " tensor as floats");
  }
  return out;
}

Status Tensor::Reshape(std::vector<int64_t> shape) {
  if (NumElements(shape) != num_elements()) {
    return InvalidArgumentError("cannot reshape ", ShapeToString(shape_), " to ",
                                ShapeToString(shape));
  }
  shape_ = std::move(shape);
  return Status::Ok();
}

bool Tensor::BitwiseEqual(const Tensor& other) const {
  return dtype_ == other.dtype_ && shape_ == other.shape_ &&
         byte_size() == other.byte_size() &&
         (byte_size() == 0 || std::memcmp(raw_data(), other.raw_data(), byte_size()) == 0) &&
         strings_ == other.strings_;
}

}  // namespace qalign
