// Attribute reading and window geometry shared by the nn kernels (fast and reference).
#include "runtime/kernels/nn/nn_util.h"

#include <algorithm>
#include <atomic>

#include "runtime/kernels/nn/nn_kernels.h"

namespace qalign::nn {

namespace {

// ceil(a / b) for a >= 0 or negative a, b > 0.
int64_t CeilDiv(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

}  // namespace

StatusOr<WindowAttributes> ReadWindowAttributes(const Operation& op) {
  WindowAttributes attrs;
  attrs.auto_pad = op.GetString("auto_pad", "NOTSET");
  if (attrs.auto_pad.empty()) attrs.auto_pad = "NOTSET";
  if (attrs.auto_pad != "NOTSET" && attrs.auto_pad != "SAME_UPPER" &&
      attrs.auto_pad != "SAME_LOWER" && attrs.auto_pad != "VALID") {
    return InvalidArgumentError(op.Describe(), ": unknown auto_pad '", attrs.auto_pad, "'");
  }
  attrs.kernel_shape = op.GetInts("kernel_shape");
  attrs.strides = op.GetInts("strides");
  attrs.dilations = op.GetInts("dilations");
  attrs.pads = op.GetInts("pads");
  attrs.ceil_mode = op.GetInt("ceil_mode", 0) != 0;
  for (int64_t k : attrs.kernel_shape) {
    if (k <= 0) return InvalidArgumentError(op.Describe(), ": kernel_shape values must be > 0");
  }
  for (int64_t s : attrs.strides) {
    if (s <= 0) return InvalidArgumentError(op.Describe(), ": strides must be > 0");
  }
  for (int64_t d : attrs.dilations) {
    if (d <= 0) return InvalidArgumentError(op.Describe(), ": dilations must be > 0");
  }
  if (attrs.pads.size() % 2 != 0) {
    return InvalidArgumentError(op.Describe(), ": pads has an odd number of values (",
                                attrs.pads.size(), ")");
  }
  return attrs;
}

namespace {

// Fills kernel, strides, dilations and the explicit pads, checking the attribute lengths.
Status FillCommon(const Operation& op, const WindowAttributes& attrs, size_t rank,
                  const std::vector<int64_t>& kernel, WindowGeometry& g) {
  if (kernel.size() != rank) {
    return InvalidArgumentError(op.Describe(), ": kernel has ", kernel.size(),
                                " spatial dims but input '", InputName(op, 0), "' has ", rank);
  }
  auto sized = [&](const std::vector<int64_t>& v, const char* name, int64_t fill,
                   std::vector<int64_t>& out) -> Status {
    if (v.empty()) {
      out.assign(rank, fill);
    } else if (v.size() != rank) {
      return InvalidArgumentError(op.Describe(), ": ", name, " has ", v.size(),
                                  " values for ", rank, " spatial dims");
    } else {
      out = v;
    }
    return Status::Ok();
  };
  g.kernel = kernel;
  QALIGN_RETURN_IF_ERROR(sized(attrs.strides, "strides", 1, g.strides));
  QALIGN_RETURN_IF_ERROR(sized(attrs.dilations, "dilations", 1, g.dilations));
  g.pads_begin.assign(rank, 0);
  g.pads_end.assign(rank, 0);
  if (attrs.auto_pad == "NOTSET" && !attrs.pads.empty()) {
    if (attrs.pads.size() != 2 * rank) {
      return InvalidArgumentError(op.Describe(), ": pads has ", attrs.pads.size(),
                                  " values for ", rank, " spatial dims");
    }
    for (size_t i = 0; i < rank; ++i) {
      g.pads_begin[i] = attrs.pads[i];
      g.pads_end[i] = attrs.pads[i + rank];
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<WindowGeometry> ComputeWindowGeometry(const Operation& op, const WindowAttributes& attrs,
                                               const std::vector<int64_t>& input_spatial,
                                               const std::vector<int64_t>& kernel) {
  const size_t rank = input_spatial.size();
  WindowGeometry g;
  QALIGN_RETURN_IF_ERROR(FillCommon(op, attrs, rank, kernel, g));
  g.output.assign(rank, 0);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t in = input_spatial[i];
    const int64_t s = g.strides[i];
    const int64_t dk = (g.kernel[i] - 1) * g.dilations[i] + 1;
    if (attrs.auto_pad == "SAME_UPPER" || attrs.auto_pad == "SAME_LOWER") {
      const int64_t out = CeilDiv(in, s);
      const int64_t total = std::max<int64_t>(0, (out - 1) * s + dk - in);
      const int64_t small = total / 2;
      g.pads_begin[i] = attrs.auto_pad == "SAME_UPPER" ? small : total - small;
      g.pads_end[i] = total - g.pads_begin[i];
      g.output[i] = out;
    } else if (attrs.auto_pad == "VALID") {
      g.output[i] = FloorDiv(in - dk, s) + 1;
    } else {
      const int64_t span = in + g.pads_begin[i] + g.pads_end[i] - dk;
      int64_t out = attrs.ceil_mode ? CeilDiv(span, s) + 1 : FloorDiv(span, s) + 1;
      // A window may not start in the right padding (ONNX, following PyTorch).
      if (attrs.ceil_mode && out > 0 && (out - 1) * s >= in + g.pads_begin[i]) --out;
      g.output[i] = out;
    }
    if (g.output[i] <= 0) {
      return InvalidArgumentError(op.Describe(), ": input '", InputName(op, 0), "' spatial dim ",
                                  i, " (", in, ") is too small for a window of ", dk,
                                  " with the given pads");
    }
  }
  return g;
}

StatusOr<WindowGeometry> ComputeConvTransposeGeometry(
    const Operation& op, const WindowAttributes& attrs, const std::vector<int64_t>& input_spatial,
    const std::vector<int64_t>& kernel, std::vector<int64_t>* output_padding) {
  const size_t rank = input_spatial.size();
  WindowGeometry g;
  QALIGN_RETURN_IF_ERROR(FillCommon(op, attrs, rank, kernel, g));
  std::vector<int64_t> out_pad = op.GetInts("output_padding");
  if (out_pad.empty()) out_pad.assign(rank, 0);
  if (out_pad.size() != rank) {
    return InvalidArgumentError(op.Describe(), ": output_padding has ", out_pad.size(),
                                " values for ", rank, " spatial dims");
  }
  std::vector<int64_t> output_shape = op.GetInts("output_shape");
  // output_shape may list all dims (N, C, ...) or only the spatial ones.
  if (output_shape.size() == rank + 2) output_shape.erase(output_shape.begin(), output_shape.begin() + 2);
  if (!output_shape.empty() && output_shape.size() != rank) {
    return InvalidArgumentError(op.Describe(), ": output_shape has ", output_shape.size(),
                                " values for ", rank, " spatial dims");
  }
  const bool same = attrs.auto_pad == "SAME_UPPER" || attrs.auto_pad == "SAME_LOWER";
  g.output.assign(rank, 0);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t in = input_spatial[i];
    const int64_t s = g.strides[i];
    const int64_t dk = (g.kernel[i] - 1) * g.dilations[i] + 1;
    const int64_t full = s * (in - 1) + out_pad[i] + dk;
    if (!output_shape.empty() || same) {
      const int64_t out = !output_shape.empty() ? output_shape[i] : in * s;
      const int64_t total = full - out;
      const int64_t half = total / 2;
      if (attrs.auto_pad == "SAME_UPPER") {
        g.pads_begin[i] = half;
        g.pads_end[i] = total - half;
      } else {
        g.pads_begin[i] = total - half;
        g.pads_end[i] = half;
      }
      g.output[i] = out;
    } else {
      if (attrs.auto_pad == "VALID") {
        g.pads_begin[i] = 0;
        g.pads_end[i] = 0;
      }
      g.output[i] = full - g.pads_begin[i] - g.pads_end[i];
    }
    if (g.output[i] <= 0) {
      return InvalidArgumentError(op.Describe(), ": output spatial dim ", i, " of '",
                                  op.output(0) ? op.output(0)->name() : "?",
                                  "' would be ", g.output[i]);
    }
  }
  if (output_padding) *output_padding = out_pad;
  return g;
}

std::string InputName(const Operation& op, size_t index) {
  const Variable* v = op.input(index);
  return v ? v->name() : "?";
}

Status CheckFloatInput(const KernelContext& context, size_t index, int64_t min_rank,
                       int64_t exact_rank) {
  const Operation& op = *context.op;
  if (index >= context.inputs.size() || context.inputs[index] == nullptr) {
    return InvalidArgumentError(op.Describe(), ": required input ", index, " is missing");
  }
  const Tensor& t = *context.inputs[index];
  if (t.dtype() != DataType::kFloat) {
    return UnimplementedError(op.Describe(), ": input '", InputName(op, index), "' is ",
                              DataTypeName(t.dtype()), ", only f32 is supported");
  }
  if (exact_rank >= 0 && t.rank() != exact_rank) {
    return InvalidArgumentError(op.Describe(), ": input '", InputName(op, index), "' has shape ",
                                ShapeToString(t.shape()), ", expected rank ", exact_rank);
  }
  if (t.rank() < min_rank) {
    return InvalidArgumentError(op.Describe(), ": input '", InputName(op, index), "' has shape ",
                                ShapeToString(t.shape()), ", expected rank >= ", min_rank);
  }
  return Status::Ok();
}

Tensor& PrepareOutput(KernelContext& context, size_t index, const std::vector<int64_t>& shape) {
  Tensor& out = (*context.outputs)[index];
  if (out.dtype() != DataType::kFloat || out.shape() != shape) {
    out = Tensor::ForOverwrite(DataType::kFloat, shape);
  }
  return out;
}

Status RejectOptionalOutput(const Operation& op, size_t index, const char* what) {
  if (op.output(index) != nullptr && !op.output(index)->name().empty()) {
    return UnimplementedError(op.Describe(), ": output '", op.output(index)->name(), "' (", what,
                              ") is not supported");
  }
  return Status::Ok();
}

// Checks X, W and the optional B of Conv / ConvTranspose and returns the kernel's spatial shape.
StatusOr<std::vector<int64_t>> CheckConvInputs(const KernelContext& context,
                                               const WindowAttributes& attrs,
                                               int64_t bias_channels_dim) {
  const Operation& op = *context.op;
  QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 0, 3));
  const int64_t rank = context.inputs[0]->rank();
  QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 1, rank, rank));
  const auto& w = context.inputs[1]->shape();
  std::vector<int64_t> kernel(w.begin() + 2, w.end());
  if (!attrs.kernel_shape.empty() && attrs.kernel_shape != kernel) {
    return InvalidArgumentError(op.Describe(), ": kernel_shape ", ShapeToString(attrs.kernel_shape),
                                " does not match weights '", InputName(op, 1), "' ",
                                ShapeToString(w));
  }
  if (context.inputs.size() > 2 && context.inputs[2] != nullptr) {
    QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 2, 1, 1));
    if (context.inputs[2]->shape()[0] != bias_channels_dim) {
      return InvalidArgumentError(op.Describe(), ": bias '", InputName(op, 2), "' has shape ",
                                  ShapeToString(context.inputs[2]->shape()), ", expected [",
                                  bias_channels_dim, "]");
    }
  }
  return kernel;
}

