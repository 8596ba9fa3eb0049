// RegisterAllKernels: the one explicit list of every kernel family qalign has.
#include "runtime/kernels/nn/register_nn.h"
#include "runtime/kernels/registry_parts.h"

namespace qalign {

void RegisterAllKernels(KernelRegistry& registry) {
  kernels::RegisterBinaryKernels(registry);
  kernels::RegisterUnaryKernels(registry);
  kernels::RegisterWhereKernels(registry);
  kernels::RegisterSoftmaxKernels(registry);
  kernels::RegisterNormKernels(registry);
  kernels::RegisterReshapeKernels(registry);
  kernels::RegisterTransposeKernels(registry);
  kernels::RegisterConcatSplitKernels(registry);
  kernels::RegisterSliceKernels(registry);
  kernels::RegisterExpandTileKernels(registry);
  kernels::RegisterPadKernels(registry);
  kernels::RegisterGatherKernels(registry);
  kernels::RegisterTensorKernels(registry);
  kernels::RegisterCastKernels(registry);
  kernels::RegisterReduceKernels(registry);
  kernels::RegisterResizeKernels(registry);
  RegisterNnKernels(registry);  // Conv, Gemm, MatMul, pooling, BatchNormalization (oneDNN)
}

}  // namespace qalign
