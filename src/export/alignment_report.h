// The alignment report: JSON (groups, requantize edges, summary) and a readable table for stdout.
//
// Which groups are listed: those a rule formed (ties or a fixed output range). Every other group
// holds the producer- and consumer-side TQCs of a single tensor, which is the default and carries
// no alignment cost; listing those would bury the groups a reader needs to check. (Every group a
// rule did not form has exactly one distinct tensor, so this is also "groups formed by rules or
// spanning more than one tensor".)
#pragma once

#include <string>
#include <vector>

#include "passes/alignment/alignment_pass.h"
#include "passes/alignment_verifier.h"
#include "passes/weight_bias_params.h"
#include "quant/quant_config.h"
#include "qalign/status.h"

namespace qalign {

// JSON:
//   {"target": "...",
//    "groups": [{"id", "method", "reason", "scale": [..], "zero_point": [..],
//                "members": [{"op", "port", "tensor", "own_min", "own_max", "resolution_loss"}]}],
//    "requantize": [{"tensor", "producer", "consumer", "reason"}],
//    "summary": {"groups", "members", "requantize", "violations"},
//    "violations": [{"check", "message"}],
//    "bias_fit": {"raised_weight_channels", "notes": [..]}}   (when `derived` is given)
// resolution_loss = shared_scale / own_scale, where own_scale is what the member's own range
// would get under its scheme (1.0 = nothing lost; 2.0 = steps twice as coarse). It is null when
// the member has no range of its own. producer/consumer are "" for a graph input / an op-internal
// requantize.
std::string AlignmentReportJson(const std::string& target, const AlignmentResult& result,
                                QuantConfigTable& table,
                                const std::vector<AlignmentViolation>& violations,
                                const DerivedParamsStats* derived = nullptr);

// A table for people: one line per group (id, method, scale, zero point, reason), one line per
// member (op, port, tensor, own range, resolution loss), then the requantize edges and a summary.
std::string AlignmentReportText(const std::string& target, const AlignmentResult& result,
                                QuantConfigTable& table,
                                const std::vector<AlignmentViolation>& violations);

// shared_scale / own_scale for one member; false when the member has no range or no params.
bool ResolutionLoss(QuantConfigTable& table, const TQC& member, double* loss);

}  // namespace qalign
