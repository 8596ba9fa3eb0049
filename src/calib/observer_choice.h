// Per-tensor observer choice: which ends of each tensor's range the run's observer may not clip.
//
// Softmax logits keep their maximum whatever observer the run uses (KeptEnds::max).
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

#include <map>
#include <string>

#include "calib/observer.h"
#include "ir/graph.h"

namespace qalign {

// By tensor name, the ends of its range the observer may not clip, by the rules above: the
// Softmax logits' and outputs' maximum, both ends of what an averaging op reads. A tensor not in
// the map may be clipped at both ends. The Softmax outputs are listed whether or not the target
// calibrates them; a target with fixed output params (tflite-int8's 1/256) does not observe them.
std::map<std::string, KeptEnds> UnclippedEnds(const Graph& graph);

}  // namespace qalign
