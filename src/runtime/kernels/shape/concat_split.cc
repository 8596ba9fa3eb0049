// Concat and Split along one axis, any element type, as block copies of contiguous bytes.
#include <cstring>

#include "runtime/kernels/common.h"
#include "runtime/kernels/registry_parts.h"

namespace qalign::kernels {
namespace {

StatusOr<std::unique_ptr<Kernel>> MakeConcat(const Operation& op) {
  if (!op.HasAttribute("axis")) return OpError(op, "attribute 'axis' is required");
  const int64_t axis_attr = op.GetInt("axis", 0);
  return MakeKernel([axis_attr](KernelContext& ctx) -> Status {
    std::vector<const Tensor*> ins;
    for (const Tensor* t : ctx.inputs) {
      if (t) ins.push_back(t);
    }
    if (ins.empty()) return OpError(*ctx.op, "needs at least one input");
    const Tensor& first = *ins[0];
    QALIGN_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(*ctx.op, axis_attr, first.rank()));
    QALIGN_ASSIGN_OR_RETURN(size_t elem, ElementSize(*ctx.op, first));
    std::vector<int64_t> shape = first.shape();
    shape[axis] = 0;
    for (const Tensor* t : ins) {
      bool ok = t->dtype() == first.dtype() && t->rank() == first.rank();
      for (int64_t d = 0; ok && d < first.rank(); ++d) {
        if (d != axis && t->shape()[d] != first.shape()[d]) ok = false;
      }
      if (!ok) {
        return OpError(*ctx.op, "input ", ShapeToString(t->shape()), " ", DataTypeName(t->dtype()),
                       " does not match ", ShapeToString(first.shape()), " ",
                       DataTypeName(first.dtype()), " off axis ", axis);
      }
      shape[axis] += t->shape()[axis];
    }
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= shape[d];
    for (int64_t d = axis + 1; d < first.rank(); ++d) inner *= shape[d];
    Tensor& out = SetOutputForOverwrite(ctx, 0, first.dtype(), shape);
    const size_t out_row = static_cast<size_t>(shape[axis] * inner) * elem;
    uint8_t* dst = static_cast<uint8_t*>(out.raw_data());
    ParallelFor(ctx.pool, outer, [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) {
        size_t at = static_cast<size_t>(o) * out_row;
        for (const Tensor* t : ins) {
          const size_t block = static_cast<size_t>(t->shape()[axis] * inner) * elem;
          if (block) std::memcpy(dst + at, static_cast<const uint8_t*>(t->raw_data()) + o * block, block);
          at += block;
        }
      }
    }, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(static_cast<int64_t>(out_row), 1)));
    return Status::Ok();
  });
}

StatusOr<std::unique_ptr<Kernel>> MakeSplit(const Operation& op) {
  const int64_t axis_attr = op.GetInt("axis", 0);
  const bool from_input = op.opset() >= 13;
  const std::vector<int64_t> split_attr = op.GetInts("split");
  return MakeKernel([=](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    QALIGN_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(*ctx.op, axis_attr, in->rank()));
    QALIGN_ASSIGN_OR_RETURN(size_t elem, ElementSize(*ctx.op, *in));
    const int64_t num_outputs = static_cast<int64_t>(ctx.outputs->size());
    std::vector<int64_t> split = split_attr;
    if (from_input) {
      split.clear();
      if (const Tensor* s = OptionalInput(ctx, 1)) {
        QALIGN_ASSIGN_OR_RETURN(split, ReadInts(*ctx.op, *s, "split"));
      }
    }
    const int64_t dim = in->shape()[axis];
    if (split.empty()) {
      if (dim % num_outputs != 0) {
        return OpError(*ctx.op, "dim ", dim, " does not split into ", num_outputs, " equal parts");
      }
      split.assign(num_outputs, dim / num_outputs);
    }
    int64_t total = 0;
    for (int64_t s : split) total += s;
    if (static_cast<int64_t>(split.size()) != num_outputs || total != dim) {
      return OpError(*ctx.op, "split sizes do not add up to dim ", dim, " over ", num_outputs,
                     " outputs");
    }
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= in->shape()[d];
    for (int64_t d = axis + 1; d < in->rank(); ++d) inner *= in->shape()[d];
    const size_t in_row = static_cast<size_t>(dim * inner) * elem;
    const uint8_t* src = static_cast<const uint8_t*>(in->raw_data());
    size_t at = 0;
    for (int64_t k = 0; k < num_outputs; ++k) {
      std::vector<int64_t> shape = in->shape();
      shape[axis] = split[k];
      const size_t block = static_cast<size_t>(split[k] * inner) * elem;
      if (WantsOutput(ctx, k)) {
        Tensor& out = SetOutputForOverwrite(ctx, k, in->dtype(), shape);
        uint8_t* dst = static_cast<uint8_t*>(out.raw_data());
        for (int64_t o = 0; o < outer && block; ++o) {
          std::memcpy(dst + o * block, src + o * in_row + at, block);
        }
      }
      at += block;
    }
    return Status::Ok();
  });
}

}  // namespace

void RegisterConcatSplitKernels(KernelRegistry& r) {
  Add(r, "Concat", 4, kMaxOpset, MakeConcat);
  Add(r, "Split", 2, kMaxOpset, MakeSplit);
}

}  // namespace qalign::kernels
