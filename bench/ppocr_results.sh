#!/usr/bin/env bash
# Reproduces the results table of README.md: `qalign quantize` on PP-OCRv4 det (640x640), PP-OCRv4
# rec (48x320) and PP-OCR mobile v2.0 cls (48x192) for every shipped target, calibrated on 32
# seeded images of rendered text (scripts/make_calib_images.sh) and evaluated on 8 more held out.
# Prints the table in README's format: groups, requantizes and violations from the summary's
# alignment line, the held-out SNR of the simulated quantized output against FP32, and the
# summary's total time.
#
#   bench/ppocr_results.sh [--build DIR] [MODEL [TARGET]]
#
# MODEL is det, rec or cls and TARGET one of targets/*.json, to reproduce one row or one model's
# rows; the default is every model and target (about 3 minutes on 2 cores). Images are rendered
# once into $QALIGN_BENCH_IMAGES (default .cache/bench_images).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
if [[ ${1:-} == --build ]]; then BUILD=${2:?--build DIR}; shift 2; fi
MODELS=(det rec cls)
TARGETS=(tflite-int8 ort-qdq-u8s8 ort-qdq-u8s8-vnni trt-int8 qnn-u8 ppq-default)
[[ $# -ge 1 ]] && MODELS=("$1")
[[ $# -ge 2 ]] && TARGETS=("$2")
QALIGN=$BUILD/tools/qalign/qalign
IMAGES=${QALIGN_BENCH_IMAGES:-$ROOT/.cache/bench_images}
[[ -x "$QALIGN" ]] || { echo "ppocr_results: $QALIGN not built (make build)" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

source "$ROOT/bench/ppocr_models.sh"  # FILE, SHAPE, PREPROCESS, LABEL by model

# The summary's line "  <label> N ..." -> N; "  alignment: G groups, R requantizes, V violations".
field() { grep -m1 -oE -- "$1 -?[0-9.]+" "$2" | grep -oE -- "-?[0-9.]+$"; }
count() { grep -m1 "alignment:" "$2" | grep -oE "[0-9]+ $1" | grep -oE "[0-9]+"; }

echo "| model | target | groups | requantizes | violations | held-out SNR (dB) | time (s) | command |"
echo "|---|---|---|---|---|---|---|---|"
for model in "${MODELS[@]}"; do
  [[ -n ${FILE[$model]:-} ]] || { echo "ppocr_results: unknown model $model (det, rec, cls)" >&2; exit 2; }
  "$ROOT/scripts/make_calib_images.sh" "$IMAGES/$model" "$model" 40 > /dev/null
  for target in "${TARGETS[@]}"; do
    summary=$OUT/$model-$target.txt
    row="| ${LABEL[$model]} | $target"
    command="\`bench/ppocr_results.sh $model $target\`"
    if ! "$QALIGN" quantize "$ROOT/.cache/models/${FILE[$model]}" --target "$target" \
        --input-shape "x=${SHAPE[$model]}" --calib "image:$IMAGES/$model?${PREPROCESS[$model]}" \
        --holdout 8 --eval-samples 8 --quiet -o "$OUT/$model-$target.onnx" > "$summary"; then
      echo "$row | failed (message above) | | | | | $command |"
      continue
    fi
    echo "$row | $(count groups "$summary") | $(count requantizes "$summary")" \
         "| $(count violations "$summary") | $(field SNR "$summary") | $(field time: "$summary")" \
         "| $command |"
  done
done
