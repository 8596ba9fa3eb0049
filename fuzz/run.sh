#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for SECONDS each (default 60), starting from the
# seeds in fuzz/corpus/<name>/ and keeping what it finds in BUILD/fuzz-corpus/<name>/ (the seeds
# in the repository are never modified). Prints executions and coverage per target; exits 1 when
# a target crashed (the reproducer is BUILD/fuzz-artifacts/<name>/crash-*).
# Usage: fuzz/run.sh BUILD [SECONDS] [NAME...]
# FUZZ_SEED=S fixes libFuzzer's random seed, so a run explores the same inputs in the same order
# (how far it gets depends on the machine's speed): make test sets it, make fuzz does not.
set -u
build=${1:?usage: fuzz/run.sh BUILD [SECONDS] [NAME...]}
seconds=${2:-60}
shift $(( $# >= 2 ? 2 : 1 ))
here=$(cd "$(dirname "$0")" && pwd)
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=(onnx_import qdq_import align target_profile ranges npy image flags)
fi
failed=0
printf '%-16s %10s %8s %8s %s\n' target execs cov ft result
for name in "${names[@]}"; do
  binary="$build/fuzz/fuzz_$name"
  if [ ! -x "$binary" ]; then
    echo "$binary: not built (cmake --build $build --target qalign_fuzzers)" >&2
    failed=1
    continue
  fi
  work="$build/fuzz-corpus/$name"
  artifacts="$build/fuzz-artifacts/$name"
  log="$build/fuzz-logs/$name.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  # Small tensors and RSS: a hostile size must be refused, not allocated.
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    "$binary" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=65536 \
    ${FUZZ_SEED:+-seed="$FUZZ_SEED"} \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" "$here/corpus/$name" \
    >"$log" 2>&1
  status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  result=ok
  if [ $status -ne 0 ]; then
    result="CRASH (exit $status, see $log)"
    failed=1
  fi
  printf '%-16s %10s %8s %8s %s\n' "$name" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$result"
done
exit $failed
