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

// ConstantOfShape: a tensor of the given shape filled with `value` (one element; default f32 0).
StatusOr<std::unique_ptr<Kernel>> MakeConstantOfShape(const Operation& op) {
  Tensor value = Tensor::FromVector<float>({1}, {0.0f});
  if (const Attribute* a = op.FindAttribute("value")) {
    if (a->kind != Attribute::Kind::kTensor || a->t.num_elements() != 1) {
      return OpError(op, "attribute 'value' must be a one-element tensor");
    }
    value = a->t;
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
