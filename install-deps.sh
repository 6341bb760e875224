#!/usr/bin/env bash
# Installs the Debian 12 packages taskfs needs to build, test and run.
# With --list, prints their names instead.
set -euo pipefail
packages=(build-essential cmake pkg-config libfuse3-dev fuse3 libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev python3 bsdextrautils
  clang clang-format libclang-rt-14-dev llvm gdb binutils)
if [ "${1:-}" = "--list" ]; then
  echo "${packages[@]}"
  exit 0
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi
