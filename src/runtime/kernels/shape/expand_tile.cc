// Expand (broadcast to a shape, bidirectionally) and Tile (repeat along each axis).
#include "runtime/kernels/common.h"
#include "runtime/kernels/registry_parts.h"
#include "runtime/kernels/shape/strided_copy.h"

namespace qalign::kernels {
namespace {

StatusOr<std::unique_ptr<Kernel>> MakeExpand(const Operation& op) {
  return MakeKernel([](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    QALIGN_ASSIGN_OR_RETURN(const Tensor* shape_t, RequiredInput(ctx, 1));
    QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> shape, ReadInts(*ctx.op, *shape_t, "shape"));
    QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> out_shape,
                            BroadcastShapes(*ctx.op, {in->shape(), shape}));
    Tensor& out = SetOutputForOverwrite(ctx, 0, in->dtype(), out_shape);
    return StridedCopy(*ctx.op, ctx.pool, *in, 0, out_shape, BroadcastStrides(in->shape(), out_shape),
                       out);
  });
}

// Tile as a strided copy of a view with one extra dim per axis: out viewed as
// [r0, d0, r1, d1, ...] reads in[d0, d1, ...] with stride 0 on each repeat dim.
StatusOr<std::unique_ptr<Kernel>> MakeTile(const Operation& op) {
  return MakeKernel([](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    QALIGN_ASSIGN_OR_RETURN(const Tensor* reps_t, RequiredInput(ctx, 1));
    QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> reps, ReadInts(*ctx.op, *reps_t, "repeats"));
    if (static_cast<int64_t>(reps.size()) != in->rank()) {
      return OpError(*ctx.op, "repeats has ", reps.size(), " values for rank ", in->rank());
    }
    const std::vector<int64_t> strides = Strides(in->shape());
    std::vector<int64_t> out_shape, view_shape, view_strides;
    for (int64_t d = 0; d < in->rank(); ++d) {
      if (reps[d] < 0) return OpError(*ctx.op, "negative repeat ", reps[d]);
      out_shape.push_back(in->shape()[d] * reps[d]);
      view_shape.push_back(reps[d]);
      view_strides.push_back(0);
      view_shape.push_back(in->shape()[d]);
      view_strides.push_back(strides[d]);
    }
    Tensor& out = SetOutputForOverwrite(ctx, 0, in->dtype(), out_shape);
    if (view_shape.empty()) {
      out = *in;
      return Status::Ok();
    }
    return StridedCopy(*ctx.op, ctx.pool, *in, 0, view_shape, view_strides, out);
  });
}

}  // namespace

void RegisterExpandTileKernels(KernelRegistry& r) {
  Add(r, "Expand", 8, kMaxOpset, MakeExpand);
  Add(r, "Tile", 6, kMaxOpset, MakeTile);
}

}  // namespace qalign::kernels
