// Pad: constant, edge and reflect modes; pads (and the constant) are attributes before opset 11
// and inputs from 11. Negative pads crop.
#include <algorithm>

#include "runtime/kernels/common.h"
#include "runtime/kernels/registry_parts.h"

namespace qalign::kernels {
namespace {

enum class Mode { kConstant, kEdge, kReflect };

// For each output index along one dim, the input index to read, or -1 for the constant.
std::vector<int64_t> IndexMap(Mode mode, int64_t dim, int64_t before, int64_t out_len) {
  std::vector<int64_t> map(out_len);
  for (int64_t o = 0; o < out_len; ++o) {
    int64_t i = o - before;
    if (i < 0 || i >= dim) {
      if (mode == Mode::kConstant || dim == 0) {
        i = -1;
      } else if (mode == Mode::kEdge) {
        i = std::clamp<int64_t>(i, 0, dim - 1);
      } else if (dim == 1) {
        i = 0;
      } else {
        while (i < 0 || i >= dim) i = i < 0 ? -i : 2 * (dim - 1) - i;
      }
    }
    map[o] = i;
  }
  return map;
}

template <typename T>
void PadRows(ThreadPool* pool, const Tensor& in, Tensor& out, T value,
             const std::vector<std::vector<int64_t>>& maps) {
  const std::vector<int64_t>& shape = out.shape();
  const int64_t rank = static_cast<int64_t>(shape.size());
  const std::vector<int64_t> strides = Strides(in.shape());
  const int64_t n = shape.back();
  const int64_t rows = n == 0 ? 0 : out.num_elements() / n;
  const T* src = in.data<T>();
  T* dst = out.data<T>();
  const std::vector<int64_t>& last = maps.back();
  ParallelFor(pool, rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      int64_t rest = r, offset = 0;
      bool constant = false;
      for (int64_t d = rank - 2; d >= 0; --d) {
        const int64_t i = maps[d][rest % shape[d]];
        rest /= shape[d];
        if (i < 0) constant = true;
        offset += i * strides[d];
      }
      T* row = dst + r * n;
      if (constant) {
        std::fill(row, row + n, value);
        continue;
      }
      const T* in_row = src + offset;
      for (int64_t j = 0; j < n; ++j) row[j] = last[j] < 0 ? value : in_row[last[j]];
    }
  }, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(n, 1)));
}

StatusOr<std::unique_ptr<Kernel>> MakePad(const Operation& op) {
  const std::string mode_name = op.GetString("mode", "constant");
  Mode mode;
  if (mode_name == "constant") mode = Mode::kConstant;
  else if (mode_name == "edge") mode = Mode::kEdge;
  else if (mode_name == "reflect") mode = Mode::kReflect;
  else return OpUnimplemented(op, "pad mode '", mode_name, "'");
  const bool from_inputs = op.opset() >= 11;
  const std::vector<int64_t> pads_attr = op.GetInts(op.opset() < 2 ? "paddings" : "pads");
  const float value_attr = op.GetFloat("value", 0.0f);
  return MakeKernel([=](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    std::vector<int64_t> pads = pads_attr;
    double value = value_attr;
    if (from_inputs) {
      QALIGN_ASSIGN_OR_RETURN(const Tensor* p, RequiredInput(ctx, 1));
      QALIGN_ASSIGN_OR_RETURN(pads, ReadInts(*ctx.op, *p, "pads"));
      if (const Tensor* v = OptionalInput(ctx, 2); v && v->num_elements() > 0) {
        auto values = v->AsFloats();
        if (!values.ok()) return OpError(*ctx.op, "constant_value: ", values.status().message());
        value = (*values)[0];
      }
    }
    const int64_t rank = in->rank();
    if (static_cast<int64_t>(pads.size()) != 2 * rank) {
      return OpError(*ctx.op, "pads has ", pads.size(), " values for rank ", rank);
    }
    std::vector<int64_t> out_shape(rank);
    std::vector<std::vector<int64_t>> maps(rank);
    for (int64_t d = 0; d < rank; ++d) {
      const int64_t dim = in->shape()[d];
      out_shape[d] = dim + pads[d] + pads[d + rank];
      if (out_shape[d] < 0) return OpError(*ctx.op, "pads make dim ", d, " negative");
      if (mode != Mode::kConstant && dim == 0 && out_shape[d] > 0) {
        return OpError(*ctx.op, mode_name, " padding of an empty dim ", d);
      }
      maps[d] = IndexMap(mode, dim, pads[d], out_shape[d]);
    }
    if (rank == 0) {
      (*ctx.outputs)[0] = *in;
      return Status::Ok();
    }
    Tensor& out = SetOutput(ctx, 0, in->dtype(), out_shape);
    if (in->dtype() == DataType::kBool) {
      PadRows<uint8_t>(ctx.pool, *in, out, value != 0, maps);
      return Status::Ok();
    }
    return DispatchNumeric(*ctx.op, in->dtype(), [&](auto tag) {
      using T = decltype(tag);
      PadRows<T>(ctx.pool, *in, out, static_cast<T>(value), maps);
      return Status::Ok();
    });
  });
}

}  // namespace

void RegisterPadKernels(KernelRegistry& r) { Add(r, "Pad", 2, kMaxOpset, MakePad); }

}  // namespace qalign::kernels
