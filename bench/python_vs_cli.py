"""Quantizing PP-OCRv4 det at 640x640 from Python with numpy arrays vs the CLI on the same data
(the arrays saved as npy:DIR): wall time of each, alternating runs, medians, and the ratio.

    python3 bench/python_vs_cli.py [--build build] [--samples 16] [--runs 3]

The data: seeded uniform arrays in [-2, 2) (the range of ImageNet-normalised images); both sides
calibrate on the same arrays (a fifth held out for the summary's SNR) and must write the same
model bytes with --threads 1; timing runs use every core. Each run is a fresh process, as a
user's script or command is: the CLI's time is its process's wall time (start, reading the .npy
files, the work); Python's is the qalign.quantize call in a fresh interpreter that imported qalign
and loaded the arrays with np.load first (the call checks every array before any work). A warm
line adds repeated calls in one process, where oneDNN reuses the kernels it compiled.
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


def child(build, model, npy, output, threads):
    """One Python run in this fresh process: load the arrays, time the quantize call."""
    sys.path.insert(0, os.path.join(build, "python"))
    import qalign
    arrays = [np.load(os.path.join(npy, name)) for name in sorted(os.listdir(npy))]
    start = time.perf_counter()
    qalign.quantize(model, "tflite-int8", arrays, output, quiet=True,
                    input_shapes={"x": list(arrays[0].shape)}, threads=threads)
    print(time.perf_counter() - start)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(*sys.argv[2:6], int(sys.argv[6]))
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--target", default="tflite-int8")
    args = parser.parse_args()
    args.build = os.path.abspath(args.build)
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

        process_times = []

        def run_python(output, threads=0):
            start = time.perf_counter()
            run = subprocess.run([sys.executable, __file__, "--child", args.build, model, npy,
                                  output, str(threads)], check=True, capture_output=True,
                                 text=True)
            process_times.append(time.perf_counter() - start)
            return float(run.stdout.strip().splitlines()[-1])

        def run_python_warm(output):
            start = time.perf_counter()
            qalign.quantize(model, args.target, arrays, output, quiet=True,
                            input_shapes={"x": list(shape)})
            return time.perf_counter() - start

        # Same model bytes first (one thread: sums in the same order).
        run_cli(os.path.join(tmp, "cli1.onnx"), "--threads", "1")
        run_python(os.path.join(tmp, "py1.onnx"), threads=1)
        with open(os.path.join(tmp, "cli1.onnx"), "rb") as a, \
                open(os.path.join(tmp, "py1.onnx"), "rb") as b:
            same = a.read() == b.read()
        print(f"same model bytes (--threads 1): {same}")

        cli_times, py_times, warm = [], [], []
        for run in range(args.runs):  # alternating, so load changes hit all alike
            cli_times.append(run_cli(os.path.join(tmp, "cli.onnx")))
            py_times.append(run_python(os.path.join(tmp, "py.onnx")))
            warm.append(run_python_warm(os.path.join(tmp, "warm.onnx")))
            print(f"run {run + 1}: CLI {cli_times[-1]:.2f} s, Python {py_times[-1]:.2f} s, "
                  f"warm {warm[-1]:.2f} s")
        cli_median, py_median = statistics.median(cli_times), statistics.median(py_times)
        print(f"det 640x640, {args.samples} samples, {args.target}, {os.cpu_count()} cores, "
              f"median of {args.runs}: CLI {cli_median:.2f} s, Python {py_median:.2f} s, "
              f"Python / CLI = {py_median / cli_median:.3f}")
        process = statistics.median(process_times[1:])
        print(f"Python's whole process (interpreter, imports, np.load, the call), median of "
              f"{args.runs}: {process:.2f} s, / CLI = {process / cli_median:.3f}")
        print(f"warm (repeated calls in one process), median of {args.runs}: "
              f"{statistics.median(warm):.2f} s, / CLI = "
              f"{statistics.median(warm) / cli_median:.3f}")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
