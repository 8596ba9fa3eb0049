// Fast Gemm and MatMul on oneDNN's matmul primitive, one primitive per input shape cached in the
// kernel. Transposes are strides, alpha an output scale and beta * C a sum post-op.
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "runtime/kernels/nn/dnnl_context.h"
#include "runtime/kernels/nn/nn_kernels.h"
#include "runtime/kernels/nn/nn_util.h"

namespace qalign::nn {

namespace {

using dnnl::memory;

struct MatMulPlan {
  std::vector<int64_t> out_shape;
  bool use_reference = false;
  dnnl::matmul primitive;
  memory src, wei, dst;  // user buffers; handles re-pointed at each run
};

// Creates the primitive for src x wei -> dst; false when oneDNN refuses the shapes.
bool BuildMatMul(MatMulPlan& plan, const memory::desc& src, const memory::desc& wei,
                 const memory::desc& dst, const dnnl::primitive_attr& attr) {
  try {
    dnnl::engine& engine = DnnlEngine();
    dnnl::matmul::desc desc(src, wei, dst);
    dnnl::matmul::primitive_desc pd(desc, attr, engine);
    plan.primitive = dnnl::matmul(pd);
    plan.src = memory(src, engine, DNNL_MEMORY_NONE);
    plan.wei = memory(wei, engine, DNNL_MEMORY_NONE);
    plan.dst = memory(dst, engine, DNNL_MEMORY_NONE);
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

Status Execute(const Operation& op, MatMulPlan& plan, const Tensor& a, const Tensor& b,
               Tensor& y) {
  try {
    dnnl::stream& stream = DnnlStream();
    plan.src.set_data_handle(const_cast<void*>(a.raw_data()));
    plan.wei.set_data_handle(const_cast<void*>(b.raw_data()));
    plan.dst.set_data_handle(y.raw_data());
    plan.primitive.execute(stream, {{DNNL_ARG_SRC, plan.src},
                                    {DNNL_ARG_WEIGHTS, plan.wei},
                                    {DNNL_ARG_DST, plan.dst}});
    stream.wait();
  } catch (const dnnl::error& error) {
    return InternalError(op.Describe(), ": oneDNN failed on input '", InputName(op, 0), "' ",
                         ShapeToString(a.shape()), ": ", error.what());
  }
  return Status::Ok();
}

class MatMulFast final : public Kernel {
 public:
  explicit MatMulFast(std::unique_ptr<Kernel> reference) : reference_(std::move(reference)) {}

  Status Run(KernelContext& context) override {
    const Operation& op = *context.op;
    QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 0, 1));
    QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 1, 1));
    const Tensor& a = *context.inputs[0];
    const Tensor& b = *context.inputs[1];
    std::vector<int64_t> key = a.shape();
    key.push_back(-1);
    key.insert(key.end(), b.shape().begin(), b.shape().end());
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = plans_.find(key);
    if (it == plans_.end()) {
      if (plans_.size() >= kMaxCachedShapes) plans_.clear();  // bound memory
      QALIGN_ASSIGN_OR_RETURN(MatMulPlan plan, Prepare(op, a.shape(), b.shape()));
      it = plans_.emplace(key, std::move(plan)).first;
    }
    MatMulPlan& plan = it->second;
    if (plan.use_reference) {
      NoteReferenceFallback();
      return reference_->Run(context);
    }
    Tensor& y = PrepareOutput(context, 0, plan.out_shape);
    if (y.num_elements() == 0) return Status::Ok();
    return Execute(op, plan, a, b, y);
  }

 private:
  StatusOr<MatMulPlan> Prepare(const Operation& op, const std::vector<int64_t>& a,
                               const std::vector<int64_t>& b) {
    QALIGN_ASSIGN_OR_RETURN(MatMulShape s, ComputeMatMulShape(op, a, b));
    MatMulPlan plan;
    plan.out_shape = s.output;
    if (NumElements(s.output) == 0 || s.k == 0) {
      plan.use_reference = true;  // empty operands: nothing for oneDNN to do
      return plan;
    }
    const int64_t a_batch = NumElements(s.a_batch), b_batch = NumElements(s.b_batch);
    const dnnl::primitive_attr attr;
    bool built;
    if (b_batch == 1) {
      // One B for every batch item: fold A's batch into its rows, one [batch*M, K] x [K, N].
      const int64_t rows = a_batch * s.m;
      built = BuildMatMul(plan, PlainDesc({rows, s.k}), PlainDesc({s.k, s.n}),
                          PlainDesc({rows, s.n}), attr);
    } else {
      std::vector<int64_t> src = s.a_batch, wei = s.b_batch, dst = s.batch;
      src.insert(src.end(), {s.m, s.k});
      wei.insert(wei.end(), {s.k, s.n});
      dst.insert(dst.end(), {s.m, s.n});
      built = BuildMatMul(plan, PlainDesc(src), PlainDesc(wei), PlainDesc(dst), attr);
    }
    plan.use_reference = !built;
    return plan;
  }

