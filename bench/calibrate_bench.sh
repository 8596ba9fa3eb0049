#!/usr/bin/env bash
# Calibration throughput (samples/s) and peak RSS of `qalign calibrate` on PP-OCRv4 det 640x640
# with N rendered-text images (default 32), minmax and kl observers.
#   bench/calibrate_bench.sh [BUILD_DIR] [N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build=${1:-build}
n=${2:-32}
qalign="$root/$build/tools/qalign/qalign"
model="$root/.cache/models/ch_PP-OCRv4_det_infer.onnx"
images="$root/.cache/calib/det"
[[ -x /usr/bin/time ]] || { echo "calibrate_bench: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
"$root/scripts/make_calib_images.sh" "$images" det "$n" >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf "%-10s %8s %10s %12s %12s\n" observer samples "wall s" "samples/s" "peak RSS MB"
for observer in minmax kl; do
  /usr/bin/time -f "%e %M" -o "$tmp/time" "$qalign" calibrate "$model" --target tflite-int8 \
    --input-shape x=1,3,640,640 --observer "$observer" --holdout 0 --quiet \
    --calib "image:$images?size=640x640&mean=0.485,0.456,0.406&std=0.229,0.224,0.225" \
    -o "$tmp/ranges.json"
  read -r wall rss_kb < "$tmp/time"
  awk -v o="$observer" -v n="$n" -v w="$wall" -v r="$rss_kb" \
    'BEGIN { printf "%-10s %8d %10.2f %12.2f %12.1f\n", o, n, w, n / w, r / 1024 }'
done
