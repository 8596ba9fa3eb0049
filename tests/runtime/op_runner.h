// Test helper: run one op (or a small graph) through the Executor and return its outputs.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "runtime/executor.h"
#include "testing/graph_builder.h"

namespace qalign::testing {

struct OpInput {
  Tensor value;
  bool as_parameter = false;  // a constant (initializer) instead of a fed graph input
  bool omitted = false;       // an empty optional input slot
};

inline OpInput Fed(Tensor t) { return OpInput{std::move(t), false, false}; }
inline OpInput Const(Tensor t) { return OpInput{std::move(t), true, false}; }
inline OpInput Omitted() { return OpInput{Tensor(), false, true}; }

// Builds a one-op graph and runs it; fails the test (and returns an empty vector) on error.
inline StatusOr<std::vector<Tensor>> RunOp(const std::string& type, std::vector<OpInput> inputs,
                                           AttributeList attributes = {}, size_t num_outputs = 1,
                                           int64_t opset = 13,
                                           KernelFlavor flavor = KernelFlavor::kFast,
                                           int num_threads = 2) {
  GraphBuilder b(opset);
  std::vector<Variable*> vars;
  std::map<std::string, Tensor> feeds;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string name = "in" + std::to_string(i);
    if (inputs[i].omitted) {
      vars.push_back(nullptr);
    } else if (inputs[i].as_parameter) {
      vars.push_back(b.Param(name, inputs[i].value));
    } else {
      vars.push_back(b.Input(name, inputs[i].value.shape(), inputs[i].value.dtype()));
      feeds[name] = inputs[i].value;
    }
  }
  std::vector<Variable*> outs = b.OpN(type, "op", vars, num_outputs, std::move(attributes));
  for (Variable* v : outs) b.Output(v);
  std::unique_ptr<Graph> graph = b.Build();
  ExecutorOptions options;
  options.flavor = flavor;
  options.num_threads = num_threads;
  QALIGN_ASSIGN_OR_RETURN(auto executor, Executor::Create(*graph, options));
  QALIGN_ASSIGN_OR_RETURN(auto results, executor->Run(std::move(feeds)));
  std::vector<Tensor> out;
  for (Variable* v : outs) out.push_back(std::move(results.at(v->name())));
  return out;
}

inline Tensor F32(std::vector<int64_t> shape, std::vector<float> values) {
  return Tensor::FromVector<float>(std::move(shape), values);
}
inline Tensor I64(std::vector<int64_t> shape, std::vector<int64_t> values) {
  return Tensor::FromVector<int64_t>(std::move(shape), values);
}

inline Tensor RandomF32(std::vector<int64_t> shape, uint32_t seed, float lo = -2.0f, float hi = 2.0f) {
  Tensor t(DataType::kFloat, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (float& x : t.values<float>()) x = dist(rng);
  return t;
}

}  // namespace qalign::testing
