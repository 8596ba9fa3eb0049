// CheckQdqModel: the alignment rules of a target checked on the params a QDQ model actually uses
// (read by qdq_import.h), listing each violated rule with its op, tensors, scales and zero points.
//
// Rules checked, for every op the target quantizes:
//   share_inputs_and_output / share_input_output / share_inputs
//            the quantized ports the rule ties carry one (scale, zero_point); floats compare equal
//            within 1e-6 relative (what a serialized float can lose), zero points exactly;
//   fixed_output
//            each quantized output carries the target's fixed (scale, zero_point);
//   bias     an int32 bias DequantizeLinear has scale[c] = input_scale * weight_scale[c] (1e-5
//            relative) and zero point 0, which integer Conv/Gemm kernels assume.
// Ports the model leaves float are not checked (there is nothing to align).
#pragma once

#include <string>
#include <vector>

#include "passes/alignment/alignment_pass.h"
#include "qdq/qdq_import.h"

namespace qalign {

struct QdqCheckPort {
  std::string port;    // "input:0", "output:0"
  std::string tensor;  // the name the model shows at that port
  std::vector<float> scale;
  std::vector<int64_t> zero_point;
  int32_t tqc = -1;    // TQC id in the view's table
};

struct QdqCheckViolation {
  std::string rule;     // share_inputs_and_output, ..., fixed_output, bias
  std::string op_type;
  std::string op;       // node name (as in the model; empty when it has none)
  std::string method;   // the target's method for the rule ("" for fixed_output / bias)
  std::vector<QdqCheckPort> ports;
  std::string message;  // one line
};

struct QdqCheckResult {
  std::vector<QdqCheckViolation> violations;
  int64_t ops_checked = 0;    // ops with a rule and at least two quantized ports (or a fixed one)
  int64_t ports_checked = 0;
  int64_t biases_checked = 0;
};

QdqCheckResult CheckQdqModel(QdqModelView& view, const AlignmentOptions& options = {});

// {"model", "target", "violations": [{"rule", "op_type", "op", "method", "message",
//   "ports": [{"port", "tensor", "scale", "zero_point"}]}], "summary": {...}, "notes": [..]}
std::string CheckReportJson(const QdqModelView& view, const QdqCheckResult& result);
// One line per violation, then a summary line.
std::string CheckReportText(const QdqModelView& view, const QdqCheckResult& result);

}  // namespace qalign
