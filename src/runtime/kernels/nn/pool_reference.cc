// Reference MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool: naive loops straight from
// the ONNX operator definitions. The oracle the fast kernels are tested against.
#include <algorithm>
#include <limits>
#include <memory>
#include <vector>

#include "runtime/kernels/nn/nn_kernels.h"
#include "runtime/kernels/nn/nn_util.h"

namespace qalign::nn {

namespace {

void Unflatten(int64_t flat, const std::vector<int64_t>& dims, std::vector<int64_t>& coords) {
  for (int64_t i = static_cast<int64_t>(dims.size()) - 1; i >= 0; --i) {
    coords[i] = flat % dims[i];
    flat /= dims[i];
  }
}

enum class PoolKind { kMax, kAverage };

class WindowPoolReference final : public Kernel {
 public:
  WindowPoolReference(PoolKind kind, WindowAttributes attrs, bool count_include_pad)
      : kind_(kind), attrs_(std::move(attrs)), count_include_pad_(count_include_pad) {}

  Status Run(KernelContext& context) override {
    const Operation& op = *context.op;
    QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 0, 3));
    const Tensor& x = *context.inputs[0];
    const std::vector<int64_t> in_sp(x.shape().begin() + 2, x.shape().end());
    QALIGN_ASSIGN_OR_RETURN(WindowGeometry g,
                            ComputeWindowGeometry(op, attrs_, in_sp, attrs_.kernel_shape));
    std::vector<int64_t> out_shape = {x.shape()[0], x.shape()[1]};
    out_shape.insert(out_shape.end(), g.output.begin(), g.output.end());
    Tensor& y = PrepareOutput(context, 0, out_shape);

    const int64_t r = g.rank();
    const int64_t planes = x.shape()[0] * x.shape()[1];
    const int64_t in_size = NumElements(in_sp), out_size = NumElements(g.output);
    const int64_t k_size = NumElements(g.kernel);
    std::vector<int64_t> in_strides(r, 1);
    for (int64_t i = r - 2; i >= 0; --i) in_strides[i] = in_strides[i + 1] * in_sp[i + 1];
    std::vector<int64_t> oc(r), kc(r);
    const float* xd = x.data<float>();
    float* yd = y.data<float>();
    for (int64_t p = 0; p < planes; ++p) {
      const float* plane = xd + p * in_size;
      for (int64_t o = 0; o < out_size; ++o) {
        Unflatten(o, g.output, oc);
        double sum = 0.0;
        float max = -std::numeric_limits<float>::infinity();
        int64_t inside_count = 0;
        int64_t padded_count = 0;  // positions within the padded extent [-pb, in + pe)
        for (int64_t k = 0; k < k_size; ++k) {
          Unflatten(k, g.kernel, kc);
          int64_t offset = 0;
          bool inside = true, in_padded = true;
          for (int64_t i = 0; i < r; ++i) {
            const int64_t pos = oc[i] * g.strides[i] - g.pads_begin[i] + kc[i] * g.dilations[i];
            if (pos < -g.pads_begin[i] || pos >= in_sp[i] + g.pads_end[i]) in_padded = false;
            if (pos < 0 || pos >= in_sp[i]) inside = false;
            offset += pos * in_strides[i];
          }
          if (in_padded) ++padded_count;
          if (!inside) continue;
          ++inside_count;
          sum += plane[offset];
          max = std::max(max, plane[offset]);
        }
        float value;
        if (kind_ == PoolKind::kMax) {
          value = max;
        } else {
          const int64_t divisor = count_include_pad_ ? padded_count : inside_count;
          value = divisor > 0 ? static_cast<float>(sum / static_cast<double>(divisor)) : 0.0f;
        }
        yd[p * out_size + o] = value;
      }
    }
    return Status::Ok();
  }

 private:
  PoolKind kind_;
  WindowAttributes attrs_;
  bool count_include_pad_;
};

class GlobalPoolReference final : public Kernel {
 public:
  explicit GlobalPoolReference(PoolKind kind) : kind_(kind) {}

  Status Run(KernelContext& context) override {
    QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 0, 3));
    const Tensor& x = *context.inputs[0];
    std::vector<int64_t> out_shape(x.shape().size(), 1);
    out_shape[0] = x.shape()[0];
    out_shape[1] = x.shape()[1];
    Tensor& y = PrepareOutput(context, 0, out_shape);
    const int64_t planes = x.shape()[0] * x.shape()[1];
    const int64_t size = x.num_elements() / std::max<int64_t>(planes, 1);
    const float* xd = x.data<float>();
    float* yd = y.data<float>();
    for (int64_t p = 0; p < planes; ++p) {
      double sum = 0.0;
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < size; ++i) {
        sum += xd[p * size + i];
        max = std::max(max, xd[p * size + i]);
      }
      yd[p] = kind_ == PoolKind::kMax ? max : static_cast<float>(sum / static_cast<double>(size));
    }
    return Status::Ok();
  }

 private:
  PoolKind kind_;
};

StatusOr<WindowAttributes> ReadPoolAttributes(const Operation& op) {
  QALIGN_ASSIGN_OR_RETURN(WindowAttributes attrs, ReadWindowAttributes(op));
  if (attrs.kernel_shape.empty()) {
    return InvalidArgumentError(op.Describe(), ": kernel_shape is required");
  }
  return attrs;
}

}  // namespace

KernelOr CreateMaxPoolReference(const Operation& op) {
  QALIGN_RETURN_IF_ERROR(RejectOptionalOutput(op, 1, "MaxPool Indices"));
  QALIGN_ASSIGN_OR_RETURN(WindowAttributes attrs, ReadPoolAttributes(op));
  return std::unique_ptr<Kernel>(new WindowPoolReference(PoolKind::kMax, std::move(attrs), false));
}

KernelOr CreateAveragePoolReference(const Operation& op) {
  QALIGN_ASSIGN_OR_RETURN(WindowAttributes attrs, ReadPoolAttributes(op));
  const bool include_pad = op.GetInt("count_include_pad", 0) != 0;
  return std::unique_ptr<Kernel>(
      new WindowPoolReference(PoolKind::kAverage, std::move(attrs), include_pad));
}

KernelOr CreateGlobalAveragePoolReference(const Operation& op) {
  return std::unique_ptr<Kernel>(new GlobalPoolReference(PoolKind::kAverage));
}

KernelOr CreateGlobalMaxPoolReference(const Operation& op) {
  return std::unique_ptr<Kernel>(new GlobalPoolReference(PoolKind::kMax));
}

}  // namespace qalign::nn
