// Executor: kernel creation up front, topological execution, per-tensor hooks, early frees.
#include "runtime/executor.h"

#include <algorithm>
#include <chrono>
#include <new>

namespace qalign {
namespace {

// A kernel allocates its outputs from shapes it computes from its inputs and attributes; a
// hostile model (Resize scales of 1e6) can ask for more than the tensor limit or the machine
// has. The Tensor constructors throw then, and this turns it into the op's error.
Status RunKernel(Kernel& kernel, KernelContext& context) {
  try {
    return kernel.Run(context);
  } catch (const TensorTooLargeError& e) {
    return InvalidArgumentError("output ", e.what());
  } catch (const std::bad_alloc&) {
    return InvalidArgumentError("out of memory allocating an output");
  } catch (const std::length_error& e) {
    return InvalidArgumentError("output too large: ", e.what());
  }
}

// Ops whose attributes hold subgraphs; the executor does not run nested graphs.
bool HasSubgraph(const Operation& op) {
  return op.type() == "If" || op.type() == "Loop" || op.type() == "Scan" ||
         op.type() == "SequenceMap";
}

int64_t TensorBytes(const Tensor& t) {
  if (t.dtype() == DataType::kString) {
    int64_t bytes = 0;
    for (const auto& s : t.strings()) bytes += static_cast<int64_t>(s.size());
    return bytes;
  }
  return static_cast<int64_t>(t.byte_size());
}

}  // namespace

StatusOr<std::unique_ptr<Executor>> Executor::Create(const Graph& graph, ExecutorOptions options) {
  std::unique_ptr<Executor> ex(new Executor());
  ex->graph_ = &graph;
  ex->options_ = options;
  const KernelRegistry& registry =
      options.registry ? *options.registry : DefaultKernelRegistry();

  QALIGN_ASSIGN_OR_RETURN(std::vector<Operation*> order, graph.TopologicalOrder());
  for (Operation* op : order) {
    if (HasSubgraph(*op)) {
      return UnimplementedError(op->Describe(), " at opset ", op->opset(),
                                ": ops with subgraphs (If/Loop/Scan) are not supported by the "
                                "executor");
    }
    auto kernel = registry.Create(*op, options.flavor);
    if (!kernel.ok()) return kernel.status();
    ex->order_.push_back(op);
    ex->kernels_.push_back(std::move(kernel).value());
  }

  auto slot = [&](const Variable* v) {
    auto it = ex->slot_of_.find(v);
    if (it != ex->slot_of_.end()) return it->second;
    const int id = static_cast<int>(ex->slot_variable_.size());
    ex->slot_of_[v] = id;
    ex->slot_variable_.push_back(v);
    return id;
  };
  for (const Variable* v : graph.inputs()) {
    if (!v->is_parameter()) slot(v);
  }
  std::vector<int> last_use;  // per slot, position in order_ of the last consumer (-1: none)
  for (size_t i = 0; i < ex->order_.size(); ++i) {
    const Operation* op = ex->order_[i];
    auto use = [&](const Variable* v) {
      if (!v || v->is_parameter()) return;
      const int s = slot(v);
      if (last_use.size() <= static_cast<size_t>(s)) last_use.resize(s + 1, -1);
      last_use[s] = static_cast<int>(i);
    };
    for (const Variable* v : op->inputs()) use(v);
    for (const Variable* v : op->implicit_inputs()) use(v);
    for (const Variable* v : op->outputs()) {
      if (v) slot(v);
    }
  }
  const size_t num_slots = ex->slot_variable_.size();
  last_use.resize(num_slots, -1);
  ex->retained_.assign(num_slots, false);
  ex->free_after_.assign(ex->order_.size(), {});
  for (size_t s = 0; s < num_slots; ++s) {
    const Variable* v = ex->slot_variable_[s];
    if (v->is_graph_output() || options.keep_all || options.keep.count(v->name())) {
      ex->retained_[s] = true;
      continue;
    }
    int at = last_use[s];
    if (at < 0 && v->producer()) {  // produced but never read: free right after its producer
      auto it = std::find(ex->order_.begin(), ex->order_.end(), v->producer());
      at = static_cast<int>(it - ex->order_.begin());
    }
    if (at >= 0) ex->free_after_[at].push_back(static_cast<int>(s));
  }
  ex->pool_ = std::make_unique<ThreadPool>(options.num_threads);
  return ex;
}

StatusOr<std::map<std::string, Tensor>> Executor::Run(std::map<std::string, Tensor> inputs) {
  std::vector<Tensor> values(slot_variable_.size());
  std::vector<bool> live(slot_variable_.size(), false);
  int64_t live_bytes = 0;
  peak_bytes_ = 0;
  auto add_live = [&](int s) {
    live[s] = true;
    live_bytes += TensorBytes(values[s]);
    peak_bytes_ = std::max(peak_bytes_, live_bytes);
  };

  // Graph inputs: every non-parameter input must be fed, with a matching dtype and shape.
  for (const Variable* v : graph_->inputs()) {
    if (v->is_parameter()) continue;  // an initializer listed as input: the default is used
    auto it = inputs.find(v->name());
    if (it == inputs.end()) return InvalidArgumentError("graph input '", v->name(), "' not fed");
    Tensor& t = it->second;
    if (v->dtype() != DataType::kUndefined && t.dtype() != v->dtype()) {
      return InvalidArgumentError("graph input '", v->name(), "' expects ",
                                  DataTypeName(v->dtype()), " but got ", DataTypeName(t.dtype()));
    }
    const Shape& shape = v->shape();
    if (shape.rank_known) {
      bool match = shape.dims.size() == t.shape().size();
      for (size_t d = 0; match && d < shape.dims.size(); ++d) {
        if (shape.dims[d].known() && shape.dims[d].value != t.shape()[d]) match = false;
      }
      if (!match) {
        return InvalidArgumentError("graph input '", v->name(), "' expects shape ",
                                    shape.ToString(), " but got ", ShapeToString(t.shape()));
      }
    }
    const int s = slot_of_.at(v);
    values[s] = std::move(t);
    add_live(s);
    if (hook_) hook_(*v, values[s]);
  }
  for (const auto& [name, tensor] : inputs) {
    const Variable* v = graph_->FindVariable(name);
    if (!v || !v->is_graph_input()) {
      return InvalidArgumentError("'", name, "' is not an input of the graph");
    }
  }

  KernelContext context;
  std::vector<Tensor> outputs;
  for (size_t i = 0; i < order_.size(); ++i) {
    const Operation* op = order_[i];
    context.op = op;
    context.pool = pool_.get();
    context.inputs.assign(op->inputs().size(), nullptr);
    for (size_t k = 0; k < op->inputs().size(); ++k) {
      const Variable* v = op->inputs()[k];
      if (!v) continue;
      if (v->is_parameter()) {
        context.inputs[k] = v->data();
        continue;
      }
      const int s = slot_of_.at(v);
      if (!live[s]) {
        return FailedPreconditionError(op->Describe(), ": input '", v->name(),
                                       "' has no value (not a graph input, no producer ran)");
      }
      context.inputs[k] = &values[s];
    }
    outputs.clear();
    outputs.resize(op->outputs().size());
    context.outputs = &outputs;
    const auto start = options_.profile ? std::chrono::steady_clock::now()
                                        : std::chrono::steady_clock::time_point();
    Status status = RunKernel(*kernels_[i], context);
    if (options_.profile) {
      profile_ms_[op->type()] += std::chrono::duration<double, std::milli>(
                                     std::chrono::steady_clock::now() - start).count();
    }
    if (!status.ok()) {
      // Kernel messages usually name the op already; add it when they do not.
      if (status.message().find(op->name()) == std::string::npos || op->name().empty()) {
        return Status(status.code(), StrCat(op->Describe(), ": ", status.message()));
      }
      return status;
    }
    for (size_t k = 0; k < op->outputs().size(); ++k) {
      const Variable* v = op->outputs()[k];
      if (!v) continue;
      const int s = slot_of_.at(v);
      values[s] = std::move(outputs[k]);
      add_live(s);
      if (hook_) hook_(*v, values[s]);
    }
    for (int s : free_after_[i]) {
      if (!live[s]) continue;
      live_bytes -= TensorBytes(values[s]);
      live[s] = false;
      values[s] = Tensor();
    }
  }

  std::map<std::string, Tensor> result;
  for (size_t s = 0; s < slot_variable_.size(); ++s) {
    if (retained_[s] && live[s]) result[slot_variable_[s]->name()] = std::move(values[s]);
  }
  // A graph output that is a parameter or fed input straight through.
  for (const Variable* v : graph_->outputs()) {
    if (result.count(v->name())) continue;
    if (v->is_parameter()) {
      result[v->name()] = *v->data();
    } else {
      return FailedPreconditionError("graph output '", v->name(), "' was not produced");
    }
  }
  return result;
}

}  // namespace qalign
