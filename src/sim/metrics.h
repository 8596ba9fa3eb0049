// Accuracy metrics of a quantized model against its FP32 reference, accumulated over samples:
//   SNR (dB) = 10 log10( sum(ref^2) / sum((ref - x)^2) )   (infinite when the error is zero)
//   cosine   = sum(ref * x) / sqrt(sum(ref^2) * sum(x^2))
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/tensor.h"
#include "qalign/status.h"

namespace qalign {

struct ErrorAccumulator {
  double ref_energy = 0.0;    // sum ref^2
  double error_energy = 0.0;  // sum (ref - x)^2
  double dot = 0.0;           // sum ref * x
  double x_energy = 0.0;      // sum x^2
  double max_abs_error = 0.0;
  int64_t count = 0;

  // Adds one pair of same-shape float tensors; fails naming `what` on a shape or type mismatch.
  Status Add(const Tensor& reference, const Tensor& x, const std::string& what);
  double SnrDb() const;
  double Cosine() const;
};

// Per-output accumulators, by output name.
using OutputErrors = std::map<std::string, ErrorAccumulator>;

// Adds every output of `reference` that `quantized` also has (same name).
Status AccumulateOutputs(const std::map<std::string, Tensor>& reference,
                         const std::map<std::string, Tensor>& quantized, OutputErrors* errors);

// "out: SNR 31.2 dB, cosine 0.99962, max |err| 0.0123" lines.
std::string FormatOutputErrors(const OutputErrors& errors);

}  // namespace qalign
