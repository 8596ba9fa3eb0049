// Fake-quantized execution: runs a model the way its QDQ export computes, in qalign's executor.
//
// The simulator works on its own copy of the FP32 graph (an ONNX round trip) and follows the
// QuantPlan the exporter follows:
//   producer points  the executor's per-tensor hook replaces the tensor by
//                    dequantize(quantize(x)) right after its producer;
//   consumer points  (requantize edges, quantized consumers of FP32 producers or graph inputs) an
//                    Identity op is inserted on exactly those edges and the hook fake-quantizes
//                    its output, so only those consumers see the (second) quantization;
//   parameters       weights and biases are replaced by their dequantized integer values
//                    (per channel), computed by the same function that writes the initializers.
// Rounding is half to even and saturation as in quant_plan.h, so the simulator and ONNX Runtime
// running the export agree up to float summation order.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "export/quant_plan.h"
#include "ir/graph.h"
#include "runtime/executor.h"
#include "qalign/status.h"

namespace qalign {

class FakeQuantSimulator {
 public:
  // `options.registry` is ignored (the simulator uses SimKernelRegistry()).
  static StatusOr<std::unique_ptr<FakeQuantSimulator>> Create(const Graph& graph,
                                                              const QuantPlan& plan,
                                                              ExecutorOptions options = {});

  StatusOr<std::map<std::string, Tensor>> Run(std::map<std::string, Tensor> inputs);

  // The simulation graph (the copy with Identity ops and quantized parameters).
  const Graph& graph() const { return *graph_; }
  int64_t inserted_edges() const { return inserted_edges_; }

 private:
  FakeQuantSimulator() = default;
  std::unique_ptr<Graph> graph_;
  std::unique_ptr<Executor> executor_;
  std::unordered_map<const Variable*, QdqParams> hook_params_;
  int64_t inserted_edges_ = 0;
};

// The shape of every tensor one run of `graph` on `inputs` produces (for ExportQdqModel).
StatusOr<std::map<std::string, std::vector<int64_t>>> RecordTensorShapes(
    const Graph& graph, std::map<std::string, Tensor> inputs, int num_threads = 0);

// A copy of `graph` through ONNX export and import (shapes as in `graph`).
StatusOr<std::unique_ptr<Graph>> CloneGraph(const Graph& graph);

}  // namespace qalign
