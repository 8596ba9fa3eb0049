// Where(cond, x, y): elementwise select with three-way numpy broadcasting, for any element type.
#include <cstring>

#include "runtime/kernels/elementwise/broadcast.h"
#include "runtime/kernels/registry_parts.h"

namespace qalign::kernels {
namespace {

// Copies by element size, so one instantiation serves every type of that width.
template <typename U>
void SelectRows(KernelContext& ctx, const Tensor& cond, const Tensor& x, const Tensor& y,
                Tensor& out) {
  BroadcastIter it(out.shape(), {cond.shape(), x.shape(), y.shape()});
  const uint8_t* pc = cond.data<uint8_t>();
  const U* px = x.data<U>();
  const U* py = y.data<U>();
  U* po = out.data<U>();
  const int64_t sc = it.inner_step(0), sx = it.inner_step(1), sy = it.inner_step(2);
  ForEachRow(it, ctx.pool, [&](int64_t o, const int64_t* off, int64_t len) {
    const uint8_t* c = pc + off[0];
    const U* a = px + off[1];
    const U* b = py + off[2];
    U* r = po + o;
    for (int64_t i = 0; i < len; ++i) r[i] = c[i * sc] ? a[i * sx] : b[i * sy];
  });
}

StatusOr<std::unique_ptr<Kernel>> MakeWhere(const Operation& op) {
  return MakeKernel([](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* cond, RequiredInput(ctx, 0));
    QALIGN_ASSIGN_OR_RETURN(const Tensor* x, RequiredInput(ctx, 1));
    QALIGN_ASSIGN_OR_RETURN(const Tensor* y, RequiredInput(ctx, 2));
    if (cond->dtype() != DataType::kBool) return OpError(*ctx.op, "condition must be bool");
    if (x->dtype() != y->dtype()) return OpError(*ctx.op, "X and Y types differ");
    QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> shape,
                            BroadcastShapes(*ctx.op, {cond->shape(), x->shape(), y->shape()}));
    QALIGN_ASSIGN_OR_RETURN(size_t size, ElementSize(*ctx.op, *x));
    Tensor& out = SetOutputForOverwrite(ctx, 0, x->dtype(), shape);
    switch (size) {
      case 1: SelectRows<uint8_t>(ctx, *cond, *x, *y, out); break;
      case 2: SelectRows<uint16_t>(ctx, *cond, *x, *y, out); break;
      case 4: SelectRows<uint32_t>(ctx, *cond, *x, *y, out); break;
      case 8: SelectRows<uint64_t>(ctx, *cond, *x, *y, out); break;
      default: return OpUnimplemented(*ctx.op, "element type ", DataTypeName(x->dtype()));
    }
    return Status::Ok();
  });
}

}  // namespace

void RegisterWhereKernels(KernelRegistry& r) { Add(r, "Where", 9, kMaxOpset, MakeWhere); }

}  // namespace qalign::kernels
