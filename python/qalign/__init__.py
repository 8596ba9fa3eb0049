"""qalign: quantize FP32 ONNX models to INT8 QDQ ONNX with the alignment rules of a target.

The functions mirror the CLI's commands and take the same options as keywords:

    import numpy as np, qalign
    samples = [np.random.default_rng(i).random((1, 3, 48, 192), np.float32) for i in range(16)]
    result = qalign.quantize("cls.onnx", "tflite-int8", samples, "cls_int8.onnx")
    print(result.outputs, result.report["summary"])

Errors raise QAlignError (UsageError for bad options, QAlignIOError for files that are missing
or cannot be read or written) with the one-line message the CLI prints.
"""

import dataclasses
import json
import os
import sys

# oneDNN (Debian's build) runs on GNU OpenMP, whose idle threads spin by default and take the
# cores away from qalign's own thread pool (a 640x640 detector runs ~3.5x slower). libgomp reads
# this once, when it is loaded: that is when _qalign is imported, unless another module loaded it
# before. A value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import _qalign  # noqa: E402

__all__ = [
    "quantize", "calibrate", "align", "check", "fix", "evaluate", "targets", "targets_dir",
    "QuantizeResult", "CalibrateResult", "AlignResult", "Violation", "ViolationPort",
    "FixResult", "EvalResult", "LayerQuality", "QAlignError", "UsageError", "QAlignIOError",
]


class QAlignError(Exception):
    """A qalign call failed; the message is the line the CLI prints after "qalign: error: "."""


class UsageError(QAlignError, ValueError):
    """An option has a bad value (the CLI's usage errors, exit code 2)."""


class QAlignIOError(QAlignError, OSError):
    """A file is missing or could not be read or written (a model, a target, an output)."""


def _raise_from_status(error):
    kind, message = error.args
    cls = {"usage": UsageError, "io": QAlignIOError}.get(kind, QAlignError)
    raise cls(message) from None


def _call(function, *args):
    try:
        return function(*args)
    except _qalign.StatusError as error:
        _raise_from_status(error)


# ------------------------------------------------------------------------------- results

@dataclasses.dataclass
class QuantizeResult:
    model: str
    target: str
    output: str
    ops: int
    quantized_ops: int
    fp32_ops: int
    folded_ops: int
    equalized_pairs: int
    quantized_tensors: int
    weights: int
    biases: int
    groups: int
    requantizes: int
    violations: list
    calibration_samples: int
    holdout_samples: int
    evaluated_samples: int
    outputs: dict  # output name -> {"snr_db", "cosine", "max_abs_error"} (simulated vs FP32)
    source_opset: int
    opset: int
    calibrate_seconds: float
    export_seconds: float
    evaluate_seconds: float
    total_seconds: float
    report: dict  # the JSON alignment report (--report)
    text: str     # the CLI's summary

    def __str__(self):
        return self.text


@dataclasses.dataclass
class CalibrateResult:
    model: str
    target: str
    observer: str
    output: str
    tensors: int
    samples: int
    holdout_samples: int
    seconds: float
    run_seconds: float
    peak_bytes: int
    text: str

    def __str__(self):
        return self.text


@dataclasses.dataclass
class AlignResult:
    target: str
    groups: int
    requantizes: int
    violations: list
    report: dict
    text: str

    def __str__(self):
        return self.text


@dataclasses.dataclass
class ViolationPort:
    port: str
    tensor: str
    scale: list
    zero_point: list


@dataclasses.dataclass
class Violation:
    rule: str
    op_type: str
    op: str
    method: str
    ports: list  # of ViolationPort
    message: str

    def __str__(self):
        return self.message


@dataclasses.dataclass
class FixResult:
    model: str
    target: str
    output: str
    violations_before: list  # of Violation
    violations_after: list
    activation_pairs: int
    requantizes_added: int
    constants: int
    biases: int
    worst_resolution_cost: float
    notes: list
    report: dict
    text: str

    def __str__(self):
        return self.text


@dataclasses.dataclass
class LayerQuality:
    tensor: str
    op: str
    snr_db: float
    input_snr_db: float
    loss_db: float


@dataclasses.dataclass
class EvalResult:
    samples: int
    outputs: dict
    layers: list  # of LayerQuality
    text: str

    def __str__(self):
        return self.text


def _violations(items):
    return [Violation(ports=[ViolationPort(**p) for p in v["ports"]],
                      **{k: v[k] for k in ("rule", "op_type", "op", "method", "message")})
            for v in items]


# ------------------------------------------------------------------------------- inputs

# numpy dtype -> ONNX TensorProto element type.
_ONNX_DTYPES = {
    "float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7,
    "bool": 9, "float16": 10, "float64": 11, "uint32": 12, "uint64": 13,
}


