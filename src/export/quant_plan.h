// QuantPlan: where a quantized model quantizes what, derived once from Graph + QuantConfigTable +
// requantize edges, so the QDQ exporter and the fake-quant simulator cannot disagree.
//
// For every float activation tensor t:
//   - if its producer-side TQC is quantized (not FP32 / SOI / OVERLAPPED), one "producer point"
//     quantizes t right after its producer with the group's params; every consumer whose TQC
//     carries the same params, every unquantized consumer, and the graph output (if t is one) read
//     that quantized value;
//   - a quantized consumer-side TQC whose params differ from the producer point's is a
//     requantize: a second point reads the producer point's value (Q -> DQ -> Q -> DQ), shared by
//     the consumers with equal params;
//   - when the producer side is not quantized (an FP32 producer, a graph input, a fused
//     Conv -> Relu output), each distinct consumer param set gets one point reading t itself;
//     so too when an op kept FP32 on purpose (OperationQuantConfig::kept_fp32) reads t: it reads
//     the float tensor, since a QDQ runtime runs an op between DequantizeLinear and
//     QuantizeLinear quantized.
// For every parameter tensor read by a quantized TQC (weights, biases, constant operands): one
// "parameter point" per distinct param set, the values stored as integers (int8 / uint8 / int32)
// and dequantized, per channel when the params have one scale per channel.
//
// Rounding is round half to even and saturation is to the integer range of the point's dtype for
// activations (what ONNX QuantizeLinear does) and to the scheme's [quant_min, quant_max] for
// parameters (quantized once, offline).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/alignment/alignment_pass.h"
#include "quant/quant_config.h"
#include "qalign/status.h"

namespace qalign {

// The params one Q/DQ pair carries.
struct QdqParams {
  std::vector<float> scale;         // one, or one per channel
  std::vector<int64_t> zero_point;  // same length as scale
  int axis = -1;                    // channel axis when scale.size() > 1
  DataType dtype = DataType::kInt8; // integer type of the quantized values
  int64_t quant_min = -128;         // saturation range
  int64_t quant_max = 127;
  bool SameAs(const QdqParams& other) const;
  bool per_channel() const { return scale.size() > 1; }
};

// One input slot of one op.
struct Reader {
  const Operation* op = nullptr;
  int index = 0;
};

struct ActivationPoint {
  const Variable* tensor = nullptr;
  QdqParams params;
  bool producer_side = false;  // right after the producer (else on some consumers' edges)
  bool requantize = false;     // reads the producer point's value, not the raw tensor
  bool feeds_graph_output = false;
  std::vector<Reader> readers;  // the op inputs that read this point's output
  const TQC* tqc = nullptr;     // the TQC whose (group) params these are
  int group = -1;               // its union-find root id
};

struct ParameterPoint {
  const Variable* tensor = nullptr;
  QdqParams params;
  TensorRole role = TensorRole::kWeight;
  std::vector<Reader> readers;
  const TQC* tqc = nullptr;
  int group = -1;
};

struct QuantPlan {
  std::vector<ActivationPoint> activations;  // producer points before the consumer points of a tensor
  std::vector<ParameterPoint> parameters;
  // Index into `activations` of the producer point of a tensor, by name (absent: none).
  int ProducerPoint(const std::string& tensor) const;
  int64_t requantizes() const;
};

// The integer dtype for a scheme's range: [0,255] -> uint8, within [-128,127] -> int8, 16-bit ->
// uint16 or int16 (exported as com.microsoft QuantizeLinear / DequantizeLinear), 32-bit ->
// int32; anything else (4-bit) is Unimplemented.
StatusOr<DataType> QuantizedDataType(const QuantScheme& scheme);
// The whole range of an integer dtype (what QuantizeLinear saturates to); false for others.
bool IntegerRange(DataType dtype, int64_t* qmin, int64_t* qmax);
// uint16 or int16: the export writes com.microsoft QuantizeLinear / DequantizeLinear for them.
bool IsSixteenBit(DataType dtype);

// Builds the plan. Fails naming the TQC when a quantized TQC has no params, its scheme is
// floating, or its param count does not match the tensor's channels.
StatusOr<QuantPlan> BuildQuantPlan(const Graph& graph, QuantConfigTable& table,
                                   const std::vector<RequantizeEdge>& requantizes);

// x_q = saturate(round_half_even(x / scale) + zero_point) to [qmin, qmax].
int64_t QuantizeValue(float x, float scale, int64_t zero_point, int64_t qmin, int64_t qmax);
// (dequantize(quantize(x))) with the same arithmetic as ONNX QuantizeLinear / DequantizeLinear in
// float32.
float FakeQuantizeValue(float x, float scale, int64_t zero_point, int64_t qmin, int64_t qmax);

// Quantizes a parameter tensor with a point's params (per channel along params.axis): returns the
// integer tensor of params.dtype.
StatusOr<Tensor> QuantizeParameter(const Tensor& data, const QdqParams& params,
                                   const std::string& what);
// The float tensor a DequantizeLinear of QuantizeParameter's result gives.
StatusOr<Tensor> FakeQuantizeParameter(const Tensor& data, const QdqParams& params,
                                       const std::string& what);
// In place over float values with per-tensor params (activations), bitwise the same as
// FakeQuantizeValue per element; zero points must fit a float exactly (8/16-bit).
void FakeQuantizeInPlace(std::span<float> values, const QdqParams& params);

}  // namespace qalign
