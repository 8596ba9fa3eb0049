// Factories of the nn kernels, one fast (oneDNN or vectorized) and one reference per op; the
// registry (register_nn.cc) and the tests (tests/runtime_nn) create kernels through these.
#pragma once

#include <memory>

#include "runtime/kernel.h"

namespace qalign::nn {

using KernelOr = StatusOr<std::unique_ptr<Kernel>>;

// How many times a fast kernel handed a shape oneDNN does not support to its reference kernel
// (process-wide); the tests check their fast-vs-reference cases really ran the fast path.
int64_t ReferenceFallbackCount();
void NoteReferenceFallback();

// conv.cc (oneDNN)
KernelOr CreateConvFast(const Operation& op);
KernelOr CreateConvTransposeFast(const Operation& op);
// conv_reference.cc
KernelOr CreateConvReference(const Operation& op);
KernelOr CreateConvTransposeReference(const Operation& op);

// matmul.cc (oneDNN)
KernelOr CreateGemmFast(const Operation& op);
KernelOr CreateMatMulFast(const Operation& op);
// matmul_reference.cc
KernelOr CreateGemmReference(const Operation& op);
KernelOr CreateMatMulReference(const Operation& op);

// pool.cc (oneDNN for windowed pooling, vector loops for global pooling)
KernelOr CreateMaxPoolFast(const Operation& op);
KernelOr CreateAveragePoolFast(const Operation& op);
KernelOr CreateGlobalAveragePoolFast(const Operation& op);
KernelOr CreateGlobalMaxPoolFast(const Operation& op);
// pool_reference.cc
KernelOr CreateMaxPoolReference(const Operation& op);
KernelOr CreateAveragePoolReference(const Operation& op);
KernelOr CreateGlobalAveragePoolReference(const Operation& op);
KernelOr CreateGlobalMaxPoolReference(const Operation& op);

// batch_norm.cc
KernelOr CreateBatchNormalizationFast(const Operation& op);
KernelOr CreateBatchNormalizationReference(const Operation& op);

}  // namespace qalign::nn
