// The one list of the nn-category kernels, fast and reference.
#include "runtime/kernels/nn/register_nn.h"

namespace qalign {

void RegisterNnKernels(KernelRegistry& registry) { (void)registry; }

}  // namespace qalign
