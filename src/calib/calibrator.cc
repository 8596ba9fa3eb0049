// Calibration run: executor hook -> per-tensor histograms -> observer ranges and params.
#include "calib/calibrator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <span>
#include <thread>
#include <unordered_map>
#include <utility>

#include "runtime/executor.h"

namespace qalign {

std::vector<ObservedTensor> FloatActivationTensors(const Graph& graph, const QuantScheme& scheme) {
  std::vector<ObservedTensor> out;
  for (const Variable* v : graph.variables()) {
    // A tensor of unknown dtype (no shape inference ran) is kept: the hook looks at the data.
    if (v->is_parameter()) continue;
    if (v->dtype() != DataType::kFloat && v->dtype() != DataType::kUndefined) continue;
    if (v->producer() == nullptr && !v->is_graph_input()) continue;  // dangling
    out.push_back({v, scheme, {}});
  }
  return out;
}

StatusOr<CalibrationResult> RunCalibration(const Graph& graph,
                                           const std::vector<ObservedTensor>& tensors,
                                           const CalibrationDataset& data,
                                           const CalibrationOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (data.size() == 0) return InvalidArgumentError("calibration data holds no samples");
  ExecutorOptions executor_options;
  executor_options.num_threads = options.num_threads;
  QALIGN_ASSIGN_OR_RETURN(std::unique_ptr<Executor> executor,
                          Executor::Create(graph, executor_options));

  CalibrationResult result;
  std::unordered_map<const Variable*, TensorCalibration*> observed;
  // The minmax observer reads only the extremes: binning every value would triple the cost of
  // the hook for nothing.
  const bool binned = options.keep_histograms || options.observer.kind != ObserverKind::kMinMax;
  for (const ObservedTensor& t : tensors) {
    TensorCalibration calibration{
        t.scheme, t.keep, binned ? Histogram(options.num_bins) : Histogram::RangeOnly(), {}};
    auto [it, inserted] = result.tensors.emplace(t.variable->name(), std::move(calibration));
    if (inserted) observed[t.variable] = &it->second;
  }

  const int hook_threads =
      options.num_threads > 0 ? options.num_threads
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Large tensors are scanned on the executor's pool, in chunks of at least 32K values.
  ThreadPool* pool = executor->pool();
  const Histogram::ChunkRunner on_pool = [pool](size_t chunks,
                                                const std::function<void(size_t)>& body) {
    pool->ParallelFor(static_cast<int64_t>(chunks), [&body](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) body(static_cast<size_t>(c));
    });
  };
  constexpr size_t kMinChunk = size_t{1} << 15;
  // The hook sees each tensor once per sample; non-float or unobserved tensors are skipped.
  std::string failure;
  bool first_sample = true;
  executor->set_hook([&](const Variable& variable, Tensor& tensor) {
    if (options.record_shapes && first_sample) result.shapes[variable.name()] = tensor.shape();
    if (options.tensor_hook) options.tensor_hook(variable, tensor);
    auto it = observed.find(&variable);
    if (it == observed.end() || tensor.dtype() != DataType::kFloat) return;
    Histogram& histogram = it->second->histogram;
    const int64_t non_finite_before = histogram.non_finite();
    // Read through a const reference: a graph input borrowed from the caller stays a view.
    std::span<const float> values = std::as_const(tensor).values<float>();
    const size_t chunks = std::min<size_t>(values.size() / kMinChunk,
                                           static_cast<size_t>(hook_threads));
    if (pool != nullptr && chunks > 1) {
      histogram.AddParallel(values, chunks, on_pool);
    } else {
      histogram.Add(values);
    }
    if (histogram.non_finite() != non_finite_before && failure.empty()) {
      failure = StrCat("tensor '", variable.name(), "' holds NaN or Inf");
      if (variable.producer() != nullptr) {
        failure += StrCat(" (output of ", variable.producer()->Describe(), ")");
      }
    }
  });

  ProgressReporter progress(options.progress_label, data.size(), options.progress);
  for (size_t i = 0; i < data.size(); ++i) {
    QALIGN_ASSIGN_OR_RETURN(Sample sample, data.Load(i));
    auto outputs = executor->Run(std::move(sample));
    if (!outputs.ok()) {
      return Status(outputs.status().code(),
                    StrCat(data.SampleName(i), ": ", outputs.status().message()));
    }
    if (!failure.empty()) return InvalidArgumentError(data.SampleName(i), ": ", failure);
    first_sample = false;
    if (i < options.keep_outputs) result.outputs.push_back(std::move(*outputs));
    result.peak_bytes = std::max(result.peak_bytes, executor->peak_bytes());
    progress.Update(i + 1);
    if (options.on_sample && !options.on_sample(i + 1, data.size())) {
      return CancelledError(options.progress_label, ": stopped after ", i + 1, " of ",
                            data.size(), " samples");
    }
  }
  progress.Finish();
  result.samples = data.size();

  const auto observe_start = std::chrono::steady_clock::now();
  result.run_seconds = std::chrono::duration<double>(observe_start - start).count();
  // The observers (KL and MSE search over each histogram) are independent per tensor: run them
  // on all cores, each worker taking the next tensor.
  std::vector<std::pair<const std::string*, TensorCalibration*>> work;
  for (auto it = result.tensors.begin(); it != result.tensors.end();) {
    if (it->second.histogram.empty()) {
      const Variable* v = graph.FindVariable(it->first);
      if (v != nullptr && v->dtype() == DataType::kUndefined) {
        it = result.tensors.erase(it);  // turned out not to be float data
        continue;
      }
      return InternalError("tensor '", it->first, "' was never produced during calibration");
    }
    work.emplace_back(&it->first, &it->second);
    ++it;
  }
  std::vector<Status> statuses(work.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < work.size(); i = next++) {
      TensorCalibration& c = *work[i].second;
      ObserverOptions observer = options.observer;
      observer.keep = c.keep;
      auto params = ObserveParams(c.histogram, c.scheme, observer);
      if (params.ok()) {
        c.params = *params;
      } else {
        statuses[i] = Status(params.status().code(),
                             StrCat("tensor '", *work[i].first, "': ", params.status().message()));
      }
    }
  };
  const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  const size_t num_workers = std::min<size_t>(
      work.size(), options.num_threads > 0 ? static_cast<size_t>(options.num_threads) : hardware);
  std::vector<std::thread> threads;
  for (size_t t = 1; t < num_workers; ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  for (const Status& status : statuses) QALIGN_RETURN_IF_ERROR(status);
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

RangeMap ToRangeMap(const CalibrationResult& result) {
  RangeMap map;
  for (const auto& [name, calibration] : result.tensors) {
    TensorRange range;
    range.min = calibration.params.range.min;
    range.max = calibration.params.range.max;
    range.has_histogram = calibration.histogram.binned();
    if (!range.has_histogram) {
      map.ranges.emplace(name, std::move(range));
      continue;
    }
    range.hist_min = static_cast<float>(calibration.histogram.lo());
    range.hist_max = static_cast<float>(calibration.histogram.hi());
    range.counts.assign(calibration.histogram.counts().begin(), calibration.histogram.counts().end());
    map.ranges.emplace(name, std::move(range));
  }
  return map;
}

}  // namespace qalign
