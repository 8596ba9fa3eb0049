// Re-verifies an exported QDQ model against a target's rules from the file alone: for each op a
// rule covers, the (scale, zero_point) its ports actually see in the model (the DequantizeLinear
// feeding an input, the QuantizeLinear reading an output) must be equal where the rule says so,
// and fixed-output ops must carry the fixed params. This is independent of the alignment pass and
// of the exporter's bookkeeping.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "quant/target_profile.h"

namespace qalign {

struct QdqRuleViolation {
  std::string node;     // "Concat 'concat_0'"
  std::string message;  // one line naming the ports and tensors
};

struct QdqVerifyStats {
  int64_t ops_checked = 0;   // ops with a rule and at least one quantized port
  int64_t ports_checked = 0;
};

std::vector<QdqRuleViolation> VerifyQdqModel(const onnx::ModelProto& model,
                                             const TargetProfile& profile,
                                             QdqVerifyStats* stats = nullptr);

}  // namespace qalign
