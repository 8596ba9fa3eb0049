#!/usr/bin/env bash
# README's results table (issue 5, section 6): PP-OCRv4 det (640x640), rec (48x320) and the cls
# model (48x192), each quantized by `qalign quantize` for tflite-int8, ort-qdq-u8s8 and qnn-u8 on
# seeded rendered-text images (scripts/make_calib_images.sh): 32 calibrate, 8 held out. Prints one
# markdown row per model and target: held-out SNR vs FP32 (qalign's simulation, all 8 held-out
# images), groups, requantizes, violations, wall time. Usage:
#   bench/ppocr_results.sh [BUILD_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
QALIGN=$BUILD/tools/qalign/qalign
MODELS=$ROOT/.cache/models
[[ -x "$QALIGN" ]] || { echo "ppocr_results: $QALIGN not built" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

declare -A FILE SHAPE PREPROCESS
FILE[det]=ch_PP-OCRv4_det_infer.onnx
FILE[rec]=ch_PP-OCRv4_rec_infer.onnx
FILE[cls]=ch_ppocr_mobile_v2.0_cls_infer.onnx
SHAPE[det]=1,3,640,640
SHAPE[rec]=1,3,48,320
SHAPE[cls]=1,3,48,192
PREPROCESS[det]="size=640x640&mean=0.485,0.456,0.406&std=0.229,0.224,0.225"
PREPROCESS[rec]="size=320x48&mean=0.5&std=0.5"
PREPROCESS[cls]="size=192x48&mean=0.5&std=0.5"

echo "| model | target | held-out SNR (dB) | cosine | groups | requantizes | violations | time (s) |"
echo "|---|---|---|---|---|---|---|---|"
for model in det rec cls; do
  images=$ROOT/.cache/results_$model
  "$ROOT/scripts/make_calib_images.sh" "$images" "$model" 40 > /dev/null
  for target in tflite-int8 ort-qdq-u8s8 qnn-u8; do
    summary=$OUT/$model-$target.txt
    "$QALIGN" quantize "$MODELS/${FILE[$model]}" --target "$target" --input-shape "x=${SHAPE[$model]}" \
      --calib "image:$images?${PREPROCESS[$model]}" --holdout 8 --eval-samples 8 --quiet \
      -o "$OUT/$model-$target.onnx" > "$summary"
    snr=$(grep -m1 -oE "SNR -?[0-9.]+ dB" "$summary" | grep -oE -- "-?[0-9.]+")
    cosine=$(grep -m1 -oE "cosine [0-9.]+" "$summary" | grep -oE "[0-9.]+")
    align=$(grep -m1 "alignment:" "$summary")
    groups=$(grep -oE "[0-9]+ groups" <<< "$align" | grep -oE "[0-9]+")
    requantizes=$(grep -oE "[0-9]+ requantizes" <<< "$align" | grep -oE "[0-9]+")
    violations=$(grep -oE "[0-9]+ violations" <<< "$align" | grep -oE "[0-9]+")
    seconds=$(grep -m1 -oE "time: [0-9.]+" "$summary" | grep -oE "[0-9.]+")
    echo "| $model | $target | $snr | $cosine | $groups | $requantizes | $violations | $seconds |"
  done
done
