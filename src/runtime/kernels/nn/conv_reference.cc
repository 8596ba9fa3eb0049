// Reference Conv and ConvTranspose: naive loops straight from the ONNX operator definitions,
// accumulating in double. The oracle the oneDNN kernels are tested against.
#include <memory>
#include <vector>

#include "runtime/kernels/nn/nn_kernels.h"
#include "runtime/kernels/nn/nn_util.h"

namespace qalign::nn {

namespace {

// Row-major strides of `dims`.
std::vector<int64_t> Strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int64_t i = static_cast<int64_t>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

// Coordinates of flat index `flat` in `dims`.
void Unflatten(int64_t flat, const std::vector<int64_t>& dims, std::vector<int64_t>& coords) {
  for (int64_t i = static_cast<int64_t>(dims.size()) - 1; i >= 0; --i) {
    coords[i] = flat % dims[i];
    flat /= dims[i];
  }
}

std::vector<int64_t> Spatial(const std::vector<int64_t>& shape) {
  return std::vector<int64_t>(shape.begin() + 2, shape.end());
}

class ConvReference final : public Kernel {
 public:
  ConvReference(WindowAttributes attrs, int64_t group) : attrs_(std::move(attrs)), group_(group) {}

  Status Run(KernelContext& context) override {
    const Operation& op = *context.op;
    QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 0, 3));
    QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 1, 3));
    const Tensor& x = *context.inputs[0];
    const Tensor& w = *context.inputs[1];
    const int64_t n_batch = x.shape()[0], channels = x.shape()[1], maps = w.shape()[0];
    QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> kernel, CheckConvInputs(context, attrs_, maps));
    if (channels != w.shape()[1] * group_ || maps % group_ != 0) {
      return InvalidArgumentError(op.Describe(), ": input '", InputName(op, 0), "' ",
                                  ShapeToString(x.shape()), " and weights '", InputName(op, 1),
                                  "' ", ShapeToString(w.shape()), " do not fit group=", group_);
    }
    const std::vector<int64_t> in_sp = Spatial(x.shape());
    QALIGN_ASSIGN_OR_RETURN(WindowGeometry g, ComputeWindowGeometry(op, attrs_, in_sp, kernel));
    std::vector<int64_t> out_shape = {n_batch, maps};
    out_shape.insert(out_shape.end(), g.output.begin(), g.output.end());
    Tensor& y = PrepareOutput(context, 0, out_shape);

    const int64_t r = g.rank();
    const int64_t in_size = NumElements(in_sp), out_size = NumElements(g.output);
    const int64_t k_size = NumElements(kernel);
    const std::vector<int64_t> in_strides = Strides(in_sp);
    const int64_t c_per_group = channels / group_, m_per_group = maps / group_;
    const float* xd = x.data<float>();
    const float* wd = w.data<float>();
    const float* bd = context.inputs.size() > 2 && context.inputs[2] ? context.inputs[2]->data<float>()
                                                                     : nullptr;
    float* yd = y.data<float>();
    std::vector<int64_t> oc(r), kc(r);
    for (int64_t n = 0; n < n_batch; ++n) {
      for (int64_t m = 0; m < maps; ++m) {
        const int64_t gi = m / m_per_group;
        for (int64_t o = 0; o < out_size; ++o) {
          Unflatten(o, g.output, oc);
          double acc = bd ? bd[m] : 0.0;
          for (int64_t c = 0; c < c_per_group; ++c) {
            const float* xc = xd + (n * channels + gi * c_per_group + c) * in_size;
            const float* wc = wd + (m * c_per_group + c) * k_size;
            for (int64_t k = 0; k < k_size; ++k) {
              Unflatten(k, kernel, kc);
              int64_t offset = 0;
              bool inside = true;
              for (int64_t i = 0; i < r; ++i) {
                // input coordinate = out * stride - pad_begin + k * dilation
                const int64_t pos = oc[i] * g.strides[i] - g.pads_begin[i] + kc[i] * g.dilations[i];
                if (pos < 0 || pos >= in_sp[i]) { inside = false; break; }
                offset += pos * in_strides[i];
              }
              if (inside) acc += static_cast<double>(xc[offset]) * wc[k];
            }
          }
          yd[(n * maps + m) * out_size + o] = static_cast<float>(acc);
        }
      }
    }
    return Status::Ok();
  }

 private:
  WindowAttributes attrs_;
  int64_t group_;
};

class ConvTransposeReference final : public Kernel {
 public:
  ConvTransposeReference(WindowAttributes attrs, int64_t group)
      : attrs_(std::move(attrs)), group_(group) {}

