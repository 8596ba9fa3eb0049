#!/usr/bin/env bash
# Installs what qalign's build and tests need, skipping what is already present (idempotent):
# Debian packages through apt-get, ONNX Runtime for the tests through npm, the real PP-OCR models.
set -euo pipefail
cd "$(dirname "$0")/.."

# ocl-icd-opencl-dev: Debian's oneDNN is built with the OpenCL GPU runtime, so its CMake package
# (dnnl-config.cmake) requires OpenCL; libdnnl-dev only recommends it, and recommends are skipped.
PACKAGES=(
  g++ cmake ninja-build make pkg-config
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  libdnnl-dev ocl-icd-opencl-dev nlohmann-json3-dev libcli11-dev
  libonnx-testdata libpng-dev libjpeg-dev
  nodejs npm
  python3-onnx python3-numpy
  imagemagick fonts-dejavu-core fonts-dejavu-extra
  clang-14 libclang-rt-14-dev
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
# node and npm may come from outside Debian; accept working ones on PATH.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for pkg in "${missing[@]}"; do
    [[ "$pkg" == nodejs || "$pkg" == npm ]] || filtered+=("$pkg")
  done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi

# ONNX Runtime for the tests (its install script downloads; the CPU library ships in the package).
ORT_DIR=tests/ort
if [[ ! -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ]] ||
   ! grep -q '"version": "1.30.0"' "$ORT_DIR/node_modules/onnxruntime-node/package.json"; then
  echo "setup: installing onnxruntime-node@1.30.0 into $ORT_DIR"
  (cd "$ORT_DIR" && npm install --ignore-scripts --no-save --no-audit --no-fund --loglevel=error \
      onnxruntime-node@1.30.0 >/dev/null)
else
  echo "setup: onnxruntime-node present"
fi

scripts/fetch_models.sh
