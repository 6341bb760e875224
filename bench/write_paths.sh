#!/usr/bin/env bash
# write_paths.sh: sequential `dd bs=1M` writes of 2 GiB onto four servers in
# turn, REPS rounds: the discarding FUSE ceiling, the store server (one
# memcpy of each byte), the landing store (`-o land`: the kernel copies each
# byte straight into the store, one copy) and taskfs (two copies, the second
# with non-temporal stores). Prints each run's rate as dd reports it.
#   bench/write_paths.sh [BUILD_DIR] [REPS]     (as root; BUILD_DIR: build-release)
set -euo pipefail
build=${1:-build-release}
reps=${2:-3}
mnt=$(mktemp -d)
daemon=
cleanup() {
  mountpoint -q "$mnt" && fusermount3 -u "$mnt"
  [ -n "$daemon" ] && wait "$daemon" 2>/dev/null
  rmdir "$mnt"
}
trap cleanup EXIT

wait_for_mount() {
  local deadline=$((SECONDS + 10))
  until mountpoint -q "$mnt"; do
    if ((SECONDS >= deadline)); then echo "no mount after 10 s" >&2; return 1; fi
    sleep 0.05
  done
}

# One server: mount it, write 2 GiB (taskfs: once untimed, so its pages
# exist, as the store's do), print dd's rate, unmount.
run() {
  local name=$1; shift
  "$@" "$mnt" >/dev/null 2>&1 &
  daemon=$!
  wait_for_mount
  local target=$mnt/mem
  if [ "$name" = taskfs ]; then
    mkdir "$mnt/t"
    echo "allocate 0 2G" >"$mnt/t/ctl"
    target=$mnt/t/mem
    dd if=/dev/zero of="$target" bs=1M count=2048 conv=notrunc 2>/dev/null
  fi
  local rate
  rate=$(dd if=/dev/zero of="$target" bs=1M count=2048 conv=notrunc 2>&1 |
    tail -1 | sed 's/.*, //')
  printf '%-8s %s\n' "$name" "$rate"
  fusermount3 -u "$mnt"
  wait "$daemon" || true
  daemon=
}

for ((rep = 1; rep <= reps; rep++)); do
  run ceiling "$build/bench/fuse_ceiling" -f
  run store "$build/bench/fuse_ceiling" -f -o store_mib=2048
  run land "$build/bench/fuse_ceiling" -f -o store_mib=2048,land
  run taskfs "$build/fs/taskfs" -f -o tasks=none
done
