// BatchNormalization (inference): the fast kernel folds the statistics into one multiply-add per
// element, the reference evaluates scale * (x - mean) / sqrt(var + epsilon) + B in double.
#include <cmath>
#include <memory>
#include <vector>

#include "runtime/kernels/nn/nn_kernels.h"
#include "runtime/kernels/nn/nn_util.h"

namespace qalign::nn {

namespace {

// Checks X and the four parameter inputs; returns the number of elements each parameter has per
// batch item: C (one per channel, the usual case) or C * spatial size (opset < 9 spatial=0).
StatusOr<int64_t> CheckBatchNormInputs(const KernelContext& context) {
  const Operation& op = *context.op;
  QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 0, 2));
  const Tensor& x = *context.inputs[0];
  const int64_t channels = x.shape()[1];
  const int64_t per_item = x.num_elements() / std::max<int64_t>(x.shape()[0], 1);
  int64_t count = -1;
  for (size_t i = 1; i <= 4; ++i) {
    QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, i, 1));
    const int64_t n = context.inputs[i]->num_elements();
    if ((n != channels && n != per_item) || (count >= 0 && n != count)) {
      return InvalidArgumentError(op.Describe(), ": parameter '", InputName(op, i), "' ",
                                  ShapeToString(context.inputs[i]->shape()),
                                  " does not match input '", InputName(op, 0), "' ",
                                  ShapeToString(x.shape()));
    }
    count = n;
  }
  return count;
}

class BatchNormFast final : public Kernel {
 public:
  explicit BatchNormFast(float epsilon) : epsilon_(epsilon) {}

  Status Run(KernelContext& context) override {
    QALIGN_ASSIGN_OR_RETURN(int64_t count, CheckBatchNormInputs(context));
    const Tensor& x = *context.inputs[0];
    const float* scale = context.inputs[1]->data<float>();
    const float* bias = context.inputs[2]->data<float>();
    const float* mean = context.inputs[3]->data<float>();
    const float* var = context.inputs[4]->data<float>();
    // y = a * x + b with a = scale / sqrt(var + eps), b = B - mean * a.
    mul_.resize(count);
    add_.resize(count);
    for (int64_t i = 0; i < count; ++i) {
      mul_[i] = scale[i] / std::sqrt(var[i] + epsilon_);
      add_[i] = bias[i] - mean[i] * mul_[i];
    }
    Tensor& y = PrepareOutput(context, 0, x.shape());
    const int64_t batch = x.shape()[0];
    const int64_t per_item = x.num_elements() / std::max<int64_t>(batch, 1);
    // Elements sharing one (a, b) pair: the spatial size per channel, or 1 when per activation.
    const int64_t inner = per_item / count;
    const float* xd = x.data<float>();
    float* yd = y.data<float>();
    for (int64_t n = 0; n < batch; ++n) {
      for (int64_t c = 0; c < count; ++c) {
        const float a = mul_[c], b = add_[c];
        const float* src = xd + (n * count + c) * inner;
        float* dst = yd + (n * count + c) * inner;
        for (int64_t i = 0; i < inner; ++i) dst[i] = a * src[i] + b;
      }
    }
    return Status::Ok();
  }

 private:
  float epsilon_;
  std::vector<float> mul_, add_;
};

class BatchNormReference final : public Kernel {
 public:
  explicit BatchNormReference(float epsilon) : epsilon_(epsilon) {}

  Status Run(KernelContext& context) override {
    QALIGN_ASSIGN_OR_RETURN(int64_t count, CheckBatchNormInputs(context));
    const Tensor& x = *context.inputs[0];
    Tensor& y = PrepareOutput(context, 0, x.shape());
    const int64_t per_item = x.num_elements() / std::max<int64_t>(x.shape()[0], 1);
    const int64_t inner = per_item / count;
    const float* scale = context.inputs[1]->data<float>();
    const float* bias = context.inputs[2]->data<float>();
    const float* mean = context.inputs[3]->data<float>();
    const float* var = context.inputs[4]->data<float>();
    const float* xd = x.data<float>();
    float* yd = y.data<float>();
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      const int64_t c = (i / inner) % count;
      const double normalized = (static_cast<double>(xd[i]) - mean[c]) /
                                std::sqrt(static_cast<double>(var[c]) + epsilon_);
      yd[i] = static_cast<float>(scale[c] * normalized + bias[c]);
    }
    return Status::Ok();
  }

 private:
  float epsilon_;
};

Status CheckInferenceOnly(const Operation& op) {
  if (op.GetInt("training_mode", 0) != 0) {
    return UnimplementedError(op.Describe(), ": training_mode=1 is not supported (inference only)");
  }
  for (size_t i = 1; i < op.outputs().size(); ++i) {
    QALIGN_RETURN_IF_ERROR(RejectOptionalOutput(op, i, "training statistics"));
  }
  return Status::Ok();
}

}  // namespace

KernelOr CreateBatchNormalizationFast(const Operation& op) {
  QALIGN_RETURN_IF_ERROR(CheckInferenceOnly(op));
  return std::unique_ptr<Kernel>(new BatchNormFast(op.GetFloat("epsilon", 1e-5f)));
}

KernelOr CreateBatchNormalizationReference(const Operation& op) {
  QALIGN_RETURN_IF_ERROR(CheckInferenceOnly(op));
  return std::unique_ptr<Kernel>(new BatchNormReference(op.GetFloat("epsilon", 1e-5f)));
}

}  // namespace qalign::nn
