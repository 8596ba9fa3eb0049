// Kernel interface and registry: kernels are keyed by (domain, op type, opset range).
//
// A kernel object is created once per operation before anything runs (so attribute errors and
// unsupported ops surface early); Run() is called for each inference with the op's input tensors
// (nullptr for an omitted optional input) and fills its outputs.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/tensor.h"
#include "qalign/status.h"

namespace qalign {

class ThreadPool;

struct KernelContext {
  const Operation* op = nullptr;
  std::vector<const Tensor*> inputs;  // nullptr for an omitted optional input
  std::vector<Tensor>* outputs = nullptr;  // sized to op->outputs().size() by the executor
  ThreadPool* pool = nullptr;  // may be nullptr: run single-threaded
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual Status Run(KernelContext& context) = 0;
};

using KernelFactory = std::function<StatusOr<std::unique_ptr<Kernel>>(const Operation& op)>;

// Fast kernels (oneDNN, vectorized) and plain reference kernels, the oracle for tests.
enum class KernelFlavor { kFast, kReference };

struct KernelEntry {
  std::string domain;  // "" for ai.onnx
  std::string op_type;
  int64_t since_version = 1;  // inclusive opset range
  int64_t until_version = 1 << 30;
  KernelFlavor flavor = KernelFlavor::kFast;
  KernelFactory factory;
};

class KernelRegistry {
 public:
  void Register(KernelEntry entry);
  // The kernel entry for (domain, type, opset). With kReference, the reference entry is
  // preferred and the fast one used when no reference exists; with kFast the reverse.
  const KernelEntry* Find(const std::string& domain, const std::string& op_type, int64_t opset,
                          KernelFlavor flavor = KernelFlavor::kFast) const;
  // Creates the kernel for an op; an unsupported op is an Unimplemented error naming its type,
  // node name and opset.
  StatusOr<std::unique_ptr<Kernel>> Create(const Operation& op,
                                           KernelFlavor flavor = KernelFlavor::kFast) const;
  const std::vector<KernelEntry>& entries() const { return entries_; }

 private:
  std::vector<KernelEntry> entries_;
};

// The one explicit list of every kernel qalign has (kernels/registry.cc); no static initialisers.
void RegisterAllKernels(KernelRegistry& registry);
// The process-wide registry, filled by RegisterAllKernels on first use.
const KernelRegistry& DefaultKernelRegistry();

}  // namespace qalign
