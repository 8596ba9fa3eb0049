// Folds per-channel affine ops that follow a Conv into the Conv's weight and bias.
//
// An integer Conv kernel requantizes its int32 accumulator once, at its output. A
// BatchNormalization, or a Mul/Add/Sub/Div by a per-channel constant, left behind the Conv would
// be a second quantized op whose input is the Conv's already rounded output: every such op adds a
// rounding step and, worse, quantizes the Conv output on a range the next op rescales. Every
// deployment converter (TFLite, ONNX Runtime's optimizer, TensorRT) folds them first, so qalign
// does too, before dispatch. For output channel c (W[c] is the c-th output filter, b[c] the bias):
//
//   BatchNormalization  y = s[c] * (conv - mean[c]) + B[c],  s[c] = scale[c] / sqrt(var[c] + eps)
//                       W'[c] = s[c] * W[c],  b'[c] = s[c] * (b[c] - mean[c]) + B[c]
//   Mul by k[c]         W'[c] = k[c] * W[c],  b'[c] = k[c] * b[c]
//   Div by k[c]         W'[c] = W[c] / k[c],  b'[c] = b[c] / k[c]
//   Add k[c]            W' = W,               b'[c] = b[c] + k[c]
//   Sub k[c] (conv - k) W' = W,               b'[c] = b[c] - k[c]
//
// A ConvTranspose (group 1) folds the same way, its output channels on weight axis 1
// ([C_in, C_out, k...]): Paddle exports its bias as a separate Add and a BatchNormalization
// follows it in PP-OCR det's head.
// It applies only when the Conv output feeds that op alone (and is not a graph output), the
// constant is a float parameter that broadcasts per output channel (a scalar, [C], or
// [1, C, 1, ...]), and the folded op's output is not a graph output (its name would be lost).
// The arithmetic is done in double and rounded to float once. The Conv keeps its output tensor,
// which takes over the folded op's consumers.
#pragma once

#include <cstdint>

#include "ir/graph.h"
#include "qalign/status.h"

namespace qalign {

struct FoldIntoConvStats {
  int64_t batch_norms = 0;    // BatchNormalization ops folded
  int64_t elementwise = 0;    // Mul/Add/Sub/Div ops folded
  bool changed() const { return batch_norms + elementwise > 0; }
};

// Folds until nothing more applies (a Conv -> BatchNormalization -> Mul -> Add chain folds whole).
StatusOr<FoldIntoConvStats> FoldIntoConv(Graph* graph);

}  // namespace qalign
