// Fast pooling: MaxPool and AveragePool on oneDNN (plain NCHW in and out: pooling is memory
// bound, so reorders would cost more than they save), GlobalAveragePool and GlobalMaxPool as
// vectorizable per-plane loops.
#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "runtime/kernels/nn/dnnl_context.h"
#include "runtime/kernels/nn/nn_kernels.h"
#include "runtime/kernels/nn/nn_util.h"

namespace qalign::nn {

namespace {

using dnnl::memory;

memory::dims Dims(const std::vector<int64_t>& v) { return memory::dims(v.begin(), v.end()); }

struct PoolPlan {
  std::vector<int64_t> out_shape;
  bool use_reference = false;
  dnnl::pooling_v2_forward primitive;
  memory src, dst;  // plain; handles re-pointed at each run
};

class WindowPoolFast final : public Kernel {
 public:
  WindowPoolFast(dnnl::algorithm algorithm, WindowAttributes attrs,
                 std::unique_ptr<Kernel> reference)
      : algorithm_(algorithm), attrs_(std::move(attrs)), reference_(std::move(reference)) {}

  Status Run(KernelContext& context) override {
    const Operation& op = *context.op;
    QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 0, 3));
    const Tensor& x = *context.inputs[0];
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = plans_.find(x.shape());
    if (it == plans_.end()) {
      if (plans_.size() >= kMaxCachedShapes) plans_.clear();  // bound memory
      QALIGN_ASSIGN_OR_RETURN(PoolPlan plan, Prepare(op, x.shape()));
      it = plans_.emplace(x.shape(), std::move(plan)).first;
    }
    PoolPlan& plan = it->second;
    if (plan.use_reference) {
      NoteReferenceFallback();
      return reference_->Run(context);
    }
    Tensor& y = PrepareOutput(context, 0, plan.out_shape);
    try {
      dnnl::stream& stream = DnnlStream();
      plan.src.set_data_handle(const_cast<void*>(x.raw_data()));
      plan.dst.set_data_handle(y.raw_data());
      plan.primitive.execute(stream, {{DNNL_ARG_SRC, plan.src}, {DNNL_ARG_DST, plan.dst}});
      stream.wait();
    } catch (const dnnl::error& error) {
      return InternalError(op.Describe(), ": oneDNN failed on input '", InputName(op, 0), "' ",
                           ShapeToString(x.shape()), ": ", error.what());
    }
    return Status::Ok();
  }

 private:
  StatusOr<PoolPlan> Prepare(const Operation& op, const std::vector<int64_t>& shape) {
    const std::vector<int64_t> in_sp(shape.begin() + 2, shape.end());
    QALIGN_ASSIGN_OR_RETURN(WindowGeometry g,
                            ComputeWindowGeometry(op, attrs_, in_sp, attrs_.kernel_shape));
    PoolPlan plan;
    plan.out_shape = {shape[0], shape[1]};
    plan.out_shape.insert(plan.out_shape.end(), g.output.begin(), g.output.end());
    std::vector<int64_t> dilations, pad_r;
    for (int64_t i = 0; i < g.rank(); ++i) {
      dilations.push_back(g.dilations[i] - 1);
      // oneDNN takes the output size from floor((in + pl + pr - dk) / s) + 1; with ceil_mode the
      // right padding grows until that gives ONNX's count. The extra padding is ignored by max
      // and by average-excluding-pad, but average-including-pad would count it.
      const int64_t dk = (g.kernel[i] - 1) * g.dilations[i] + 1;
      const int64_t needed = (g.output[i] - 1) * g.strides[i] + dk - in_sp[i] - g.pads_begin[i];
      const int64_t right = std::max(needed, g.pads_end[i]);
      if (right > g.pads_end[i] && algorithm_ == dnnl::algorithm::pooling_avg_include_padding) {
        plan.use_reference = true;
        return plan;
      }
      pad_r.push_back(right);
    }
    try {
      dnnl::engine& engine = DnnlEngine();
      const memory::desc src_md = PlainDesc(shape);
      const memory::desc dst_md = PlainDesc(plan.out_shape);
      dnnl::pooling_v2_forward::desc desc(dnnl::prop_kind::forward_inference, algorithm_, src_md,
                                          dst_md, Dims(g.strides), Dims(g.kernel),
                                          Dims(dilations), Dims(g.pads_begin), Dims(pad_r));
      dnnl::pooling_v2_forward::primitive_desc pd(desc, engine);
      plan.primitive = dnnl::pooling_v2_forward(pd);
      plan.src = memory(src_md, engine, DNNL_MEMORY_NONE);
      plan.dst = memory(dst_md, engine, DNNL_MEMORY_NONE);
    } catch (const dnnl::error&) {
      plan.use_reference = true;
    }
    return plan;
  }

