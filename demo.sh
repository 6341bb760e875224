#!/usr/bin/env bash
# Installs what taskfs needs, builds what `cmake --install build` installs
# (the target `installable`: the daemon, libtaskfs, the Python package and
# taskfs-ctl; not the tests or the benchmarks) and mounts the embedded demo.
# A live taskfs mount is left as it is, with its tasks. ./demo.sh --help says
# more; tests/demo_check.sh tests it.
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)

usage() {
  cat <<'EOF'
Usage: ./demo.sh [--remount] [--no-deps] [--no-build] [--build-dir=DIR]
                 [MOUNTPOINT] [taskfs options...]         (default /mnt/taskfs)
Installs the Debian packages taskfs needs, builds the daemon, libtaskfs and
the Python package into DIR (default build/ next to this script; then
`cmake --install DIR` installs them) and mounts the embedded demo:
  ./demo.sh /tmp/t -o page_size=16384
A live taskfs mount on MOUNTPOINT is left as it is, with the tasks made on
it, and its hints printed again; --remount unmounts it (its tasks are lost)
and mounts the demo afresh. A dead one (its daemon gone) is cleared first.
  --no-deps    do not run ./install-deps.sh
  --no-build   do not build: run the daemon already built in DIR
Unmount with: fusermount3 -u MOUNTPOINT
EOF
}

build=$src/build
remount=0 deps=1 compile=1
while (($#)); do
  case $1 in
    --remount) remount=1 ;;
    --no-deps) deps=0 ;;
    --no-build) compile=0 ;;
    --build-dir=*) build=$(realpath -m -- "${1#*=}") ;;
    -h | --help) usage; exit 0 ;;
    *) break ;;
  esac
  shift
done
mountpoint=/mnt/taskfs
if (($#)) && [[ $1 != -* ]]; then
  mountpoint=$1
  shift
fi
q=$(printf %q "$mountpoint")  # the mountpoint as the hints print it

# The type of the mount on $1 ("" if none; the last one, which is on top)
# by /proc/self/mountinfo, which escapes \, space, tab and newline in octal.
# Nothing here stats $1 itself: on a dead mount that fails.
mount_type() {
  local path type='' line fields
  path=$(realpath -m -- "$1")
  path=${path//\\/\\134} path=${path// /\\040}
  path=${path//$'\t'/\\011} path=${path//$'\n'/\\012}
  while IFS= read -r line; do
    read -r -a fields <<<"${line%% - *}"
    if [[ ${fields[4]} == "$path" ]]; then
      line=${line#* - }
      type=${line%% *}
    fi
  done </proc/self/mountinfo
  printf '%s' "$type"
}

# Whether the mount on $1 is dead: its daemon is gone and every access to it
# fails with ENOTCONN.
is_dead() {
  local err
  ! err=$(LC_ALL=C stat -- "$1" 2>&1 >/dev/null) &&
    [[ $err == *"Transport endpoint is not connected"* ]]
}

# The mount's page size: its host_page_size, else the page_size option given,
# else the default.
page_size() {
  local size arg
  size=$(cat -- "$mountpoint/host_page_size" 2>/dev/null) || size=
  if [[ ! $size =~ ^[0-9]+$ ]]; then
    size=4096
    for arg in "$@"; do
      if [[ $arg =~ (^|,|^-o)page_size=([0-9]+)(,|$) ]]; then size=${BASH_REMATCH[2]}; fi
    done
  fi
  printf '%s' "$size"
}

hints() {
  local size
  size=$(page_size "$@")
  echo "  ls -l $q/demo"
  echo "  cat $q/demo/maps $q/demo/status"
  echo "  dd if=$q/demo/mem bs=$size skip=\$((0x600000/$size)) count=1 status=none | hexdump -C | head"
  echo "Unmount with: fusermount3 -u $q"
}

if ((deps)); then
  "$src/install-deps.sh"
fi
if ((compile)); then
  cmake -S "$src" -B "$build" >/dev/null
  cmake --build "$build" -j"$(nproc)" --target installable
fi
daemon=$build/fs/taskfs
if [[ ! -x $daemon ]]; then
  echo "demo.sh: no daemon at $daemon (build it, or leave out --no-build)" >&2
  exit 1
fi

type=$(mount_type "$mountpoint")
if [[ $type == fuse.taskfs ]] && is_dead "$mountpoint"; then
  # The daemon's own words for this mountpoint (fs/options.cc), and its remedy.
  echo "demo.sh: mountpoint $mountpoint: a dead FUSE mount (its daemon is gone);" \
    "clearing it with 'fusermount3 -u -z $mountpoint'" >&2
  fusermount3 -u -z "$mountpoint" || umount -l "$mountpoint"
  type=
elif [[ $type == fuse.taskfs ]] && ((remount)); then
  fusermount3 -u "$mountpoint"  # fails, and so demo.sh, while the mount is busy
  echo "demo.sh: --remount: unmounted the taskfs on $mountpoint; its tasks are gone" >&2
  type=
elif [[ $type == fuse.taskfs ]]; then
  echo "taskfs is already mounted on $mountpoint: left as it is, with its tasks."
  if (($#)); then
    echo "Its options stay; yours ($*) need a new mount:"
  else
    echo "To mount the demo afresh (the tasks made since are lost):"
  fi
  echo "  $0 --remount $q${*:+ $*}"
  echo "Try:"
  hints "$@"
  exit 0
fi
# Another file system's mount there, or another dead FUSE mount, is the
# daemon's to refuse, with its one line.
if [[ -z $type ]]; then
  mkdir -p -- "$mountpoint"
fi
"$daemon" "$@" "$mountpoint"
# Not mounted after all: --help, --version, or -f and unmounted since.
[[ $(mount_type "$mountpoint") == fuse.taskfs ]] || exit 0
echo "taskfs mounted on $mountpoint. Try:"
hints "$@"
