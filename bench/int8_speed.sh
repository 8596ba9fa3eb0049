#!/usr/bin/env bash
# FP32 against every target's INT8 export in ONNX Runtime (onnxruntime-node from tests/ort), on
# PP-OCRv4 det 640x640, PP-OCRv4 rec 48x320 and PP-OCR mobile v2.0 cls 48x192.
#
#   bench/int8_speed.sh [--build DIR] [--runs N] [--threads T] [MODEL [TARGET ...]]
#
# For each model: `qalign quantize` for each target (32 seeded text images to calibrate, 8 held
# out, as bench/ppocr_results.sh), then bench/int8_speed.js: every model runs N rounds (default
# det 15, rec 31, cls 61) in alternation with T intra-op threads (default 2) and graph optimizations on; prints each
# median, FP32 median / INT8 median (> 1: the export is faster), and each export's SNR, cosine
# and argmax agreement against FP32 on the 8 held-out images, with ORT's optimizations on and off.
# Only ort-qdq-* exports are meant for ONNX Runtime; the others are timed there for reference.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
RUNS=
THREADS=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) BUILD=${2:?--build DIR}; shift 2 ;;
    --runs) RUNS=${2:?--runs N}; shift 2 ;;
    --threads) THREADS=${2:?--threads T}; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    --*) echo "int8_speed: unknown flag $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
MODELS=(det rec cls)
TARGETS=(ort-qdq-u8s8 ort-qdq-u8s8-vnni tflite-int8 trt-int8 qnn-u8 ppq-default)
[[ $# -ge 1 ]] && MODELS=("$1") && shift
[[ $# -ge 1 ]] && TARGETS=("$@")
QALIGN=$BUILD/tools/qalign/qalign
IMAGES=${QALIGN_BENCH_IMAGES:-$ROOT/.cache/bench_images}
[[ -x "$QALIGN" ]] || { echo "int8_speed: $QALIGN not built (make build)" >&2; exit 1; }
[[ -d "$ROOT/tests/ort/node_modules/onnxruntime-node" ]] || {
  echo "int8_speed: onnxruntime-node is not installed in tests/ort (run scripts/setup.sh)" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

source "$ROOT/bench/ppocr_models.sh"  # FILE, SHAPE, MEAN, STD, PREPROCESS by model
declare -A ROUNDS
ROUNDS[det]=15; ROUNDS[rec]=31; ROUNDS[cls]=61

for model in "${MODELS[@]}"; do
  [[ -n ${FILE[$model]:-} ]] || { echo "int8_speed: unknown model $model (det, rec, cls)" >&2; exit 2; }
  "$ROOT/scripts/make_calib_images.sh" "$IMAGES/$model" "$model" 40 > /dev/null
  fp32=$ROOT/.cache/models/${FILE[$model]}
  int8_args=()
  for target in "${TARGETS[@]}"; do
    out=$OUT/$model-$target.onnx
    "$QALIGN" quantize "$fp32" --target "$target" --input-shape "x=${SHAPE[$model]}" \
      --calib "image:$IMAGES/$model?${PREPROCESS[$model]}" \
      --holdout 8 --eval-samples 0 --quiet -o "$out" > /dev/null
    int8_args+=(--int8 "$target=$out")
  done
  echo "== $model ${SHAPE[$model]}"
  node "$ROOT/bench/int8_speed.js" --fp32 "$fp32" "${int8_args[@]}" --images "$IMAGES/$model" \
    --mean "${MEAN[$model]}" --std "${STD[$model]}" --runs "${RUNS:-${ROUNDS[$model]}}" --threads "$THREADS" --eval 8 \
    2> >(grep -v 'onnxruntime' >&2)
done