StatusOr<int64_t> ReadGroup(const Operation& op) {
  const int64_t group = op.GetInt("group", 1);
  if (group <= 0) return InvalidArgumentError(op.Describe(), ": group must be > 0");
  return group;
}

StatusOr<MatMulShape> ComputeMatMulShape(const Operation& op, const std::vector<int64_t>& a,
                                         const std::vector<int64_t>& b) {
  if (a.empty() || b.empty()) {
    return InvalidArgumentError(op.Describe(), ": inputs '", InputName(op, 0), "' and '",
                                InputName(op, 1), "' must not be scalars");
  }
  MatMulShape s;
  std::vector<int64_t> a2 = a, b2 = b;
  if (a.size() == 1) a2.insert(a2.begin(), 1);
  if (b.size() == 1) b2.push_back(1);
  s.m = a2[a2.size() - 2];
  s.k = a2.back();
  s.n = b2.back();
  if (b2[b2.size() - 2] != s.k) {
    return InvalidArgumentError(op.Describe(), ": inner dims of '", InputName(op, 0), "' ",
                                ShapeToString(a), " and '", InputName(op, 1), "' ",
                                ShapeToString(b), " differ");
  }
  const size_t batch_rank = std::max(a2.size(), b2.size()) - 2;
  s.a_batch.assign(batch_rank, 1);
  s.b_batch.assign(batch_rank, 1);
  std::copy(a2.begin(), a2.end() - 2, s.a_batch.begin() + (batch_rank - (a2.size() - 2)));
  std::copy(b2.begin(), b2.end() - 2, s.b_batch.begin() + (batch_rank - (b2.size() - 2)));
  s.batch.resize(batch_rank);
  for (size_t i = 0; i < batch_rank; ++i) {
    const int64_t da = s.a_batch[i], db = s.b_batch[i];
    if (da != db && da != 1 && db != 1) {
      return InvalidArgumentError(op.Describe(), ": batch dims of '", InputName(op, 0), "' ",
                                  ShapeToString(a), " and '", InputName(op, 1), "' ",
                                  ShapeToString(b), " do not broadcast");
    }
    s.batch[i] = da == 1 ? db : da;
  }
  s.output = s.batch;
  if (a.size() > 1) s.output.push_back(s.m);
  if (b.size() > 1) s.output.push_back(s.n);
  return s;
}

