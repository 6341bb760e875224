#!/usr/bin/env bash
# Installs what taskfs needs, builds it, and runs every test:
#   1. the normal build (RelWithDebInfo): unit, differential, integration tests;
#   2. a ThreadSanitizer build of the VM core and its concurrency tests.
# Usage: ./check.sh            (as root on Debian 12; CI runs exactly this)
set -euo pipefail
cd "$(dirname "$0")"

./install-deps.sh

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

cmake -S . -B build-tsan -DTASKFS_SANITIZE=thread -DTASKFS_BUILD_FS=OFF \
  -DTASKFS_BUILD_BENCHMARKS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build-tsan -j"$jobs" --target vmcore_stress_test
TSAN_OPTIONS="halt_on_error=1" ctest --test-dir build-tsan --output-on-failure \
  -R 'Stress'
