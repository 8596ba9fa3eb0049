// Tensor-creating and shape-reading ops: Shape, Size, ConstantOfShape, Range.
#include <cmath>
#include <cstring>

#include "runtime/kernels/common.h"
#include "runtime/kernels/registry_parts.h"

namespace qalign::kernels {
namespace {

// Shape: opset 15 adds start/end (clamped, negative from the end).
StatusOr<std::unique_ptr<Kernel>> MakeShape(const Operation& op) {
  const int64_t start_attr = op.GetInt("start", 0);
  const bool has_end = op.HasAttribute("end");
  const int64_t end_attr = op.GetInt("end", 0);
  return MakeKernel([=](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    const int64_t rank = in->rank();
    int64_t start = start_attr < 0 ? start_attr + rank : start_attr;
    int64_t end = has_end ? (end_attr < 0 ? end_attr + rank : end_attr) : rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, 0, rank);
    std::vector<int64_t> dims;
    for (int64_t d = start; d < end; ++d) dims.push_back(in->shape()[d]);
    (*ctx.outputs)[0] = Tensor::FromVector<int64_t>({static_cast<int64_t>(dims.size())}, dims);
    return Status::Ok();
  });
}

StatusOr<std::unique_ptr<Kernel>> MakeSize(const Operation& op) {
  return MakeKernel([](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    (*ctx.outputs)[0] = Tensor::FromVector<int64_t>({}, {in->num_elements()});
    return Status::Ok();
  });
}

// Protobuf wire-format reading, just enough to decode a serialized AttributeProto holding a
// small TensorProto (the importer keeps named tensor attributes serialized, for export).
class WireReader {
 public:
  WireReader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool done() const { return p_ >= end_; }
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64 && p_ < end_; shift += 7) {
      const uint8_t b = *p_++;
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  // Reads a field key and, for length-delimited fields, the payload span.
  bool Field(uint32_t* number, uint32_t* wire, const uint8_t** payload, size_t* length) {
    uint64_t key;
    if (!Varint(&key)) return false;
    *number = static_cast<uint32_t>(key >> 3);
    *wire = static_cast<uint32_t>(key & 7);
    *payload = p_;
    *length = 0;
    uint64_t v;
    switch (*wire) {
      case 0: return Varint(&v) && (*length = 0, true);
      case 1: *length = 8; break;
      case 5: *length = 4; break;
      case 2:
        if (!Varint(&v) || v > static_cast<uint64_t>(end_ - p_)) return false;
        *payload = p_;
        *length = static_cast<size_t>(v);
        break;
      default: return false;
    }
    if (*length > static_cast<size_t>(end_ - p_)) return false;
    p_ += *length;
    return true;
  }
  const uint8_t* position() const { return p_; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// Decodes a one-element tensor from a serialized AttributeProto (field 5: TensorProto with
// dims = 1, data_type = 2, float_data = 4, int32_data = 5, int64_data = 7, raw_data = 9,
// double_data = 10).
StatusOr<Tensor> OneElementTensorFromOpaque(const Operation& op, const std::string& bytes) {
  WireReader attr(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  const uint8_t* tensor_bytes = nullptr;
  size_t tensor_size = 0;
  while (!attr.done()) {
    uint32_t number, wire;
    const uint8_t* payload;
    size_t length;
    if (!attr.Field(&number, &wire, &payload, &length)) break;
    if (number == 5 && wire == 2) {
      tensor_bytes = payload;
      tensor_size = length;
    }
  }
  if (!tensor_bytes) return OpError(op, "attribute 'value' is not a tensor");
  WireReader reader(tensor_bytes, tensor_size);
  DataType dtype = DataType::kUndefined;
  std::vector<uint8_t> raw;
  uint64_t int_value = 0;
  bool have_int = false;
  std::vector<uint8_t> fixed;
  while (!reader.done()) {
    uint32_t number, wire;
    const uint8_t* payload;
    size_t length;
    const uint8_t* before = reader.position();
    if (!reader.Field(&number, &wire, &payload, &length)) {
      return OpError(op, "attribute 'value' is not a valid TensorProto");
    }
    if (number == 2 && wire == 0) {
      WireReader v(before, static_cast<size_t>(reader.position() - before));
      uint64_t key, type;
      v.Varint(&key);
      v.Varint(&type);
      dtype = static_cast<DataType>(type);
    } else if (number == 9 && wire == 2) {
      raw.assign(payload, payload + length);
    } else if ((number == 4 || number == 10) && (wire == 2 || wire == 5 || wire == 1)) {
      fixed.assign(payload, payload + length);
    } else if ((number == 5 || number == 7) && (wire == 2 || wire == 0)) {
      WireReader v(wire == 2 ? payload : before,
                   wire == 2 ? length : static_cast<size_t>(reader.position() - before));
      uint64_t key;
      if (wire == 0) v.Varint(&key);
      have_int = v.Varint(&int_value);
    }
  }
  const size_t size = DataTypeSize(dtype);
  if (size == 0) return OpUnimplemented(op, "value of type ", DataTypeName(dtype));
  Tensor t(dtype, {1});
  if (raw.size() == size) {
    std::memcpy(t.raw_data(), raw.data(), size);
  } else if (fixed.size() == size) {
    std::memcpy(t.raw_data(), fixed.data(), size);
  } else if (have_int) {  // int32_data holds narrow types one value each; int64_data holds int64
    const int64_t v = static_cast<int64_t>(int_value);
    switch (dtype) {
      case DataType::kInt64: *t.data<int64_t>() = v; break;
      case DataType::kUint64: *t.data<uint64_t>() = int_value; break;
      case DataType::kInt32: *t.data<int32_t>() = static_cast<int32_t>(v); break;
      case DataType::kUint32: *t.data<uint32_t>() = static_cast<uint32_t>(v); break;
      case DataType::kInt16: *t.data<int16_t>() = static_cast<int16_t>(v); break;
      case DataType::kUint16: *t.data<uint16_t>() = static_cast<uint16_t>(v); break;
      case DataType::kInt8: *t.data<int8_t>() = static_cast<int8_t>(v); break;
      case DataType::kUint8:
      case DataType::kBool: *t.data<uint8_t>() = static_cast<uint8_t>(v); break;
      default: return OpError(op, "attribute 'value' has no data");
    }
  } else {
    return OpError(op, "attribute 'value' must hold exactly one element");
  }
  return t;
}

// ConstantOfShape: a tensor of the given shape filled with `value` (one element; default f32 0).
StatusOr<std::unique_ptr<Kernel>> MakeConstantOfShape(const Operation& op) {
  Tensor value = Tensor::FromVector<float>({1}, {0.0f});
  if (const Attribute* a = op.FindAttribute("value")) {
    if (a->kind == Attribute::Kind::kOpaque) {
      QALIGN_ASSIGN_OR_RETURN(value, OneElementTensorFromOpaque(op, a->opaque));
    } else if (a->kind != Attribute::Kind::kTensor || a->t.num_elements() != 1) {
      return OpError(op, "attribute 'value' must be a one-element tensor");
    } else {
      value = a->t;
    }
  }
  if (DataTypeSize(value.dtype()) == 0) return OpUnimplemented(op, "value of type ", DataTypeName(value.dtype()));
  return MakeKernel([value](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* shape_t, RequiredInput(ctx, 0));
    QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> shape, ReadInts(*ctx.op, *shape_t, "shape"));
    for (int64_t d : shape) {
      if (d < 0) return OpError(*ctx.op, "negative dim ", d);
    }
    Tensor& out = SetOutput(ctx, 0, value.dtype(), shape);
    const size_t elem = DataTypeSize(value.dtype());
    uint8_t* dst = static_cast<uint8_t*>(out.raw_data());
    for (int64_t i = 0; i < out.num_elements(); ++i) std::memcpy(dst + i * elem, value.raw_data(), elem);
    return Status::Ok();
  });
}

// Range: n = max(ceil((limit - start) / delta), 0) values start + i * delta.
StatusOr<std::unique_ptr<Kernel>> MakeRange(const Operation& op) {
  return MakeKernel([](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* start_t, RequiredInput(ctx, 0));
    QALIGN_ASSIGN_OR_RETURN(const Tensor* limit_t, RequiredInput(ctx, 1));
    QALIGN_ASSIGN_OR_RETURN(const Tensor* delta_t, RequiredInput(ctx, 2));
    if (start_t->num_elements() != 1 || limit_t->num_elements() != 1 || delta_t->num_elements() != 1) {
      return OpError(*ctx.op, "start, limit and delta must be scalars");
    }
    if (start_t->dtype() != limit_t->dtype() || start_t->dtype() != delta_t->dtype()) {
      return OpError(*ctx.op, "start, limit and delta types differ");
    }
    return DispatchNumeric(*ctx.op, start_t->dtype(), [&](auto tag) -> Status {
      using T = decltype(tag);
      const T start = start_t->data<T>()[0], limit = limit_t->data<T>()[0], delta = delta_t->data<T>()[0];
      if (delta == T(0)) return OpError(*ctx.op, "delta is 0");
      const double count = std::ceil((static_cast<double>(limit) - static_cast<double>(start)) /
                                     static_cast<double>(delta));
      const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(count));
      Tensor& out = SetOutput(ctx, 0, start_t->dtype(), {n});
      T* p = out.data<T>();
      T v = start;
      for (int64_t i = 0; i < n; ++i) {  // repeated addition, as the spec's loop does
        p[i] = v;
        v = static_cast<T>(v + delta);
      }
      return Status::Ok();
    });
  });
}

}  // namespace

void RegisterTensorKernels(KernelRegistry& r) {
  Add(r, "Shape", 1, kMaxOpset, MakeShape);
  Add(r, "Size", 1, kMaxOpset, MakeSize);
  Add(r, "ConstantOfShape", 9, kMaxOpset, MakeConstantOfShape);
  Add(r, "Range", 11, kMaxOpset, MakeRange);
}

}  // namespace qalign::kernels
