// QuantizeLinear / DequantizeLinear kernels (opset 10+, per-tensor and per-axis), so qalign's
// executor runs exported QDQ models (`qalign eval`). Registered explicitly, not statically.
#pragma once

#include "runtime/kernel.h"

namespace qalign {

// Adds QuantizeLinear and DequantizeLinear unless `registry` already has them.
void RegisterQdqKernels(KernelRegistry& registry);

// Every default kernel plus the QDQ ones (built on first use).
const KernelRegistry& SimKernelRegistry();

}  // namespace qalign
