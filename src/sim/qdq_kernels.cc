// QuantizeLinear / DequantizeLinear reference kernels (ONNX semantics: round half to even,
// saturate to the output type; per-axis when scale is 1-D).
#include "sim/qdq_kernels.h"

#include <cmath>
#include <memory>

#include "export/quant_plan.h"
#include "core/thread_pool.h"

namespace qalign {
namespace {

class QdqKernel : public Kernel {
 public:
  static constexpr int64_t kMinChunk = 1 << 16;  // elements per task: below that, run inline

  QdqKernel(bool quantize, int64_t axis) : quantize_(quantize), axis_(axis) {}

  Status Run(KernelContext& ctx) override {
    const Operation& op = *ctx.op;
    if (ctx.inputs.size() < 2 || ctx.inputs[0] == nullptr || ctx.inputs[1] == nullptr) {
      return InvalidArgumentError(op.Describe(), ": needs x and scale");
    }
    const Tensor& x = *ctx.inputs[0];
    const Tensor& scale_t = *ctx.inputs[1];
    const Tensor* zp_t = ctx.inputs.size() > 2 ? ctx.inputs[2] : nullptr;
    QALIGN_ASSIGN_OR_RETURN(std::vector<float> scale, scale_t.AsFloats());
    std::vector<int64_t> zp(scale.size(), 0);
    DataType qtype = DataType::kUint8;
    if (zp_t != nullptr) {
      QALIGN_ASSIGN_OR_RETURN(zp, zp_t->AsInt64s());
      qtype = zp_t->dtype();
    }
    if (zp.size() != scale.size()) {
      return InvalidArgumentError(op.Describe(), ": scale and zero point sizes differ");
    }
    // A zero, negative or non-finite scale has no meaning (ONNX requires scale > 0): quantizing
    // divides by it, and qalign check and fix reject such a model too.
    for (size_t i = 0; i < scale.size(); ++i) {
      if (!(std::isfinite(scale[i]) && scale[i] > 0.0f)) {
        return InvalidArgumentError(op.Describe(), ": scale '", op.input(1)->name(), "' holds ",
                                    scale[i], scale.size() > 1 ? StrCat(" at index ", i) : "",
                                    "; scales must be positive and finite");
      }
    }
    if (!quantize_) qtype = x.dtype();
    int64_t channels = 1, inner = 1;
    if (scale.size() > 1) {
      int64_t axis = axis_ < 0 ? axis_ + x.rank() : axis_;
      if (axis < 0 || axis >= x.rank() ||
          x.shape()[static_cast<size_t>(axis)] != static_cast<int64_t>(scale.size())) {
        return InvalidArgumentError(op.Describe(), ": ", scale.size(), " scales do not fit axis ",
                                    axis_, " of input '", op.input(0)->name(), "' shape ",
                                    ShapeToString(x.shape()));
      }
      channels = static_cast<int64_t>(scale.size());
      for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.shape()[static_cast<size_t>(d)];
    }
    const int64_t n = x.num_elements();
    auto channel = [&](int64_t i) { return static_cast<size_t>(channels == 1 ? 0 : (i / inner) % channels); };
    if (quantize_) {
      if (x.dtype() != DataType::kFloat) {
        return UnimplementedError(op.Describe(), ": input '", op.input(0)->name(), "' is not float");
      }
      int64_t qmin = 0, qmax = 255;
      if (qtype == DataType::kInt8) {
        qmin = -128;
        qmax = 127;
      } else if (qtype == DataType::kUint16) {
        qmax = 65535;
      } else if (qtype == DataType::kInt16) {
        qmin = -32768;
        qmax = 32767;
      } else if (qtype != DataType::kUint8) {
        return UnimplementedError(op.Describe(), ": output type ", DataTypeName(qtype));
      }
      Tensor out = Tensor::ForOverwrite(qtype, x.shape());
      const float* in = x.data<float>();
      // Element-wise and independent: split over the pool (exactly QuantizeValue per element).
      ParallelFor(ctx.pool, n, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const size_t c = channel(i);
          const int64_t q = QuantizeValue(in[i], scale[c], zp[c], qmin, qmax);
          switch (qtype) {
            case DataType::kInt8: out.data<int8_t>()[i] = static_cast<int8_t>(q); break;
            case DataType::kUint16: out.data<uint16_t>()[i] = static_cast<uint16_t>(q); break;
            case DataType::kInt16: out.data<int16_t>()[i] = static_cast<int16_t>(q); break;
            default: out.data<uint8_t>()[i] = static_cast<uint8_t>(q); break;
          }
        }
      }, kMinChunk);
      (*ctx.outputs)[0] = std::move(out);
    } else {
      Tensor out = Tensor::ForOverwrite(DataType::kFloat, x.shape());
      float* o = out.data<float>();
      // The integer types QuantizeLinear writes are read directly; others (int32 biases) as int64.
      std::vector<int64_t> wide;
      if (x.dtype() != DataType::kInt8 && x.dtype() != DataType::kUint8) {
        QALIGN_ASSIGN_OR_RETURN(wide, x.AsInt64s());
      }
      auto value = [&](int64_t i) -> int64_t {
        if (x.dtype() == DataType::kInt8) return x.data<int8_t>()[i];
        if (x.dtype() == DataType::kUint8) return x.data<uint8_t>()[i];
        return wide[static_cast<size_t>(i)];
      };
      ParallelFor(ctx.pool, n, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const size_t c = channel(i);
          o[i] = static_cast<float>(value(i) - zp[c]) * scale[c];
        }
      }, kMinChunk);
      (*ctx.outputs)[0] = std::move(out);
    }
    return Status::Ok();
  }

 private:
  bool quantize_;
  int64_t axis_;
};

}  // namespace

void RegisterQdqKernels(KernelRegistry& registry) {
  // ONNX's ops (since opset 10) and com.microsoft's (ONNX Runtime's contrib ops, version 1, which
  // take 16-bit types below opset 21: the export writes them for 16-bit activations).
  struct Domain {
    const char* name;
    int64_t since;
    int64_t probe;  // an opset the entry must cover
  };
  for (const Domain& domain : {Domain{"", 10, 13}, Domain{"com.microsoft", 1, 1}}) {
    for (bool quantize : {true, false}) {
      const std::string type = quantize ? "QuantizeLinear" : "DequantizeLinear";
      if (registry.Find(domain.name, type, domain.probe) != nullptr) continue;
      KernelEntry entry;
      entry.domain = domain.name;
      entry.op_type = type;
      entry.since_version = domain.since;
      entry.flavor = KernelFlavor::kFast;
      entry.factory = [quantize](const Operation& op) -> StatusOr<std::unique_ptr<Kernel>> {
        return std::unique_ptr<Kernel>(std::make_unique<QdqKernel>(quantize, op.GetInt("axis", 1)));
      };
      registry.Register(entry);
    }
  }
}

const KernelRegistry& SimKernelRegistry() {
  static const KernelRegistry* registry = [] {
    auto* r = new KernelRegistry();
    RegisterAllKernels(*r);
    RegisterQdqKernels(*r);
    return r;
  }();
  return *registry;
}

}  // namespace qalign
