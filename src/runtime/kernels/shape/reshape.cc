// Ops that only change the shape (data copied unchanged): Reshape, Flatten, Squeeze, Unsqueeze,
// Identity, and Dropout in inference (identity plus an all-true mask).
#include <algorithm>

#include "runtime/kernels/common.h"
#include "runtime/kernels/registry_parts.h"

namespace qalign::kernels {
namespace {

Status EmitReshaped(KernelContext& ctx, const Tensor& in, std::vector<int64_t> shape) {
  if (NumElements(shape) != in.num_elements()) {
    return OpError(*ctx.op, "cannot reshape ", ShapeToString(in.shape()), " to ",
                   ShapeToString(shape));
  }
  Tensor out = in;
  QALIGN_RETURN_IF_ERROR(out.Reshape(std::move(shape)));
  (*ctx.outputs)[0] = std::move(out);
  return Status::Ok();
}

StatusOr<std::unique_ptr<Kernel>> MakeReshape(const Operation& op) {
  const bool allow_zero = op.GetInt("allowzero", 0) != 0;
  return MakeKernel([allow_zero](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    QALIGN_ASSIGN_OR_RETURN(const Tensor* shape_t, RequiredInput(ctx, 1));
    QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> shape, ReadInts(*ctx.op, *shape_t, "shape"));
    int64_t infer = -1, known = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] == 0 && !allow_zero) {
        if (i >= in->shape().size()) return OpError(*ctx.op, "shape has 0 at dim ", i, " beyond the input rank");
        shape[i] = in->shape()[i];
      }
      if (shape[i] == -1) {
        if (infer >= 0) return OpError(*ctx.op, "shape has more than one -1");
        infer = static_cast<int64_t>(i);
      } else if (shape[i] < 0) {
        return OpError(*ctx.op, "shape has a negative dim ", shape[i]);
      } else {
        known *= shape[i];
      }
    }
    if (infer >= 0) {
      if (known == 0 || in->num_elements() % known != 0) {
        return OpError(*ctx.op, "cannot infer the -1 dim reshaping ", ShapeToString(in->shape()),
                       " to ", ShapeToString(shape));
      }
      shape[infer] = in->num_elements() / known;
    }
    return EmitReshaped(ctx, *in, std::move(shape));
  });
}

StatusOr<std::unique_ptr<Kernel>> MakeFlatten(const Operation& op) {
  const int64_t axis_attr = op.GetInt("axis", 1);
  return MakeKernel([axis_attr](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    const int64_t rank = in->rank();
    int64_t axis = axis_attr < 0 ? axis_attr + rank : axis_attr;
    if (axis < 0 || axis > rank) return OpError(*ctx.op, "axis ", axis_attr, " out of range for rank ", rank);
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= in->shape()[d];
    int64_t inner = 1;
    for (int64_t d = axis; d < rank; ++d) inner *= in->shape()[d];
    return EmitReshaped(ctx, *in, {outer, inner});
  });
}

// Squeeze/Unsqueeze axes: an attribute before opset 13, an optional input from 13.
StatusOr<std::vector<int64_t>> AxesOf(KernelContext& ctx, bool from_input,
                                      const std::vector<int64_t>& attr, bool* given) {
  if (!from_input) {
    *given = ctx.op->HasAttribute("axes");
    return attr;
  }
  const Tensor* axes = OptionalInput(ctx, 1);
  *given = axes != nullptr;
  if (!axes) return std::vector<int64_t>{};
  return ReadInts(*ctx.op, *axes, "axes");
}

