// The TQC (tensor quantization config): how one tensor is quantized as seen from one op port.
//
// A tensor with k consumers has one producer-side TQC and k consumer-side TQCs. TQCs that must
// share (scale, zero_point) form a group (quant/quant_table.h); a member's own params are
// meaningful on the group root only.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "quant/scheme.h"

namespace qalign {

enum class QuantState : uint8_t {
  kInitial,       // no params yet
  kActivated,     // owns params (a group root with its own calibration)
  kPassive,       // quantizes with its group root's params
  kPassiveInit,   // passive, root not calibrated yet
  kOverlapped,    // merged: this port is not quantized separately
  kBaked,         // parameter tensor already quantized
  kPassiveBaked,  // passive and baked
  kFp32,          // not quantized
  kSoi,           // shape or index tensor: never quantized
};
inline constexpr int kNumQuantStates = 9;
const char* QuantStateName(QuantState state);  // "INITIAL", "ACTIVATED", ..., "FP32", "SOI"
// FP32 and SOI members never join a group.
inline bool IsQuantizedState(QuantState state) {
  return state != QuantState::kFp32 && state != QuantState::kSoi;
}
bool IsBakedState(QuantState state);  // BAKED or PASSIVE_BAKED

enum class TensorRole : uint8_t { kActivation, kWeight, kBias, kShape };
inline constexpr int kNumTensorRoles = 4;
const char* TensorRoleName(TensorRole role);  // "activation", "weight", "bias", "shape"

// One port of one operation: input `index` or output `index`.
struct Port {
  Operation* op = nullptr;
  bool is_input = true;
  int index = 0;
  Variable* tensor = nullptr;
  std::string ToString() const;  // "input:0" / "output:1"
};

// Calibration range of one TQC's tensor (kept per member so group params can be recomputed).
// A histogram read from ranges.json stays in the RangeMap: no step after calibration reads it.
struct CalibrationStats {
  bool has_range = false;
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
};

struct TensorQuantConfig {
  int32_t id = -1;  // index in its QuantConfigTable, also its union-find node
  QuantState state = QuantState::kInitial;
  TensorRole role = TensorRole::kActivation;
  Port port;
  CalibrationStats stats;
  int channel_axis = -1;  // for per-channel schemes
  QuantScheme scheme;
  // Own params: one value per tensor, or one per channel. Read group params through the table.
  std::vector<float> scale;
  std::vector<int64_t> zero_point;

  bool per_channel() const { return scheme.policy.Has(kPerChannel); }
  bool floating() const { return scheme.policy.Has(kFloating); }
};
using TQC = TensorQuantConfig;
// True when a TQC may be a member of an alignment group: quantized (not FP32 / SOI / OVERLAPPED),
// linear, per-tensor, and an activation or a per-tensor parameter (not a bias).
// (Inline: the alignment pass asks it of every TQC several times.)
inline bool IsJoinable(const TQC& tqc) {
  if (!IsQuantizedState(tqc.state) || tqc.state == QuantState::kOverlapped) return false;
  if (tqc.floating() || tqc.per_channel()) return false;
  return tqc.role == TensorRole::kActivation || tqc.role == TensorRole::kWeight;
}
// Canonical order of ports: op name, inputs before outputs, index (independent of storage order).
bool PortLess(const TQC* a, const TQC* b);
// "Conv 'c1' output:0 (tensor 'x')" for messages.
std::string DescribeTqc(const TQC& tqc);

// The TQCs of one operation, one per input and output port (nullptr where a port is absent).
struct OperationQuantConfig {
  Operation* op = nullptr;
  // op->type() numbered by its table (QuantConfigTable::op_type), so a pass that looks rules up
  // per op type indexes a vector instead of hashing the type name of every op.
  int32_t type_id = -1;
  std::vector<TQC*> inputs;
  std::vector<TQC*> outputs;
  // Kept in FP32 on purpose (mixed precision), though the target quantizes its type: it must read
  // float tensors, not dequantized ones, or a QDQ runtime would run it quantized (see quant_plan.h).
  bool kept_fp32 = false;
};

}  // namespace qalign
