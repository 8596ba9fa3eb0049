// Gather (along one axis, negative indices allowed) and GatherElements, any element type.
#include <cstring>

#include "runtime/kernels/common.h"
#include "runtime/kernels/registry_parts.h"

namespace qalign::kernels {
namespace {

StatusOr<std::unique_ptr<Kernel>> MakeGather(const Operation& op) {
  const int64_t axis_attr = op.GetInt("axis", 0);
  return MakeKernel([axis_attr](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* data, RequiredInput(ctx, 0));
    QALIGN_ASSIGN_OR_RETURN(const Tensor* indices_t, RequiredInput(ctx, 1));
    QALIGN_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(*ctx.op, axis_attr, data->rank()));
    QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> indices, ReadInts(*ctx.op, *indices_t, "indices"));
    const int64_t dim = data->shape()[axis];
    for (int64_t& i : indices) {
      if (i < -dim || i >= dim) return OpError(*ctx.op, "index ", i, " out of range for dim ", dim);
      if (i < 0) i += dim;
    }
    std::vector<int64_t> shape(data->shape().begin(), data->shape().begin() + axis);
    shape.insert(shape.end(), indices_t->shape().begin(), indices_t->shape().end());
    shape.insert(shape.end(), data->shape().begin() + axis + 1, data->shape().end());
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= data->shape()[d];
    for (int64_t d = axis + 1; d < data->rank(); ++d) inner *= data->shape()[d];
    Tensor& out = SetOutputForOverwrite(ctx, 0, data->dtype(), shape);
    const int64_t count = static_cast<int64_t>(indices.size());
    if (data->dtype() == DataType::kString) {
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t k = 0; k < count; ++k)
          for (int64_t j = 0; j < inner; ++j)
            out.strings()[(o * count + k) * inner + j] =
                data->strings()[(o * dim + indices[k]) * inner + j];
      return Status::Ok();
    }
    QALIGN_ASSIGN_OR_RETURN(size_t elem, ElementSize(*ctx.op, *data));
    const size_t block = static_cast<size_t>(inner) * elem;
    const uint8_t* src = static_cast<const uint8_t*>(data->raw_data());
    uint8_t* dst = static_cast<uint8_t*>(out.raw_data());
    ParallelFor(ctx.pool, outer * count, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t o = r / count, k = r % count;
        if (block) std::memcpy(dst + r * block, src + (o * dim + indices[k]) * block, block);
      }
    }, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(inner, 1)));
    return Status::Ok();
  });
}

// GatherElements: out[i...] = data[i with axis coordinate replaced by indices[i...]].
StatusOr<std::unique_ptr<Kernel>> MakeGatherElements(const Operation& op) {
  const int64_t axis_attr = op.GetInt("axis", 0);
  return MakeKernel([axis_attr](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* data, RequiredInput(ctx, 0));
    QALIGN_ASSIGN_OR_RETURN(const Tensor* indices_t, RequiredInput(ctx, 1));
    QALIGN_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(*ctx.op, axis_attr, data->rank()));
    QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> indices, ReadInts(*ctx.op, *indices_t, "indices"));
    if (indices_t->rank() != data->rank()) return OpError(*ctx.op, "indices rank differs from data rank");
    QALIGN_ASSIGN_OR_RETURN(size_t elem, ElementSize(*ctx.op, *data));
    const std::vector<int64_t>& shape = indices_t->shape();
    const std::vector<int64_t> strides = Strides(data->shape());
    const int64_t dim = data->shape()[axis];
    Tensor& out = SetOutputForOverwrite(ctx, 0, data->dtype(), shape);
    const uint8_t* src = static_cast<const uint8_t*>(data->raw_data());
    uint8_t* dst = static_cast<uint8_t*>(out.raw_data());
    for (int64_t i = 0; i < out.num_elements(); ++i) {
      int64_t rest = i, offset = 0;
      for (int64_t d = indices_t->rank() - 1; d >= 0; --d) {
        int64_t c = rest % shape[d];
        rest /= shape[d];
        if (d == axis) {
          c = indices[i];
          if (c < -dim || c >= dim) return OpError(*ctx.op, "index ", c, " out of range for dim ", dim);
          if (c < 0) c += dim;
        }
        offset += c * strides[d];
      }
      std::memcpy(dst + i * elem, src + offset * elem, elem);
    }
    return Status::Ok();
  });
}

}  // namespace

void RegisterGatherKernels(KernelRegistry& r) {
  Add(r, "Gather", 1, kMaxOpset, MakeGather);
  Add(r, "GatherElements", 11, kMaxOpset, MakeGatherElements);
}

}  // namespace qalign::kernels
