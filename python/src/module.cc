// qalign._qalign: the C++ public API (include/qalign/) for the Python package qalign. Options come
// as dicts the package (python/qalign/__init__.py) built and checked, results go back as dicts;
// each call releases the GIL while the C++ work runs.
#include <malloc.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "qalign/check.h"
#include "qalign/quantize.h"
#include "qalign/status.h"
#include "qalign/targets.h"

namespace py = pybind11;
using namespace pybind11::literals;  // "key"_a = value: one field of a result dict

namespace qalign::python {
namespace {

// Raised as _qalign.StatusError(kind, message); the package turns it into QAlignError and its
// subclasses. kind: "usage", "io", "error".
PyObject* g_status_error = nullptr;

struct StatusException {
  std::string kind;
  std::string message;
};

[[noreturn]] void Raise(const Status& status, const char* kind = nullptr) {
  std::string message = status.message();
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  std::string k = kind != nullptr ? kind : "error";
  if (kind == nullptr &&
      (status.code() == StatusCode::kIoError || status.code() == StatusCode::kNotFound)) {
    k = "io";  // a file that is missing or cannot be read or written
  }
  throw StatusException{k, message};
}

template <typename T>
T Get(const py::dict& options, const char* key, T fallback) {
  if (!options.contains(key) || options[key].is_none()) return fallback;
  return options[key].cast<T>();
}

using Shapes = std::map<std::string, std::vector<int64_t>>;

void ReadModelOptions(const py::dict& o, ModelOptions* m) {
  m->model_path = Get<std::string>(o, "model", "");
  m->target = Get<std::string>(o, "target", "");
  m->input_shapes = Get<Shapes>(o, "input_shapes", {});
  m->fold = Get<bool>(o, "fold", true);
  m->equalize = Get<bool>(o, "equalize", true);
  m->quiet = Get<bool>(o, "quiet", false);
  m->num_threads = Get<int>(o, "threads", 0);
}

void ReadAlignOverrides(const py::dict& o, AlignOverrides* a) {
  a->align = Get<std::vector<std::string>>(o, "align", {});
  a->align_node = Get<std::vector<std::string>>(o, "align_node", {});
  a->align_config = Get<std::string>(o, "align_config", "");
  a->force_overlap = Get<std::optional<bool>>(o, "force_overlap", std::nullopt);
  a->requantize_on_mismatch = Get<bool>(o, "requantize_on_mismatch", false);
  a->saturation_ranges = Get<bool>(o, "saturation_ranges", true);
}

// The samples: a list of lists of (input name or "", C-contiguous native-order ndarray, ONNX
// dtype), made by the package. The arrays stay referenced by `samples` for the whole call; only
// their buffers' addresses are kept, and the C++ side reads the buffers in place.
std::vector<InputSample> ReadSamples(const py::object& samples) {
  std::vector<InputSample> out;
  if (samples.is_none()) return out;
  for (const py::handle& sample : samples) {
    InputSample arrays;
    for (const py::handle& item : sample) {
      auto pair = item.cast<py::tuple>();
      auto array = pair[1].cast<py::array>();
      InputArray a;
      a.input = pair[0].cast<std::string>();
      a.onnx_dtype = pair[2].cast<int32_t>();
      a.dims.assign(array.shape(), array.shape() + array.ndim());
      a.data = array.data();
      a.bytes = static_cast<size_t>(array.nbytes());
      arrays.push_back(std::move(a));
    }
    out.push_back(std::move(arrays));
  }
  return out;
}

// The progress callback for the C++ side: with the GIL held, calls the package's `progress`
// (which draws nothing or calls the user's function) and checks for signals, so Ctrl-C stops the
// work between samples. A Python exception is kept in `*pending` and rethrown after the call.
ProgressCallback MakeProgress(const py::object& progress, std::optional<py::error_already_set>* pending) {
  return [progress, pending](const std::string& stage, int64_t done, int64_t total) {
    py::gil_scoped_acquire gil;
    try {
      if (!progress.is_none()) progress(stage, done, total);
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    } catch (py::error_already_set& e) {
      pending->emplace(std::move(e));
      return false;
    }
    return true;
  };
}

// Runs `work` without the GIL; a cancelled run rethrows the Python exception that stopped it.
template <typename Result, typename Work>
Result RunReleased(Work work, std::optional<py::error_already_set>* pending) {
  std::optional<StatusOr<Result>> result;
  {
    py::gil_scoped_release release;
    result.emplace(work());
  }
  if (pending->has_value()) throw std::move(**pending);
  if (!result->ok()) Raise(result->status());
  return std::move(**result);
}

py::dict QualityDict(const std::map<std::string, OutputQuality>& outputs) {
  py::dict d;
  for (const auto& [name, q] : outputs) {
    d[py::str(name)] =
        py::dict("snr_db"_a = q.snr_db, "cosine"_a = q.cosine, "max_abs_error"_a = q.max_abs_error);
  }
  return d;
}

py::dict Quantize(const py::dict& o, const py::object& samples, const py::object& progress) {
  QuantizeOptions options;
  ReadModelOptions(o, &options);
  ReadAlignOverrides(o, &options);
  options.calib_spec = Get<std::string>(o, "calib", "");
  options.observer = Get<std::string>(o, "observer", "percentile");
  options.percentile = Get<double>(o, "percentile", 99.99);
  options.holdout = Get<int>(o, "holdout", -1);
  options.output_path = Get<std::string>(o, "output", "");
  options.ranges_path = Get<std::string>(o, "ranges", "");
  options.no_align = Get<bool>(o, "no_align", false);
  options.report_path = Get<std::string>(o, "report", "");
  options.table_path = Get<std::string>(o, "table", "");
  options.trt_cache_path = Get<std::string>(o, "trt_cache", "");
  options.eval_samples = Get<int>(o, "eval_samples", 8);
  options.exclude = Get<std::vector<std::string>>(o, "exclude", {});
  options.int16 = Get<std::vector<std::string>>(o, "int16", {});
  options.accuracy_budget_db = Get<std::optional<double>>(o, "accuracy_budget", std::nullopt);
  options.max_fp32_ops = Get<int>(o, "max_fp32_ops", -1);
  options.bias_correction = Get<std::optional<bool>>(o, "bias_correction", std::nullopt);
  options.optimize_weights = Get<bool>(o, "optimize_weights", false);
  Status usage = CheckCalibrationDataOptions(options);
  if (usage.ok()) usage = CheckAlignOverrides(options);
  if (!usage.ok()) Raise(usage, "usage");
  options.samples = ReadSamples(samples);
  std::optional<py::error_already_set> pending;
  options.progress = MakeProgress(progress, &pending);
  QuantizeSummary s = RunReleased<QuantizeSummary>([&] { return QuantizeModel(options); }, &pending);
  return py::dict(
      "model"_a = s.model, "target"_a = s.target, "output"_a = s.output, "ops"_a = s.ops,
      "quantized_ops"_a = s.quantized_ops, "fp32_ops"_a = s.fp32_ops, "folded_ops"_a = s.folded_ops,
      "equalized_pairs"_a = s.equalized_pairs, "quantized_tensors"_a = s.quantized_tensors,
      "weights"_a = s.weights, "biases"_a = s.biases, "groups"_a = s.groups,
      "requantizes"_a = s.requantizes, "violations"_a = s.violation_messages,
      "calibration_samples"_a = s.calibration_samples, "holdout_samples"_a = s.holdout_samples,
      "evaluated_samples"_a = s.evaluated_samples, "outputs"_a = QualityDict(s.outputs),
      "source_opset"_a = s.source_opset, "opset"_a = s.opset,
      "calibrate_seconds"_a = s.calibrate_seconds, "export_seconds"_a = s.export_seconds,
      "evaluate_seconds"_a = s.evaluate_seconds, "total_seconds"_a = s.total_seconds,
      "report_json"_a = s.report_json, "text"_a = s.ToText());
}

py::dict Calibrate(const py::dict& o, const py::object& samples, const py::object& progress) {
  CalibrateOptions options;
  ReadModelOptions(o, &options);
  options.calib_spec = Get<std::string>(o, "calib", "");
  options.observer = Get<std::string>(o, "observer", "percentile");
  options.percentile = Get<double>(o, "percentile", 99.99);
  options.holdout = Get<int>(o, "holdout", -1);
  options.output_path = Get<std::string>(o, "output", "");
  options.histograms = Get<bool>(o, "histograms", false);
  Status usage = CheckCalibrationDataOptions(options);
  if (!usage.ok()) Raise(usage, "usage");
  options.samples = ReadSamples(samples);
  std::optional<py::error_already_set> pending;
  options.progress = MakeProgress(progress, &pending);
  CalibrateSummary s =
      RunReleased<CalibrateSummary>([&] { return CalibrateModel(options); }, &pending);
  return py::dict("model"_a = s.model, "target"_a = s.target, "observer"_a = s.observer,
                  "output"_a = s.output, "tensors"_a = s.tensors, "samples"_a = s.samples,
                  "holdout_samples"_a = s.holdout_samples, "seconds"_a = s.seconds,
                  "run_seconds"_a = s.run_seconds, "peak_bytes"_a = s.peak_bytes,
                  "text"_a = s.ToText());
}

py::dict Align(const py::dict& o) {
  AlignOptions options;
  ReadModelOptions(o, &options);
  ReadAlignOverrides(o, &options);
  options.ranges_path = Get<std::string>(o, "ranges", "");
  options.report_path = Get<std::string>(o, "report", "");
  options.allow_missing_ranges = Get<bool>(o, "allow_missing_ranges", false);
  Status usage = CheckAlignOverrides(options);
  if (!usage.ok()) Raise(usage, "usage");
  std::optional<py::error_already_set> pending;
  AlignSummary s = RunReleased<AlignSummary>([&] { return AlignModel(options); }, &pending);
  return py::dict("target"_a = s.target, "groups"_a = s.groups, "requantizes"_a = s.requantizes,
                  "violations"_a = s.violation_messages, "report_json"_a = s.report_json,
                  "text"_a = s.text);
}

py::list ViolationList(const std::vector<Violation>& violations) {
  py::list list;
  for (const Violation& v : violations) {
    py::list ports;
    for (const ViolationPort& p : v.ports) {
      ports.append(py::dict("port"_a = p.port, "tensor"_a = p.tensor, "scale"_a = p.scale,
                            "zero_point"_a = p.zero_point));
    }
    list.append(py::dict("rule"_a = v.rule, "op_type"_a = v.op_type, "op"_a = v.op,
                         "method"_a = v.method, "message"_a = v.message, "ports"_a = ports));
  }
  return list;
}

py::dict Check(const py::dict& o) {
  CheckOptions options;
  options.model_path = Get<std::string>(o, "model", "");
  options.target = Get<std::string>(o, "target", "");
  options.input_shapes = Get<Shapes>(o, "input_shapes", {});
  std::optional<py::error_already_set> pending;
  CheckSummary s = RunReleased<CheckSummary>([&] { return CheckModel(options); }, &pending);
  return py::dict("model"_a = s.model, "target"_a = s.target,
                  "violations"_a = ViolationList(s.violations), "ops_checked"_a = s.ops_checked,
                  "ports_checked"_a = s.ports_checked, "biases_checked"_a = s.biases_checked,
                  "has_qdq"_a = s.has_qdq, "notes"_a = s.notes, "report_json"_a = s.report_json,
                  "text"_a = s.text);
}

py::dict Fix(const py::dict& o) {
  FixOptions options;
  ReadAlignOverrides(o, &options);
  options.model_path = Get<std::string>(o, "model", "");
  options.target = Get<std::string>(o, "target", "");
  options.output_path = Get<std::string>(o, "output", "");
  options.report_path = Get<std::string>(o, "report", "");
  options.input_shapes = Get<Shapes>(o, "input_shapes", {});
  Status usage = CheckAlignOverrides(options);
  if (!usage.ok()) Raise(usage, "usage");
  std::optional<py::error_already_set> pending;
  FixSummary s = RunReleased<FixSummary>([&] { return FixModel(options); }, &pending);
  Status remaining = s.Remaining();
  return py::dict("model"_a = s.model, "target"_a = s.target, "output"_a = s.output,
                  "violations_before"_a = ViolationList(s.violations_before),
                  "violations_after"_a = ViolationList(s.violations_after),
                  "activation_pairs"_a = s.activation_pairs,
                  "requantizes_added"_a = s.requantizes_added, "constants"_a = s.constants,
                  "biases"_a = s.biases, "worst_resolution_cost"_a = s.worst_resolution_cost,
                  "notes"_a = s.notes, "report_json"_a = s.report_json, "text"_a = s.ToText(),
                  "remaining_error"_a = remaining.ok() ? std::string() : remaining.message());
}

py::dict Evaluate(const py::dict& o, const py::object& samples, const py::object& progress) {
  EvalOptions options;
  options.fp32_path = Get<std::string>(o, "fp32", "");
  options.quantized_path = Get<std::string>(o, "quantized", "");
  options.data_spec = Get<std::string>(o, "data", "");
  options.input_shapes = Get<Shapes>(o, "input_shapes", {});
  options.per_layer = Get<bool>(o, "per_layer", false);
  options.top_layers = Get<int>(o, "top", 10);
  options.quiet = Get<bool>(o, "quiet", false);
  options.num_threads = Get<int>(o, "threads", 0);
  options.samples = ReadSamples(samples);
  std::optional<py::error_already_set> pending;
  options.progress = MakeProgress(progress, &pending);
  EvalSummary s = RunReleased<EvalSummary>([&] { return EvaluateModels(options); }, &pending);
  py::list layers;
  for (const LayerQuality& l : s.layers) {
    layers.append(py::dict("tensor"_a = l.tensor, "op"_a = l.op, "snr_db"_a = l.snr_db,
                           "input_snr_db"_a = l.input_snr_db, "loss_db"_a = l.loss_db));
  }
  return py::dict("samples"_a = s.samples, "outputs"_a = QualityDict(s.outputs),
                  "layers"_a = layers, "text"_a = s.ToText());
}

}  // namespace
}  // namespace qalign::python

