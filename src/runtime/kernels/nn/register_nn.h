// Registration of the neural-net kernels (Conv, ConvTranspose, Gemm, MatMul, pooling, BatchNorm).
#pragma once

#include "runtime/kernel.h"

namespace qalign {

// Registers the fast (oneDNN) and reference kernels of the nn category.
void RegisterNnKernels(KernelRegistry& registry);

}  // namespace qalign
