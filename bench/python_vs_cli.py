"""Quantizing PP-OCRv4 det at 640x640 from Python with numpy arrays vs the CLI on the same data
(the arrays saved as npy:DIR): wall time of each, alternating runs, medians, and the ratio.

    PYTHONPATH=build/python python3 bench/python_vs_cli.py [--build build] [--samples 16] [--runs 3]

The data: seeded uniform arrays in [-2, 2) (the range of ImageNet-normalised images); both sides
calibrate on the same arrays (a fifth held out for the summary's SNR) and must write the same
model bytes with --threads 1; timing runs use every core. Python's time includes reading the
arrays (every sample is checked before any work), the CLI's includes starting the process and
reading the .npy files.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--target", default="tflite-int8")
    args = parser.parse_args()
    sys.path.insert(0, os.path.join(args.build, "python"))
    import qalign

    cli = os.path.join(args.build, "tools", "qalign", "qalign")
    model = os.path.join(ROOT, ".cache", "models", "ch_PP-OCRv4_det_infer.onnx")
    shape = (1, 3, 640, 640)
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(-2, 2, shape).astype(np.float32) for _ in range(args.samples)]
    with tempfile.TemporaryDirectory() as tmp:
        npy = os.path.join(tmp, "npy")
        os.mkdir(npy)
        for i, a in enumerate(arrays):
            np.save(os.path.join(npy, f"{i:03d}.npy"), a)

        def run_cli(output, *extra):
            start = time.perf_counter()
            subprocess.run([cli, "quantize", model, "--target", args.target, "--input-shape",
                            "x=1,3,640,640", "--calib", f"npy:{npy}", "--quiet", "-o", output,
                            *extra], check=True, stdout=subprocess.DEVNULL)
            return time.perf_counter() - start

        def run_python(output, **extra):
            start = time.perf_counter()
            qalign.quantize(model, args.target, arrays, output, quiet=True,
                            input_shapes={"x": list(shape)}, **extra)
            return time.perf_counter() - start

        # Same model bytes first (one thread: sums in the same order).
        run_cli(os.path.join(tmp, "cli1.onnx"), "--threads", "1")
        run_python(os.path.join(tmp, "py1.onnx"), threads=1)
        with open(os.path.join(tmp, "cli1.onnx"), "rb") as a, \
                open(os.path.join(tmp, "py1.onnx"), "rb") as b:
            same = a.read() == b.read()
        print(f"same model bytes (--threads 1): {same}")

        cli_times, py_times = [], []
        for run in range(args.runs):  # alternating, so load changes hit both alike
            cli_times.append(run_cli(os.path.join(tmp, "cli.onnx")))
            py_times.append(run_python(os.path.join(tmp, "py.onnx")))
            print(f"run {run + 1}: CLI {cli_times[-1]:.2f} s, Python {py_times[-1]:.2f} s")
        cli_median, py_median = statistics.median(cli_times), statistics.median(py_times)
        print(f"det 640x640, {args.samples} samples, {args.target}, {os.cpu_count()} cores, "
              f"median of {args.runs}: CLI {cli_median:.2f} s, Python {py_median:.2f} s, "
              f"Python / CLI = {py_median / cli_median:.3f}")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
