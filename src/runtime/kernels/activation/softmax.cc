// Softmax, LogSoftmax and Hardmax: opset < 13 flattens to 2-D at `axis` (default 1), opset >= 13
// normalizes along the one axis (default -1).
#include <cmath>
#include <limits>

#include "runtime/kernels/common.h"
#include "runtime/kernels/registry_parts.h"

namespace qalign::kernels {
namespace {

enum class Kind { kSoftmax, kLogSoftmax, kHardmax };

// One row of n values at stride `step`: y = exp(x - max) / sum, or its log, or one-hot of argmax.
template <typename T>
void NormalizeRow(Kind kind, const T* x, T* y, int64_t n, int64_t step) {
  T max_value = -std::numeric_limits<T>::infinity();
  int64_t arg = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (x[i * step] > max_value) {
      max_value = x[i * step];
      arg = i;
    }
  }
  if (kind == Kind::kHardmax) {
    for (int64_t i = 0; i < n; ++i) y[i * step] = i == arg ? T(1) : T(0);
    return;
  }
  T sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T e = std::exp(x[i * step] - max_value);
    if (kind == Kind::kSoftmax) y[i * step] = e;
    sum += e;
  }
  if (kind == Kind::kSoftmax) {
    const T inv = T(1) / sum;
    for (int64_t i = 0; i < n; ++i) y[i * step] *= inv;
  } else {
    const T log_sum = std::log(sum);
    for (int64_t i = 0; i < n; ++i) y[i * step] = x[i * step] - max_value - log_sum;
  }
}

KernelFactory SoftmaxFactory(Kind kind) {
  return [kind](const Operation& op) -> StatusOr<std::unique_ptr<Kernel>> {
    const bool coerce_2d = op.opset() < 13;
    const int64_t axis_attr = op.GetInt("axis", coerce_2d ? 1 : -1);
    return MakeKernel([kind, coerce_2d, axis_attr](KernelContext& ctx) -> Status {
      QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
      const std::vector<int64_t>& shape = in->shape();
      QALIGN_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(*ctx.op, axis_attr, in->rank()));
      int64_t outer = 1, n = 1, inner = 1;
      for (int64_t d = 0; d < in->rank(); ++d) {
        if (d < axis) outer *= shape[d];
        else if (d == axis || coerce_2d) n *= shape[d];
        else inner *= shape[d];
      }
      return DispatchFloat(*ctx.op, in->dtype(), [&](auto tag) -> Status {
        using T = decltype(tag);
        Tensor& out = SetOutputForOverwrite(ctx, 0, in->dtype(), shape);
        const T* x = in->data<T>();
        T* y = out.data<T>();
        ParallelFor(ctx.pool, outer * inner, [&](int64_t begin, int64_t end) {
          for (int64_t r = begin; r < end; ++r) {
            const int64_t base = (r / inner) * n * inner + r % inner;
            NormalizeRow(kind, x + base, y + base, n, inner);
          }
        }, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(n, 1)));
        return Status::Ok();
      });
    });
  };
}

}  // namespace

void RegisterSoftmaxKernels(KernelRegistry& r) {
  Add(r, "Softmax", 1, kMaxOpset, SoftmaxFactory(Kind::kSoftmax));
  Add(r, "LogSoftmax", 1, kMaxOpset, SoftmaxFactory(Kind::kLogSoftmax));
  Add(r, "Hardmax", 1, kMaxOpset, SoftmaxFactory(Kind::kHardmax));
}

}  // namespace qalign::kernels
