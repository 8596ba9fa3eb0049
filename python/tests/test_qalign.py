"""Tests of the Python package qalign (run by ctest: python.pytest): each function on a small
model built here and on PP-OCR cls, numpy calibration against npy:DIR and the CLI, generators,
bad inputs, interrupts and the GIL."""
import _thread
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import qalign

MODEL_DIR = os.environ.get("QALIGN_MODEL_DIR", ".cache/models")
CLI = os.environ.get("QALIGN_CLI", "qalign")
CLS = os.path.join(MODEL_DIR, "ch_ppocr_mobile_v2.0_cls_infer.onnx")
CLS_SHAPE = (1, 3, 48, 192)
DET = os.path.join(MODEL_DIR, "ch_PP-OCRv4_det_infer.onnx")


# ------------------------------------------------------------------------------- fixtures

def two_branch_model(path):
    """x[1,3,8,8] -> Conv a -> Relu ; x -> Conv b (weights 8x larger) ; Concat(a, b) -> MaxPool.
    The Concat's inputs have different ranges: without alignment, TFLite's rule that a Concat's
    inputs and output share params is broken."""
    rng = np.random.default_rng(7)
    wa = rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    wb = (rng.normal(0, 0.3, (4, 3, 3, 3)) * 8).astype(np.float32)
    ba = rng.normal(0, 0.1, (4,)).astype(np.float32)
    bb = rng.normal(0, 0.1, (4,)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "wa", "ba"], ["ca"], name="conv_a", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["ca"], ["ra"], name="relu_a"),
        helper.make_node("Conv", ["x", "wb", "bb"], ["cb"], name="conv_b", pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["ra", "cb"], ["cat"], name="concat", axis=1),
        helper.make_node("MaxPool", ["cat"], ["y"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes, "two_branch",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 4, 4])],
        [numpy_helper.from_array(a, n) for a, n in ((wa, "wa"), (wb, "wb"), (ba, "ba"),
                                                     (bb, "bb"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return two_branch_model(tmp_path_factory.mktemp("model") / "two_branch.onnx")


def small_samples(count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32) for _ in range(count)]


def cls_samples(count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, CLS_SHAPE).astype(np.float32) for _ in range(count)]


def run_cli(*args):
    return subprocess.run([CLI, *args], capture_output=True, text=True)


def cli_message(stderr):
    """The message the CLI printed: "qalign: error: M" or "qalign: usage error: M (see ...)"."""
    line = stderr.strip().splitlines()[-1]
    for prefix in ("qalign: error: ", "qalign: usage error: "):
        if line.startswith(prefix):
            line = line[len(prefix):]
    return line.removesuffix(" (see qalign --help)")


# ------------------------------------------------------------------------------- small model

def test_targets():
    names = qalign.targets()
    assert "tflite-int8" in names and "ort-qdq-u8s8" in names
    assert names == sorted(names)
    assert os.path.isfile(os.path.join(qalign.targets_dir(), "tflite-int8.json"))


def test_quantize_small_model(small, tmp_path):
    out = tmp_path / "q.onnx"
    result = qalign.quantize(small, "tflite-int8", small_samples(10), out, quiet=True,
                             report=tmp_path / "report.json")
    assert isinstance(result, qalign.QuantizeResult)
    assert out.is_file() and (tmp_path / "report.json").is_file()
    assert result.target == "tflite-int8" and result.output == str(out)
    assert result.ops == 5 and result.quantized_ops == 5
    assert result.calibration_samples == 8 and result.holdout_samples == 2
    assert result.violations == []
    assert result.outputs["y"]["snr_db"] > 20
    # The report is the --report file's JSON, as a dict.
    import json
    assert result.report == json.loads((tmp_path / "report.json").read_text())
    assert result.report["summary"]["violations"] == 0
    concat_groups = [g for g in result.report["groups"]
                     if any(m["op"] == "concat" for m in g["members"])]
    assert concat_groups, result.report["groups"]
    assert "quantized" in str(result)
    assert qalign.check(out, "tflite-int8") == []


def test_calibrate_align_and_quantize_from_ranges(small, tmp_path):
    ranges = tmp_path / "ranges.json"
    cal = qalign.calibrate(small, "tflite-int8", small_samples(10), ranges, quiet=True)
    assert isinstance(cal, qalign.CalibrateResult)
    assert ranges.is_file() and cal.samples == 8 and cal.holdout_samples == 2 and cal.tensors > 0
    aligned = qalign.align(small, "tflite-int8", ranges)
    assert isinstance(aligned, qalign.AlignResult)
    assert aligned.violations == [] and aligned.groups >= 1
    assert aligned.report["summary"]["groups"] == aligned.groups
    # quantize with the ranges writes the model quantize alone writes from the same data.
    qalign.quantize(small, "tflite-int8", None, tmp_path / "a.onnx", ranges=ranges, threads=1,
                    quiet=True)
    qalign.quantize(small, "tflite-int8", small_samples(10), tmp_path / "b.onnx", threads=1,
                    quiet=True)
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_check_and_fix(small, tmp_path):
    broken = tmp_path / "broken.onnx"
    qalign.quantize(small, "tflite-int8", small_samples(6), broken, no_align=True, quiet=True)
    violations = qalign.check(broken, "tflite-int8")
    assert violations and all(isinstance(v, qalign.Violation) for v in violations)
    concat = [v for v in violations if v.op == "concat"]
    assert concat and concat[0].rule == "share_inputs_and_output"
    assert len(concat[0].ports) >= 2 and isinstance(concat[0].ports[0], qalign.ViolationPort)
    # The same violations as the CLI lists.
    cli = run_cli("check", str(broken), "--target", "tflite-int8")
    assert cli.returncode == 1
    for v in violations:
        assert v.message in cli.stdout

    fixed = tmp_path / "fixed.onnx"
    fix = qalign.fix(broken, "tflite-int8", fixed, report=tmp_path / "fix.json")
    assert isinstance(fix, qalign.FixResult)
    assert len(fix.violations_before) == len(violations) and fix.violations_after == []
    assert fix.activation_pairs > 0 and fix.report["violations_after"] == []
    assert qalign.check(fixed, "tflite-int8") == []


def test_evaluate(small, tmp_path):
    out = tmp_path / "q.onnx"
    qalign.quantize(small, "tflite-int8", small_samples(8), out, quiet=True)
    result = qalign.evaluate(small, out, small_samples(3, seed=5), per_layer=True, top=3,
                             quiet=True)
    assert isinstance(result, qalign.EvalResult)
    assert result.samples == 3 and set(result.outputs) == {"y"}
    assert 15 < result.outputs["y"]["snr_db"] < 100
    assert 0 < len(result.layers) <= 3 and isinstance(result.layers[0], qalign.LayerQuality)
    # A spec string works as for the CLI.
    assert qalign.evaluate(small, out, "random:2", quiet=True).samples == 2


# ------------------------------------------------------------------------------- data forms

def test_sample_forms_give_one_model(small, tmp_path):
    """A list of arrays, a generator, tuples and {name: array} dicts are the same data."""
    data = small_samples(6)
    forms = {
        "list": data,
        "generator": (a for a in data),
        "tuples": [(a,) for a in data],
        "dicts": [{"x": a} for a in data],
        "fortran": [np.asfortranarray(a) for a in data],  # copied to C order, same values
    }
    outputs = {}
    for name, calib in forms.items():
        path = tmp_path / f"{name}.onnx"
        qalign.quantize(small, "tflite-int8", calib, path, threads=1, quiet=True)
        outputs[name] = path.read_bytes()
    assert len(set(outputs.values())) == 1


def input_arrays_delta(call):
    """(arrays read in place, arrays copied) by the C++ side during call()."""
    read, copied = qalign._qalign.count_input_arrays()
    result = call()
    read_after, copied_after = qalign._qalign.count_input_arrays()
    return result, read_after - read, copied_after - copied


def test_contiguous_float32_arrays_are_not_copied(small, tmp_path):
    """A C-contiguous native float32 array (the model's dtype) goes to the C++ side as it is and
    is read there in place: calibration copies none; quantize copies only the held-out inputs
    its simulation of the quantized model fake-quantizes."""
    data = small_samples(6)
    _, samples = qalign._samples(data, "calib")
    assert all(items[0][1] is a for items, a in zip(samples, data))
    before = [a.copy() for a in data]
    result, read, copied = input_arrays_delta(lambda: qalign.calibrate(
        small, "tflite-int8", data, tmp_path / "ranges.json", quiet=True))
    assert result.samples == 5
    assert read >= 6 + 5 and copied == 0  # each checked, then calibrated on
    result, read, copied = input_arrays_delta(lambda: qalign.quantize(
        small, "tflite-int8", data, tmp_path / "q.onnx", quiet=True))
    assert result.evaluated_samples == 1
    assert read >= 6 + 5 + 1 and copied == 1
    assert all(np.array_equal(a, b) for a, b in zip(data, before))  # never written


def test_other_layouts_and_byte_orders_are_copied_to_the_same_model(small, tmp_path):
    """Strided, Fortran-order and big-endian arrays are made C-contiguous native copies by the
    package, then read in place like the rest; floats at an odd address go as they are and the
    C++ side copies them. The model is the one the plain arrays give."""
    data = small_samples(6)
    forms = {
        "contiguous": data,
        "strided": [np.repeat(a, 2, axis=3)[..., ::2] for a in data],
        "fortran": [np.asfortranarray(a) for a in data],
        "big-endian": [a.astype(">f4") for a in data],
        "unaligned": [np.frombuffer(b"\0" + a.tobytes(), np.float32, offset=1).reshape(a.shape)
                      for a in data],
    }
    assert not forms["strided"][0].flags.c_contiguous
    assert not forms["big-endian"][0].dtype.isnative
    assert not forms["unaligned"][0].flags.aligned
    models = {}
    for name, calib in forms.items():
        _, samples = qalign._samples(calib, "calib")
        assert (samples[0][0][1] is calib[0]) == (name in ("contiguous", "unaligned")), name
        path = tmp_path / f"{name}.onnx"
        _, read, copied = input_arrays_delta(lambda: qalign.quantize(
            small, "tflite-int8", calib, path, threads=1, quiet=True))
        if name == "unaligned":
            assert read == 0 and copied >= 6 + 5 + 1
        else:  # the one copy: the held-out sample's input, fake-quantized
            assert read >= 6 + 5 + 1 and copied == 1, name
        models[name] = path.read_bytes()
    assert len(set(models.values())) == 1


def test_cls_numpy_equals_npy_dir_and_cli(tmp_path):
    data = cls_samples(10)
    npy = tmp_path / "npy"
    npy.mkdir()
    for i, a in enumerate(data):
        np.save(npy / f"{i:03d}.npy", a)
    from_numpy = tmp_path / "numpy.onnx"
    from_dir = tmp_path / "dir.onnx"
    from_cli = tmp_path / "cli.onnx"
    result = qalign.quantize(CLS, "tflite-int8", data, from_numpy, threads=1, quiet=True)
    qalign.quantize(CLS, "tflite-int8", f"npy:{npy}", from_dir, threads=1, quiet=True)
    cli = run_cli("quantize", CLS, "--target", "tflite-int8", "--calib", f"npy:{npy}",
                  "--threads", "1", "--quiet", "-o", str(from_cli))
    assert cli.returncode == 0, cli.stderr
    assert from_numpy.read_bytes() == from_dir.read_bytes() == from_cli.read_bytes()
    assert result.calibration_samples == 8 and result.violations == []
    assert qalign.check(from_numpy, "tflite-int8") == []
    quality = qalign.evaluate(CLS, from_numpy, cls_samples(2, seed=3), quiet=True)
    assert min(q["snr_db"] for q in quality.outputs.values()) > 10


def test_cls_saturation_ranges_option(tmp_path):
    data = cls_samples(6)
    on = qalign.quantize(CLS, "tflite-int8", data, tmp_path / "on.onnx", threads=1, quiet=True)
    off = qalign.quantize(CLS, "tflite-int8", data, tmp_path / "off.onnx", threads=1, quiet=True,
                          saturation_ranges=False)
    assert on.report["saturation_ranges"]["narrowed"] > 0
    assert "saturation_ranges" not in off.report or off.report["saturation_ranges"]["narrowed"] == 0
    assert (tmp_path / "on.onnx").read_bytes() != (tmp_path / "off.onnx").read_bytes()


def test_cls_calibrate_align_fix(tmp_path):
    ranges = tmp_path / "ranges.json"
    qalign.calibrate(CLS, "tflite-int8", (a for a in cls_samples(6)), ranges, quiet=True)
    assert qalign.align(CLS, "tflite-int8", ranges).violations == []
    broken = tmp_path / "broken.onnx"
    qalign.quantize(CLS, "tflite-int8", None, broken, ranges=ranges, no_align=True, quiet=True,
                    input_shapes={"x": list(CLS_SHAPE)})
    assert qalign.check(broken, "tflite-int8")
    fixed = qalign.fix(broken, "tflite-int8", tmp_path / "fixed.onnx")
    assert fixed.violations_before and fixed.violations_after == []


# ------------------------------------------------------------------------------- errors

def quantize_error(small, tmp_path, calib, **options):
    out = tmp_path / "never.onnx"
    with pytest.raises(qalign.QAlignError) as error:
        qalign.quantize(small, "tflite-int8", calib, out, quiet=True, **options)
    assert not out.exists()
    return error.value


def test_bad_arrays(small, tmp_path):
    good = small_samples(3)
    e = quantize_error(small, tmp_path, good[:2] + [good[2].astype(np.float64)])
    assert str(e) == "sample 2: input 'x': data type f64 does not match the model's f32"
    e = quantize_error(small, tmp_path, [np.zeros((1, 3, 4, 4), np.float32)] * 2)
    assert str(e) == "sample 0: input 'x': shape [1,3,4,4] does not match the model's [1,3,8,8]"
    nan = good[1].copy()
    nan[0, 1, 2, 3] = np.nan
    e = quantize_error(small, tmp_path, [good[0], nan])
    assert str(e).startswith("sample 1: input 'x': ") and "NaN" in str(e)
    e = quantize_error(small, tmp_path, [{"y": good[0]}])
    assert str(e) == "sample 0: the model has no input 'y' (inputs: 'x')"
    e = quantize_error(small, tmp_path, [(good[0], good[1])])
    assert str(e) == "sample 0: 2 arrays for the model's 1 inputs ('x')"
    e = quantize_error(small, tmp_path, [np.zeros((1, 3, 8, 8), np.complex64)])
    assert isinstance(e, qalign.UsageError) and "unsupported array dtype complex64" in str(e)
    e = quantize_error(small, tmp_path, [])
    assert isinstance(e, qalign.UsageError) and str(e) == "calib: no samples"


def test_errors_read_as_the_cli(small, tmp_path):
    out = str(tmp_path / "never.onnx")
    cases = [
        # (python keywords, CLI flags, python error class)
        (dict(observer="bogus"), ["--observer", "bogus"], qalign.UsageError),
        (dict(percentile=20.0), ["--percentile", "20"], qalign.UsageError),
        (dict(align={"Concat": "sideways"}), ["--align", "Concat=sideways"], qalign.UsageError),
        (dict(holdout=10), ["--holdout", "10"], qalign.QAlignError),
    ]
    for keywords, flags, cls in cases:
        with pytest.raises(cls) as error:
            qalign.quantize(small, "tflite-int8", "random:4", out, quiet=True, **keywords)
        cli = run_cli("quantize", small, "--target", "tflite-int8", "--calib", "random:4", "-o",
                      out, *flags)
        assert cli.returncode != 0
        assert str(error.value) == cli_message(cli.stderr), flags
    with pytest.raises(qalign.QAlignIOError) as error:
        qalign.quantize(tmp_path / "missing.onnx", "tflite-int8", "random:2", out)
    cli = run_cli("quantize", str(tmp_path / "missing.onnx"), "--target", "tflite-int8",
                  "--calib", "random:2", "-o", out)
    assert str(error.value) == cli_message(cli.stderr)
    assert isinstance(error.value, OSError)
    # An output that cannot be written: refused before any work, as the CLI does.
    with pytest.raises(qalign.QAlignIOError) as error:
        qalign.quantize(small, "tflite-int8", "random:2", "/proc/never.onnx")
    cli = run_cli("quantize", small, "--target", "tflite-int8", "--calib", "random:2", "-o",
                  "/proc/never.onnx")
    assert str(error.value) == cli_message(cli.stderr)
    with pytest.raises(qalign.QAlignError) as error:
        qalign.quantize(small, "no-such-target", "random:2", out)
    assert "unknown target 'no-such-target'" in str(error.value)
    assert "tflite-int8" in str(error.value)
    with pytest.raises(qalign.UsageError, match="unknown option 'colour'"):
        qalign.quantize(small, "tflite-int8", "random:2", out, colour="red")
    # An --exclude entry naming no op: the CLI's message, nothing written.
    with pytest.raises(qalign.QAlignError) as error:
        qalign.quantize(small, "tflite-int8", "random:2", out, exclude=["no_such_op"])
    cli = run_cli("quantize", small, "--target", "tflite-int8", "--calib", "random:2",
                  "--exclude", "no_such_op", "-o", out)
    assert str(error.value) == cli_message(cli.stderr)
    assert "no_such_op" in str(error.value)
    assert not os.path.exists(out)


def test_int16_keeps_ops_at_16_bits_on_a_target_with_a_16_bit_scheme(small, tmp_path):
    out = tmp_path / "a16w8.onnx"
    r = qalign.quantize(small, "qnn-u8", "random:6", out, int16="Concat", quiet=True)
    kept = r.report["int16_ops"]
    assert [k["op"] for k in kept] == ["Concat 'concat'"]
    assert kept[0]["reason"] == "--int16"
    assert r.report["fp32_ops"] == []
    assert r.report["ports_at_16_bits"] >= 3  # the Concat's inputs and output, one group
    assert r.violations == []
    assert qalign.check(out, "qnn-u8") == []
    with pytest.raises(qalign.QAlignError, match="no 16-bit activation scheme"):
        qalign.quantize(small, "tflite-int8", "random:6", tmp_path / "b.onnx", int16=["Concat"])


def test_exclude_keeps_ops_fp32_and_the_report_says_why(small, tmp_path):
    out = tmp_path / "mixed.onnx"
    r = qalign.quantize(small, "tflite-int8", "random:6", out, exclude="Concat", quiet=True)
    kept = r.report["fp32_ops"]
    assert [k["op"] for k in kept] == ["Concat 'concat'"]
    assert kept[0]["reason"] == "--exclude"
    assert r.violations == []
    concat = [n for n in onnx.load(str(out)).graph.node if n.op_type == "Concat"]
    assert len(concat) == 1
    producers = {o: n.op_type for n in onnx.load(str(out)).graph.node for o in n.output}
    # The Concat kept FP32 reads float tensors: no DequantizeLinear feeds it.
    assert all(producers.get(i) != "DequantizeLinear" for i in concat[0].input)
    with pytest.raises(qalign.QAlignError, match="accuracy-budget needs a finite number"):
        qalign.quantize(small, "tflite-int8", "random:6", tmp_path / "b.onnx",
                        accuracy_budget=float("inf"))


def test_optimize_weights_passthrough(small, tmp_path):
    calls = []
    out = tmp_path / "rounded.onnx"
    r = qalign.quantize(small, "tflite-int8", small_samples(6), out, holdout=1,
                        optimize_weights=True,
                        progress=lambda stage, done, total: calls.append((stage, done, total)))
    rounding = r.report["weight_rounding"]
    assert rounding["layers"] == 2  # conv_a and conv_b
    assert rounding["loss_optimized"] <= rounding["loss_nearest"]
    # One tick per candidate layer, after calibration.
    assert [c for c in calls if c[0] == "optimize weights"] == [
        ("optimize weights", 1, 2), ("optimize weights", 2, 2)]
    assert qalign.check(out, "tflite-int8") == []
    plain = qalign.quantize(small, "tflite-int8", small_samples(6), tmp_path / "plain.onnx",
                            holdout=1, quiet=True)
    assert "weight_rounding" not in plain.report


# ------------------------------------------------------------------------------- progress

def test_progress_callback_and_interrupt(small, tmp_path):
    calls = []
    qalign.quantize(small, "tflite-int8", small_samples(5), tmp_path / "ok.onnx", holdout=1,
                    progress=lambda stage, done, total: calls.append((stage, done, total)))
    assert calls == [("calibrate", i, 4) for i in range(1, 5)] + [("evaluate", 1, 1)]

    out = tmp_path / "stopped.onnx"

    def interrupt(stage, done, total):
        if done == 2:
            _thread.interrupt_main()  # as Ctrl-C: the signal handler runs between samples

    with pytest.raises(KeyboardInterrupt):
        qalign.quantize(small, "tflite-int8", small_samples(8), out, progress=interrupt)
    assert not out.exists()

    def fail(stage, done, total):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        qalign.calibrate(small, "tflite-int8", small_samples(4), tmp_path / "r.json",
                         progress=fail)
    assert not (tmp_path / "r.json").exists()


def test_ctrl_c_stops_a_run(tmp_path):
    """A real SIGINT to a process calibrating det: KeyboardInterrupt, no output file."""
    out = tmp_path / "never.onnx"
    script = f"""
import sys, qalign
def progress(stage, done, total):
    if done == 1:
        print("started", flush=True)
qalign.quantize({DET!r}, "tflite-int8", "random:40", {str(out)!r}, progress=progress,
                input_shapes={{"x": [1, 3, 320, 320]}})
"""
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=os.environ)
    assert child.stdout.readline().strip() == "started"
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode != 0
    assert "KeyboardInterrupt" in stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name != "never.onnx"]  # no temporary file


def test_releases_the_gil(tmp_path):
    """Another Python thread runs while quantize works: the call releases the GIL. Holding it, the
    other thread could run only inside the 2 progress callbacks (one per sample); released, it
    ticks every 5 ms through import, calibration and export (about 0.4 s: 45 to 95 ticks)."""
    ticks = []
    done = threading.Event()

    def work():
        qalign.quantize(DET, "tflite-int8", "random:2", tmp_path / "q.onnx", quiet=True,
                        holdout=0, eval_samples=0, input_shapes={"x": [1, 3, 320, 320]})
        done.set()

    thread = threading.Thread(target=work)
    thread.start()
    while not done.is_set() and thread.is_alive():
        ticks.append(time.monotonic())
        time.sleep(0.005)
    thread.join()
    assert (tmp_path / "q.onnx").is_file()
    assert len(ticks) >= 20, len(ticks)


def test_example_script(tmp_path):
    script = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python",
                          "quantize_cls.py")
    run = subprocess.run([sys.executable, script, CLS, str(tmp_path)],
                         capture_output=True, text=True, env=os.environ)
    assert run.returncode == 0, run.stderr
    assert "check: 0 violations" in run.stdout
    assert (tmp_path / "cls_tflite-int8.onnx").is_file()
