// Slice: starts/ends/axes as attributes (opset < 10) or inputs with optional axes and steps
// (opset >= 10); negative indices count from the end, out-of-range ones are clamped.
#include <algorithm>
#include <limits>

#include "runtime/kernels/common.h"
#include "runtime/kernels/registry_parts.h"
#include "runtime/kernels/shape/strided_copy.h"

namespace qalign::kernels {
namespace {

StatusOr<std::unique_ptr<Kernel>> MakeSlice(const Operation& op) {
  const bool from_inputs = op.opset() >= 10;
  const std::vector<int64_t> starts_attr = op.GetInts("starts");
  const std::vector<int64_t> ends_attr = op.GetInts("ends");
  const std::vector<int64_t> axes_attr = op.GetInts("axes");
  return MakeKernel([=](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    std::vector<int64_t> starts = starts_attr, ends = ends_attr, axes = axes_attr, steps;
    if (from_inputs) {
      QALIGN_ASSIGN_OR_RETURN(const Tensor* s, RequiredInput(ctx, 1));
      QALIGN_ASSIGN_OR_RETURN(const Tensor* e, RequiredInput(ctx, 2));
      QALIGN_ASSIGN_OR_RETURN(starts, ReadInts(*ctx.op, *s, "starts"));
      QALIGN_ASSIGN_OR_RETURN(ends, ReadInts(*ctx.op, *e, "ends"));
      axes.clear();
      if (const Tensor* a = OptionalInput(ctx, 3)) {
        QALIGN_ASSIGN_OR_RETURN(axes, ReadInts(*ctx.op, *a, "axes"));
      }
      if (const Tensor* st = OptionalInput(ctx, 4)) {
        QALIGN_ASSIGN_OR_RETURN(steps, ReadInts(*ctx.op, *st, "steps"));
      }
    }
    const size_t n = starts.size();
    if (ends.size() != n) return OpError(*ctx.op, "starts and ends differ in length");
    if (axes.empty()) {
      for (size_t i = 0; i < n; ++i) axes.push_back(static_cast<int64_t>(i));
    }
    if (steps.empty()) steps.assign(n, 1);
    if (axes.size() != n || steps.size() != n) {
      return OpError(*ctx.op, "starts, ends, axes and steps differ in length");
    }
    QALIGN_ASSIGN_OR_RETURN(axes, NormalizeAxes(*ctx.op, axes, in->rank()));
    const std::vector<int64_t> in_strides = Strides(in->shape());
    std::vector<int64_t> out_shape = in->shape();
    std::vector<int64_t> strides = in_strides;
    int64_t base = 0;
    for (size_t i = 0; i < n; ++i) {
      const int64_t axis = axes[i];
      const int64_t dim = in->shape()[axis];
      const int64_t step = steps[i];
      if (step == 0) return OpError(*ctx.op, "step 0 on axis ", axis);
      int64_t start = starts[i], end = ends[i];
      if (start < 0) start += dim;
      if (end < 0) end += dim;
      if (step > 0) {
        start = std::clamp<int64_t>(start, 0, dim);
        end = std::clamp<int64_t>(end, 0, dim);
      } else {
        start = std::clamp<int64_t>(start, 0, dim - 1);
        end = std::clamp<int64_t>(end, -1, dim - 1);
      }
      int64_t len = step > 0 ? (end - start + step - 1) / step : (start - end + (-step) - 1) / (-step);
      len = std::max<int64_t>(len, 0);
      out_shape[axis] = len;
      strides[axis] = in_strides[axis] * step;
      if (len > 0) base += start * in_strides[axis];
    }
    Tensor& out = SetOutputForOverwrite(ctx, 0, in->dtype(), out_shape);
    return StridedCopy(*ctx.op, ctx.pool, *in, base, out_shape, strides, out);
  });
}

}  // namespace

void RegisterSliceKernels(KernelRegistry& r) { Add(r, "Slice", 1, kMaxOpset, MakeSlice); }

}  // namespace qalign::kernels
