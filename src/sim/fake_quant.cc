// FakeQuantSimulator (see fake_quant.h).
#include "sim/fake_quant.h"

#include <span>
#include <utility>

#include "onnx/exporter.h"
#include "onnx/importer.h"
#include "sim/qdq_kernels.h"

namespace qalign {
namespace {

std::string OpKey(const Operation& op) {
  for (const Variable* v : op.outputs()) {
    if (v != nullptr) return v->name();
  }
  return "";
}

}  // namespace

StatusOr<std::map<std::string, std::vector<int64_t>>> RecordTensorShapes(
    const Graph& graph, std::map<std::string, Tensor> inputs, int num_threads) {
  ExecutorOptions options;
  options.num_threads = num_threads;
  options.registry = &SimKernelRegistry();
  QALIGN_ASSIGN_OR_RETURN(auto executor, Executor::Create(graph, options));
  std::map<std::string, std::vector<int64_t>> shapes;
  executor->set_hook([&shapes](const Variable& v, Tensor& t) { shapes[v.name()] = t.shape(); });
  QALIGN_RETURN_IF_ERROR(executor->Run(std::move(inputs)).status());
  return shapes;
}

StatusOr<std::unique_ptr<Graph>> CloneGraph(const Graph& graph) {
  QALIGN_ASSIGN_OR_RETURN(onnx::ModelProto proto, ExportOnnxModel(graph));
  ImportOptions options;
  for (const Variable* v : graph.inputs()) {
    if (v->shape().fully_known()) options.input_shapes[v->name()] = v->shape().concrete();
  }
  return ImportOnnxModelFromProto(proto, ".", options, "simulation copy");
}

StatusOr<std::unique_ptr<FakeQuantSimulator>> FakeQuantSimulator::Create(const Graph& graph,
                                                                         const QuantPlan& plan,
                                                                         ExecutorOptions options) {
  std::unique_ptr<FakeQuantSimulator> sim(new FakeQuantSimulator());
  QALIGN_ASSIGN_OR_RETURN(sim->graph_, CloneGraph(graph));
  Graph& g = *sim->graph_;
  std::unordered_map<std::string, Operation*> op_of_key;
  for (Operation* op : g.operations()) op_of_key[OpKey(*op)] = op;
  auto find_op = [&](const Operation* original) -> StatusOr<Operation*> {
    auto it = op_of_key.find(OpKey(*original));
    if (it == op_of_key.end()) {
      return InternalError(original->Describe(), ": not found in the simulation copy");
    }
    return it->second;
  };
  auto find_var = [&](const Variable* original) -> StatusOr<Variable*> {
    Variable* v = g.FindVariable(original->name());
    if (v == nullptr) {
      return InternalError("tensor '", original->name(), "': not found in the simulation copy");
    }
    return v;
  };

  for (const ParameterPoint& p : plan.parameters) {
    const std::string what = StrCat("parameter '", p.tensor->name(), "'");
    QALIGN_ASSIGN_OR_RETURN(Tensor fq, FakeQuantizeParameter(*p.tensor->data(), p.params, what));
    QALIGN_ASSIGN_OR_RETURN(Variable * q, g.AddParameter(g.UniqueName(p.tensor->name() + "_fq"), std::move(fq)));
    for (const Reader& r : p.readers) {
      QALIGN_ASSIGN_OR_RETURN(Operation * op, find_op(r.op));
      QALIGN_RETURN_IF_ERROR(g.SetInput(op, static_cast<size_t>(r.index), q));
    }
  }
  // Producer points first: requantize Identity ops read the tensor after its hook ran.
  for (const ActivationPoint& p : plan.activations) {
    QALIGN_ASSIGN_OR_RETURN(Variable * v, find_var(p.tensor));
    if (p.producer_side) {
      sim->hook_params_[v] = p.params;
      continue;
    }
    QALIGN_ASSIGN_OR_RETURN(Variable * edge, g.AddVariable(g.UniqueName(v->name() + "_edge_fq")));
    edge->set_dtype(v->dtype());
    edge->set_shape(v->shape());
    QALIGN_RETURN_IF_ERROR(
        g.AddOperation("Identity", g.UniqueName(v->name() + "_edge_fq_op"), {v}, {edge}).status());
    for (const Reader& r : p.readers) {
      QALIGN_ASSIGN_OR_RETURN(Operation * op, find_op(r.op));
      QALIGN_RETURN_IF_ERROR(g.SetInput(op, static_cast<size_t>(r.index), edge));
    }
    sim->hook_params_[edge] = p.params;
    ++sim->inserted_edges_;
  }
  options.registry = &SimKernelRegistry();
  QALIGN_ASSIGN_OR_RETURN(sim->executor_, Executor::Create(g, options));
  FakeQuantSimulator* raw = sim.get();
  sim->executor_->set_hook([raw](const Variable& variable, Tensor& tensor) {
    auto it = raw->hook_params_.find(&variable);
    if (it == raw->hook_params_.end() || tensor.dtype() != DataType::kFloat) return;
    const QdqParams& params = it->second;
    std::span<float> values = tensor.values<float>();
    ThreadPool* pool = raw->executor_->pool();
    if (pool == nullptr) {
      FakeQuantizeInPlace(values, params);
      return;
    }
    // Element-wise, so any split gives the same bits.
    constexpr int64_t kMinChunk = int64_t{1} << 14;
    pool->ParallelFor(static_cast<int64_t>(values.size()), [&](int64_t begin, int64_t end) {
      FakeQuantizeInPlace(values.subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin)),
                          params);
    }, kMinChunk);
  });
  return sim;
}

StatusOr<std::map<std::string, Tensor>> FakeQuantSimulator::Run(
    std::map<std::string, Tensor> inputs) {
  return executor_->Run(std::move(inputs));
}

}  // namespace qalign