def _array(value, where):
    import numpy as np
    array = np.asarray(value)
    if array.dtype.name not in _ONNX_DTYPES:
        raise UsageError(f"{where}: unsupported array dtype {array.dtype}")
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    # A C-contiguous array is read in place; any other layout is copied once here.
    return np.ascontiguousarray(array), _ONNX_DTYPES[array.dtype.name]


def _samples(data, what):
    """(spec string, None) or (None, [[(input name or "", array, onnx dtype), ...], ...])."""
    if data is None:
        return None, None
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data), None
    samples = []
    for index, sample in enumerate(data):  # any iterable: a list, a generator, a data reader
        where = f"{what} sample {index}"
        if isinstance(sample, dict):
            items = [(str(name), *_array(value, f"{where}: input '{name}'"))
                     for name, value in sample.items()]
        elif isinstance(sample, (list, tuple)):
            items = [("", *_array(value, f"{where}: input {i}")) for i, value in enumerate(sample)]
        else:
            items = [("", *_array(sample, where))]
        samples.append(items)
    if not samples:
        raise UsageError(f"{what}: no samples")
    return None, samples


def _path(value):
    return "" if value is None else os.fspath(value)


def _shapes(input_shapes):
    if input_shapes is None:
        return {}
    if not isinstance(input_shapes, dict):
        raise UsageError("input_shapes must be a dict {input name: [dims]}")
    return {str(name): [int(d) for d in dims] for name, dims in input_shapes.items()}


