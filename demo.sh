#!/usr/bin/env bash
# Installs what taskfs needs, builds it, and mounts the embedded demo.
# Usage: ./demo.sh [MOUNTPOINT] [taskfs options...]   (default /mnt/taskfs)
# Unmount with: fusermount3 -u MOUNTPOINT
set -euo pipefail
cd "$(dirname "$0")"
mountpoint=${1:-/mnt/taskfs}
shift || true

./install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target taskfs

mkdir -p "$mountpoint"
if grep -q " $(realpath "$mountpoint") fuse.taskfs " /proc/mounts; then
  fusermount3 -u "$mountpoint"
fi
./build/fs/taskfs "$@" "$mountpoint"
echo "taskfs mounted on $mountpoint. Try:"
echo "  ls -l $mountpoint/demo"
echo "  cat $mountpoint/demo/maps $mountpoint/demo/status"
echo "  dd if=$mountpoint/demo/mem bs=4096 skip=\$((0x600000/4096)) count=1 status=none | hexdump -C | head"
echo "Unmount with: fusermount3 -u $mountpoint"
