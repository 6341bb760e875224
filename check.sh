#!/usr/bin/env bash
# Installs what taskfs needs, builds it, and runs every test:
#   0. clang-format over every tracked C and C++ file (no changes allowed);
#   1. the Release build with GCC: unit, differential, fuzz corpus replay,
#      integration, hostile-input, security and fault tests;
#   2. the same tests built with clang under AddressSanitizer +
#      UndefinedBehaviorSanitizer, the daemon included (a report in its log
#      fails the test that ran it): the second compiler and the sanitizers
#      in one build;
#   3. ThreadSanitizer: the core's stress tests and the concurrency and fault
#      tests through a TSan-built daemon;
#   4. each libFuzzer target for a fixed time (TASKFS_FUZZ_SECONDS, 60),
#      as many at once as there are cores.
# Every build treats warnings as errors (TASKFS_WERROR).
# Usage: ./check.sh            (as root on Debian 12; CI runs exactly this)
set -euo pipefail
cd "$(dirname "$0")"

./install-deps.sh

jobs=$(nproc)
# The sanitizer builds: optimized, with line tables only (-g1): enough for
# the sanitizers' stack traces, and their builds take a fifth less time.
sanitized=(-DCMAKE_BUILD_TYPE=RelWithDebInfo
           "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
           "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG")
stage() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

stage "clang-format: every tracked C and C++ file as .clang-format wants it"
git ls-files -z -- '*.c' '*.cc' '*.h' | xargs -0 clang-format --dry-run -Werror

stage "Release build with GCC and every test"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTASKFS_WERROR=ON
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

stage "clang with ASan + UBSan: every test, the daemon included"
CC=clang CXX=clang++ cmake -S . -B build-asan -DTASKFS_WERROR=ON -DTASKFS_SANITIZE=address -DTASKFS_BUILD_BENCHMARKS=OFF \
  "${sanitized[@]}"
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"

stage "TSan: the core's stress tests and locks, concurrency and faults through the mount, libtaskfs"
cmake -S . -B build-tsan -DTASKFS_WERROR=ON -DTASKFS_SANITIZE=thread -DTASKFS_BUILD_BENCHMARKS=OFF \
  "${sanitized[@]}"
cmake --build build-tsan -j"$jobs" --target taskfs vmcore_stress_test vmcore_tests \
  integration_concurrency_test integration_faults_test client_threads_test \
  client_mach_test
TSAN_OPTIONS="halt_on_error=1" ctest --test-dir build-tsan --output-on-failure \
  -R '^(VmStress|PhaseFairMutex|DeferredFreer|Concurrency|ClientThreads|ClientMach)'
# TSan's lock-order checker follows at most 64 locks held by one thread; the
# core holds one per object, in id order, for a call that spans many regions
# (the fault tests make tasks of hundreds), so here it is off.
TSAN_OPTIONS="halt_on_error=1:detect_deadlocks=0" ctest --test-dir build-tsan \
  --output-on-failure -R '^Fault'

stage "libFuzzer: each target for ${TASKFS_FUZZ_SECONDS:-60} s"
tests/fuzz/run_fuzzers.sh "${TASKFS_FUZZ_SECONDS:-60}"

stage "all passed"
