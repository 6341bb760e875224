#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a
# fixed time, starting from a scratch copy of its seed corpus and its saved
# regressions; the source tree is never written. Prints, per target, the
# executions run and the coverage reached. Exits 1 if any target crashed,
# leaked, timed out or ran out of memory; the input that did it is kept under
# BUILD/fuzz-artifacts/TARGET/ (save it into regressions/TARGET/).
#
#   tests/fuzz/run_fuzzers.sh [SECONDS_PER_TARGET]     (default 60)
#
# Environment: TASKFS_FUZZ_BUILD, the build directory (default build-fuzz at
# the top of the tree); TASKFS_FUZZ_JOBS, build jobs (default 2);
# TASKFS_FUZZ_PARALLEL, how many targets fuzz at once (default: the cores);
# TASKFS_FUZZ_TARGETS, the targets to run (default all); CC and CXX (default
# clang and clang++).
set -euo pipefail

seconds=${1:-60}
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS_PER_TARGET]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${TASKFS_FUZZ_BUILD:-$root/build-fuzz}
jobs=${TASKFS_FUZZ_JOBS:-2}
parallel=${TASKFS_FUZZ_PARALLEL:-$(nproc)}
# vm_ops last: its systems' background threads want a second core, which
# it has to itself once the others are done.
read -r -a targets <<< "${TASKFS_FUZZ_TARGETS:-ctl_parser ioctl line_assembler state_restore vm_ops}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S "$root" -B "$build" \
  -DTASKFS_FUZZ=ON -DTASKFS_WERROR=ON -DTASKFS_SANITIZE=address -DTASKFS_BUILD_BENCHMARKS=OFF \
  > "$scratch/configure.log" 2>&1 || {
  cat "$scratch/configure.log" >&2
  exit 1
}
cmake --build "$build" -j "$jobs" --target "${targets[@]/#/fuzz_}"

# Runs one target from a scratch copy of its corpus; its log and exit status
# go to its scratch directory.
fuzz() {
  local target=$1 work=$scratch/$1 status=0 dir
  mkdir -p "$work/corpus" "$work/artifacts"
  for dir in "$here/corpus/$target" "$here/regressions/$target"; do
    if [ -d "$dir" ]; then
      find "$dir" -type f -exec cp -t "$work/corpus" {} +
    fi
  done
  local flags=(-max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048
               -print_final_stats=1 -artifact_prefix="$work/artifacts/")
  if [ -f "$here/$target.dict" ]; then
    flags+=(-dict="$here/$target.dict")
  fi
  "$build/tests/fuzz/fuzz_$target" "${flags[@]}" "$work/corpus" \
    > "$work/log" 2>&1 || status=$?
  echo "$status" > "$work/status"
}

# Each target gets its full time; up to $parallel run at once.
running=0
for target in "${targets[@]}"; do
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  echo "== fuzz_$target: ${seconds}s"
  fuzz "$target" &
  running=$((running + 1))
done
wait

failed=()
for target in "${targets[@]}"; do
  work=$scratch/$target
  status=$(cat "$work/status" 2>/dev/null || echo "?")
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")
  coverage=$(grep -E '^#[0-9]+' "$work/log" | tail -n 1 |
             grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[^ ]+' || true)
  echo "fuzz_$target: executions: ${runs:-?} (${speed:-?}/s); ${coverage:-no coverage line}"
  if [ "$status" != 0 ] || [ -n "$(ls -A "$work/artifacts")" ]; then
    failed+=("$target")
    kept=$build/fuzz-artifacts/$target
    mkdir -p "$kept"
    cp "$work/artifacts/"* "$kept/" 2>/dev/null || true
    echo "   FAILED (exit status $status); inputs kept in $kept:" >&2
    ls "$kept" >&2
    grep -v -E '^#[0-9]+|^INFO:' "$work/log" | tail -n 60 >&2
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzzing failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzing passed: ${targets[*]}"
