#!/usr/bin/env bash
# Ablation of the accuracy techniques on PP-OCR: `qalign quantize` with the settings of
# bench/ppocr_results.sh (40 rendered images, the last 8 held out) once per technique, printing the
# held-out output SNR against FP32 and the summary's total time.
#
#   bench/techniques.sh [--build DIR] [MODEL [TARGET]]
#
# The techniques, each alone (bias correction off in every other one, though it is the default for
# targets with per-tensor weights):
#   default           --no-bias-correction
#   optimal           --align T=optimal for every op type the target aligns by large/output/input
#   observer-mse      --observer mse
#   observer-auto     --observer auto
#   bias-correction   --bias-correction
#   optimize-weights  --optimize-weights (AdaRound-style weight rounding; slower: tens of seconds)
# QALIGN_TECHNIQUES="default bias-correction" limits the list; QALIGN_FLAGS="--observer minmax"
# adds flags to every technique.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
if [[ ${1:-} == --build ]]; then BUILD=${2:?--build DIR}; shift 2; fi
MODELS=(det rec cls)
TARGETS=(tflite-int8 ort-qdq-u8s8 trt-int8 qnn-u8 ppq-default)
[[ $# -ge 1 ]] && MODELS=("$1")
[[ $# -ge 2 ]] && TARGETS=("$2")
read -ra TECHNIQUES <<< "${QALIGN_TECHNIQUES:-default optimal observer-mse observer-auto bias-correction optimize-weights}"
QALIGN=$BUILD/tools/qalign/qalign
IMAGES=${QALIGN_BENCH_IMAGES:-$ROOT/.cache/bench_images}
[[ -x "$QALIGN" ]] || { echo "techniques: $QALIGN not built (make build)" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

source "$ROOT/bench/ppocr_models.sh"  # FILE, SHAPE, PREPROCESS by model

# --align flags making every aligned op type of a target use `optimal` (fixed and none stay).
optimal_flags() {
  python3 - "$ROOT/targets/$1.json" <<'PY'
import json, sys
profile = json.load(open(sys.argv[1]))
for op_class in profile.get("op_classes", {}).values():
    if op_class.get("method") in ("large", "output", "input"):
        for op in op_class["ops"]:
            print(f"--align {op}=optimal", end=" ")
PY
}

field() { grep -m1 -oE -- "$1 -?[0-9.]+" "$2" | grep -oE -- "-?[0-9.]+$"; }

echo "| model | target | technique | held-out SNR (dB) | time (s) |"
echo "|---|---|---|---|---|"
for model in "${MODELS[@]}"; do
  "$ROOT/scripts/make_calib_images.sh" "$IMAGES/$model" "$model" 40 > /dev/null
  for target in "${TARGETS[@]}"; do
    for technique in "${TECHNIQUES[@]}"; do
      case "$technique" in
        default) flags="--no-bias-correction" ;;
        optimal) flags="--no-bias-correction $(optimal_flags "$target")" ;;
        observer-mse) flags="--no-bias-correction --observer mse" ;;
        observer-auto) flags="--no-bias-correction --observer auto" ;;
        bias-correction) flags="--bias-correction" ;;
        optimize-weights) flags="--no-bias-correction --optimize-weights" ;;
        *) echo "techniques: unknown technique $technique" >&2; exit 2 ;;
      esac
      flags="$flags ${QALIGN_FLAGS:-}"
      summary=$OUT/summary.txt
      # shellcheck disable=SC2086  # flags are words
      if ! "$QALIGN" quantize "$ROOT/.cache/models/${FILE[$model]}" --target "$target" \
          --input-shape "x=${SHAPE[$model]}" --calib "image:$IMAGES/$model?${PREPROCESS[$model]}" \
          --holdout 8 --eval-samples 8 --quiet $flags -o "$OUT/model.onnx" > "$summary"; then
        echo "| $model | $target | $technique | failed | |"
        continue
      fi
      echo "| $model | $target | $technique | $(field SNR "$summary") | $(field time: "$summary") |"
    done
  done
done
