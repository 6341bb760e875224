#!/usr/bin/env bash
# report.sh: the tables of docs/performance.md, printed as markdown by the
# benchmarks themselves, each stamped with the commit, the machine and the
# command that produced it (bench/mdreport.py).
#   bench/report.sh BUILD_DIR [core|mount|all]     (mount and all: as root)
# core:  bench/vmcore_bench, every benchmark or TASKFS_BENCH_FILTER's,
#        TASKFS_BENCH_REPS repetitions (3), medians.
# mount: bench/perf_compare.py --markdown with TASKFS_PERF_ARGS
#        (default "--size-mib 256 --reps 3": a few minutes).
# BUILD_DIR is a Release build with -DTASKFS_BUILD_BENCHMARKS=ON; progress
# goes to stderr, the markdown to stdout.
set -euo pipefail
build=${1:?usage: bench/report.sh BUILD_DIR [core|mount|all]}
what=${2:-all}
here=$(cd "$(dirname "$0")" && pwd)

core() {
  local out filter=${TASKFS_BENCH_FILTER:-.} reps=${TASKFS_BENCH_REPS:-3}
  out=$(mktemp)
  local args=(--benchmark_filter="$filter" --benchmark_repetitions="$reps"
              --benchmark_report_aggregates_only=true)
  "$build/bench/vmcore_bench" "${args[@]}" --benchmark_out="$out" \
    --benchmark_out_format=json >&2
  python3 "$here/mdreport.py" gbench "$out" \
    "$build/bench/vmcore_bench --benchmark_filter='$filter'" \
    "--benchmark_repetitions=$reps --benchmark_report_aggregates_only=true"
  rm -f "$out"
}

mount() {
  # shellcheck disable=SC2086 # TASKFS_PERF_ARGS is a list of arguments
  python3 "$here/perf_compare.py" --build "$build" --markdown \
    ${TASKFS_PERF_ARGS:---size-mib 256 --reps 3}
}

case $what in
  core) core ;;
  mount) mount ;;
  all) core; echo; mount ;;
  *) echo "report.sh: core, mount or all, not '$what'" >&2; exit 2 ;;
esac
