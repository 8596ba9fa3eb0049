// Public API: check a QDQ ONNX model (from any quantizer) against a target's alignment rules, and
// fix the Q/DQ params of one that breaks them (src/qdq/: qdq_check.h, qdq_fix.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "qalign/quantize.h"
#include "qalign/status.h"

namespace qalign {

struct CheckOptions {
  std::string model_path;  // QDQ ONNX model
  std::string target;      // profile name or JSON file
  std::map<std::string, std::vector<int64_t>> input_shapes;
};

// One quantized port of an op a rule ties, with the params the model gives it.
struct ViolationPort {
  std::string port;    // "input:0", "output:0"
  std::string tensor;
  std::vector<float> scale;
  std::vector<int64_t> zero_point;
};

struct Violation {
  std::string rule;     // share_inputs_and_output, share_input_output, share_inputs,
                        // fixed_output or bias
  std::string op_type;
  std::string op;       // node name (empty when the node has none)
  std::string method;   // the target's method for the rule ("" for fixed_output / bias)
  std::vector<ViolationPort> ports;
  std::string message;  // one line
};

struct CheckSummary {
  std::string model, target;
  std::vector<Violation> violations;
  int64_t ops_checked = 0;
  int64_t ports_checked = 0;
  int64_t biases_checked = 0;
  bool has_qdq = false;            // the model has Q/DQ nodes at all
  std::vector<std::string> notes;  // what the importer could not read as a target's rules
  std::string report_json;         // `qalign check --json`
  std::string text;                // `qalign check`: one line per violation and a summary
};

// Violations are in the summary, not an error; errors are for models that cannot be read.
StatusOr<CheckSummary> CheckModel(const CheckOptions& options);

struct FixOptions : AlignOverrides {
  std::string model_path;   // QDQ ONNX model (never modified)
  std::string target;
  std::string output_path;  // the repaired model
  std::string report_path;  // optional JSON report of every change
  std::map<std::string, std::vector<int64_t>> input_shapes;
};

struct FixSummary {
  std::string model, target, output;
  std::vector<Violation> violations_before, violations_after;
  int64_t activation_pairs = 0;    // activation Q/DQ pairs re-aligned
  int64_t requantizes_added = 0;   // Q -> DQ pairs added where a consumer needs its own params
  int64_t constants = 0;           // constant operands re-quantized
  int64_t biases = 0;              // int32 biases re-derived
  double worst_resolution_cost = 1.0;  // largest new_scale / old_scale over the changes
  std::vector<std::string> notes;
  std::string report_json;  // what report_path receives
  std::string ToText() const;
  // An error naming the first violation left in the repaired model, OK when none is left.
  Status Remaining() const;
};

// Writes the repaired model (and the report) and returns what changed, also when violations
// remain in the repaired model (see Remaining(): the CLI then exits 1).
StatusOr<FixSummary> FixModel(const FixOptions& options);

}  // namespace qalign
