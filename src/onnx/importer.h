// ONNX model -> Graph: parse, fold Constant nodes into parameters, verify, infer shapes.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "onnx/tensor_proto.h"
#include "qalign/status.h"

namespace qalign {

// Default-domain opsets qalign reads; newer ones import with a warning.
inline constexpr int64_t kMinOnnxOpset = 7;
inline constexpr int64_t kMaxOnnxOpset = 17;

struct ImportOptions {
  // Graph input name -> concrete dims, fixing dynamic dims (`--input-shape x=1,3,640,640`).
  std::map<std::string, std::vector<int64_t>> input_shapes;
  // Run ONNX shape inference to fill the shapes of intermediate tensors.
  bool infer_shapes = true;
};

// Reads an ONNX file. Errors are one line naming the file and the op or tensor involved.
StatusOr<std::unique_ptr<Graph>> ImportOnnxModel(const std::string& path,
                                                 const ImportOptions& options = {});

// Same from a parsed model; external data is read relative to `base_dir`; `source` names the
// model in messages.
StatusOr<std::unique_ptr<Graph>> ImportOnnxModelFromProto(const onnx::ModelProto& model,
                                                          const std::string& base_dir,
                                                          const ImportOptions& options = {},
                                                          const std::string& source = "<model>");

// Parses the value of `--input-shape`: "NAME=D,D,..." (dims >= 0). The name may itself contain
// '='; the last one separates it from the dims.
StatusOr<std::pair<std::string, std::vector<int64_t>>> ParseInputShapeFlag(const std::string& flag);

}  // namespace qalign
