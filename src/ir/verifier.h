// Graph verifier: structural invariants every pass must preserve.
#pragma once

#include "ir/graph.h"
#include "qalign/status.h"

namespace qalign {

// Checks: every op input is produced by an op, is a parameter or a graph input (no dangling
// names); no variable has two producers; producer/use links agree both ways; graph outputs exist;
// no cycles. The first problem found is returned, naming the op and the tensor.
Status VerifyGraph(const Graph& graph);

}  // namespace qalign