  std::unique_ptr<Kernel> reference_;
  std::mutex mutex_;
  std::map<std::vector<int64_t>, MatMulPlan> plans_;
};

class GemmFast final : public Kernel {
 public:
  GemmFast(float alpha, float beta, bool trans_a, bool trans_b, std::unique_ptr<Kernel> reference)
      : alpha_(alpha),
        beta_(beta),
        trans_a_(trans_a),
        trans_b_(trans_b),
        reference_(std::move(reference)) {}

  Status Run(KernelContext& context) override {
    const Operation& op = *context.op;
    QALIGN_ASSIGN_OR_RETURN(GemmShape s, ComputeGemmShape(context, trans_a_, trans_b_));
    const bool use_c = s.has_c && beta_ != 0.0f;
    const std::vector<int64_t> key = {s.m, s.k, s.n, use_c ? 1 : 0};
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = plans_.find(key);
    if (it == plans_.end()) {
      if (plans_.size() >= kMaxCachedShapes) plans_.clear();  // bound memory
      MatMulPlan plan;
      plan.out_shape = {s.m, s.n};
      if (s.m == 0 || s.n == 0 || s.k == 0) {
        plan.use_reference = true;
      } else {
        // A' = [M, K] read from A ([M, K], or [K, M] when transposed) through strides; B' alike.
        const memory::desc a_md = trans_a_ ? StridedDesc({s.m, s.k}, {1, s.m}) : PlainDesc({s.m, s.k});
        const memory::desc b_md = trans_b_ ? StridedDesc({s.k, s.n}, {1, s.k}) : PlainDesc({s.k, s.n});
        dnnl::primitive_attr attr;
        if (alpha_ != 1.0f) attr.set_output_scales(0, {alpha_});
        if (use_c) {
          // Y is first filled with C broadcast; the sum post-op then adds beta * Y.
          dnnl::post_ops post_ops;
          post_ops.append_sum(beta_);
          attr.set_post_ops(post_ops);
        }
        plan.use_reference = !BuildMatMul(plan, a_md, b_md, PlainDesc({s.m, s.n}), attr);
      }
      it = plans_.emplace(key, std::move(plan)).first;
    }
    MatMulPlan& plan = it->second;
    if (plan.use_reference) {
      NoteReferenceFallback();
      return reference_->Run(context);
    }
    Tensor& y = PrepareOutput(context, 0, plan.out_shape);
    if (use_c) {
      const float* c = context.inputs[2]->data<float>();
      float* yd = y.data<float>();
      for (int64_t i = 0; i < s.m; ++i) {
        const float* c_row = c + (s.c_rows == 1 ? 0 : i) * s.c_cols;
        float* y_row = yd + i * s.n;
        if (s.c_cols == 1) {
          std::fill(y_row, y_row + s.n, c_row[0]);
        } else {
          std::copy(c_row, c_row + s.n, y_row);
        }
      }
    }
    return Execute(op, plan, *context.inputs[0], *context.inputs[1], y);
  }

 private:
  float alpha_, beta_;
  bool trans_a_, trans_b_;
  std::unique_ptr<Kernel> reference_;
  std::mutex mutex_;
  std::map<std::vector<int64_t>, MatMulPlan> plans_;
};

}  // namespace

KernelOr CreateGemmFast(const Operation& op) {
  QALIGN_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> reference, CreateGemmReference(op));
  return std::unique_ptr<Kernel>(new GemmFast(op.GetFloat("alpha", 1.0f),
                                              op.GetFloat("beta", 1.0f),
                                              op.GetInt("transA", 0) != 0,
                                              op.GetInt("transB", 0) != 0, std::move(reference)));
}

KernelOr CreateMatMulFast(const Operation& op) {
  QALIGN_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> reference, CreateMatMulReference(op));
  return std::unique_ptr<Kernel>(new MatMulFast(std::move(reference)));
}

}  // namespace qalign::nn