  dnnl::algorithm algorithm_;
  WindowAttributes attrs_;
  std::unique_ptr<Kernel> reference_;
  std::mutex mutex_;
  std::map<std::vector<int64_t>, PoolPlan> plans_;
};

enum class GlobalKind { kAverage, kMax };

class GlobalPoolFast final : public Kernel {
 public:
  explicit GlobalPoolFast(GlobalKind kind) : kind_(kind) {}

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
    constexpr int kLanes = 8;  // independent accumulators so the loop vectorizes
    for (int64_t p = 0; p < planes; ++p) {
      const float* src = xd + p * size;
      int64_t i = 0;
      if (kind_ == GlobalKind::kAverage) {
        float acc[kLanes] = {};
        for (; i + kLanes <= size; i += kLanes) {
          for (int l = 0; l < kLanes; ++l) acc[l] += src[i + l];
        }
        float sum = 0.0f;
        for (int l = 0; l < kLanes; ++l) sum += acc[l];
        for (; i < size; ++i) sum += src[i];
        yd[p] = sum / static_cast<float>(size);
      } else {
        float acc[kLanes];
        std::fill(acc, acc + kLanes, -std::numeric_limits<float>::infinity());
        for (; i + kLanes <= size; i += kLanes) {
          for (int l = 0; l < kLanes; ++l) acc[l] = std::max(acc[l], src[i + l]);
        }
        float max = -std::numeric_limits<float>::infinity();
        for (int l = 0; l < kLanes; ++l) max = std::max(max, acc[l]);
        for (; i < size; ++i) max = std::max(max, src[i]);
        yd[p] = max;
      }
    }
    return Status::Ok();
  }

 private:
  GlobalKind kind_;
};

StatusOr<WindowAttributes> ReadPoolAttributes(const Operation& op) {
  QALIGN_ASSIGN_OR_RETURN(WindowAttributes attrs, ReadWindowAttributes(op));
  if (attrs.kernel_shape.empty()) {
    return InvalidArgumentError(op.Describe(), ": kernel_shape is required");
  }
  return attrs;
}

}  // namespace

KernelOr CreateMaxPoolFast(const Operation& op) {
  QALIGN_RETURN_IF_ERROR(RejectOptionalOutput(op, 1, "MaxPool Indices"));
  QALIGN_ASSIGN_OR_RETURN(WindowAttributes attrs, ReadPoolAttributes(op));
  QALIGN_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> reference, CreateMaxPoolReference(op));
  return std::unique_ptr<Kernel>(
      new WindowPoolFast(dnnl::algorithm::pooling_max, std::move(attrs), std::move(reference)));
}

KernelOr CreateAveragePoolFast(const Operation& op) {
  QALIGN_ASSIGN_OR_RETURN(WindowAttributes attrs, ReadPoolAttributes(op));
  QALIGN_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> reference, CreateAveragePoolReference(op));
  const dnnl::algorithm algorithm = op.GetInt("count_include_pad", 0) != 0
                                        ? dnnl::algorithm::pooling_avg_include_padding
                                        : dnnl::algorithm::pooling_avg_exclude_padding;
  return std::unique_ptr<Kernel>(
      new WindowPoolFast(algorithm, std::move(attrs), std::move(reference)));
}

KernelOr CreateGlobalAveragePoolFast(const Operation& op) {
  return std::unique_ptr<Kernel>(new GlobalPoolFast(GlobalKind::kAverage));
}

KernelOr CreateGlobalMaxPoolFast(const Operation& op) {
  return std::unique_ptr<Kernel>(new GlobalPoolFast(GlobalKind::kMax));
}

}  // namespace qalign::nn
