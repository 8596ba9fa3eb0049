#!/usr/bin/env bash
# `make bench`: every Google Benchmark program the build made (BUILD_DIR/bench/*_bench), then the
# README's results table (bench/ppocr_results.sh).
#   bench/run_all.sh [BUILD_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
shopt -s nullglob
for program in "$BUILD"/bench/*_bench; do
  [[ -x "$program" ]] || continue
  echo "== $(basename "$program")"
  "$program"
done
echo "== bench/ppocr_results.sh"
"$ROOT/bench/ppocr_results.sh" --build "$BUILD"
