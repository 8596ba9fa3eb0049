// QDQ ONNX export: the FP32 model plus QuantizeLinear / DequantizeLinear pairs where the QuantPlan
// says, at default-domain opset 13 or later, checked with onnx::checker.
//
//   activations  Q -> DQ after the producer (the group's params), read by every consumer sharing
//                them; a requantize edge gets a second Q -> DQ read by that consumer only;
//   weights      int8 / uint8 initializers -> DequantizeLinear (per channel with `axis`);
//   biases       int32 initializers (scale = input_scale * weight_scale, zero point 0) -> DQ;
//   16-bit activations (a target's activation16 scheme) as com.microsoft QuantizeLinear /
//                DequantizeLinear with uint16 / int16 zero points (ONNX's take them from opset 21
//                only; ONNX Runtime's contrib ops at any), the model importing com.microsoft 1;
//   FP32 regions untouched.
// A model below opset 13 is first converted with ONNX's version converter (Clip min/max and Slice
// starts/ends become inputs, Squeeze/Unsqueeze/ReduceSum/Split axes become inputs, Softmax's
// coercion to 2-D is made explicit); an op the converter cannot handle is refused with its name.
#pragma once

#include <onnx/onnx_pb.h>

#include <map>
#include <string>
#include <vector>

#include "export/quant_plan.h"
#include "ir/graph.h"
#include "qalign/status.h"

namespace qalign {

inline constexpr int64_t kQdqMinOpset = 13;

struct QdqExportStats {
  int64_t activation_pairs = 0;  // Q/DQ pairs on activations (requantizes included)
  int64_t requantize_pairs = 0;
  int64_t weight_initializers = 0;  // int8/uint8 parameter initializers
  int64_t bias_initializers = 0;    // int32 initializers
  int64_t source_opset = 0;
  int64_t opset = 0;
  int64_t hardswish_ops = 0;  // decomposed HardSwish chains written as one HardSwish op
};

struct QdqExportOptions {
  // Write each decomposed HardSwish (Add 3, Clip 0..6, Mul x, Div 6) as one HardSwish op,
  // converting the model to opset 14 if it is older (TargetProfile::hardswish_op).
  bool hardswish_op = false;
};

// Concrete shapes of intermediate tensors observed in a run (sim/RecordTensorShapes), by name.
// Static shape inference loses the rank behind dynamic Reshapes; the version converter's Softmax
// adapter needs it, so export lists these in value_info when converting an old opset.
using TensorShapes = std::map<std::string, std::vector<int64_t>>;

// Builds the QDQ model from `graph` (the FP32 model the plan was made on).
StatusOr<onnx::ModelProto> ExportQdqModel(const Graph& graph, const QuantPlan& plan,
                                          QdqExportStats* stats = nullptr,
                                          const TensorShapes* observed_shapes = nullptr,
                                          const QdqExportOptions& options = {});

// Runs onnx::checker::check_model; the message names the node the checker complains about.
Status CheckOnnxModel(const onnx::ModelProto& model, const std::string& what);

// Exports, checks and writes atomically; never overwrites `protect_input_path`.
Status SaveQdqModel(const Graph& graph, const QuantPlan& plan, const std::string& path,
                    const std::string& protect_input_path, QdqExportStats* stats = nullptr,
                    const TensorShapes* observed_shapes = nullptr,
                    const QdqExportOptions& options = {});

}  // namespace qalign
