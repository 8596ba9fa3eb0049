#!/usr/bin/env bash
# Task accuracy of PP-OCR quantized by qalign, in ONNX Runtime: quantizes det (640x640), rec
# (48x320) and cls (48x192) for every target, evaluates FP32 and each INT8 model on labelled
# rendered data (bench/accuracy/render.js, another seed and generator than the calibration images)
# and prints one table: model x target x technique -> metrics, with the time each quantize took.
#
#   bench/accuracy/run.sh BUILD_DIR [--quick] [--models "det rec cls"] [--targets "T ..."]
#                         [--count "MODEL=N ..."] [--out RESULTS.jsonl] [--save DIR]
#                         [--check FLOORS.json]
#
#   --targets profile names or JSON files (a copy of one in targets/, for an ablation)
#   --quick   60 rec lines, 4 det pages, 40 cls lines (the ctest); default 200, 64 and 1000 (over
#             16 pages one split line is half a point of region F1, and over 100 cls lines one
#             flipped line is a whole point of agreement)
#   --count   another number of samples for a model, the same for every target ("cls=1000")
#   --out     also keep the result lines (JSON, one per row) there
#   --save    keep the quantized models and quantize's summaries in DIR (MODEL-TARGET.onnx / .txt)
#   --check   exit 1 when a metric is under its floor in FLOORS.json (see ocr_accuracy.js)
# Environment:
#   QALIGN_FLAGS      extra flags for every `qalign quantize`, e.g. "--observer mse" (an ablation)
#   QALIGN_TECHNIQUE  the name of the technique column (default: QALIGN_FLAGS, or "default")
#   QALIGN_ACC_DIR    where rendered data and calibration images are cached (default .cache/accuracy)
#   QALIGN_ACC_THREADS  ONNX Runtime intra-op threads (default 1)
# Calibration as bench/ppocr_results.sh (the README's results table): 40 images of
# scripts/make_calib_images.sh, the last 8 held out, with PaddleOCR's preprocessing and BGR channel
# order, as PaddleOCR feeds images read by OpenCV (and as the evaluator does); without the summary's
# SNR (the task metrics replace it) and on one thread (the same model bytes on every run). ONNX Runtime runs
# every model with graph optimizations disabled (exact QDQ semantics), and ort-qdq-u8s8's also with
# them all on (its deployment: fused integer kernels).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:?usage: run.sh BUILD_DIR [--quick] [--models M] [--targets T] [--out F] [--check FLOORS]}
shift
QUICK=0
MODELS=(det rec cls)
TARGETS=(tflite-int8 ort-qdq-u8s8 trt-int8 qnn-u8 ppq-default)
KEEP=""
SAVE=""
FLOORS=""
COUNTS=()
while (($#)); do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --models) read -ra MODELS <<< "${2:?--models needs a list}"; shift 2 ;;
    --targets) read -ra TARGETS <<< "${2:?--targets needs a list}"; shift 2 ;;
    --count) read -ra COUNTS <<< "${2:?--count needs MODEL=N}"; shift 2 ;;
    --out) KEEP=${2:?--out needs a file}; shift 2 ;;
    --save) SAVE=${2:?--save needs a folder}; shift 2 ;;
    --check) FLOORS=${2:?--check needs a file}; shift 2 ;;
    *) echo "accuracy: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
BUILD=$(cd "$BUILD" && pwd)
QALIGN=$BUILD/tools/qalign/qalign
[[ -x "$QALIGN" ]] || { echo "accuracy: $QALIGN not built" >&2; exit 1; }
command -v node > /dev/null || { echo "accuracy: node is not on PATH" >&2; exit 1; }
[[ -d "$ROOT/tests/ort/node_modules/onnxruntime-node" ]] ||
  { echo "accuracy: tests/ort/node_modules/onnxruntime-node missing (scripts/setup.sh)" >&2; exit 1; }