StatusOr<GemmShape> ComputeGemmShape(const KernelContext& context, bool trans_a, bool trans_b) {
  const Operation& op = *context.op;
  QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 0, 2, 2));
  QALIGN_RETURN_IF_ERROR(CheckFloatInput(context, 1, 2, 2));
  const auto& a = context.inputs[0]->shape();
  const auto& b = context.inputs[1]->shape();
  GemmShape s;
  s.m = trans_a ? a[1] : a[0];
  s.k = trans_a ? a[0] : a[1];
  const int64_t kb = trans_b ? b[1] : b[0];
  s.n = trans_b ? b[0] : b[1];
  if (kb != s.k) {
    return InvalidArgumentError(op.Describe(), ": inner dims of '", InputName(op, 0), "' ",
                                ShapeToString(a), " and '", InputName(op, 1), "' ",
                                ShapeToString(b), " differ (transA=", trans_a,
                                ", transB=", trans_b, ")");
  }
  if (context.inputs.size() > 2 && context.inputs[2] != nullptr) {
    const Tensor& c = *context.inputs[2];
    if (c.dtype() != DataType::kFloat) {
      return UnimplementedError(op.Describe(), ": input '", InputName(op, 2), "' is ",
                                DataTypeName(c.dtype()), ", only f32 is supported");
    }
    std::vector<int64_t> cs = c.shape();
    if (cs.size() > 2) {
      return InvalidArgumentError(op.Describe(), ": C '", InputName(op, 2), "' has rank ",
                                  cs.size(), " > 2");
    }
    while (cs.size() < 2) cs.insert(cs.begin(), 1);
    if ((cs[0] != 1 && cs[0] != s.m) || (cs[1] != 1 && cs[1] != s.n)) {
      return InvalidArgumentError(op.Describe(), ": C '", InputName(op, 2), "' ",
                                  ShapeToString(c.shape()), " does not broadcast to [", s.m, ",",
                                  s.n, "]");
    }
    s.has_c = true;
    s.c_rows = cs[0];
    s.c_cols = cs[1];
  }
  return s;
}

namespace {
std::atomic<int64_t> reference_fallbacks{0};
}  // namespace

int64_t ReferenceFallbackCount() { return reference_fallbacks.load(); }
void NoteReferenceFallback() { reference_fallbacks.fetch_add(1); }

}  // namespace qalign::nn
