// Activations that exporters spell out as several ops, recognised so that they keep one
// quantization point, after the whole activation, as the integer kernel they stand for does.
//
// TFLite, QNN and TensorRT all run HardSwish as one integer op (input and output quantized).
// Exporters without a HardSwish op (ONNX before opset 14, Paddle2ONNX) write it out as
//
//   x -> Add(x, 3) -> Clip(0, 6) -> Mul(x, .) -> Div(., 6)     (or Mul(., 1/6) at the end)
//   x -> HardSigmoid(alpha 1/6, beta 1/2) -> Mul(x, .)
//
// and quantizing each intermediate tensor adds three extra rounding steps on values the real
// kernel never rounds (measured on PP-OCRv4 det: 4 to 9 dB of SNR lost per block). The interior
// ports become OVERLAPPED and the constants 3, 0, 6 stay FP32; x and the final output keep their
// quantization points.
#pragma once

#include <cstdint>

#include "ir/graph.h"
#include "quant/quant_config.h"

namespace qalign {

// Marks the interior ports of every decomposed HardSwish OVERLAPPED (those the target quantizes:
// an FP32 op of the pattern stays FP32) and its constants FP32; returns how many it marked.
int64_t FuseDecomposedHardSwish(const Graph& graph, QuantConfigTable* table);

}  // namespace qalign
