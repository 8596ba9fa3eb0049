"""Quantizes PP-OCR's text-direction classifier for TFLite int8 from Python, on calibration
samples given as numpy arrays by a generator, then checks and evaluates the result.

    python3 examples/python/quantize_cls.py .cache/models/ch_ppocr_mobile_v2.0_cls_infer.onnx out/
"""
import os
import sys

import numpy as np

import qalign


def samples(count, seed):
    """Random crops in [-1, 1), the range of PaddleOCR's cls preprocessing ((x/255 - 0.5) / 0.5)."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield {"x": rng.uniform(-1.0, 1.0, size=(1, 3, 48, 192)).astype(np.float32)}


def main():
    model = sys.argv[1]
    out_dir = sys.argv[2] if len(sys.argv) > 2 else "out"
    os.makedirs(out_dir, exist_ok=True)
    output = os.path.join(out_dir, "cls_tflite-int8.onnx")
    print("targets:", ", ".join(qalign.targets()))

    result = qalign.quantize(model, "tflite-int8", samples(20, seed=0), output,
                             input_shapes={"x": [1, 3, 48, 192]}, holdout=4, quiet=True)
    print(result)
    print("alignment groups in the report:", len(result.report["groups"]))

    violations = qalign.check(output, "tflite-int8")
    print("check:", len(violations), "violations")

    quality = qalign.evaluate(model, output, samples(4, seed=1),
                              input_shapes={"x": [1, 3, 48, 192]}, quiet=True)
    for name, q in quality.outputs.items():
        print(f"eval {name}: SNR {q['snr_db']:.2f} dB, cosine {q['cosine']:.6f}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
