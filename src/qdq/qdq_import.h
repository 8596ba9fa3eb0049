// Reads a QDQ ONNX model made by any quantizer back into qalign's data model: a "float view" Graph
// (the model with its QuantizeLinear / DequantizeLinear nodes removed and each quantized constant
// replaced by its dequantized float values) and a QuantConfigTable whose TQCs hold the params the
// model actually uses at each op port.
//
// What is recognised, per op port of the float view:
//   input i   the DequantizeLinear feeding it: an activation pair Q -> DQ (or the last pair of a
//             Q -> DQ -> Q -> DQ requantize chain), or a constant DQ (int8/uint8 weights, per
//             tensor or per channel with `axis`; int32 biases);
//   output j  the first QuantizeLinear reading it (by node order).
// A TQC of a port the target quantizes but the model does not becomes FP32; a TQC whose params
// were imported is ACTIVATED with them, and its calibration range is the range they represent:
//   asymmetric  [ (qmin - zp) * scale, (qmax - zp) * scale ]
//   symmetric   [ -h * scale, h * scale ], h = min(zp - qmin, qmax - zp)
// so that re-deriving params from the range gives the same params back (and `large` over several
// members never clips what any member could represent).
// Models in QOperator form (QLinearConv, ConvInteger, ...) are refused with the node named.
#pragma once

#include <onnx/onnx_pb.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "onnx/importer.h"
#include "quant/quant_config.h"
#include "quant/target_profile.h"
#include "qalign/status.h"

namespace qalign {

// The params of one Q or DQ node as the model stores them.
struct ImportedParams {
  std::vector<float> scale;
  std::vector<int64_t> zero_point;  // same length as scale (zeros when the model omits it)
  int axis = 1;                     // DequantizeLinear's axis (used when per channel)
  int32_t elem_type = 2;            // onnx::TensorProto element type of the quantized values
  int q_node = -1;                  // original node index of the QuantizeLinear (-1: constant DQ)
  int dq_node = -1;                 // original node index of the DequantizeLinear (-1: output side)
  bool per_channel() const { return scale.size() > 1; }
  bool SameAs(const ImportedParams& o) const;
  // "(0.0235, -3)" or "per-channel x16"
  std::string ToString() const;
};

struct QdqImportStats {
  int64_t activation_pairs = 0;  // Q -> DQ pairs on activations
  int64_t requantize_pairs = 0;  // pairs reading another pair's DequantizeLinear
  int64_t constant_dqs = 0;      // DequantizeLinear of a constant (weights, biases, operands)
  int64_t imported_tqcs = 0;     // TQCs that received params
  int64_t unquantized_tqcs = 0;  // TQCs the target quantizes but the model leaves float (FP32)
};

struct QdqModelView {
  onnx::ModelProto model;          // the model as read (never modified)
  std::string source;              // its path, for messages
  std::unique_ptr<Graph> graph;    // float view
  TargetProfile profile;
  QuantConfigTable table;
  std::map<int32_t, ImportedParams> imported;  // by TQC id
  // Float-view op name -> index of the same node in model.graph().node().
  std::map<std::string, int> node_index;
  // Consumer-side TQCs whose params differ from their producer's (the model requantizes there).
  std::vector<int32_t> requantized_inputs;
  std::vector<std::string> notes;  // one line each: scheme mismatches, skipped ports
  QdqImportStats stats;

  // The tensor name the model shows at a port (the DequantizeLinear output feeding an input, the
  // op's own output name for an output).
  std::string ModelTensorName(const TQC& tqc) const;
};

// True for QOperator node types (QLinearConv, ConvInteger, QGemm, DynamicQuantizeLinear, ...).
bool IsQOperatorType(const std::string& op_type);

// Builds the view from a parsed model; `base_dir` resolves external data; `source` names the
// model in messages.
StatusOr<std::unique_ptr<QdqModelView>> ImportQdqModel(const onnx::ModelProto& model,
                                                       const std::string& base_dir,
                                                       const TargetProfile& profile,
                                                       const ImportOptions& options,
                                                       const std::string& source);
// Same from a file.
StatusOr<std::unique_ptr<QdqModelView>> ImportQdqModelFile(const std::string& path,
                                                           const TargetProfile& profile,
                                                           const ImportOptions& options = {});

}  // namespace qalign
