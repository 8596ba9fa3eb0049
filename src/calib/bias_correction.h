// Bias correction: the mean output shift per channel that weight quantization causes, measured on
// the calibration data and folded into the bias.
//
// For a linear op y = W (*) x + b (Conv, ConvTranspose, Gemm), quantizing W to Wq shifts each
// output by dW (*) x, dW = Wq - W. By linearity its mean over the calibration data needs only sums
// of the input, not a second run: for a Conv, averaged over the N * OH * OW output positions p,
//   shift[c] = (1 / P) * sum over (ci, kh, kw) of dW[c, ci, kh, kw] * S[ci, kh, kw],
//   S[ci, kh, kw] = sum over samples and positions p of the input value tap (kh, kw) reads at p
//                   (0 in the padding),
// and likewise for ConvTranspose (the sum over the inputs whose tap lands inside the output) and
// Gemm (S[k] = sum over rows of A'[m, k]). Calibration accumulates S (C_in * KH * KW values per
// op) through its tensor hook; once the weight params are known, b becomes b - shift, so the
// quantized op's mean output per channel equals the FP32 one on the calibration data. Depthwise
// Convs, whose few taps per channel round coarsely, gain the most.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/graph.h"
#include "ir/tensor.h"
#include "qalign/status.h"
#include "quant/quant_table.h"

namespace qalign {

struct BiasCorrectionStats {
  int64_t corrected = 0;   // biases changed
  int64_t skipped = 0;     // eligible ops left alone (no data seen, shared bias, unsupported shape)
  double max_shift = 0.0;  // the largest |shift| folded, for the report
};

class BiasCorrection {
 public:
  // The Conv / ConvTranspose (2-D) and Gemm ops of `graph` with a parameter weight and bias.
  explicit BiasCorrection(const Graph& graph);

  // The input tensors to pass to Observe (input 0 of every candidate op).
  std::vector<const Variable*> ObservedInputs() const;
  // A calibration sample's value of `variable`: adds it to the sums of every op reading it.
  void Observe(const Variable& variable, const Tensor& value);

  // Folds the shift into each bias, with Wq from the weight TQC's params in `table` (so after the
  // weight params are derived): bias = FP32 bias - shift, so running it again (another table of
  // the same graph) gives the same bias, never a shift applied twice. Ops whose weight is not
  // quantized keep their FP32 bias.
  StatusOr<BiasCorrectionStats> Apply(QuantConfigTable* table) const;

 private:
  struct OpSums {
    Operation* op = nullptr;
    std::vector<double> sums;  // S, by (ci, kh, kw) or k
    double positions = 0.0;    // P
    Status error;              // an input the sums cannot use; the op is then skipped
    std::vector<float> original_bias;  // the FP32 bias, so Apply can run again (same result)
    // The FP32 weight as given: weight rounding (weight_rounding.h) may move the graph's weights
    // onto other grid values before Apply, whose shift is then that of the rounding chosen.
    std::vector<float> original_weight;
  };
  Status Accumulate(OpSums* sums, const Tensor& value) const;

  std::vector<OpSums> ops_;
  std::unordered_multimap<const Variable*, size_t> ops_by_input_;
};

}  // namespace qalign
