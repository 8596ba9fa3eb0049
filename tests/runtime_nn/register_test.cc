// RegisterNnKernels: every nn op has a fast and a reference kernel, found by (op type, opset).
#include <gtest/gtest.h>

#include "nn_test_util.h"
#include "runtime/kernels/nn/register_nn.h"

namespace qalign::nn {
namespace {

TEST(RegisterNnKernelsTest, EveryOpHasFastAndReference) {
  KernelRegistry registry;
  RegisterNnKernels(registry);
  for (const char* type : {"Conv", "ConvTranspose", "Gemm", "MatMul", "MaxPool", "AveragePool",
                           "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization"}) {
    for (int64_t opset : {7, 11, 13, 17}) {
      const KernelEntry* fast = registry.Find("", type, opset, KernelFlavor::kFast);
      const KernelEntry* reference = registry.Find("", type, opset, KernelFlavor::kReference);
      ASSERT_NE(fast, nullptr) << type << " opset " << opset;
      ASSERT_NE(reference, nullptr) << type << " opset " << opset;
      EXPECT_EQ(fast->flavor, KernelFlavor::kFast) << type;
      EXPECT_EQ(reference->flavor, KernelFlavor::kReference) << type;
    }
  }
}

TEST(RegisterNnKernelsTest, RegistryCreatesAWorkingConv) {
  KernelRegistry registry;
  RegisterNnKernels(registry);
  auto one = testing::MakeOp("Conv", {std::vector<int64_t>{1, 1, 3, 3},
                                      std::vector<int64_t>{1, 1, 2, 2}});
  const Tensor x = testing::Floats({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  const Tensor w = testing::Floats({1, 1, 2, 2}, {1, 1, 1, 1});
  for (KernelFlavor flavor : {KernelFlavor::kFast, KernelFlavor::kReference}) {
    auto kernel = registry.Create(*one.op, flavor);
    ASSERT_TRUE(kernel.ok()) << kernel.status().ToString();
    auto y = testing::RunKernel(**kernel, *one.op, {&x, &w});
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    EXPECT_TRUE(testing::Close(*y, testing::Floats({1, 1, 2, 2}, {12, 16, 24, 28})));
  }
}

}  // namespace
}  // namespace qalign::nn
