// Helpers shared by the kernels: dtype dispatch, axes, broadcasting, reading shape inputs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "ir/tensor.h"
#include "qalign/status.h"
#include "runtime/kernel.h"
#include "core/thread_pool.h"

namespace qalign::kernels {

// Error helpers: every message names the op.
template <typename... Args>
Status OpError(const Operation& op, const Args&... args) {
  return InvalidArgumentError(op.Describe(), ": ", args...);
}
template <typename... Args>
Status OpUnimplemented(const Operation& op, const Args&... args) {
  return UnimplementedError(op.Describe(), " (opset ", op.opset(), "): ", args...);
}

// Calls fn(T{}) with T the C++ type of `dtype`, for the numeric types kernels handle.
// Returns Unimplemented naming the op for other types.
template <typename Fn>
Status DispatchNumeric(const Operation& op, DataType dtype, Fn&& fn) {
  switch (dtype) {
    case DataType::kFloat: return fn(float{});
    case DataType::kDouble: return fn(double{});
    case DataType::kInt64: return fn(int64_t{});
    case DataType::kInt32: return fn(int32_t{});
    case DataType::kInt8: return fn(int8_t{});
    case DataType::kUint8: return fn(uint8_t{});
    case DataType::kInt16: return fn(int16_t{});
    case DataType::kUint16: return fn(uint16_t{});
    case DataType::kUint32: return fn(uint32_t{});
    case DataType::kUint64: return fn(uint64_t{});
    default:
      return OpUnimplemented(op, "element type ", DataTypeName(dtype), " is not supported");
  }
}
template <typename Fn>
Status DispatchFloat(const Operation& op, DataType dtype, Fn&& fn) {
  switch (dtype) {
    case DataType::kFloat: return fn(float{});
    case DataType::kDouble: return fn(double{});
    default:
      return OpUnimplemented(op, "element type ", DataTypeName(dtype), " is not supported");
  }
}

// The number of bytes per element, failing for strings and undefined types.
StatusOr<size_t> ElementSize(const Operation& op, const Tensor& t);

// Normalizes a possibly negative axis into [0, rank).
StatusOr<int64_t> NormalizeAxis(const Operation& op, int64_t axis, int64_t rank);
StatusOr<std::vector<int64_t>> NormalizeAxes(const Operation& op, std::vector<int64_t> axes,
                                             int64_t rank);

// Row-major strides of a shape.
std::vector<int64_t> Strides(const std::vector<int64_t>& shape);

// numpy broadcasting of several shapes.
StatusOr<std::vector<int64_t>> BroadcastShapes(const Operation& op,
                                               const std::vector<std::vector<int64_t>>& shapes);
// Strides to read `in_shape` broadcast to `out_shape` (0 on broadcast dims), one per out dim.
std::vector<int64_t> BroadcastStrides(const std::vector<int64_t>& in_shape,
                                      const std::vector<int64_t>& out_shape);

// The input tensor at `index`, or nullptr when omitted or absent.
inline const Tensor* OptionalInput(const KernelContext& ctx, size_t index) {
  return index < ctx.inputs.size() ? ctx.inputs[index] : nullptr;
}
// A required input: an error naming the op when it is missing.
StatusOr<const Tensor*> RequiredInput(const KernelContext& ctx, size_t index);

// Reads an integer tensor as int64 values (shape, axes, pads, ...).
StatusOr<std::vector<int64_t>> ReadInts(const Operation& op, const Tensor& t, const char* what);

// Allocates output `index` of the op.
inline Tensor& SetOutput(KernelContext& ctx, size_t index, DataType dtype,
                         std::vector<int64_t> shape) {
  Tensor& out = (*ctx.outputs)[index];
  out = Tensor(dtype, std::move(shape));
  return out;
}
// Allocates output `index` without zero-filling it: for kernels that write every element.
inline Tensor& SetOutputForOverwrite(KernelContext& ctx, size_t index, DataType dtype,
                                     std::vector<int64_t> shape) {
  Tensor& out = (*ctx.outputs)[index];
  out = Tensor::ForOverwrite(dtype, std::move(shape));
  return out;
}
inline bool WantsOutput(const KernelContext& ctx, size_t index) {
  return index < ctx.op->outputs().size() && ctx.op->outputs()[index] != nullptr;
}

// A kernel made from a lambda, so simple ops need no class: the factory validates attributes and
// returns the run function.
class LambdaKernel : public Kernel {
 public:
  using RunFn = std::function<Status(KernelContext&)>;
  explicit LambdaKernel(RunFn fn) : fn_(std::move(fn)) {}
  Status Run(KernelContext& context) override { return fn_(context); }

 private:
  RunFn fn_;
};

inline StatusOr<std::unique_ptr<Kernel>> MakeKernel(LambdaKernel::RunFn fn) {
  return std::unique_ptr<Kernel>(new LambdaKernel(std::move(fn)));
}

// Adds an entry; `factory` builds the kernel for an op.
void Add(KernelRegistry& registry, const std::string& op_type, int64_t since, int64_t until,
         KernelFactory factory, KernelFlavor flavor = KernelFlavor::kFast);

// Number of elements below which kernels do not bother with threads.
inline constexpr int64_t kParallelGrain = 1 << 14;

}  // namespace qalign::kernels
