#!/usr/bin/env bash
# Fuzz every harness for 10 minutes (FUZZ_SECONDS to change it), two at a
# time, and print executions and crashes per harness. Builds build-asan
# (clang, ASan + UBSan, libFuzzer) through .ci/sanitize when needed.
# Crash reproducers land in build-asan/fuzz/artifacts/. Exit 1 on a crash.
#   bench/fuzz.sh                 600 s each
#   FUZZ_SECONDS=60 bench/fuzz.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-600}
"$root/.ci/sanitize" build >/dev/null
fuzz="$root/build-asan/fuzz"
mkdir -p "$fuzz/artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run() {
  local h=$1 rc=0
  mkdir -p "$work/$h"
  "$fuzz/fuzz_$h" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$fuzz/artifacts/$h-" \
    "$work/$h" "$root/tests/fuzz/corpus/$h" >"$work/$h.log" 2>&1 || rc=$?
  echo "$rc" >"$work/$h.rc"
}
harnesses=(session command script framing)
jobs=$(nproc)
pids=()
for h in "${harnesses[@]}"; do
  run "$h" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
printf '%-16s %10s %14s %10s %8s %8s\n' harness seconds executions exec/s corpus crashes
failed=0
for h in "${harnesses[@]}"; do
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/$h.log" | grep -o '[0-9]*$' || echo 0)
  corpus=$(ls "$work/$h" | wc -l)
  crashes=0
  if [ "$(cat "$work/$h.rc")" != 0 ]; then crashes=1; failed=1; fi
  printf '%-16s %10s %14s %10s %8s %8s\n' "fuzz_$h" "$seconds" "$runs" "$(( runs / seconds ))" "$corpus" "$crashes"
  if [ "$crashes" != 0 ]; then
    grep -m 12 -E 'ERROR|SUMMARY|runtime error|#[0-9]+ ' "$work/$h.log" | sed 's/^/    /'
    echo "    reproduce: $fuzz/fuzz_$h $(ls -t "$fuzz/artifacts/$h-"* | head -1)"
  fi
done
exit $failed
