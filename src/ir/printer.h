// Compact, deterministic text form of a graph, for golden tests and debugging.
#pragma once

#include <string>

#include "ir/graph.h"

namespace qalign {

// One line per graph input, per op in topological order and per output, e.g.
//   input %x: f32[1,3,?,?]
//   %y = Conv(%x, @w:f32[8,3,3,3]) {group=1, kernel_shape=[3,3]}  # conv_0
//   output %y
// Parameters are shown inline as @name:dtype[shape]. Ops in a cycle fall back to storage order.
std::string PrintGraph(const Graph& graph);

// "{name=value, ...}" for one op's attributes, sorted by name.
std::string PrintAttributes(const Operation& op);

}  // namespace qalign
