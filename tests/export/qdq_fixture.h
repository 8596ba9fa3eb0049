// A small model quantized end to end for the export and simulation tests: two Convs on one input,
// a fused Relu, a Concat (an alignment rule) and an Add reading the same tensors, and a Sigmoid
// (a fixed-output rule under tflite-int8). Under --no-force-overlap the Concat's inputs, read
// also by the Add, get requantize edges.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>

#include "calib/calibrator.h"
#include "calib/data_loader.h"
#include "export/quant_plan.h"
#include "pipeline/pipeline.h"
#include "quant/target_profile.h"
#include "sim/fake_quant.h"
#include "testing/graph_builder.h"

namespace qalign::testing {

struct QuantizedModel {
  std::unique_ptr<Graph> graph;
  TargetProfile profile;
  QuantConfigTable table;
  QuantizePipelineResult result;
  QuantPlan plan;
};

inline std::unique_ptr<Graph> SmallConvGraph(int64_t opset = 13) {
  GraphBuilder b(opset);
  Variable* x = b.Input("x", {1, 3, 8, 8});
  const AttributeList conv = {{"pads", Attribute::Ints({1, 1, 1, 1})},
                              {"kernel_shape", Attribute::Ints({3, 3})}};
  Variable* c1 = b.Op("Conv", "conv1",
                      {x, b.RandomParam("w1", {4, 3, 3, 3}, 11), b.RandomParam("b1", {4}, 12)}, conv);
  Variable* r1 = b.Op("Relu", "relu1", {c1});
  Variable* c2 = b.Op("Conv", "conv2",
                      {x, b.RandomParam("w2", {4, 3, 3, 3}, 13, -0.5f, 0.5f),
                       b.RandomParam("b2", {4}, 14)},
                      conv);
  Variable* cat = b.Op("Concat", "concat", {r1, c2}, {{"axis", Attribute::Int(1)}});
  Variable* add = b.Op("Add", "add", {r1, c2});
  Variable* sig = b.Op("Sigmoid", "sigmoid", {add});
  b.Output(cat);
  b.Output(sig);
  for (Variable* v : b.graph().variables()) {
    if (!v->is_parameter() && v->dtype() == DataType::kUndefined) v->set_dtype(DataType::kFloat);
  }
  // An ONNX round trip fills every intermediate shape by shape inference.
  auto clone = CloneGraph(b.graph());
  EXPECT_TRUE(clone.ok()) << clone.status().ToString();
  return std::move(clone).value();
}

inline std::map<std::string, Tensor> RandomInput(const Graph& graph, uint32_t seed) {
  std::map<std::string, Tensor> inputs;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const Variable* v : graph.inputs()) {
    Tensor t(DataType::kFloat, v->shape().concrete());
    for (float& f : t.values<float>()) f = dist(rng);
    inputs[v->name()] = std::move(t);
  }
  return inputs;
}

// Dispatch, calibrate on seeded random samples, align, derive bias, plan.
inline std::unique_ptr<QuantizedModel> QuantizeForTest(std::unique_ptr<Graph> graph,
                                                       const std::string& target,
                                                       std::optional<bool> force_overlap,
                                                       const std::string& calib = "random:4?seed=7&low=-1&high=1") {
  auto model = std::make_unique<QuantizedModel>();
  model->graph = std::move(graph);
  auto profile = LoadTargetProfile(target);
  EXPECT_TRUE(profile.ok()) << profile.status().ToString();
  model->profile = *profile;
  auto data = OpenCalibrationData(calib, ModelInputSpecs(*model->graph));
  EXPECT_TRUE(data.ok()) << data.status().ToString();
  QuantizePipelineOptions options;
  options.alignment.force_overlap = force_overlap;
  CalibrateFn calibrate = [&](const std::vector<const Variable*>& tensors) -> StatusOr<RangeMap> {
    std::vector<ObservedTensor> observed;
    for (const Variable* v : tensors) observed.push_back({v, model->profile.activation});
    CalibrationOptions calib_options;
    calib_options.progress = ProgressMode::kQuiet;
    calib_options.num_threads = 1;
    QALIGN_ASSIGN_OR_RETURN(CalibrationResult r,
                            RunCalibration(*model->graph, observed, **data, calib_options));
    return ToRangeMap(r);
  };
  auto result = RunQuantizePipeline(*model->graph, model->profile, options, calibrate, &model->table);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  model->result = std::move(result).value();
  auto plan = BuildQuantPlan(*model->graph, model->table, model->result.alignment.requantizes);
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  model->plan = std::move(plan).value();
  return model;
}

}  // namespace qalign::testing
