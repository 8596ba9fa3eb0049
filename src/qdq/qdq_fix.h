// FixQdqModel: repairs alignment violations of a QDQ ONNX model in place of its Q/DQ params.
//
//  1. check the imported model (qdq_check.h); the TQCs of violated rules are "flagged";
//  2. run the alignment pass on the imported params (each TQC's range is the range its params
//     represent), every rule's method `large` unless the user overrides it (so nothing a member
//     could represent before is clipped after), weights and their params left as they are;
//  3. groups with no flagged member give every member its own imported params back bit for bit:
//     the pass links a producer with a consumer the model requantizes, and re-derives params
//     from ranges (a rounding step away), neither of which may change a model that was fine;
//  4. rewrite the ORIGINAL model: the scale / zero point of each QuantizeLinear and its
//     DequantizeLinears whose params changed (new initializers; every other node and initializer
//     is kept), a new Q -> DQ requantize pair where a consumer must read params its producer's
//     pair no longer carries, re-quantized constants for constant operands whose params changed,
//     and each affected int32 bias re-derived for its new input scale:
//        bias_float = (bias_q - zp) * old_scale[c]   (kept)
//        new_scale[c] = input_scale * weight_scale[c], bias_q' = round(bias_float / new_scale[c]);
//  5. re-import the result and check it again.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "passes/alignment/alignment_pass.h"
#include "qalign/status.h"
#include "qdq/qdq_check.h"
#include "qdq/qdq_import.h"

namespace qalign {

struct QdqFixOptions {
  // User overrides (--align TYPE=METHOD, --align-node, force_overlap); rules not named get
  // `large`.
  AlignmentOptions alignment;
};

struct QdqFixChange {
  std::string kind;    // "activation", "requantize_added", "constant", "bias"
  std::string tensor;  // the float tensor the params quantize (the Q's or DQ's input)
  std::vector<std::string> nodes;  // the Q/DQ nodes rewritten or added
  std::vector<float> old_scale, new_scale;
  std::vector<int64_t> old_zero_point, new_zero_point;
  // new_scale / old_scale (the largest over channels): how much coarser the steps became.
  double resolution_cost = 1.0;
  double bias_max_abs_change = 0.0;  // bias only: max |new float bias - old float bias|
  std::string reason;
};

struct QdqFixResult {
  onnx::ModelProto model;  // the repaired model
  QdqCheckResult before;
  QdqCheckResult after;    // the repaired model re-imported and checked
  std::vector<QdqFixChange> changes;
  AlignmentResult alignment;
  std::string alignment_report_json;  // export/alignment_report.h over the re-aligned table
};

// `view` is consumed: its table is re-aligned. The original model in view.model is not modified.
StatusOr<QdqFixResult> FixQdqModel(QdqModelView& view, const QdqFixOptions& options,
                                   const ImportOptions& import_options = {});

// {"model", "output", "target", "changes": [...], "violations_before": [...],
//  "violations_after": [...], "alignment": {the alignment report}, "summary": {...}}
std::string FixReportJson(const QdqModelView& view, const QdqFixResult& result,
                          const std::string& output_path);

// Checks the model with onnx::checker and writes it atomically; refuses to overwrite `input_path`.
Status SaveFixedModel(const onnx::ModelProto& model, const std::string& path,
                      const std::string& input_path);

}  // namespace qalign
