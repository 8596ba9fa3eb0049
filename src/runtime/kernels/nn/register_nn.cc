// The one list of the nn-category kernels, fast and reference, keyed by (domain, op type, opset).
#include "runtime/kernels/nn/register_nn.h"

#include "runtime/kernels/nn/nn_kernels.h"

namespace qalign {

void RegisterNnKernels(KernelRegistry& registry) {
  struct Row {
    const char* op_type;
    int64_t since_version;
    KernelFactory fast;
    KernelFactory reference;
  };
  // Every op here keeps the same semantics over opsets 1..17 for what qalign supports (f32,
  // inference); newer attributes (dilations, ceil_mode, count_include_pad) default to the old
  // behaviour when absent.
  const Row rows[] = {
      {"Conv", 1, nn::CreateConvFast, nn::CreateConvReference},
      {"ConvTranspose", 1, nn::CreateConvTransposeFast, nn::CreateConvTransposeReference},
      {"Gemm", 7, nn::CreateGemmFast, nn::CreateGemmReference},
      {"MatMul", 1, nn::CreateMatMulFast, nn::CreateMatMulReference},
      {"MaxPool", 1, nn::CreateMaxPoolFast, nn::CreateMaxPoolReference},
      {"AveragePool", 1, nn::CreateAveragePoolFast, nn::CreateAveragePoolReference},
      {"GlobalAveragePool", 1, nn::CreateGlobalAveragePoolFast,
       nn::CreateGlobalAveragePoolReference},
      {"GlobalMaxPool", 1, nn::CreateGlobalMaxPoolFast, nn::CreateGlobalMaxPoolReference},
      {"BatchNormalization", 6, nn::CreateBatchNormalizationFast,
       nn::CreateBatchNormalizationReference},
  };
  for (const Row& row : rows) {
    KernelEntry fast;
    fast.domain = "";
    fast.op_type = row.op_type;
    fast.since_version = row.since_version;
    fast.flavor = KernelFlavor::kFast;
    fast.factory = row.fast;
    registry.Register(fast);
    KernelEntry reference = fast;
    reference.flavor = KernelFlavor::kReference;
    reference.factory = row.reference;
    registry.Register(std::move(reference));
  }
}

}  // namespace qalign
