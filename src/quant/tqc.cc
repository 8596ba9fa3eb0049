// Names of quantization states and tensor roles, and the text that names a TQC in messages.
#include "quant/tqc.h"

namespace qalign {

const char* QuantStateName(QuantState state) {
  switch (state) {
    case QuantState::kInitial: return "INITIAL";
    case QuantState::kActivated: return "ACTIVATED";
    case QuantState::kPassive: return "PASSIVE";
    case QuantState::kPassiveInit: return "PASSIVE_INIT";
    case QuantState::kOverlapped: return "OVERLAPPED";
    case QuantState::kBaked: return "BAKED";
    case QuantState::kPassiveBaked: return "PASSIVE_BAKED";
    case QuantState::kFp32: return "FP32";
    case QuantState::kSoi: return "SOI";
  }
  return "UNKNOWN";
}

bool IsBakedState(QuantState state) {
  return state == QuantState::kBaked || state == QuantState::kPassiveBaked;
}

const char* TensorRoleName(TensorRole role) {
  switch (role) {
    case TensorRole::kActivation: return "activation";
    case TensorRole::kWeight: return "weight";
    case TensorRole::kBias: return "bias";
    case TensorRole::kShape: return "shape";
  }
  return "unknown";
}

std::string Port::ToString() const {
  return (is_input ? "input:" : "output:") + std::to_string(index);
}

bool PortLess(const TQC* a, const TQC* b) {
  const int c = a->port.op->name().compare(b->port.op->name());
  if (c != 0) return c < 0;
  if (a->port.is_input != b->port.is_input) return a->port.is_input;
  return a->port.index < b->port.index;
}

std::string DescribeTqc(const TQC& tqc) {
  const Port& port = tqc.port;
  std::string out = port.op ? port.op->Describe() : std::string("<no op>");
  out += ' ';
  out += port.ToString();
  out += " (tensor '";
  if (port.tensor) out += port.tensor->name();
  out += "')";
  return out;
}

}  // namespace qalign
