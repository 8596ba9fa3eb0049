#!/usr/bin/env bash
# The main job on the bundled default model.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODEL=${2:-.cache/models/ch_PP-OCRv4_det_infer.onnx}
"$BUILD/tools/qalign/qalign" inspect "$MODEL"
