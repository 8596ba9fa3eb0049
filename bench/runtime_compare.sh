#!/usr/bin/env bash
# Times qalign's executor (`qalign run`) and ONNX Runtime (bench/ort_time.js, onnxruntime-node from
# tests/ort) with the same thread count on PP-OCRv4 det 1x3x640x640 and rec 1x3x48x320, and prints
# ms/iter for each and the ratio qalign / ORT.
#
#   bench/runtime_compare.sh [--qalign PATH] [--repeat N] [--threads T] [--models DIR]
#
# Defaults: qalign from build/tools/qalign/qalign, 20 timed runs after one warm-up, T = nproc,
# models from .cache/models. Both runtimes get the same seeded input .npy.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
qalign="${root}/build/tools/qalign/qalign"
repeat=20
threads="$(nproc)"
models="${root}/.cache/models"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --qalign) qalign="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "runtime_compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

[[ -x "${qalign}" ]] || { echo "runtime_compare.sh: no qalign binary at ${qalign} (use --qalign)" >&2; exit 1; }
[[ -d "${root}/tests/ort/node_modules/onnxruntime-node" ]] || {
  echo "runtime_compare.sh: onnxruntime-node is not installed in tests/ort (run scripts/setup.sh)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

# oneDNN runs on OpenMP: give it the same thread count as ORT's intra-op pool.
export OMP_NUM_THREADS="${threads}"
# libgomp workers spin after each parallel region and steal the cores from qalign's own thread
# pool; passive waiting keeps them asleep (read by libgomp at process start).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

printf '%-28s %12s %12s %8s\n' "model" "qalign ms" "ORT ms" "ratio"
status=0
for spec in "ch_PP-OCRv4_det_infer:1,3,640,640" "ch_PP-OCRv4_rec_infer:1,3,48,320"; do
  name="${spec%%:*}"
  shape="${spec#*:}"
  model="${models}/${name}.onnx"
  [[ -f "${model}" ]] || { echo "runtime_compare.sh: missing model ${model}" >&2; exit 1; }
  input="${work}/${name}.npy"
  node "${root}/bench/ort_time.js" --make-npy "${input}" --shape "${shape}" --seed 1

  # qalign prints the median ms per run; take the last "<number> ms" it prints.
  if ! q_out="$("${qalign}" run "${model}" --input "x=${input}" --output-dir "${work}/out_${name}" \
                --repeat "${repeat}" 2>&1)"; then
    echo "runtime_compare.sh: qalign run failed on ${name}: ${q_out}" >&2
    status=1
    continue
  fi
  q_ms="$(grep -oE '[0-9]+(\.[0-9]+)? ?ms' <<<"${q_out}" | tail -1 | grep -oE '[0-9]+(\.[0-9]+)?')"
  o_out="$(node "${root}/bench/ort_time.js" "${model}" --input "x=${input}" --repeat "${repeat}" \
           --threads "${threads}")"
  o_ms="$(awk '/^ort_ms_per_iter/ {print $2}' <<<"${o_out}")"
  if [[ -z "${q_ms}" || -z "${o_ms}" ]]; then
    echo "runtime_compare.sh: could not read timings (qalign: ${q_out}; ORT: ${o_out})" >&2
    status=1
    continue
  fi
  ratio="$(awk -v q="${q_ms}" -v o="${o_ms}" 'BEGIN {printf "%.2f", q / o}')"
  printf '%-28s %12s %12s %8s\n' "${name} [${shape}]" "${q_ms}" "${o_ms}" "${ratio}x"
done
echo "threads=${threads} repeat=${repeat} (median of timed runs after one warm-up)"
exit "${status}"
