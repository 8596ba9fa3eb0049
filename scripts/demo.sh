#!/usr/bin/env bash
# The main job: quantize the bundled default model (PP-OCRv4 det) for TFLite int8 on 40 images of
# rendered text (32 to calibrate, 8 held out for the SNR), and export a QDQ ONNX model.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODEL=${2:-.cache/models/ch_PP-OCRv4_det_infer.onnx}
TARGET=${TARGET:-tflite-int8}
OUT=${OUT:-out}
QALIGN="$BUILD/tools/qalign/qalign"

scripts/make_calib_images.sh .cache/calib/det det 40
mkdir -p "$OUT"
"$QALIGN" inspect "$MODEL"
# PaddleOCR's detection preprocessing: RGB, /255, ImageNet mean and std, NCHW.
"$QALIGN" quantize "$MODEL" --target "$TARGET" --input-shape x=1,3,640,640 \
  --calib "image:.cache/calib/det?size=640x640&mean=0.485,0.456,0.406&std=0.229,0.224,0.225" \
  --holdout 8 -o "$OUT/det_$TARGET.onnx" --report "$OUT/det_$TARGET.report.json" \
  --table "$OUT/det_$TARGET.table.json"
echo "demo: wrote $OUT/det_$TARGET.onnx, its alignment report and quantization table"