StatusOr<std::unique_ptr<Kernel>> MakeSqueeze(const Operation& op) {
  const bool from_input = op.opset() >= 13;
  const std::vector<int64_t> attr = op.GetInts("axes");
  return MakeKernel([from_input, attr](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    bool given = false;
    QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, AxesOf(ctx, from_input, attr, &given));
    QALIGN_ASSIGN_OR_RETURN(axes, NormalizeAxes(*ctx.op, axes, in->rank()));
    std::vector<int64_t> shape;
    for (int64_t d = 0; d < in->rank(); ++d) {
      const bool listed = std::find(axes.begin(), axes.end(), d) != axes.end();
      if (listed && in->shape()[d] != 1) {
        return OpError(*ctx.op, "cannot squeeze dim ", d, " of size ", in->shape()[d]);
      }
      if (listed || (!given && in->shape()[d] == 1)) continue;
      shape.push_back(in->shape()[d]);
    }
    return EmitReshaped(ctx, *in, std::move(shape));
  });
}

StatusOr<std::unique_ptr<Kernel>> MakeUnsqueeze(const Operation& op) {
  const bool from_input = op.opset() >= 13;
  const std::vector<int64_t> attr = op.GetInts("axes");
  return MakeKernel([from_input, attr](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    bool given = false;
    QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, AxesOf(ctx, from_input, attr, &given));
    if (!given) return OpError(*ctx.op, "axes are required");
    const int64_t out_rank = in->rank() + static_cast<int64_t>(axes.size());
    QALIGN_ASSIGN_OR_RETURN(axes, NormalizeAxes(*ctx.op, axes, out_rank));
    std::vector<int64_t> shape;
    size_t next = 0;
    for (int64_t d = 0; d < out_rank; ++d) {
      if (std::find(axes.begin(), axes.end(), d) != axes.end()) {
        shape.push_back(1);
      } else {
        shape.push_back(in->shape()[next++]);
      }
    }
    return EmitReshaped(ctx, *in, std::move(shape));
  });
}

StatusOr<std::unique_ptr<Kernel>> MakeIdentity(const Operation& op) {
  return MakeKernel([](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    (*ctx.outputs)[0] = *in;
    return Status::Ok();
  });
}

// Dropout at inference: output = input. Training mode (opset >= 12 input 2) with a nonzero ratio
// is random and not supported.
StatusOr<std::unique_ptr<Kernel>> MakeDropout(const Operation& op) {
  const bool bool_mask = op.opset() >= 10;
  return MakeKernel([bool_mask](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    const Tensor* ratio = OptionalInput(ctx, 1);
    const Tensor* training = OptionalInput(ctx, 2);
    if (training && training->num_elements() == 1 && training->data<uint8_t>()[0]) {
      double r = 0.5;
      if (ratio) {
        auto v = ratio->AsFloats();
        if (v.ok() && !v->empty()) r = (*v)[0];
      }
      if (r != 0.0) return OpUnimplemented(*ctx.op, "training-mode Dropout (random) is not supported");
    }
    (*ctx.outputs)[0] = *in;
    if (WantsOutput(ctx, 1)) {
      Tensor& mask = SetOutput(ctx, 1, bool_mask ? DataType::kBool : in->dtype(), in->shape());
      if (bool_mask) {
        std::fill_n(mask.data<uint8_t>(), mask.num_elements(), 1);
      } else {
        QALIGN_RETURN_IF_ERROR(DispatchFloat(*ctx.op, in->dtype(), [&](auto tag) {
          using T = decltype(tag);
          std::fill_n(mask.data<T>(), mask.num_elements(), T(1));
          return Status::Ok();
        }));
      }
    }
    return Status::Ok();
  });
}

}  // namespace

void RegisterReshapeKernels(KernelRegistry& r) {
  Add(r, "Reshape", 5, kMaxOpset, MakeReshape);
  Add(r, "Flatten", 1, kMaxOpset, MakeFlatten);
  Add(r, "Squeeze", 1, kMaxOpset, MakeSqueeze);
  Add(r, "Unsqueeze", 1, kMaxOpset, MakeUnsqueeze);
  Add(r, "Identity", 1, kMaxOpset, MakeIdentity);
  Add(r, "Dropout", 7, kMaxOpset, MakeDropout);
}

}  // namespace qalign::kernels
