// Cross-layer equalization of Conv -> Conv pairs with nothing between them (Nagel et al., "Data-
// Free Quantization Through Weight Equalization and Bias Correction", ICCV 2019, section 4.1).
//
// With per-tensor activation params, one channel whose values are a hundred times larger than
// the others' sets the scale of the whole tensor, and the small channels round to a few levels.
// Depthwise convolutions are the usual culprit (each output channel has its own small filter).
// When Conv A's output feeds only Conv B (group 1), scaling A's output channel i by 1/s_i and B's
// input channel i by s_i computes exactly the same function:
//
//   W_A'[i] = W_A[i] / s_i,  b_A'[i] = b_A[i] / s_i,  W_B'[:, i] = W_B[:, i] * s_i
//
// With r1_i = max |W_A[i]| and r2_i = max |W_B[:, i]|, s_i = sqrt(r1_i / r2_i) makes both ranges
// sqrt(r1_i * r2_i): every channel of A's output and every input channel of B's weights get the
// same range, so neither per-tensor activation params nor B's per-output-channel weight params
// waste levels on a few large channels.
#pragma once

#include <cstdint>

#include "ir/graph.h"
#include "qalign/status.h"

namespace qalign {

struct EqualizeStats {
  int64_t pairs = 0;  // Conv -> Conv pairs equalized
};

StatusOr<EqualizeStats> EqualizeConvPairs(Graph* graph);

}  // namespace qalign