  Status Run(KernelContext& context) override {
    const Operation& op = *context.op;
    QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 0, 3));
    QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 1, 3));
    const Tensor& x = *context.inputs[0];
    const Tensor& w = *context.inputs[1];
    // W: [C, M / group, k...]
    const int64_t n_batch = x.shape()[0], channels = x.shape()[1];
    const int64_t m_per_group = w.shape()[1], maps = m_per_group * group_;
    QALIGN_ASSIGN_OR_RETURN(std::vector<int64_t> kernel, CheckConvInputs(context, attrs_, maps));
    if (w.shape()[0] != channels || channels % group_ != 0) {
      return InvalidArgumentError(op.Describe(), ": input '", InputName(op, 0), "' ",
                                  ShapeToString(x.shape()), " and weights '", InputName(op, 1),
                                  "' ", ShapeToString(w.shape()), " do not fit group=", group_);
    }
    const std::vector<int64_t> in_sp = Spatial(x.shape());
    QALIGN_ASSIGN_OR_RETURN(WindowGeometry g,
                            ComputeConvTransposeGeometry(op, attrs_, in_sp, kernel, nullptr));
    std::vector<int64_t> out_shape = {n_batch, maps};
    out_shape.insert(out_shape.end(), g.output.begin(), g.output.end());
    Tensor& y = PrepareOutput(context, 0, out_shape);

    const int64_t r = g.rank();
    const int64_t in_size = NumElements(in_sp), out_size = NumElements(g.output);
    const int64_t k_size = NumElements(kernel);
    const std::vector<int64_t> out_strides = Strides(g.output);
    const int64_t c_per_group = channels / group_;
    const float* xd = x.data<float>();
    const float* wd = w.data<float>();
    const float* bd = context.inputs.size() > 2 && context.inputs[2] ? context.inputs[2]->data<float>()
                                                                     : nullptr;
    std::vector<double> acc(static_cast<size_t>(n_batch * maps * out_size), 0.0);
    std::vector<int64_t> ic(r), kc(r);
    // Every input element scatters x * w into out[i * stride - pad_begin + k * dilation].
    for (int64_t n = 0; n < n_batch; ++n) {
      for (int64_t c = 0; c < channels; ++c) {
        const int64_t gi = c / c_per_group;
        for (int64_t i = 0; i < in_size; ++i) {
          Unflatten(i, in_sp, ic);
          const double xv = xd[(n * channels + c) * in_size + i];
          for (int64_t k = 0; k < k_size; ++k) {
            Unflatten(k, kernel, kc);
            int64_t offset = 0;
            bool inside = true;
            for (int64_t a = 0; a < r; ++a) {
              const int64_t pos = ic[a] * g.strides[a] - g.pads_begin[a] + kc[a] * g.dilations[a];
              if (pos < 0 || pos >= g.output[a]) { inside = false; break; }
              offset += pos * out_strides[a];
            }
            if (!inside) continue;
            for (int64_t mm = 0; mm < m_per_group; ++mm) {
              const int64_t m = gi * m_per_group + mm;
              acc[(n * maps + m) * out_size + offset] +=
                  xv * wd[(c * m_per_group + mm) * k_size + k];
            }
          }
        }
      }
    }
    float* yd = y.data<float>();
    for (int64_t n = 0; n < n_batch; ++n) {
      for (int64_t m = 0; m < maps; ++m) {
        for (int64_t o = 0; o < out_size; ++o) {
          const int64_t idx = (n * maps + m) * out_size + o;
          yd[idx] = static_cast<float>(acc[idx] + (bd ? bd[m] : 0.0));
        }
      }
    }
    return Status::Ok();
  }

 private:
  WindowAttributes attrs_;
  int64_t group_;
};

}  // namespace

KernelOr CreateConvReference(const Operation& op) {
  QALIGN_ASSIGN_OR_RETURN(WindowAttributes attrs, ReadWindowAttributes(op));
  QALIGN_ASSIGN_OR_RETURN(int64_t group, ReadGroup(op));
  return std::unique_ptr<Kernel>(new ConvReference(std::move(attrs), group));
}

KernelOr CreateConvTransposeReference(const Operation& op) {
  QALIGN_ASSIGN_OR_RETURN(WindowAttributes attrs, ReadWindowAttributes(op));
  QALIGN_ASSIGN_OR_RETURN(int64_t group, ReadGroup(op));
  return std::unique_ptr<Kernel>(new ConvTransposeReference(std::move(attrs), group));
}

}  // namespace qalign::nn
