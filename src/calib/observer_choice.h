// Per-tensor observer choice: the tensors whose range the run's observer may not clip at the top.
//
// Softmax logits keep their maximum whatever observer the run uses (ObserverOptions::keep_max).
// The mse, percentile and kl observers trade a few clipped values for a finer step on the rest:
// on a classifier's logits (rec's [T, 6625] head, attention scores) the largest values are a
// handful per row among thousands, so an observer minimizing the error over all values clips
// them. But those are the values Softmax and the argmax after it read: clipped to one level, the
// winning class ties with its runners-up (the first class, CTC's blank, wins a tie), and a reader
// drops spaces and characters. Softmax hardly depends on the logits far below a row's maximum,
// so the observer still chooses the lower end.
//
// A Softmax's output keeps its maximum for the same reason: its values are probabilities, nearly
// all close to 0, and the few near 1 are the winners. A clipping observer (percentile 99.9 on
// rec's [T, 6625] output) puts the top of the range far under them, every winner reads as the
// same clipped level, and the argmax falls to the first class. It matters on targets that
// quantize a Softmax's output with calibrated params (ort-qdq-u8s8); fixed-output profiles
// (tflite-int8's 1/256) do not calibrate it.
//
// A tensor an averaging op reads (GlobalAveragePool, AveragePool, ReduceMean) keeps its whole
// range. A clipping observer trades the rare large values for a finer step on the rest, which
// suits a tensor whose readers look at one value at a time; but a mean counts the rare large
// values in full, so clipping them biases it, and every value of a squeeze-and-excitation gate
// or a LayerNorm after it moves the same way (cls on trt-int8, percentile: 97.8 % agreement with
// FP32 with them clipped, 98.9 % without).
#pragma once

#include <unordered_set>

#include "ir/graph.h"

namespace qalign {

// The inputs of every Softmax and LogSoftmax, and, going up from each, every tensor that reaches
// it only through an elementwise op with a constant operand (Add, Sub, Mul, Div: a bias or a
// temperature) or a layout op (Reshape, Transpose, Squeeze, Unsqueeze, Flatten, Identity): each
// such tensor is read by that op alone, so its values are the logits up to an affine map.
std::unordered_set<const Variable*> SoftmaxLogitTensors(const Graph& graph);

// The outputs of every Softmax and LogSoftmax, and, going down from each, every tensor a layout op
// makes of it while it feeds that op alone: the probabilities, in any shape.
std::unordered_set<const Variable*> SoftmaxOutputTensors(const Graph& graph);

// The inputs of every GlobalAveragePool, AveragePool and ReduceMean.
std::unordered_set<const Variable*> AveragedTensors(const Graph& graph);

}  // namespace qalign
