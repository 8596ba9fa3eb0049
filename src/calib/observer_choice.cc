// Per-tensor observer choice (see observer_choice.h).
#include "calib/observer_choice.h"

#include <string>
#include <unordered_set>

namespace qalign {
namespace {

bool IsLayoutOp(const std::string& type) {
  return type == "Reshape" || type == "Transpose" || type == "Squeeze" || type == "Unsqueeze" ||
         type == "Flatten" || type == "Identity";
}

// The one non-constant input of an elementwise Add / Sub / Mul / Div whose other input is a
// parameter, else nullptr.
Variable* AffineInput(const Operation& op) {
  if (op.type() != "Add" && op.type() != "Sub" && op.type() != "Mul" && op.type() != "Div") {
    return nullptr;
  }
  if (op.inputs().size() != 2 || op.input(0) == nullptr || op.input(1) == nullptr) return nullptr;
  const bool constant0 = op.input(0)->is_parameter();
  const bool constant1 = op.input(1)->is_parameter();
  if (constant0 == constant1) return nullptr;
  return constant0 ? op.input(1) : op.input(0);
}

// The tensor `op` maps to its output one value at a time (up to layout), or nullptr.
Variable* LogitSource(const Operation& op) {
  if (!op.in_default_domain() || op.outputs().size() != 1) return nullptr;
  if (IsLayoutOp(op.type())) return op.input(0);
  return AffineInput(op);
}

bool IsSoftmax(const Operation& op) {
  return op.in_default_domain() && (op.type() == "Softmax" || op.type() == "LogSoftmax");
}

// The inputs of every Softmax and LogSoftmax, and, going up from each, every tensor that reaches
// it only through an elementwise op with a constant operand (Add, Sub, Mul, Div: a bias or a
// temperature) or a layout op (Reshape, Transpose, Squeeze, Unsqueeze, Flatten, Identity): each
// such tensor is read by that op alone, so its values are the logits up to an affine map.
std::unordered_set<const Variable*> SoftmaxLogitTensors(const Graph& graph) {
  std::unordered_set<const Variable*> logits;
  for (const Operation* op : graph.operations()) {
    if (!IsSoftmax(*op)) continue;
    const Variable* v = op->input(0);
    while (v != nullptr && !v->is_parameter() && logits.insert(v).second) {
      const Operation* producer = v->producer();
      if (producer == nullptr) break;
      const Variable* source = LogitSource(*producer);
      // Go up only while the tensor above feeds nothing else: its values are then only logits.
      if (source == nullptr || source->is_graph_output() || source->uses().size() != 1) break;
      v = source;
    }
  }
  return logits;
}

// The outputs of every Softmax and LogSoftmax, and, going down from each, every tensor a layout op
// makes of it while it feeds that op alone: the probabilities, in any shape.
std::unordered_set<const Variable*> SoftmaxOutputTensors(const Graph& graph) {
  std::unordered_set<const Variable*> probabilities;
  for (const Operation* op : graph.operations()) {
    if (!IsSoftmax(*op) || op->outputs().size() != 1) continue;
    const Variable* v = op->output(0);
    while (v != nullptr && probabilities.insert(v).second) {
      // Go down only while the tensor feeds one layout op and nothing else.
      if (v->is_graph_output() || v->uses().size() != 1) break;
      const Operation* consumer = v->uses().front().op;
      if (!consumer->in_default_domain() || !IsLayoutOp(consumer->type()) ||
          consumer->outputs().size() != 1) {
        break;
      }
      v = consumer->output(0);
    }
  }
  return probabilities;
}

// The inputs of every GlobalAveragePool, AveragePool and ReduceMean.
std::unordered_set<const Variable*> AveragedTensors(const Graph& graph) {
  std::unordered_set<const Variable*> averaged;
  for (const Operation* op : graph.operations()) {
    if (!op->in_default_domain() || op->input(0) == nullptr) continue;
    if (op->type() == "GlobalAveragePool" || op->type() == "AveragePool" ||
        op->type() == "ReduceMean") {
      averaged.insert(op->input(0));
    }
  }
  return averaged;
}

}  // namespace

std::map<std::string, KeptEnds> UnclippedEnds(const Graph& graph) {
  std::map<std::string, KeptEnds> ends;
  for (const Variable* v : SoftmaxLogitTensors(graph)) ends[v->name()].max = true;
  for (const Variable* v : SoftmaxOutputTensors(graph)) ends[v->name()].max = true;
  for (const Variable* v : AveragedTensors(graph)) ends[v->name()] = {.min = true, .max = true};
  return ends;
}

}  // namespace qalign
