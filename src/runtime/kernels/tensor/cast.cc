// Cast and CastLike between numeric types and bool (float16, bfloat16 and strings unsupported).
#include <type_traits>

#include "runtime/kernels/common.h"
#include "runtime/kernels/registry_parts.h"

namespace qalign::kernels {
namespace {

template <typename From, typename To>
void Convert(ThreadPool* pool, const From* in, To* out, int64_t n) {
  ParallelFor(pool, n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      if constexpr (std::is_same_v<To, bool>) {
        out[i] = in[i] != From(0);
      } else {
        out[i] = static_cast<To>(in[i]);
      }
    }
  }, kParallelGrain);
}

// Calls fn(T{}) for numeric types and bool.
template <typename Fn>
Status DispatchWithBool(const Operation& op, DataType dtype, Fn&& fn) {
  if (dtype == DataType::kBool) return fn(bool{});
  return DispatchNumeric(op, dtype, std::forward<Fn>(fn));
}

Status CastTo(KernelContext& ctx, const Tensor& in, DataType to) {
  if (in.dtype() == to) {
    (*ctx.outputs)[0] = in;
    return Status::Ok();
  }
  Tensor& out = SetOutputForOverwrite(ctx, 0, to, in.shape());
  return DispatchWithBool(*ctx.op, in.dtype(), [&](auto from_tag) {
    using From = decltype(from_tag);
    return DispatchWithBool(*ctx.op, to, [&](auto to_tag) {
      using To = decltype(to_tag);
      Convert<From, To>(ctx.pool, in.data<From>(), out.data<To>(), in.num_elements());
      return Status::Ok();
    });
  });
}

StatusOr<std::unique_ptr<Kernel>> MakeCast(const Operation& op) {
  if (!op.HasAttribute("to")) return OpError(op, "attribute 'to' is required");
  const DataType to = static_cast<DataType>(op.GetInt("to", 0));
  return MakeKernel([to](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    return CastTo(ctx, *in, to);
  });
}

StatusOr<std::unique_ptr<Kernel>> MakeCastLike(const Operation& op) {
  return MakeKernel([](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    QALIGN_ASSIGN_OR_RETURN(const Tensor* like, RequiredInput(ctx, 1));
    return CastTo(ctx, *in, like->dtype());
  });
}

}  // namespace

void RegisterCastKernels(KernelRegistry& r) {
  Add(r, "Cast", 6, kMaxOpset, MakeCast);
  Add(r, "CastLike", 15, kMaxOpset, MakeCastLike);
}

}  // namespace qalign::kernels
