// Dispatch: one TQC per input and output port of every op, with its role, scheme and state.
//
// Which ports are quantized, and how, is decided here from the graph and a target profile:
//   - SOI (role shape): shape and index operands (Shape outputs, Reshape shape, Slice
//     starts/ends/axes/steps, Gather indices, Resize roi/scales/sizes, Expand/Tile/
//     ConstantOfShape/Range operands, Pad pads/axes, Split split, Squeeze/Unsqueeze/Reduce* axes,
//     TopK k, ...), every int/bool tensor, and every tensor computed from a Shape output until
//     the chain returns to float data. Never quantized, whatever the op.
//   - FP32: every port of an op the profile does not quantize, non-float tensors that are not
//     integers (float16, double, strings), and float operands that are attributes in disguise
//     (Clip min/max, Pad constant_value).
//   - weight: the parameter weight of Conv (per-channel axis 0), ConvTranspose (axis 1), Gemm
//     (B: axis 0 when transB=1, else 1) and MatMul (last axis), with the profile's weight scheme;
//     the channel axis is set only when that scheme is per-channel.
//   - bias: the parameter bias of Conv/ConvTranspose/Gemm, int32 scheme, params derived later
//     (scale = input_scale * weight_scale).
//   - activation: every other float port of a quantized op, state INITIAL.
// Fusion: with profile.fuse_activations, a Conv/ConvTranspose/Gemm/MatMul output read only by a
// Relu or Clip (one use, not a graph output, both ops quantized) is not quantized separately:
// that output TQC and the activation's input TQC become OVERLAPPED, leaving one quantization
// point after the activation.
//
// Dispatch does NO linking: the alignment pass forms every group, including the default
// producer -> consumer sharing, because a union-find cannot be split later.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "ir/graph.h"
#include "qalign/status.h"
#include "quant/op_kinds.h"
#include "quant/quant_config.h"
#include "quant/target_profile.h"

namespace qalign {

struct DispatchStats {
  // counts[role][state]: TQCs created with that role and state.
  std::array<std::array<int64_t, kNumQuantStates>, kNumTensorRoles> counts{};
  int64_t tqcs = 0;
  int64_t quantized_ops = 0;      // ops the profile quantizes
  int64_t fp32_ops = 0;           // ops it does not
  int64_t fused_activations = 0;  // Conv/Gemm/MatMul -> Relu/Clip pairs made OVERLAPPED
  int64_t fused_hardswish = 0;    // decomposed HardSwish patterns (quant/activation_patterns.h)

  int64_t count(QuantState state) const;
  int64_t count(TensorRole role) const;
  int64_t count(TensorRole role, QuantState state) const {
    return counts[static_cast<size_t>(role)][static_cast<size_t>(state)];
  }
  // "tqcs=120 activation=80 weight=20 ... INITIAL=100 FP32=4 SOI=16 ... fused=10"
  std::string ToString() const;
};

// Creates the TQCs of `graph` in `table`, ops in storage order, inputs before outputs. Fails
// (FailedPrecondition) if `table` already holds TQCs, or if the graph has a cycle.
StatusOr<DispatchStats> DispatchQuantization(const Graph& graph, const TargetProfile& profile,
                                             QuantConfigTable* table);

// The per-channel axis of `op`'s weight input (Conv 0, ConvTranspose 1, Gemm 0 or 1 by transB,
// MatMul rank-1), or -1 if the op has no weight operand.
int WeightChannelAxis(const Operation& op);

}  // namespace qalign
