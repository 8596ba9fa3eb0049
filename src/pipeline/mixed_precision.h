// Mixed precision: which ops stay FP32 while the rest of the model is quantized.
//
// An op kept in FP32 has every port that dispatch quantized turned FP32 (step 2b of pipeline.h,
// after calibration and before the ranges go into the TQCs), so the alignment pass never puts
// those ports in a group and every rule is checked, as before, between the quantized ports that
// remain. At the boundary, the FP32 op reads float tensors (a QDQ runtime runs an op that reads
// DequantizeLinear outputs and feeds QuantizeLinear quantized, whatever the plan meant), so a
// quantized producer's output is quantized on the edges of its quantized readers instead of right
// after the producer (export/quant_plan.h); a quantized consumer of the FP32 op's output
// quantizes it on its own edge.
//
// On a target with a 16-bit activation scheme (TargetProfile::activation16) an op can instead be
// kept at 16 bits: its quantized activation ports take that scheme (step 2b too), and the
// alignment pass widens every group such a port joins to 16 bits as a whole (a group shares one
// scale, one zero point and one bit width; docs/alignment.md), and each 16-bit port takes its
// tensor's whole observed range (pipeline.cc). Weights and biases stay as they are (A16W8).
//
// Ways to choose the ops:
//   --exclude NAME|TYPE   the user's list: an op name, or an op type (every op of that type);
//   --int16 NAME|TYPE     the same, kept at 16 bits (an op in both lists stays FP32);
//   --accuracy-budget DB  a search (SearchFp32Ops): measure, for every candidate op alone, the
//                         worst output SNR of the model quantized with that op in FP32; then add
//                         the candidates in that order, keeping each one that raises the SNR,
//                         until every output's SNR reaches the budget or `max_ops` ops are FP32;
//                         on a target with activation16 the same search keeps ops at 16 bits.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "quant/quant_config.h"
#include "qalign/status.h"

namespace qalign {

// The ops the --exclude entries name: the op with that name, else every op of that type, each op
// once, in graph order. An entry that names no op and no op type of the graph is InvalidArgument
// naming the entry.
// `flag` names the option in that message ("--exclude", "--int16").
StatusOr<std::vector<const Operation*>> ResolveExcludedOps(const Graph& graph,
                                                           const std::vector<std::string>& entries,
                                                           const std::string& flag = "--exclude");

// Every quantized port (not FP32 and not SOI) of `ops` becomes FP32, and the ops are marked
// kept_fp32 so that the export feeds them float tensors. Returns how many TQCs changed.
int64_t KeepOpsInFp32(const std::vector<const Operation*>& ops, QuantConfigTable* table);

// Every quantized activation port (not FP32, SOI, OVERLAPPED or floating) of `ops` takes the
// 16-bit scheme `wide`. Returns how many TQCs changed.
int64_t QuantizeOpsAt16Bits(const std::vector<const Operation*>& ops, const QuantScheme& wide,
                            QuantConfigTable* table);

// The ops whose FP32 can change the quantized model: those with a quantized activation or weight
// port that is not OVERLAPPED (a fused Conv -> Relu pair counts once, at the Relu), in graph
// order, without the ops of `already`.
std::vector<const Operation*> MixedPrecisionCandidates(QuantConfigTable& table,
                                                       const std::vector<const Operation*>& already);

// The worst output SNR (dB) of the model quantized with `fp32_ops` kept in FP32.
using MeasureSnrFn = std::function<StatusOr<double>(const std::vector<const Operation*>& fp32_ops)>;

struct Fp32SearchOptions {
  double budget_db = 0.0;  // every output's SNR against FP32 must reach this
  size_t max_ops = 1;      // ops the search may keep in FP32 (beyond the fixed ones)
};

struct OpSensitivity {
  const Operation* op = nullptr;
  double snr_db = 0.0;  // the model's worst output SNR with this op alone (plus the fixed) in FP32
};

struct Fp32SearchResult {
  double base_snr_db = 0.0;  // with only the fixed ops in FP32
  double snr_db = 0.0;       // with the fixed and the kept ops in FP32
  bool met = false;
  std::vector<OpSensitivity> kept;     // in the order added, each with the SNR after adding it
  std::vector<OpSensitivity> ranking;  // every candidate, the most sensitive first
  // When the budget is not met: ops left quantized (at most 5, of the 8 most sensitive tried) that
  // would raise the SNR if they too were FP32, each with that SNR, the best first: their
  // quantization is what keeps the model under the budget.
  std::vector<OpSensitivity> blockers;
  int64_t measurements = 0;
};

// The search of --accuracy-budget (see the top of this file). `fixed` ops stay FP32 in every
// measurement. Ties in the ranking go to the op earlier in `candidates`, so the result does not
// depend on anything but the measurements.
StatusOr<Fp32SearchResult> SearchFp32Ops(const std::vector<const Operation*>& fixed,
                                         const std::vector<const Operation*>& candidates,
                                         const MeasureSnrFn& measure,
                                         const Fp32SearchOptions& options);

}  // namespace qalign
