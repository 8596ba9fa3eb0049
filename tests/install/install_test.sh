#!/usr/bin/env bash
# install_test.sh BUILD SOURCE MODEL_DIR CMAKE CXX PYTHON_ON PYTHON PYTHON_DIR (see CMakeLists.txt)
set -euo pipefail
BUILD=$1 SOURCE=$2 MODELS=$3 CMAKE=$4 CXX=$5 PYTHON_ON=$6 PYTHON=${7:-python3} PYDIR=${8:-}
MODEL="$MODELS/ch_ppocr_mobile_v2.0_cls_infer.onnx"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

step() { echo "== $*"; }

step "install into $TMP/prefix, then move it to $TMP/moved"
"$CMAKE" --install "$BUILD" --prefix "$TMP/prefix" >/dev/null
mv "$TMP/prefix" "$TMP/moved"
P="$TMP/moved"
for f in bin/qalign include/qalign/quantize.h include/qalign/check.h share/qalign/targets/tflite-int8.json; do
  [[ -e "$P/$f" ]] || { echo "missing $P/$f"; exit 1; }
done
ls "$P"/lib*/libqalign.* >/dev/null
ls "$P"/lib*/cmake/qalign/qalignConfig.cmake "$P"/lib*/pkgconfig/qalign.pc >/dev/null

# A profile only the installed prefix has: found by name only if the lookup uses the prefix.
sed 's/"name": *"tflite-int8"/"name": "installed-only"/' "$P/share/qalign/targets/tflite-int8.json" \
  > "$P/share/qalign/targets/installed-only.json"

mkdir "$TMP/work"
cd "$TMP/work"  # outside the source tree
step "installed CLI with --target tflite-int8 and --target installed-only"
"$P/bin/qalign" quantize "$MODEL" --target tflite-int8 --calib random:4 --input-shape x=1,3,48,192 --quiet -o cls_cli.onnx
"$P/bin/qalign" quantize "$MODEL" --target installed-only --calib random:4 --input-shape x=1,3,48,192 --quiet -o cls_io.onnx
"$P/bin/qalign" check cls_cli.onnx --target tflite-int8

step "examples/cpp against the prefix (find_package(qalign))"
"$CMAKE" -S "$SOURCE/examples/cpp" -B example -DCMAKE_PREFIX_PATH="$P" \
  -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=Release >/dev/null
"$CMAKE" --build example >/dev/null
OMP_WAIT_POLICY=PASSIVE ./example/quantize_model "$MODEL" tflite-int8 cls_cpp.onnx 8 | tee cpp.txt
grep -q "installed-only" cpp.txt  # TargetNames() lists the prefix's profiles
grep -q "check: 0 violations" cpp.txt

step "the same program built with pkg-config"
PKG_CONFIG_PATH=$(dirname "$P"/lib*/pkgconfig/qalign.pc) pkg-config --cflags --libs qalign > pc.txt
"$CXX" -std=c++17 "$SOURCE/examples/cpp/quantize_model.cc" $(cat pc.txt) \
  -Wl,-rpath,"$(dirname "$P"/lib*/libqalign.so)" -o quantize_model_pc
OMP_WAIT_POLICY=PASSIVE ./quantize_model_pc "$MODEL" tflite-int8 cls_pc.onnx 8 >/dev/null
cmp cls_cpp.onnx cls_pc.onnx

if [[ "$PYTHON_ON" == 1 ]]; then
  step "the installed Python package"
  export PYTHONPATH="$P/$PYDIR"
  "$PYTHON" - "$P" <<'PY'
import os, sys
import qalign
prefix = sys.argv[1]
assert qalign.__file__.startswith(prefix), qalign.__file__
assert qalign.targets_dir() == os.path.join(prefix, "share", "qalign", "targets"), qalign.targets_dir()
assert "installed-only" in qalign.targets() and "tflite-int8" in qalign.targets()
print("python:", qalign.__file__, qalign.targets_dir())
PY
  "$PYTHON" "$SOURCE/examples/python/quantize_cls.py" "$MODEL" py_out
fi
echo "install test: ok"
