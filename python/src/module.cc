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
}

// The samples: a list of lists of (input name or "", C-contiguous native-order ndarray), made by
// the package. The arrays stay referenced by `samples` (the caller's list) for the whole call;
// only their buffers' addresses are kept.
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
    py::dict e;
    e["snr_db"] = q.snr_db;
    e["cosine"] = q.cosine;
    e["max_abs_error"] = q.max_abs_error;
    d[py::str(name)] = e;
  }
  return d;
}

py::dict Quantize(const py::dict& o, const py::object& samples, const py::object& progress) {
  QuantizeOptions options;
  ReadModelOptions(o, &options);
  ReadAlignOverrides(o, &options);
  options.calib_spec = Get<std::string>(o, "calib", "");
  options.observer = Get<std::string>(o, "observer", "minmax");
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
  Status usage = CheckCalibrationDataOptions(options);
  if (usage.ok()) usage = CheckAlignOverrides(options);
  if (!usage.ok()) Raise(usage, "usage");
  options.samples = ReadSamples(samples);
  std::optional<py::error_already_set> pending;
  options.progress = MakeProgress(progress, &pending);
  QuantizeSummary s = RunReleased<QuantizeSummary>([&] { return QuantizeModel(options); }, &pending);
  py::dict d;
  d["model"] = s.model;
  d["target"] = s.target;
  d["output"] = s.output;
  d["ops"] = s.ops;
  d["quantized_ops"] = s.quantized_ops;
  d["fp32_ops"] = s.fp32_ops;
  d["folded_ops"] = s.folded_ops;
  d["equalized_pairs"] = s.equalized_pairs;
  d["quantized_tensors"] = s.quantized_tensors;
  d["weights"] = s.weights;
  d["biases"] = s.biases;
  d["groups"] = s.groups;
  d["requantizes"] = s.requantizes;
  d["violations"] = s.violation_messages;
  d["calibration_samples"] = s.calibration_samples;
  d["holdout_samples"] = s.holdout_samples;
  d["evaluated_samples"] = s.evaluated_samples;
  d["outputs"] = QualityDict(s.outputs);
  d["source_opset"] = s.source_opset;
  d["opset"] = s.opset;
  d["calibrate_seconds"] = s.calibrate_seconds;
  d["export_seconds"] = s.export_seconds;
  d["evaluate_seconds"] = s.evaluate_seconds;
  d["total_seconds"] = s.total_seconds;
  d["report_json"] = s.report_json;
  d["text"] = s.ToText();
  return d;
}

py::dict Calibrate(const py::dict& o, const py::object& samples, const py::object& progress) {
  CalibrateOptions options;
  ReadModelOptions(o, &options);
  options.calib_spec = Get<std::string>(o, "calib", "");
  options.observer = Get<std::string>(o, "observer", "minmax");
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
  py::dict d;
  d["model"] = s.model;
  d["target"] = s.target;
  d["observer"] = s.observer;
  d["output"] = s.output;
  d["tensors"] = s.tensors;
  d["samples"] = s.samples;
  d["holdout_samples"] = s.holdout_samples;
  d["seconds"] = s.seconds;
  d["run_seconds"] = s.run_seconds;
  d["peak_bytes"] = s.peak_bytes;
  d["text"] = s.ToText();
  return d;
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
  py::dict d;
  d["target"] = s.target;
  d["groups"] = s.groups;
  d["requantizes"] = s.requantizes;
  d["violations"] = s.violation_messages;
  d["report_json"] = s.report_json;
  d["text"] = s.text;
  return d;
}

py::list ViolationList(const std::vector<Violation>& violations) {
  py::list list;
  for (const Violation& v : violations) {
    py::dict d;
    d["rule"] = v.rule;
    d["op_type"] = v.op_type;
    d["op"] = v.op;
    d["method"] = v.method;
    d["message"] = v.message;
    py::list ports;
    for (const ViolationPort& p : v.ports) {
      py::dict port;
      port["port"] = p.port;
      port["tensor"] = p.tensor;
      port["scale"] = p.scale;
      port["zero_point"] = p.zero_point;
      ports.append(port);
    }
    d["ports"] = ports;
    list.append(d);
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
  py::dict d;
  d["model"] = s.model;
  d["target"] = s.target;
  d["violations"] = ViolationList(s.violations);
  d["ops_checked"] = s.ops_checked;
  d["ports_checked"] = s.ports_checked;
  d["biases_checked"] = s.biases_checked;
  d["has_qdq"] = s.has_qdq;
  d["notes"] = s.notes;
  d["report_json"] = s.report_json;
  d["text"] = s.text;
  return d;
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
  py::dict d;
  d["model"] = s.model;
  d["target"] = s.target;
  d["output"] = s.output;
  d["violations_before"] = ViolationList(s.violations_before);
  d["violations_after"] = ViolationList(s.violations_after);
  d["activation_pairs"] = s.activation_pairs;
  d["requantizes_added"] = s.requantizes_added;
  d["constants"] = s.constants;
  d["biases"] = s.biases;
  d["worst_resolution_cost"] = s.worst_resolution_cost;
  d["notes"] = s.notes;
  d["report_json"] = s.report_json;
  d["text"] = s.ToText();
  Status remaining = s.Remaining();
  d["remaining_error"] = remaining.ok() ? std::string() : remaining.message();
  return d;
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
  py::dict d;
  d["samples"] = s.samples;
  d["outputs"] = QualityDict(s.outputs);
  py::list layers;
  for (const LayerQuality& l : s.layers) {
    py::dict e;
    e["tensor"] = l.tensor;
    e["op"] = l.op;
    e["snr_db"] = l.snr_db;
    e["input_snr_db"] = l.input_snr_db;
    e["loss_db"] = l.loss_db;
    layers.append(e);
  }
  d["layers"] = layers;
  d["text"] = s.ToText();
  return d;
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
  m.def("targets_dir", [] { return qalign::TargetsDirectory(); });
}
