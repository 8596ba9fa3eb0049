// VerifyAlignment: checks, independently of how the pass got there, that every sharing rule of a
// target holds on a QuantConfigTable or is relaxed by a recorded requantize edge.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/alignment/alignment_pass.h"
#include "quant/quant_config.h"
#include "quant/target_profile.h"

namespace qalign {

struct AlignmentViolation {
  std::string check;   // "rule", "fixed", "edge", "membership", "width", "scheme",
                       // "cycle", "bias"
  std::string message; // one line naming the op, port and tensor
};

// Checks:
//  rule       - the ports each rule ties (after `options` overrides) are in one group, unless a
//               requantize edge on one of their tensors names the op;
//  fixed      - a fixed-output op's quantized outputs carry exactly the fixed params;
//  edge       - every quantized consumer-side TQC reads its producer-side TQC's params, or the
//               edge (tensor, producer, consumer) is a recorded requantize;
//  membership - no FP32 / SOI / OVERLAPPED / floating / per-channel TQC shares a group;
//  width      - one bit width per group (8 and 16 bits never share params);
//  scheme     - one scheme per group;
//  cycle      - every union-find parent chain reaches a root;
//  bias       - quantized biases have scale = input_scale * weight_scale[c] and zero_point 0.
std::vector<AlignmentViolation> VerifyAlignment(const Graph& graph, QuantConfigTable& table,
                                                const TargetProfile& profile,
                                                const std::vector<RequantizeEdge>& requantizes,
                                                const AlignmentOptions& options = {});

}  // namespace qalign
