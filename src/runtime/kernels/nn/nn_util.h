// Shared pieces of the nn kernels: attribute reading, window geometry (pads, auto_pad, ceil_mode)
// and input / output checks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/tensor.h"
#include "qalign/status.h"
#include "runtime/kernel.h"

namespace qalign::nn {

// The sliding-window attributes common to Conv, ConvTranspose and the pooling ops, as written in
// the model (before the input shape is known).
struct WindowAttributes {
  std::string auto_pad = "NOTSET";  // NOTSET, SAME_UPPER, SAME_LOWER, VALID
  std::vector<int64_t> kernel_shape;  // empty: take it from the weights (Conv, ConvTranspose)
  std::vector<int64_t> strides;       // empty: all 1
  std::vector<int64_t> dilations;     // empty: all 1
  std::vector<int64_t> pads;          // empty: all 0; else [begin..., end...]
  bool ceil_mode = false;             // pooling only
};

// How many input shapes a fast kernel keeps primitives for; past that the cache starts over (a
// model fed many sizes, e.g. text lines of varying width, must not grow without bound).
inline constexpr size_t kMaxCachedShapes = 32;

// Reads auto_pad, kernel_shape, strides, dilations, pads (and ceil_mode) and checks their values.
StatusOr<WindowAttributes> ReadWindowAttributes(const Operation& op);

// The concrete geometry of one window op for one input shape: per spatial axis.
struct WindowGeometry {
  std::vector<int64_t> kernel;      // kernel extent (not dilated)
  std::vector<int64_t> strides;
  std::vector<int64_t> dilations;   // ONNX convention: 1 = dense
  std::vector<int64_t> pads_begin;
  std::vector<int64_t> pads_end;    // as the ONNX op defines them
  std::vector<int64_t> output;      // output spatial extent
  int64_t rank() const { return static_cast<int64_t>(kernel.size()); }
};

// Conv and pooling: output size and pads for `input_spatial` following the ONNX spec:
//   NOTSET: out = floor((in + pb + pe - dk) / s) + 1, dk = (k - 1) * d + 1; with ceil_mode
//           out = ceil(...) + 1, minus one if the last window would start in the right padding;
//   SAME_UPPER / SAME_LOWER: out = ceil(in / s), total pad = max(0, (out - 1) * s + dk - in),
//           the odd unit at the end (UPPER) or at the beginning (LOWER);
//   VALID: out = floor((in - dk) / s) + 1, no pads.
StatusOr<WindowGeometry> ComputeWindowGeometry(const Operation& op, const WindowAttributes& attrs,
                                               const std::vector<int64_t>& input_spatial,
                                               const std::vector<int64_t>& kernel);

// ConvTranspose: output size and pads from pads / output_padding / output_shape / auto_pad:
//   out = s * (in - 1) + output_padding + dk - pb - pe;
//   with output_shape (or SAME_*: out = in * s) the pads are derived from
//   total = s * (in - 1) + output_padding + dk - out, SAME_UPPER putting total/2 first, otherwise
//   total - total/2 first.
StatusOr<WindowGeometry> ComputeConvTransposeGeometry(
    const Operation& op, const WindowAttributes& attrs, const std::vector<int64_t>& input_spatial,
    const std::vector<int64_t>& kernel, std::vector<int64_t>* output_padding);

// Fails unless input `index` is present and a float tensor of rank >= min_rank (or exactly
// `exact_rank` when that is >= 0).
Status CheckFloatInput(const KernelContext& context, size_t index, int64_t min_rank,
                       int64_t exact_rank = -1);

// Output `index` resized to `shape` as float, reusing its storage when it already matches.
Tensor& PrepareOutput(KernelContext& context, size_t index, const std::vector<int64_t>& shape);

// Name of input `index` of the op for messages ("?" when absent).
std::string InputName(const Operation& op, size_t index);

// Fails when the op requests output `index` (e.g. MaxPool's Indices) that the kernel cannot
// produce.
Status RejectOptionalOutput(const Operation& op, size_t index, const char* what);

// Conv / ConvTranspose: checks X (rank >= 3), W (same rank) and the optional bias B (shape
// [bias_channels]); returns the kernel's spatial shape (W's dims after the first two), checked
// against kernel_shape when the op gives it.
StatusOr<std::vector<int64_t>> CheckConvInputs(const KernelContext& context,
                                               const WindowAttributes& attrs,
                                               int64_t bias_channels);

// The group attribute (default 1), checked > 0.
StatusOr<int64_t> ReadGroup(const Operation& op);

// MatMul with numpy semantics: a 1-D A is [1, K] and a 1-D B is [K, 1] (that dim is dropped from
// the output); batch dims broadcast, both padded with leading 1s to the same rank.
struct MatMulShape {
  std::vector<int64_t> a_batch, b_batch, batch;  // same length; batch = broadcast of the two
  int64_t m = 1, k = 1, n = 1;
  std::vector<int64_t> output;
};
StatusOr<MatMulShape> ComputeMatMulShape(const Operation& op, const std::vector<int64_t>& a,
                                         const std::vector<int64_t>& b);

// Gemm: Y[M, N] = alpha * A' B' + beta * C, A' = transA ? A^T : A (A' is [M, K]), B' likewise
// [K, N]; C (optional) broadcasts unidirectionally to [M, N]: C(i, j) is
// C[(c_rows == 1 ? 0 : i) * c_cols + (c_cols == 1 ? 0 : j)].
struct GemmShape {
  int64_t m = 0, k = 0, n = 0;
  bool has_c = false;
  int64_t c_rows = 1, c_cols = 1;
};
StatusOr<GemmShape> ComputeGemmShape(const KernelContext& context, bool trans_a, bool trans_b);

}  // namespace qalign::nn
