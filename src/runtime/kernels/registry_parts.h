// One registration function per kernel family; registry.cc calls them all in one list.
#pragma once

#include <cstdint>

#include "runtime/kernel.h"

namespace qalign::kernels {

// The newest default-domain opset whose semantics the kernels implement.
inline constexpr int64_t kMaxOpset = 17;

void RegisterBinaryKernels(KernelRegistry& registry);      // elementwise/binary.cc
void RegisterUnaryKernels(KernelRegistry& registry);       // elementwise/unary.cc
void RegisterWhereKernels(KernelRegistry& registry);       // elementwise/where.cc
void RegisterSoftmaxKernels(KernelRegistry& registry);     // activation/softmax.cc
void RegisterNormKernels(KernelRegistry& registry);        // activation/layer_norm.cc
void RegisterReshapeKernels(KernelRegistry& registry);     // shape/reshape.cc
void RegisterTransposeKernels(KernelRegistry& registry);   // shape/transpose.cc
void RegisterConcatSplitKernels(KernelRegistry& registry); // shape/concat_split.cc
void RegisterSliceKernels(KernelRegistry& registry);       // shape/slice.cc
void RegisterExpandTileKernels(KernelRegistry& registry);  // shape/expand_tile.cc
void RegisterPadKernels(KernelRegistry& registry);         // shape/pad.cc
void RegisterGatherKernels(KernelRegistry& registry);      // tensor/gather.cc
void RegisterTensorKernels(KernelRegistry& registry);      // tensor/tensor_ops.cc
void RegisterCastKernels(KernelRegistry& registry);        // tensor/cast.cc
void RegisterReduceKernels(KernelRegistry& registry);      // reduce/reduce.cc
void RegisterResizeKernels(KernelRegistry& registry);      // resize/resize.cc

}  // namespace qalign::kernels