"$ROOT/scripts/fetch_models.sh" > /dev/null
MODEL_DIR=$ROOT/.cache/models
DICT=$MODEL_DIR/ppocr_keys_v1.txt
CACHE=${QALIGN_ACC_DIR:-$ROOT/.cache/accuracy}
FLAGS=${QALIGN_FLAGS:-}
TECHNIQUE=${QALIGN_TECHNIQUE:-${FLAGS:-default}}
# No summary SNR (the task metrics replace it), unless the flags need it: --accuracy-budget
# measures on the evaluation samples.
EVAL="--eval-samples 0"
[[ $FLAGS == *--accuracy-budget* || $FLAGS == *--eval-samples* ]] && EVAL=""
TECHNIQUE=${TECHNIQUE//,/;}  # the evaluator's --run separates keys with commas
THREADS=${QALIGN_ACC_THREADS:-1}
SEED=2026  # of the evaluation data; the calibration images have their own generator and seed

source "$ROOT/bench/ppocr_models.sh"  # FILE, SHAPE, PREPROCESS by model
declare -A COUNT
if ((QUICK)); then COUNT=([rec]=60 [det]=4 [cls]=40); else COUNT=([rec]=200 [det]=64 [cls]=1000); fi
for entry in "${COUNTS[@]}"; do
  [[ $entry =~ ^(det|rec|cls)=([1-9][0-9]*)$ ]] ||
    { echo "accuracy: --count takes MODEL=N (det, rec, cls), not '$entry'" >&2; exit 2; }
  COUNT[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
done

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
RESULTS=$OUT/results.jsonl
MODELS_OUT=$OUT
if [[ -n "$SAVE" ]]; then mkdir -p "$SAVE"; MODELS_OUT=$(cd "$SAVE" && pwd); fi
: > "$RESULTS"
started=$(date +%s)
for model in "${MODELS[@]}"; do
  [[ -n ${FILE[$model]:-} ]] || { echo "accuracy: unknown model $model (det, rec, cls)" >&2; exit 2; }
  data=$CACHE/data/$model-n${COUNT[$model]}-s$SEED
  node "$ROOT/bench/accuracy/render.js" "$data" "$model" "${COUNT[$model]}" "$SEED" "$DICT"
  calib=$CACHE/calib/$model
  "$ROOT/scripts/make_calib_images.sh" "$calib" "$model" 40 > /dev/null
  runs=()
  for target in "${TARGETS[@]}"; do
    name=$(basename "$target" .json)  # a target is a profile name or a JSON file
    quantized=$MODELS_OUT/$model-$name.onnx
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086  # QALIGN_FLAGS is a list of flags
    if ! "$QALIGN" quantize "$MODEL_DIR/${FILE[$model]}" --target "$target" \
        --input-shape "x=${SHAPE[$model]}" --calib "image:$calib?${PREPROCESS[$model]}&order=bgr" \
        --holdout 8 $EVAL --threads 1 --quiet $FLAGS -o "$quantized" \
        > "$MODELS_OUT/$model-$name.txt"; then
      echo "accuracy: qalign quantize $model for $target failed (message above)" >&2
      for opt in disabled all; do
        [[ $opt == all && $target != ort-qdq-u8s8 ]] && continue
        printf '{"kind":"%s","target":"%s","technique":"%s","opt":"%s","failed":true}\n' \
          "$model" "$name" "$TECHNIQUE" "$opt" >> "$RESULTS"
      done
      continue
    fi
    seconds=$(awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }')
    runs+=(--run "target=$name,technique=$TECHNIQUE,opt=disabled,seconds=$seconds" "$quantized")
    if [[ $target == ort-qdq-u8s8 ]]; then
      runs+=(--run "target=$name,technique=$TECHNIQUE,opt=all,seconds=$seconds" "$quantized")
    fi
  done
  node "$ROOT/bench/accuracy/ocr_accuracy.js" eval --kind "$model" --data "$data" --dict "$DICT" \
    --fp32 "$MODEL_DIR/${FILE[$model]}" --threads "$THREADS" --out "$RESULTS" "${runs[@]}" > /dev/null
done
[[ -n "$KEEP" ]] && cp "$RESULTS" "$KEEP"
echo "QALIGN_FLAGS='$FLAGS'; $(($(date +%s) - started)) s in all; values in %"
check=()
[[ -n "$FLOORS" ]] && check=(--floors "$FLOORS")
node "$ROOT/bench/accuracy/ocr_accuracy.js" table "$RESULTS" "${check[@]}"
