#!/usr/bin/env bash
# Wall time and peak RSS of `qalign quantize` on PP-OCRv4 det at 640x640 with 32 calibration
# images of rendered text. Usage:
#   bench/quantize_bench.sh [BUILD_DIR] [TARGET] [IMAGES]
# BUILD_DIR defaults to build (the Release build), TARGET to tflite-int8, IMAGES to 32.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
TARGET=${2:-tflite-int8}
COUNT=${3:-32}
QALIGN=$BUILD/tools/qalign/qalign
MODEL=$ROOT/.cache/models/ch_PP-OCRv4_det_infer.onnx
[[ -x "$QALIGN" ]] || { echo "quantize_bench: $QALIGN not built" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "quantize_bench: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
[[ -f "$MODEL" ]] || { echo "quantize_bench: $MODEL missing (scripts/fetch_models.sh)" >&2; exit 1; }
IMAGES=$ROOT/.cache/bench_det_images
"$ROOT/scripts/make_calib_images.sh" "$IMAGES" det "$COUNT" > /dev/null
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# --holdout 0: all 32 images calibrate. Measured twice: the whole job as users run it (the
# summary's SNR on 8 of the images: 16 more model runs) and the quantization alone
# (--eval-samples 0).
for eval in 8 0; do
  /usr/bin/time -f "wall %e s, peak RSS %M KB" -o "$OUT/time.txt" \
    "$QALIGN" quantize "$MODEL" --target "$TARGET" --input-shape x=1,3,640,640 \
      --calib "image:$IMAGES?size=640x640&mean=0.485,0.456,0.406&std=0.229,0.224,0.225" \
      --holdout 0 --eval-samples "$eval" -o "$OUT/det_int8.onnx" 2> "$OUT/log.txt" |
    tee "$OUT/summary.txt" | grep -E "time:|SNR" | sed 's/^ */  /'
  echo "qalign quantize det 640x640, $COUNT images, $TARGET, --eval-samples $eval, $(nproc) cores: $(cat "$OUT/time.txt")"
done
