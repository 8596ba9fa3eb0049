// A small builder for test graphs: inputs, parameters and ops in a few lines each.
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"

namespace qalign::testing {

using AttributeList = std::vector<std::pair<std::string, Attribute>>;

// The value of `result`, or a test failure: a helper that must return a value cannot ASSERT, so it
// throws, and GoogleTest ends the test with the message (instead of a crash on a missing value).
template <typename T>
T ValueOrThrow(StatusOr<T> result, const std::string& what) {
  if (!result.ok()) {
    throw std::runtime_error(what + ": " + result.status().ToString());
  }
  return std::move(result).value();
}

// A float tensor filled with seeded uniform values in [lo, hi).
inline Tensor RandomTensor(std::vector<int64_t> shape, uint32_t seed, float lo = -1.0f,
                           float hi = 1.0f) {
  Tensor t(DataType::kFloat, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (float& x : t.values<float>()) x = dist(rng);
  return t;
}

class GraphBuilder {
 public:
  explicit GraphBuilder(int64_t opset = 13) : graph_(std::make_unique<Graph>()) {
    graph_->info().opset_imports[""] = opset;
    graph_->info().ir_version = 8;
    graph_->info().graph_name = "test";
  }

  Variable* Input(const std::string& name, std::vector<int64_t> shape,
                  DataType dtype = DataType::kFloat) {
    Variable* v = Check(graph_->AddVariable(name));
    v->set_dtype(dtype);
    v->set_shape(Shape::Of(shape));
    graph_->AddInput(v);
    return v;
  }

  Variable* Param(const std::string& name, Tensor data) {
    return Check(graph_->AddParameter(name, std::move(data)));
  }

  // A float parameter filled with seeded uniform values in [lo, hi) (RandomTensor's).
  Variable* RandomParam(const std::string& name, std::vector<int64_t> shape, uint32_t seed,
                        float lo = -1.0f, float hi = 1.0f) {
    return Param(name, RandomTensor(std::move(shape), seed, lo, hi));
  }

  Variable* Int64Param(const std::string& name, std::vector<int64_t> values) {
    return Param(name, Tensor::FromVector<int64_t>({static_cast<int64_t>(values.size())}, values));
  }

  // Adds an op with `num_outputs` outputs named "<name>:0", "<name>:1", ...; returns them.
  std::vector<Variable*> OpN(const std::string& type, const std::string& name,
                             std::vector<Variable*> inputs, size_t num_outputs,
                             AttributeList attributes = {}) {
    std::vector<Variable*> outputs;
    for (size_t i = 0; i < num_outputs; ++i) {
      outputs.push_back(Check(graph_->AddVariable(num_outputs == 1 ? name + "_out"
                                                                   : name + "_out" + std::to_string(i))));
    }
    Operation* op = Check(graph_->AddOperation(type, name, inputs, outputs));
    for (auto& [key, value] : attributes) op->SetAttribute(key, std::move(value));
    return outputs;
  }

  // Adds a single-output op; returns its output variable, named "<name>_out".
  Variable* Op(const std::string& type, const std::string& name, std::vector<Variable*> inputs,
               AttributeList attributes = {}) {
    return OpN(type, name, std::move(inputs), 1, std::move(attributes))[0];
  }

  void Output(Variable* v) { graph_->AddOutput(v); }

  Graph& graph() { return *graph_; }
  std::unique_ptr<Graph> Build() { return std::move(graph_); }

 private:
  template <typename T>
  static T Check(StatusOr<T> result) {
    return ValueOrThrow(std::move(result), "GraphBuilder");
  }

  std::unique_ptr<Graph> graph_;
};

}  // namespace qalign::testing
