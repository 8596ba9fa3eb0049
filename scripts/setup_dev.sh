#!/usr/bin/env bash
# Installs what the tests, benchmarks and fuzzers need on top of scripts/setup.sh (idempotent):
# GoogleTest, Google Benchmark, the ONNX test data, pytest and onnx for the Python tests, clang
# and libFuzzer, the fonts of the accuracy tests' rendered text, and ONNX Runtime (npm) that the tests compare qalign's models with.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV_PACKAGES=(
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libonnx-testdata
  python3-onnx python3-pytest
  clang-14 libclang-rt-14-dev
  fonts-dejavu-extra
)
scripts/setup.sh --python --packages="${DEV_PACKAGES[*]}"

# ONNX Runtime for the tests (its install script downloads; the CPU library ships in the package).
ORT_DIR=tests/ort
if [[ ! -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ]] ||
   ! grep -q '"version": "1.30.0"' "$ORT_DIR/node_modules/onnxruntime-node/package.json"; then
  echo "setup_dev: installing onnxruntime-node@1.30.0 into $ORT_DIR"
  (cd "$ORT_DIR" && npm install --ignore-scripts --no-save --no-audit --no-fund --loglevel=error \
      onnxruntime-node@1.30.0 >/dev/null)
else
  echo "setup_dev: onnxruntime-node present"
fi
