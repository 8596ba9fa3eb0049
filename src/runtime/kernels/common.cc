// Helpers shared by the kernels.
#include "runtime/kernels/common.h"

#include <algorithm>

namespace qalign::kernels {

StatusOr<size_t> ElementSize(const Operation& op, const Tensor& t) {
  const size_t size = DataTypeSize(t.dtype());
  if (size == 0) {
    return OpUnimplemented(op, "element type ", DataTypeName(t.dtype()), " is not supported");
  }
  return size;
}

StatusOr<int64_t> NormalizeAxis(const Operation& op, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1)) {
    return OpError(op, "axis ", axis, " is out of range for rank ", rank);
  }
  return axis < 0 ? axis + rank : axis;
}

StatusOr<std::vector<int64_t>> NormalizeAxes(const Operation& op, std::vector<int64_t> axes,
                                             int64_t rank) {
  for (int64_t& a : axes) {
    if (a < -rank || a >= rank) return OpError(op, "axis ", a, " is out of range for rank ", rank);
    if (a < 0) a += rank;
  }
  std::vector<int64_t> sorted = axes;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return OpError(op, "axes repeat a value");
  }
  return axes;
}

std::vector<int64_t> Strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i) {
    strides[i] = strides[i + 1] * shape[i + 1];
  }
  return strides;
}

StatusOr<std::vector<int64_t>> BroadcastShapes(const Operation& op,
                                               const std::vector<std::vector<int64_t>>& shapes) {
  size_t rank = 0;
  for (const auto& s : shapes) rank = std::max(rank, s.size());
  std::vector<int64_t> out(rank, 1);
  for (const auto& s : shapes) {
    const size_t offset = rank - s.size();
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t& o = out[offset + i];
      if (s[i] == o || s[i] == 1) continue;
      if (o == 1) {
        o = s[i];
        continue;
      }
      std::string all;
      for (const auto& t : shapes) all += ShapeToString(t) + " ";
      return OpError(op, "shapes ", all, "cannot be broadcast together");
    }
  }
  return out;
}

std::vector<int64_t> BroadcastStrides(const std::vector<int64_t>& in_shape,
                                      const std::vector<int64_t>& out_shape) {
  std::vector<int64_t> strides(out_shape.size(), 0);
  const std::vector<int64_t> in_strides = Strides(in_shape);
  const size_t offset = out_shape.size() - in_shape.size();
  for (size_t i = 0; i < in_shape.size(); ++i) {
    strides[offset + i] = in_shape[i] == 1 ? 0 : in_strides[i];
  }
  return strides;
}

StatusOr<const Tensor*> RequiredInput(const KernelContext& ctx, size_t index) {
  const Tensor* t = OptionalInput(ctx, index);
  if (!t) {
    return OpError(*ctx.op, "required input ", index, " is missing");
  }
  return t;
}

StatusOr<std::vector<int64_t>> ReadInts(const Operation& op, const Tensor& t, const char* what) {
  auto values = t.AsInt64s();
  if (!values.ok()) return OpError(op, what, ": ", values.status().message());
  return std::move(values).value();
}

void Add(KernelRegistry& registry, const std::string& op_type, int64_t since, int64_t until,
         KernelFactory factory, KernelFlavor flavor) {
  KernelEntry entry;
  entry.op_type = op_type;
  entry.since_version = since;
  entry.until_version = until;
  entry.flavor = flavor;
  entry.factory = std::move(factory);
  registry.Register(std::move(entry));
}

}  // namespace qalign::kernels
