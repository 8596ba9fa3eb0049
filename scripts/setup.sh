#!/usr/bin/env bash
# Installs what building qalign (CLI, library) and its demo need, skipping what is already
# present (idempotent): Debian packages through apt-get and the real PP-OCR models (npm pack).
#   scripts/setup.sh            the user's set-up (make demo, make install)
#   scripts/setup.sh --python   also what the Python module needs (pybind11, numpy)
# scripts/setup_dev.sh adds what the tests, benchmarks and fuzzers need (make test).
set -euo pipefail
cd "$(dirname "$0")/.."

# ocl-icd-opencl-dev: Debian's oneDNN is built with the OpenCL GPU runtime, so its CMake package
# (dnnl-config.cmake) requires OpenCL; libdnnl-dev only recommends it, and recommends are skipped.
# imagemagick and fonts-dejavu-core render the demo's calibration images; npm fetches the models.
PACKAGES=(
  g++ cmake ninja-build make pkg-config
  libonnx-dev libprotobuf-dev protobuf-compiler
  libdnnl-dev ocl-icd-opencl-dev nlohmann-json3-dev libcli11-dev
  libpng-dev libjpeg-dev
  nodejs npm
  imagemagick fonts-dejavu-core
)
PYTHON_PACKAGES=(pybind11-dev python3-dev python3-numpy)
for arg in "$@"; do
  case "$arg" in
    --python) PACKAGES+=("${PYTHON_PACKAGES[@]}") ;;
    --packages=*) IFS=' ' read -r -a extra <<< "${arg#--packages=}"; PACKAGES+=("${extra[@]}") ;;
    *) echo "setup: unknown argument $arg (--python)" >&2; exit 2 ;;
  esac
done

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

scripts/fetch_models.sh
