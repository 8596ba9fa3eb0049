// Graph -> ONNX model: names, attributes, opsets, metadata and Constant nodes written back as read.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

#include "ir/graph.h"
#include "qalign/status.h"

namespace qalign {

// Builds the ModelProto: nodes in topological order, parameters folded from Constant nodes
// re-emitted as Constant nodes just before their first use, other parameters as initializers with
// raw_data, and the model's metadata, doc strings, value_info and functions as imported.
StatusOr<onnx::ModelProto> ExportOnnxModel(const Graph& graph);

// Exports and writes atomically; refuses to overwrite `protect_input_path` (the user's input).
Status SaveOnnxModel(const Graph& graph, const std::string& path,
                     const std::string& protect_input_path = "");

}  // namespace qalign
