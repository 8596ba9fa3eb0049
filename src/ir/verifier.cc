// Graph verifier.
#include "ir/verifier.h"

#include <algorithm>
#include <unordered_set>

namespace qalign {
namespace {

bool HasSource(const Variable* v) {
  return v->producer() != nullptr || v->is_parameter() || v->is_graph_input();
}

bool HasUse(const Variable* v, const Operation* op, int index) {
  return std::any_of(v->uses().begin(), v->uses().end(),
                     [&](const Use& u) { return u.op == op && u.index == index; });
}

}  // namespace

Status VerifyGraph(const Graph& graph) {
  std::unordered_set<const Variable*> produced;
  for (const Operation* op : graph.operations()) {
    for (size_t i = 0; i < op->inputs().size(); ++i) {
      const Variable* v = op->inputs()[i];
      if (!v) continue;
      if (!HasSource(v)) {
        return FailedPreconditionError(op->Describe(), ": input '", v->name(),
                                       "' is dangling (no producer, not a parameter or graph input)");
      }
      if (!HasUse(v, op, static_cast<int>(i))) {
        return InternalError(op->Describe(), ": input '", v->name(), "' lacks its use record");
      }
    }
    for (size_t k = 0; k < op->implicit_inputs().size(); ++k) {
      const Variable* v = op->implicit_inputs()[k];
      if (!HasSource(v)) {
        return FailedPreconditionError(op->Describe(), ": subgraph reads '", v->name(),
                                       "', which is dangling");
      }
    }
    for (size_t i = 0; i < op->outputs().size(); ++i) {
      const Variable* v = op->outputs()[i];
      if (!v) continue;
      if (!produced.insert(v).second) {
        return FailedPreconditionError(op->Describe(), ": output '", v->name(),
                                       "' is produced twice");
      }
      if (v->producer() != op || v->producer_index() != static_cast<int>(i)) {
        return FailedPreconditionError(op->Describe(), ": output '", v->name(),
                                       "' is also produced by another op");
      }
      if (v->is_parameter() || v->is_graph_input()) {
        return FailedPreconditionError(op->Describe(), ": output '", v->name(),
                                       "' is also a parameter or graph input");
      }
    }
  }
  for (const Variable* v : graph.variables()) {
    for (const Use& use : v->uses()) {
      const Variable* seen = use.implicit()
          ? use.op->implicit_inputs().at(static_cast<size_t>(-1 - use.index))
          : use.op->inputs().at(static_cast<size_t>(use.index));
      if (seen != v) return InternalError("variable '", v->name(), "' has a stale use record");
    }
  }
  for (const Variable* v : graph.outputs()) {
    if (!HasSource(v)) {
      return FailedPreconditionError("graph output '", v->name(), "' is not produced by any op");
    }
  }
  auto order = graph.TopologicalOrder();
  if (!order.ok()) return order.status();
  return Status::Ok();
}

}  // namespace qalign
