// Transpose: any permutation, any element type, through StridedCopy.
#include <numeric>

#include "runtime/kernels/common.h"
#include "runtime/kernels/registry_parts.h"
#include "runtime/kernels/shape/strided_copy.h"

namespace qalign::kernels {
namespace {

StatusOr<std::unique_ptr<Kernel>> MakeTranspose(const Operation& op) {
  const std::vector<int64_t> perm_attr = op.GetInts("perm");
  return MakeKernel([perm_attr](KernelContext& ctx) -> Status {
    QALIGN_ASSIGN_OR_RETURN(const Tensor* in, RequiredInput(ctx, 0));
    const int64_t rank = in->rank();
    std::vector<int64_t> perm = perm_attr;
    if (perm.empty()) {
      perm.resize(rank);
      std::iota(perm.rbegin(), perm.rend(), 0);
    }
    if (static_cast<int64_t>(perm.size()) != rank) {
      return OpError(*ctx.op, "perm has ", perm.size(), " entries for rank ", rank);
    }
    QALIGN_ASSIGN_OR_RETURN(perm, NormalizeAxes(*ctx.op, perm, rank));
    std::vector<int64_t> out_shape(rank);
    for (int64_t i = 0; i < rank; ++i) out_shape[i] = in->shape()[perm[i]];
    Tensor& out = SetOutputForOverwrite(ctx, 0, in->dtype(), out_shape);
    const std::vector<int64_t> strides = Strides(in->shape());
    std::vector<int64_t> in_strides(rank);
    for (int64_t i = 0; i < rank; ++i) in_strides[i] = strides[perm[i]];
    return StridedCopy(*ctx.op, ctx.pool, *in, 0, out_shape, in_strides, out);
  });
}

}  // namespace

void RegisterTransposeKernels(KernelRegistry& r) { Add(r, "Transpose", 1, kMaxOpset, MakeTranspose); }

}  // namespace qalign::kernels
