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
#include "pipeline/mixed_precision.h"
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

// The built graph with float activations and every intermediate shape filled in by an ONNX
// round trip (shape inference), as the export and the simulation need.
inline std::unique_ptr<Graph> WithInferredShapes(GraphBuilder& b) {
  for (Variable* v : b.graph().variables()) {
    if (!v->is_parameter() && v->dtype() == DataType::kUndefined) v->set_dtype(DataType::kFloat);
  }
  return ValueOrThrow(CloneGraph(b.graph()), "CloneGraph");
}

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
  return WithInferredShapes(b);
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

// Dispatch, calibrate on seeded random samples, align, derive bias, plan; the ops (or op types)
// `int16` names are quantized at 16 bits (the target's activation16). Returns nullptr, with a
// failure naming the step, when a step fails: callers ASSERT_NE(q, nullptr) so a broken
// precondition stops the test with a message instead of crashing it.
inline std::unique_ptr<QuantizedModel> QuantizeForTest(std::unique_ptr<Graph> graph,
                                                       const std::string& target,
                                                       std::optional<bool> force_overlap,
                                                       const std::string& calib = "random:4?seed=7&low=-1&high=1",
                                                       const std::vector<std::string>& int16 = {}) {
  auto model = std::make_unique<QuantizedModel>();
  model->graph = std::move(graph);
  auto fail = [](const char* step, const Status& status) -> std::unique_ptr<QuantizedModel> {
    ADD_FAILURE() << "QuantizeForTest: " << step << ": " << status.ToString();
    return nullptr;
  };
  auto profile = LoadTargetProfile(target);
  if (!profile.ok()) return fail("target", profile.status());
  model->profile = *profile;
  auto data = OpenCalibrationData(calib, ModelInputSpecs(*model->graph));
  if (!data.ok()) return fail("calibration data", data.status());
  QuantizePipelineOptions options;
  options.alignment.force_overlap = force_overlap;
  auto int16_ops = ResolveExcludedOps(*model->graph, int16, "--int16");
  if (!int16_ops.ok()) return fail("--int16", int16_ops.status());
  options.int16_ops = *int16_ops;
  CalibrateFn calibrate = [&](const std::vector<const Variable*>& tensors) -> StatusOr<RangeMap> {
    std::vector<ObservedTensor> observed;
    for (const Variable* v : tensors) observed.push_back({v, model->profile.activation, {}});
    CalibrationOptions calib_options;
    calib_options.progress = ProgressMode::kQuiet;
    calib_options.num_threads = 1;
    QALIGN_ASSIGN_OR_RETURN(CalibrationResult r,
                            RunCalibration(*model->graph, observed, **data, calib_options));
    return ToRangeMap(r);
  };
  auto result = RunQuantizePipeline(*model->graph, model->profile, options, calibrate, &model->table);
  if (!result.ok()) return fail("pipeline", result.status());
  model->result = std::move(result).value();
  auto plan = BuildQuantPlan(*model->graph, model->table, model->result.alignment.requantizes);
  if (!plan.ok()) return fail("plan", plan.status());
  model->plan = std::move(plan).value();
  return model;
}

}  // namespace qalign::testing
