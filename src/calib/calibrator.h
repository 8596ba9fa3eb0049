// Calibration run: feeds samples through the executor and observes chosen float tensors.
//
// For each observed tensor a Histogram accumulates every value the tensor takes over all samples
// (through the executor's per-tensor hook; binned for the percentile, KL and MSE observers, only
// its extremes for minmax); at the end the tensor's observer turns the histogram
// into a clipping range and (scale, zero_point) under the tensor's scheme.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "calib/data_loader.h"
#include "calib/histogram.h"
#include "calib/observer.h"
#include "calib/progress.h"
#include "ir/graph.h"
#include "quant/quant_config.h"
#include "quant/ranges.h"
#include "qalign/status.h"

namespace qalign {

// A tensor to observe, the scheme its params are computed for, and the ends of its range the
// observer may not clip (ObserverOptions::keep).
struct ObservedTensor {
  const Variable* variable = nullptr;
  QuantScheme scheme;
  KeptEnds keep = {};
};

// Every float tensor that is not a parameter (graph inputs and op outputs), in graph order.
// Tensors whose dtype is unknown are included; RunCalibration drops those that hold no float data.
std::vector<ObservedTensor> FloatActivationTensors(const Graph& graph, const QuantScheme& scheme);

struct CalibrationOptions {
  ObserverOptions observer;
  int num_bins = Histogram::kDefaultBins;
  // Bin every value even when the observer does not need it (minmax), so that ranges.json carries
  // histograms for other tools. Off, minmax calibration only tracks the extremes.
  bool keep_histograms = false;
  ProgressMode progress = ProgressMode::kAuto;
  std::string progress_label = "calibrate";
  // Called after each sample with (done, total); returning false stops the run with
  // StatusCode::kCancelled.
  std::function<bool(size_t done, size_t total)> on_sample;
  int num_threads = 0;  // executor threads; 0: all cores
  // Also record the shape of every tensor of the first sample's run (CalibrationResult::shapes),
  // and keep the graph outputs of the first `keep_outputs` samples, so that a caller needing
  // either does not run the model again.
  bool record_shapes = false;
  size_t keep_outputs = 0;
  // Also hands every tensor of every sample's run to this hook (e.g. BiasCorrection::Observe).
  std::function<void(const Variable& variable, const Tensor& value)> tensor_hook;
};

struct TensorCalibration {
  QuantScheme scheme;
  KeptEnds keep = {};
  Histogram histogram;
  ObservedParams params;  // filled by the observer after the last sample
};

struct CalibrationResult {
  std::map<std::string, TensorCalibration> tensors;  // by tensor name
  size_t samples = 0;
  double seconds = 0.0;      // wall time of the whole run, observers included
  double run_seconds = 0.0;  // of that, loading the samples and running them (with the hooks)
  int64_t peak_bytes = 0;   // the executor's peak live-tensor bytes over the samples
  std::map<std::string, std::vector<int64_t>> shapes;   // with record_shapes, by tensor name
  std::vector<std::map<std::string, Tensor>> outputs;  // with keep_outputs, by sample
};

// Runs every sample of `data` through `graph` and observes `tensors`. Fails naming the sample if
// it cannot be loaded or run, and naming the tensor if it held NaN or Inf or was never produced.
StatusOr<CalibrationResult> RunCalibration(const Graph& graph,
                                           const std::vector<ObservedTensor>& tensors,
                                           const CalibrationDataset& data,
                                           const CalibrationOptions& options);

// The ranges.json content of a result: each tensor's chosen range and its histogram.
RangeMap ToRangeMap(const CalibrationResult& result);

}  // namespace qalign
