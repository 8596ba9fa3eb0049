// LayerNormalization (opset 17) and InstanceNormalization: normalize over trailing axes / spatial
// axes, y = (x - mean) / sqrt(var + epsilon) * scale + bias.
#include <cmath>

#include "runtime/kernels/common.h"
#include "runtime/kernels/elementwise/broadcast.h"
#include "runtime/kernels/registry_parts.h"

namespace qalign::kernels {
namespace {

StatusOr<std::unique_ptr<Kernel>> MakeLayerNorm(const Operation& op) {
  const int64_t axis_attr = op.GetInt("axis", -1);
  const double epsilon = op.GetFloat("epsilon", 1e-5f);
  return MakeKernel([axis_attr, epsilon](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* x, RequiredInput(ctx, 0));
    QALIGN_ASSIGN_OR_RETURN(const Tensor* scale, RequiredInput(ctx, 1));
    const Tensor* bias = OptionalInput(ctx, 2);
    QALIGN_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(*ctx.op, axis_attr, x->rank()));
    const std::vector<int64_t>& shape = x->shape();
    int64_t rows = 1, n = 1;
    for (int64_t d = 0; d < x->rank(); ++d) (d < axis ? rows : n) *= shape[d];
    std::vector<int64_t> norm_shape(shape.begin() + axis, shape.end());
    // Scale and bias broadcast to the normalized shape; expand them once.
    auto expand = [&](const Tensor* t, std::vector<double>* out) -> Status {
      out->assign(n, 0.0);
      if (!t) return Status::Ok();
      QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> b, BroadcastShapes(*ctx.op, {t->shape(), norm_shape}));
      if (b != norm_shape) return OpError(*ctx.op, "scale/bias shape ", ShapeToString(t->shape()), " does not broadcast to ", ShapeToString(norm_shape));
      auto values = t->AsFloats();
      if (!values.ok()) return OpError(*ctx.op, values.status().message());
      const std::vector<int64_t> strides = BroadcastStrides(t->shape(), norm_shape);
      for (int64_t i = 0; i < n; ++i) {
        int64_t rest = i, off = 0;
        for (int64_t d = static_cast<int64_t>(norm_shape.size()) - 1; d >= 0; --d) {
          off += (rest % norm_shape[d]) * strides[d];
          rest /= norm_shape[d];
        }
        (*out)[i] = (*values)[off];
      }
      return Status::Ok();
    };
    std::vector<double> gamma, beta;
    QALIGN_RETURN_IF_ERROR(expand(scale, &gamma));
    QALIGN_RETURN_IF_ERROR(expand(bias, &beta));
    std::vector<int64_t> stat_shape = shape;
    for (int64_t d = axis; d < x->rank(); ++d) stat_shape[d] = 1;
    return DispatchFloat(*ctx.op, x->dtype(), [&](auto tag) -> Status {
      using T = decltype(tag);
      Tensor& y = SetOutput(ctx, 0, x->dtype(), shape);
      const bool want_mean = WantsOutput(ctx, 1), want_inv = WantsOutput(ctx, 2);
      // Mean and InvStdDev use the stash type (float unless told otherwise).
      T* mean_out = want_mean ? SetOutput(ctx, 1, x->dtype(), stat_shape).template data<T>() : nullptr;
      T* inv_out = want_inv ? SetOutput(ctx, 2, x->dtype(), stat_shape).template data<T>() : nullptr;
      const T* px = x->data<T>();
      T* py = y.data<T>();
      ParallelFor(ctx.pool, rows, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const T* row = px + r * n;
          double sum = 0;
          for (int64_t i = 0; i < n; ++i) sum += row[i];
          const double mean = sum / n;
          double sq = 0;
          for (int64_t i = 0; i < n; ++i) sq += (row[i] - mean) * (row[i] - mean);
          const double inv = 1.0 / std::sqrt(sq / n + epsilon);
          for (int64_t i = 0; i < n; ++i) {
            py[r * n + i] = static_cast<T>((row[i] - mean) * inv * gamma[i] + beta[i]);
          }
          if (mean_out) mean_out[r] = static_cast<T>(mean);
          if (inv_out) inv_out[r] = static_cast<T>(inv);
        }
      }, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(n, 1)));
      return Status::Ok();
    });
  });
}

// InstanceNormalization: per (batch, channel) over the spatial dims, scale/bias per channel.
StatusOr<std::unique_ptr<Kernel>> MakeInstanceNorm(const Operation& op) {
  const double epsilon = op.GetFloat("epsilon", 1e-5f);
  return MakeKernel([epsilon](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* x, RequiredInput(ctx, 0));
    QALIGN_ASSIGN_OR_RETURN(const Tensor* scale, RequiredInput(ctx, 1));
    QALIGN_ASSIGN_OR_RETURN(const Tensor* bias, RequiredInput(ctx, 2));
    if (x->rank() < 2) return OpError(*ctx.op, "input needs rank >= 2");
    const int64_t batch = x->shape()[0], channels = x->shape()[1];
    const int64_t n = channels == 0 ? 0 : x->num_elements() / std::max<int64_t>(batch * channels, 1);
    if (scale->num_elements() != channels || bias->num_elements() != channels) {
      return OpError(*ctx.op, "scale and bias need ", channels, " values");
    }
    auto s = scale->AsFloats();
    auto b = bias->AsFloats();
    if (!s.ok() || !b.ok()) return OpError(*ctx.op, "scale and bias must be float");
    return DispatchFloat(*ctx.op, x->dtype(), [&](auto tag) -> Status {
      using T = decltype(tag);
      Tensor& y = SetOutput(ctx, 0, x->dtype(), x->shape());
      const T* px = x->data<T>();
      T* py = y.data<T>();
      ParallelFor(ctx.pool, batch * channels, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const T* row = px + r * n;
          double sum = 0, sq = 0;
          for (int64_t i = 0; i < n; ++i) sum += row[i];
          const double mean = sum / n;
          for (int64_t i = 0; i < n; ++i) sq += (row[i] - mean) * (row[i] - mean);
          const double inv = 1.0 / std::sqrt(sq / n + epsilon);
          const int64_t c = r % channels;
          for (int64_t i = 0; i < n; ++i) {
            py[r * n + i] = static_cast<T>((row[i] - mean) * inv * (*s)[c] + (*b)[c]);
          }
        }
      });
      return Status::Ok();
    });
  });
}

}  // namespace

void RegisterNormKernels(KernelRegistry& r) {
  Add(r, "LayerNormalization", 17, kMaxOpset, MakeLayerNorm);
  Add(r, "InstanceNormalization", 6, kMaxOpset, MakeInstanceNorm);
}

}  // namespace qalign::kernels
