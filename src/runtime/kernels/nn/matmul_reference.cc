// Reference Gemm and MatMul: triple loops accumulating in double, straight from the ONNX
// operator definitions. The oracle the oneDNN kernels are tested against.
#include <memory>
#include <vector>

#include "runtime/kernels/nn/nn_kernels.h"
#include "runtime/kernels/nn/nn_util.h"

namespace qalign::nn {

namespace {

class GemmReference final : public Kernel {
 public:
  GemmReference(float alpha, float beta, bool trans_a, bool trans_b)
      : alpha_(alpha), beta_(beta), trans_a_(trans_a), trans_b_(trans_b) {}

  Status Run(KernelContext& context) override {
    QALIGN_ASSIGN_OR_RETURN(GemmShape s, ComputeGemmShape(context, trans_a_, trans_b_));
    const float* a = context.inputs[0]->data<float>();
    const float* b = context.inputs[1]->data<float>();
    const float* c = s.has_c ? context.inputs[2]->data<float>() : nullptr;
    Tensor& y = PrepareOutput(context, 0, {s.m, s.n});
    float* yd = y.data<float>();
    for (int64_t i = 0; i < s.m; ++i) {
      for (int64_t j = 0; j < s.n; ++j) {
        double acc = 0.0;
        for (int64_t p = 0; p < s.k; ++p) {
          // A'(i, p) and B'(p, j) read through the transposes.
          const float av = trans_a_ ? a[p * s.m + i] : a[i * s.k + p];
          const float bv = trans_b_ ? b[j * s.k + p] : b[p * s.n + j];
          acc += static_cast<double>(av) * bv;
        }
        double value = alpha_ * acc;
        if (c) {
          value += static_cast<double>(beta_) *
                   c[(s.c_rows == 1 ? 0 : i) * s.c_cols + (s.c_cols == 1 ? 0 : j)];
        }
        yd[i * s.n + j] = static_cast<float>(value);
      }
    }
    return Status::Ok();
  }

 private:
  float alpha_, beta_;
  bool trans_a_, trans_b_;
};

class MatMulReference final : public Kernel {
 public:
  Status Run(KernelContext& context) override {
    const Operation& op = *context.op;
    QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 0, 1));
    QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 1, 1));
    const Tensor& a = *context.inputs[0];
    const Tensor& b = *context.inputs[1];
    QALIGN_ASSIGN_OR_RETURN(MatMulShape s, ComputeMatMulShape(op, a.shape(), b.shape()));
    Tensor& y = PrepareOutput(context, 0, s.output);
    const int64_t batch = NumElements(s.batch);
    const int64_t r = static_cast<int64_t>(s.batch.size());
    std::vector<int64_t> coords(r);
    const float* ad = a.data<float>();
    const float* bd = b.data<float>();
    float* yd = y.data<float>();
    for (int64_t bi = 0; bi < batch; ++bi) {
      // Batch coordinates, then the broadcast source offsets of A and B (a size-1 dim repeats).
      int64_t rem = bi;
      for (int64_t i = r - 1; i >= 0; --i) {
        coords[i] = rem % s.batch[i];
        rem /= s.batch[i];
      }
      int64_t a_index = 0, b_index = 0;
      for (int64_t i = 0; i < r; ++i) {
        a_index = a_index * s.a_batch[i] + (s.a_batch[i] == 1 ? 0 : coords[i]);
        b_index = b_index * s.b_batch[i] + (s.b_batch[i] == 1 ? 0 : coords[i]);
      }
      const float* am = ad + a_index * s.m * s.k;
      const float* bm = bd + b_index * s.k * s.n;
      float* ym = yd + bi * s.m * s.n;
      for (int64_t i = 0; i < s.m; ++i) {
        for (int64_t j = 0; j < s.n; ++j) {
          double acc = 0.0;
          for (int64_t p = 0; p < s.k; ++p) acc += static_cast<double>(am[i * s.k + p]) * bm[p * s.n + j];
          ym[i * s.n + j] = static_cast<float>(acc);
        }
      }
    }
    return Status::Ok();
  }
};

}  // namespace

KernelOr CreateGemmReference(const Operation& op) {
  return std::unique_ptr<Kernel>(new GemmReference(op.GetFloat("alpha", 1.0f),
                                                   op.GetFloat("beta", 1.0f),
                                                   op.GetInt("transA", 0) != 0,
                                                   op.GetInt("transB", 0) != 0));
}

KernelOr CreateMatMulReference(const Operation& op) {
  return std::unique_ptr<Kernel>(new MatMulReference());
}

}  // namespace qalign::nn
