// Executor: runs a Graph on CPU in topological order, with a hook on every tensor produced.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/tensor.h"
#include "qalign/status.h"
#include "runtime/kernel.h"
#include "core/thread_pool.h"

namespace qalign {

struct ExecutorOptions {
  KernelFlavor flavor = KernelFlavor::kFast;
  int num_threads = 0;  // 0: all cores
  // Registry to create kernels from; nullptr: DefaultKernelRegistry().
  const KernelRegistry* registry = nullptr;
  // Intermediate tensors to return from Run() besides the graph outputs.
  std::set<std::string> keep;
  bool keep_all = false;  // return every tensor (for debugging and tests)
  bool profile = false;   // accumulate wall time per op type (profile())
};

// Called once for each tensor right after it exists: every graph input (after the checks) and
// every op output. It may change the values in place (fake quantization) but not the shape.
using TensorHook = std::function<void(const Variable& variable, Tensor& tensor)>;

class Executor {
 public:
  // Creates every kernel up front: an unsupported op or a bad attribute fails here, naming the op,
  // before anything runs. The graph must outlive the executor; parameters are read in place.
  static StatusOr<std::unique_ptr<Executor>> Create(const Graph& graph,
                                                    ExecutorOptions options = {});

  void set_hook(TensorHook hook) { hook_ = std::move(hook); }

  // Runs the graph. `inputs` maps each graph input name to its tensor; shapes and dtypes are
  // checked against the graph's inputs. Returns the graph outputs (and kept tensors) by name.
  StatusOr<std::map<std::string, Tensor>> Run(std::map<std::string, Tensor> inputs);

  // Peak bytes of live (non-parameter) tensors during the last Run().
  int64_t peak_bytes() const { return peak_bytes_; }
  ThreadPool* pool() const { return pool_.get(); }
  const std::vector<const Operation*>& order() const { return order_; }
  // With options.profile: milliseconds spent per op type, summed over all runs so far.
  const std::map<std::string, double>& profile() const { return profile_ms_; }
  void reset_profile() { profile_ms_.clear(); }

 private:
  Executor() = default;

  const Graph* graph_ = nullptr;
  ExecutorOptions options_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<const Operation*> order_;
  std::vector<std::unique_ptr<Kernel>> kernels_;  // parallel to order_
  TensorHook hook_;
  // Value slots: one per non-parameter variable the run touches.
  std::map<const Variable*, int> slot_of_;
  std::vector<const Variable*> slot_variable_;
  // For each op (by position in order_), the slots whose last consumer it is.
  std::vector<std::vector<int>> free_after_;
  std::vector<bool> retained_;  // per slot: a graph output or asked to be kept
  int64_t peak_bytes_ = 0;
  std::map<std::string, double> profile_ms_;
};

}  // namespace qalign