def _assignments(value, flag):
    """--align TYPE=METHOD as a dict {TYPE: METHOD} or a list of "TYPE=METHOD" strings."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [f"{key}={method}" for key, method in value.items()]
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


_MODEL_OPTIONS = {"fold", "equalize", "threads", "quiet", "progress"}
_ALIGN_OPTIONS = {"align", "align_node", "align_config", "force_overlap",
                  "requantize_on_mismatch", "saturation_ranges"}
_CALIB_OPTIONS = {"percentile", "holdout"}


def _options(function, given, allowed):
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise UsageError(f"{function}: unknown option {', '.join(repr(u) for u in unknown)} "
                         f"(options: {', '.join(sorted(allowed))})")
    options = dict(given)
    options.pop("progress", None)
    if "align" in options:
        options["align"] = _assignments(options["align"], "align")
    if "align_node" in options:
        options["align_node"] = _assignments(options["align_node"], "align_node")
    if "align_config" in options:
        options["align_config"] = _path(options["align_config"])
    return options


def _progress(given):
    """The callable the C++ side calls after each sample: the user's, or none (the C++ side then
    draws its bar on stderr unless quiet). Ctrl-C is checked after it either way."""
    progress = given.get("progress")
    if progress is not None and not callable(progress):
        raise UsageError("progress must be a callable(stage, done, total)")
    return progress


# ------------------------------------------------------------------------------- API

def quantize(model, target, calib, output, *, input_shapes=None, observer="percentile",
             exclude=None, report=None, **options):
    """Quantizes an FP32 ONNX model for `target` and writes the QDQ ONNX model to `output`.

    calib: a --calib spec ("random:N", "npy:DIR", "image:DIR?size=..."), a list of numpy arrays
    (single-input models), of tuples of arrays (inputs in graph order) or of {input name: array}
    dicts, or any iterable of these (a generator); None with ranges= (calibrate's output).
    exclude: op names or op types kept in FP32 (a string or a list), as --exclude.
    Options (as the CLI's flags): percentile, holdout, ranges, no_align, table, trt_cache,
    eval_samples, accuracy_budget (dB), max_fp32_ops, int16 (op names or types at 16 bits, a
    string or a list, as --int16), bias_correction (True / False; None: the target's default),
    optimize_weights (--optimize-weights), fold, equalize, align ({TYPE: METHOD}),
    align_node ({NODE: METHOD}), align_config, force_overlap, requantize_on_mismatch,
    saturation_ranges (False: --no-saturation-ranges), threads, quiet, and
    progress(stage, done, total) (instead of the bar on stderr). What mixed precision kept in
    FP32 or at 16 bits, and whether the accuracy budget was met, are in result.report ("fp32_ops",
    "int16_ops", "accuracy_budget").
    """
    allowed = _MODEL_OPTIONS | _ALIGN_OPTIONS | _CALIB_OPTIONS | {
        "ranges", "no_align", "table", "trt_cache", "eval_samples", "accuracy_budget",
        "max_fp32_ops", "bias_correction", "optimize_weights", "int16"}
    progress = _progress(options)
    o = _options("quantize", options, allowed)
    spec, samples = _samples(calib, "calib")
    o.update(model=_path(model), target=_path(target), calib=spec, output=_path(output),
             input_shapes=_shapes(input_shapes), observer=observer, report=_path(report))
    if exclude is not None:
        o["exclude"] = [exclude] if isinstance(exclude, str) else [str(e) for e in exclude]
    if isinstance(o.get("int16"), str):
        o["int16"] = [o["int16"]]
    elif o.get("int16") is not None:
        o["int16"] = [str(e) for e in o["int16"]]
    if o.get("accuracy_budget") is not None:
        o["accuracy_budget"] = float(o["accuracy_budget"])
    for key in ("ranges", "table", "trt_cache"):
        if key in o:
            o[key] = _path(o[key])
    if progress is not None:
        o["quiet"] = True
    d = _call(_qalign.quantize, o, samples, progress)
    d["report"] = json.loads(d.pop("report_json"))
    return QuantizeResult(**d)


def calibrate(model, target, calib, output, *, input_shapes=None, observer="percentile",
              **options):
    """Calibrates the tensors quantize would and writes their ranges (ranges.json) to `output`.
    calib as for quantize. Options: percentile, holdout, histograms, fold, equalize, threads,
    quiet, progress."""
    progress = _progress(options)
    o = _options("calibrate", options, _MODEL_OPTIONS | _CALIB_OPTIONS | {"histograms"})
    spec, samples = _samples(calib, "calib")
    o.update(model=_path(model), target=_path(target), calib=spec, output=_path(output),
             input_shapes=_shapes(input_shapes), observer=observer)
    if progress is not None:
        o["quiet"] = True
    return CalibrateResult(**_call(_qalign.calibrate, o, samples, progress))


def align(model, target, ranges, *, input_shapes=None, report=None, **options):
    """Aligns with the ranges calibrate wrote: the groups, requantizes and violations quantize
    would find (nothing but `report` is written). Options: allow_missing_ranges, fold, equalize,
    align, align_node, align_config, force_overlap, requantize_on_mismatch, saturation_ranges, quiet."""
    o = _options("align", options,
                 (_MODEL_OPTIONS - {"progress"}) | _ALIGN_OPTIONS | {"allow_missing_ranges"})
    o.update(model=_path(model), target=_path(target), ranges=_path(ranges),
             input_shapes=_shapes(input_shapes), report=_path(report))
    d = _call(_qalign.align, o)
    d["report"] = json.loads(d.pop("report_json"))
    return AlignResult(**d)


def check(model, target, *, input_shapes=None):
    """The target's alignment rules a QDQ ONNX model (from any quantizer) breaks: [Violation]."""
    o = {"model": _path(model), "target": _path(target), "input_shapes": _shapes(input_shapes)}
    d = _call(_qalign.check, o)
    return _violations(d["violations"])


def fix(model, target, output, *, input_shapes=None, report=None, **options):
    """Re-aligns a QDQ model's Q/DQ params to the target's rules and writes `output`. Options:
    align, align_node, align_config, force_overlap, requantize_on_mismatch. Raises QAlignError
    (with .result) when violations remain in the written model."""
    o = _options("fix", options, _ALIGN_OPTIONS)
    o.update(model=_path(model), target=_path(target), output=_path(output),
             report=_path(report), input_shapes=_shapes(input_shapes))
    d = _call(_qalign.fix, o)
    remaining = d.pop("remaining_error")
    d["report"] = json.loads(d.pop("report_json"))
    d["violations_before"] = _violations(d["violations_before"])
    d["violations_after"] = _violations(d["violations_after"])
    result = FixResult(**d)
    if remaining:
        error = QAlignError(remaining)
        error.result = result
        raise error
    return result


def evaluate(fp32, quantized, data, *, input_shapes=None, per_layer=False, top=10, **options):
    """Runs both models on every sample of `data` (as quantize's calib) and compares outputs.
    Options: threads, quiet, progress."""
    progress = _progress(options)
    o = _options("evaluate", options, {"threads", "quiet", "progress"})
    spec, samples = _samples(data, "data")
    o.update(fp32=_path(fp32), quantized=_path(quantized), data=spec,
             input_shapes=_shapes(input_shapes), per_layer=bool(per_layer), top=int(top))
    if progress is not None:
        o["quiet"] = True
    d = _call(_qalign.evaluate, o, samples, progress)
    d["layers"] = [LayerQuality(**layer) for layer in d["layers"]]
    return EvalResult(**d)


def targets():
    """The built-in target names (tflite-int8, ...)."""
    return list(_qalign.targets())


def targets_dir():
    """Where the built-in targets are read from ($QALIGN_TARGETS_DIR overrides it)."""
    return _qalign.targets_dir()
