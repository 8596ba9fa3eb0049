// KernelRegistry: lookup by (domain, op type, opset) with a preferred flavor.
#include "runtime/kernel.h"

namespace qalign {
namespace {
bool SameDomain(const std::string& a, const std::string& b) {
  auto normal = [](const std::string& d) { return d == "ai.onnx" ? std::string() : d; };
  return normal(a) == normal(b);
}
}  // namespace

void KernelRegistry::Register(KernelEntry entry) { entries_.push_back(std::move(entry)); }

const KernelEntry* KernelRegistry::Find(const std::string& domain, const std::string& op_type,
                                        int64_t opset, KernelFlavor flavor) const {
  const KernelEntry* fallback = nullptr;
  for (const KernelEntry& entry : entries_) {
    if (entry.op_type != op_type || !SameDomain(entry.domain, domain)) continue;
    if (opset < entry.since_version || opset > entry.until_version) continue;
    if (entry.flavor == flavor) return &entry;
    if (!fallback) fallback = &entry;
  }
  return fallback;
}

StatusOr<std::unique_ptr<Kernel>> KernelRegistry::Create(const Operation& op,
                                                         KernelFlavor flavor) const {
  const KernelEntry* entry = Find(op.domain(), op.type(), op.opset(), flavor);
  if (!entry) {
    return UnimplementedError("no kernel for ", op.Describe(), " at opset ", op.opset(),
                              op.domain().empty() ? "" : " of domain " + op.domain());
  }
  return entry->factory(op);
}

const KernelRegistry& DefaultKernelRegistry() {
  static const KernelRegistry* registry = [] {
    auto* r = new KernelRegistry();
    RegisterAllKernels(*r);
    return r;
  }();
  return *registry;
}

}  // namespace qalign