PYBIND11_MODULE(_qalign, m) {
  using namespace qalign::python;
  m.doc() = "qalign's C++ API; use the package qalign, not this module";
  // As the CLI does (tools/qalign/main.cc): large blocks stay in the heap between the executor's
  // per-op allocations instead of being mapped, faulted in and unmapped each time (a fifth of the
  // calibration time on a 640x640 detector).
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  g_status_error = PyErr_NewException("qalign._qalign.StatusError", nullptr, nullptr);
  m.attr("StatusError") = py::handle(g_status_error);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const StatusException& e) {
      py::tuple args = py::make_tuple(e.kind, e.message);
      PyErr_SetObject(g_status_error, args.ptr());
    }
  });
  m.def("quantize", &Quantize);
  m.def("calibrate", &Calibrate);
  m.def("align", &Align);
  m.def("check", &Check);
  m.def("fix", &Fix);
  m.def("evaluate", &Evaluate);
  m.def("targets", [] { return qalign::TargetNames(); });
  // For the tests: how many of the callers' arrays were read in place and how many copied.
  m.def("count_input_arrays", [] {
    const qalign::InputArrayCounts counts = qalign::CountInputArrays();
    return std::make_pair(counts.read_in_place, counts.copied);
  });
  m.def("targets_dir", [] { return qalign::TargetsDirectory(); });
}
