// Recognising decomposed HardSwish (see activation_patterns.h).
#include "quant/activation_patterns.h"

#include <cmath>
#include <optional>
#include <vector>

namespace qalign {
namespace {

// The value of a one-element float parameter.
std::optional<float> ScalarOf(const Variable* v) {
  if (v == nullptr || !v->is_parameter()) return std::nullopt;
  const Tensor& t = *v->data();
  if (t.num_elements() != 1 || t.dtype() != DataType::kFloat) return std::nullopt;
  return t.values<float>()[0];
}

bool Near(std::optional<float> v, double expected) {
  return v.has_value() && std::fabs(*v - expected) <= 1e-6 * std::max(1.0, std::fabs(expected));
}

// The single consumer of `v` (not a graph output), or null.
Operation* OnlyConsumer(const Variable* v) {
  if (v == nullptr || v->is_graph_output() || v->uses().size() != 1) return nullptr;
  const Use& use = v->uses()[0];
  return use.implicit() ? nullptr : use.op;
}

// The other input of a two-input op, given one of them.
Variable* OtherInput(const Operation* op, const Variable* one) {
  if (op->inputs().size() != 2) return nullptr;
  if (op->input(0) == one) return op->input(1);
  if (op->input(1) == one) return op->input(0);
  return nullptr;
}

bool ClipIsZeroToSix(const Operation& clip) {
  if (clip.inputs().size() >= 3) return Near(ScalarOf(clip.input(1)), 0.0) && Near(ScalarOf(clip.input(2)), 6.0);
  // Opset 6 to 10: bounds are attributes.
  return std::fabs(clip.GetFloat("min", -1.0f)) == 0.0f && clip.GetFloat("max", -1.0f) == 6.0f;
}

// The ports of one matched pattern: interior activation ports (OVERLAPPED) and constant ports
// (FP32), as (op, is_input, index).
struct PatternPort {
  const Operation* op;
  bool input;
  size_t index;
};

struct Match {
  std::vector<PatternPort> interior;
  std::vector<PatternPort> constants;
};

void AddConstantPorts(const Operation* op, Match* m) {
  for (size_t i = 0; i < op->inputs().size(); ++i) {
    if (op->input(i) != nullptr && op->input(i)->is_parameter()) m->constants.push_back({op, true, i});
  }
}

// x * (.) / 6 or x * (.) * (1/6), starting at the Mul that multiplies x by the gate `gate`.
std::optional<Match> MatchTail(const Variable* x, const Variable* gate, Match m) {
  Operation* mul = OnlyConsumer(gate);
  if (mul == nullptr || mul->type() != "Mul" || OtherInput(mul, gate) != x) return std::nullopt;
  const size_t gate_index = mul->input(0) == gate ? 0 : 1;
  m.interior.push_back({mul, true, gate_index});
  return m;
}

std::optional<Match> MatchAddClip(const Operation& add) {
  if (add.type() != "Add" || add.outputs().size() != 1) return std::nullopt;
  Variable* x = nullptr;
  for (size_t i = 0; i < 2 && i < add.inputs().size(); ++i) {
    if (Near(ScalarOf(add.input(i)), 3.0)) x = add.input(1 - i);
  }
  if (x == nullptr || x->is_parameter()) return std::nullopt;
  Operation* clip = OnlyConsumer(add.output(0));
  if (clip == nullptr || clip->type() != "Clip" || clip->input(0) != add.output(0) ||
      !ClipIsZeroToSix(*clip)) {
    return std::nullopt;
  }
  Match m;
  m.interior.push_back({&add, false, 0});
  m.interior.push_back({clip, true, 0});
  m.interior.push_back({clip, false, 0});
  AddConstantPorts(&add, &m);
  AddConstantPorts(clip, &m);
  std::optional<Match> tail = MatchTail(x, clip->output(0), std::move(m));
  if (!tail) return std::nullopt;
  // The product, divided by 6 (or times 1/6), is the activation's output.
  const Operation* mul = tail->interior.back().op;
  Operation* scale = OnlyConsumer(mul->output(0));
  if (scale == nullptr || scale->input(0) != mul->output(0)) return std::nullopt;
  const bool divide = scale->type() == "Div" && Near(ScalarOf(scale->input(1)), 6.0);
  const bool multiply = scale->type() == "Mul" && Near(ScalarOf(scale->input(1)), 1.0 / 6.0);
  if (!divide && !multiply) return std::nullopt;
  tail->interior.push_back({mul, false, 0});
  tail->interior.push_back({scale, true, 0});
  AddConstantPorts(scale, &*tail);
  return tail;
}

std::optional<Match> MatchHardSigmoidMul(const Operation& hs) {
  if (hs.type() != "HardSigmoid" || hs.inputs().size() != 1) return std::nullopt;
  if (!Near(hs.GetFloat("alpha", 0.2f), 1.0 / 6.0) || !Near(hs.GetFloat("beta", 0.5f), 0.5)) {
    return std::nullopt;
  }
  Match m;
  m.interior.push_back({&hs, false, 0});
  return MatchTail(hs.input(0), hs.output(0), std::move(m));
}

TQC* PortTqc(QuantConfigTable* table, const PatternPort& p) {
  const OperationQuantConfig* config = table->FindOp(p.op);
  if (config == nullptr) return nullptr;
  const auto& list = p.input ? config->inputs : config->outputs;
  return p.index < list.size() ? list[p.index] : nullptr;
}

}  // namespace

int64_t FuseDecomposedHardSwish(const Graph& graph, QuantConfigTable* table) {
  int64_t fused = 0;
  for (const Operation* op : graph.operations()) {
    std::optional<Match> m = MatchAddClip(*op);
    if (!m) m = MatchHardSigmoidMul(*op);
    if (!m) continue;
    // Only where nothing else claimed these ports. An op of the pattern the target does not
    // quantize (TFLite has no int8 Div, so the final Div is FP32 there) simply has no point to
    // remove; its output is still quantized where a quantized op consumes it.
    bool claimable = true;
    bool any = false;
    for (const PatternPort& p : m->interior) {
      const TQC* t = PortTqc(table, p);
      claimable = claimable && t != nullptr && t->role == TensorRole::kActivation &&
                  (t->state == QuantState::kInitial || t->state == QuantState::kFp32);
      any = any || (t != nullptr && t->state == QuantState::kInitial);
    }
    if (!claimable || !any) continue;
    for (const PatternPort& p : m->interior) {
      TQC* t = PortTqc(table, p);
      if (t->state == QuantState::kInitial) t->state = QuantState::kOverlapped;
    }
    for (const PatternPort& p : m->constants) {
      TQC* t = PortTqc(table, p);
      if (t != nullptr && IsQuantizedState(t->state)) t->state = QuantState::kFp32;
    }
    ++fused;
  }
  return fused;
}

}  // namespace qalign
