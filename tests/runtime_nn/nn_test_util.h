// Helpers for the nn kernel tests: one-op graphs, running a kernel, seeded tensors, comparison.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "runtime/kernel.h"
#include "runtime/kernels/nn/nn_kernels.h"
#include "testing/graph_builder.h"

namespace qalign::nn::testing {

// A graph holding one op whose inputs are graph inputs x0, x1, ... (nullopt: omitted input).
struct OneOp {
  std::unique_ptr<Graph> graph;
  Operation* op = nullptr;
};

inline OneOp MakeOp(const std::string& type,
                    const std::vector<std::optional<std::vector<int64_t>>>& input_shapes,
                    qalign::testing::AttributeList attributes = {}, int64_t opset = 13,
                    size_t num_outputs = 1) {
  qalign::testing::GraphBuilder builder(opset);
  std::vector<Variable*> inputs;
  for (size_t i = 0; i < input_shapes.size(); ++i) {
    inputs.push_back(input_shapes[i] ? builder.Input("x" + std::to_string(i), *input_shapes[i])
                                     : nullptr);
  }
  std::vector<Variable*> outputs =
      builder.OpN(type, "node", inputs, num_outputs, std::move(attributes));
  for (Variable* v : outputs) builder.Output(v);
  OneOp result;
  result.graph = builder.Build();
  result.op = result.graph->FindOperation("node");
  result.op->set_opset(opset);
  return result;
}

// Runs `kernel` on `inputs` (nullptr: omitted) and returns its first output.
inline StatusOr<Tensor> RunKernel(Kernel& kernel, const Operation& op,
                                  const std::vector<const Tensor*>& inputs) {
  std::vector<Tensor> outputs(op.outputs().size());
  KernelContext context;
  context.op = &op;
  context.inputs = inputs;
  context.outputs = &outputs;
  QALIGN_RETURN_IF_ERROR(kernel.Run(context));
  return std::move(outputs[0]);
}

inline Tensor RandomTensor(std::vector<int64_t> shape, std::mt19937& rng, float lo = -1.0f,
                           float hi = 1.0f) {
  Tensor t(DataType::kFloat, std::move(shape));
  std::uniform_real_distribution<float> dist(lo, hi);
  for (float& v : t.values<float>()) v = dist(rng);
  return t;
}

// Values are close when |got - want| <= 1e-4 * (|want| + max |want|): relative per element, with
// the tensor's scale as floor so sums that cancel to ~0 are not held to an impossible bound.
inline ::testing::AssertionResult Close(const Tensor& got, const Tensor& want,
                                        double rtol = 1e-4) {
  if (got.shape() != want.shape()) {
    return ::testing::AssertionFailure() << "shape " << ShapeToString(got.shape()) << " vs "
                                         << ShapeToString(want.shape());
  }
  const auto g = got.values<float>();
  const auto w = want.values<float>();
  double scale = 0.0;
  for (float v : w) scale = std::max(scale, static_cast<double>(std::fabs(v)));
  for (size_t i = 0; i < w.size(); ++i) {
    const double err = std::fabs(static_cast<double>(g[i]) - w[i]);
    if (!(err <= rtol * (std::fabs(w[i]) + scale))) {
      return ::testing::AssertionFailure() << "element " << i << ": got " << g[i] << ", want "
                                           << w[i] << " (scale " << scale << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

inline Tensor Floats(std::vector<int64_t> shape, const std::vector<float>& values) {
  return Tensor::FromVector<float>(std::move(shape), values);
}

// Runs the fast and the reference kernel of `op` and compares them; also fails when the fast
// kernel handed the case to its reference (so the sweep really tests the oneDNN path) unless
// `allow_fallback`.
template <typename FastFactory, typename ReferenceFactory>
::testing::AssertionResult FastMatchesReference(FastFactory fast_factory,
                                                ReferenceFactory reference_factory,
                                                const Operation& op,
                                                const std::vector<const Tensor*>& inputs,
                                                bool allow_fallback = false) {
  auto fast = fast_factory(op);
  if (!fast.ok()) return ::testing::AssertionFailure() << fast.status().ToString();
  auto reference = reference_factory(op);
  if (!reference.ok()) return ::testing::AssertionFailure() << reference.status().ToString();
  const int64_t fallbacks = ReferenceFallbackCount();
  auto got = RunKernel(**fast, op, inputs);
  if (!got.ok()) return ::testing::AssertionFailure() << "fast: " << got.status().ToString();
  if (!allow_fallback && ReferenceFallbackCount() != fallbacks) {
    return ::testing::AssertionFailure() << "the fast kernel fell back to the reference";
  }
  auto want = RunKernel(**reference, op, inputs);
  if (!want.ok()) return ::testing::AssertionFailure() << "reference: " << want.status().ToString();
  return Close(*got, *want);
}

}  // namespace qalign::nn::testing
