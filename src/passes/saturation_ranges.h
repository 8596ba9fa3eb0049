// Saturation-aware ranges: a tensor read only by ops that are flat outside an interval needs no
// quantization codes outside it, so its calibrated range is narrowed to that interval.
//
// Each consumer c is flat (saturated) outside [lo_c, hi_c]:
//   Relu                     [0, inf)                                exact
//   Clip(min, max)           [min, max] (constant bounds)            exact
//   HardSigmoid(alpha, beta) [-beta/alpha, (1 - beta)/alpha]         exact (alpha > 0; swapped < 0)
//   HardSwish                [-3, inf)                               exact
//   Sigmoid                  [-B, B], B = ln(2^2b - 1)               within 2^-2b of its limits
//   Tanh                     [-B/2, B/2]                             within 2^(1-2b) of its limits
// with b the bits of the tensor's activation scheme (B = 11.09 for 8 bits: 2^-16 = 1.5e-5), since
// Sigmoid(B) = 1 - 2^-2b and Tanh(x) = 2 Sigmoid(2x) - 1. That clipping error is a seven
// hundredth of the rounding error the b-bit input grid over [-B, B] itself causes near 0 (slope
// 1/4 times half a step, B / (2^b - 1) / 4 = 0.011), and far below half a step of any b-bit
// output. (The looser B = ln(2^(b+1) - 1) = 6.24, clipping within half a 1/256 output step, gave
// a lower SNR on PP-OCRv4 rec, whose Sigmoid gates multiply tensors up to 16.)
// A narrowed end other than 0 gets one step of margin, so an asymmetric grid, whose rounded zero
// point moves its ends by up to half a step, still reaches it: the hard functions read every
// value beyond their interval as exactly saturated.
//
// Outside the union of the consumers' intervals every consumer is flat, so the tensor's range
// becomes [max(min, lo), min(max, hi)]. Only tensors no rule ties: a graph output, a tensor read
// by any other op (or read implicitly by a subgraph), or one whose producer's or consumers' rule
// ties or fixes its port keeps its range, so every alignment group, and every rule it serves,
// is exactly what it was. Runs on the calibrated stats, before alignment.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/alignment/alignment_pass.h"
#include "qalign/status.h"
#include "quant/quant_config.h"
#include "quant/target_profile.h"

namespace qalign {

struct NarrowedRange {
  std::string tensor;
  std::string consumers;  // "HardSigmoid 'hs_3'", or "Relu 'r1', Clip 'c2'"
  float min_before = 0.0f, max_before = 0.0f;
  float min = 0.0f, max = 0.0f;
};

struct SaturationRangeStats {
  int64_t narrowed_tensors = 0;
  std::vector<NarrowedRange> narrowed;  // in graph order
};

// The interval outside which `op` (reading a tensor at input 0) is flat, for a tensor quantized
// with `num_bits`; false when `op` does not saturate (or its bounds are not constants).
bool SaturationInterval(const Operation& op, int num_bits, float* lo, float* hi);

// Narrows the stats of every TQC of each tensor that qualifies (see above). `options` are the
// alignment overrides, which decide the rules that apply.
StatusOr<SaturationRangeStats> NarrowSaturatedRanges(const Graph& graph,
                                                     const TargetProfile& profile,
                                                     const AlignmentOptions& options,
                                                     QuantConfigTable* table);

}  // namespace qalign
