#!/usr/bin/env bash
# Runs the real ./demo.sh (its build and mount logic; --no-deps, so nothing
# is installed) against a mountpoint in a fresh mktemp -d directory, with a
# deadline on every wait, and always unmounts and ends every daemon it
# started, even on failure.
#
# Usage: demo_check.sh SOURCE_DIR BUILD_DIR build|mounts   (run by CTest)
#   build:  removes from BUILD_DIR every file `cmake --install` reads from
#           it, runs ./demo.sh (which configures and builds BUILD_DIR, then
#           mounts), and installs BUILD_DIR into a fresh prefix: demo.sh's
#           build must leave the install rules nothing missing.
#   mounts: ./demo.sh --no-build on a fresh mountpoint (with a page size of
#           its own), on its live mount (kept, with the tasks made on it),
#           with --remount, and on its dead mount (cleared, mounted afresh).
set -euo pipefail
src=$1 build=$2 mode=$3

work=$(mktemp -d /tmp/taskfs-demo-XXXXXX)
mnt=$work/mnt  # demo.sh makes it
demo=("$src/demo.sh" --no-deps "--build-dir=$build")
if [[ $mode == mounts ]]; then demo+=(--no-build); fi

# The pids of the taskfs daemons serving $mnt: demo.sh runs them in the
# background, so they are no children of this script.
daemons() {
  local f args
  for f in /proc/[0-9]*/cmdline; do
    args=()
    mapfile -d '' args 2>/dev/null <"$f" || continue
    if ((${#args[@]})) && [[ ${args[0]} == */taskfs && ${args[-1]} == "$mnt" ]]; then
      f=${f#/proc/}
      echo "${f%/cmdline}"
    fi
  done
}
mounted() { grep -qs " $mnt fuse.taskfs " /proc/self/mounts; }
# Waits up to 10 s for the command to succeed.
await() {
  local _
  for _ in $(seq 100); do "$@" && return 0; sleep 0.1; done
  return 1
}
gone() { [[ -z $(daemons) ]]; }
# Whether process $1 has ended (a zombie has no cmdline).
exited() { [[ -z $(tr -d '\0' <"/proc/$1/cmdline" 2>/dev/null) ]]; }
cleanup() {
  if mounted; then fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" || true; fi
  # shellcheck disable=SC2046  # one word per pid
  await gone || kill -9 $(daemons) 2>/dev/null || true
  await gone || echo "demo_check: daemons left: $(daemons)" >&2
  if ! mounted; then rm -rf "$work"; fi
}
trap cleanup EXIT
fail() { echo "demo_check: FAILED: $*" >&2; exit 1; }

# Runs demo.sh with the arguments given: its stdout in $out, stderr in $err,
# exit status in $status.
try_demo() {
  status=0
  "${demo[@]}" "$@" >"$work/out" 2>"$work/err" || status=$?
  out=$(<"$work/out") err=$(<"$work/err")
}
run_demo() {
  try_demo "$@"
  ((status == 0)) || fail "demo.sh $* exited $status: $out $err"
}
# The hint's dd command, as demo.sh printed it, must show the greeting.
check_hint() {
  local size=$1 line
  line=$(grep -E '^  dd if=' <<<"$out") || fail "no dd hint in: $out"
  [[ $line == *" bs=$size skip=\$((0x600000/$size)) "* ]] ||
    fail "the hint is not for page size $size: $line"
  [[ $(bash -c "$line") == *"|Hello from taskf|"* ]] || fail "the hint shows no greeting: $line"
}

case $mode in
  build)
    # Every file of the build tree the install rules name, from the
    # generated install scripts.
    # Only a build tree apart from the sources: an in-source build's install
    # rules name sources too, which this must never delete.
    real_src=$(realpath "$src") real_build=$(realpath "$build")
    [[ $real_build != "$real_src" && $real_src != "$real_build"/* ]] ||
      fail "the build directory $build holds the sources: refusing to delete its files"
    mapfile -t inputs < <(find "$build" -name cmake_install.cmake -exec grep -ho '"/[^"]*"' {} + |
      tr -d '"' | grep -F "$build/" | grep -v -e '\$' -e '/cmake_install\.cmake$' | sort -u)
    for f in "${inputs[@]}"; do
      ! git -C "$src" ls-files --error-unmatch -- "$f" >/dev/null 2>&1 ||
        fail "the install rules name $f, a tracked source, as a build output"
    done
    for f in fs/taskfs libtaskfs/libtaskfs.so.0 libtaskfs/libtaskfs.a python/taskfs/_table.py; do
      grep -qxF "$build/$f" <(printf '%s\n' "${inputs[@]}") || fail "the install rules do not name $f"
    done
    rm -f -- "${inputs[@]}"
    run_demo "$mnt" -o tasks=none
    mounted || fail "demo.sh built but did not mount: $out $err"
    cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" 2>&1 ||
      fail "cmake --install after demo.sh's build: $(cat "$work/install.log")"
    for f in "${inputs[@]}"; do
      [[ -e $f ]] || fail "demo.sh's build did not make $f"
    done
    [[ -x $work/prefix/bin/taskfs && -e $work/prefix/share/man/man1/taskfs.1 ]] ||
      fail "not installed: $(find "$work/prefix")"
    ;;
  mounts)
    # Fresh: demo.sh makes the mountpoint and mounts the demo; the hints
    # follow the page size asked for.
    run_demo "$mnt" -o page_size=16384
    mounted || fail "not mounted: $out"
    [[ $out == "taskfs mounted on $mnt. Try:"* ]] || fail "fresh mount said: $out"
    check_hint 16384
    first=$(daemons)
    [[ $first =~ ^[0-9]+$ ]] || fail "not one daemon: $first"

    # Live: left as it is, with what was made on it; the hints are the live
    # mount's (16 KiB pages, though no option says so now).
    mkdir "$mnt/mine"
    run_demo "$mnt"
    [[ $out == "taskfs is already mounted on $mnt: left as it is, with its tasks."* ]] ||
      fail "live mount said: $out"
    [[ $out == *"--remount $mnt"* ]] || fail "no --remount hint: $out"
    [[ -d $mnt/mine && $(daemons) == "$first" ]] || fail "the live mount was replaced"
    check_hint 16384

    # --remount while a file of the mount is open: fusermount3 refuses, and
    # so does demo.sh; the mount stays.
    exec 3<"$mnt/host_page_size"
    try_demo --remount "$mnt"
    exec 3<&-
    ((status != 0)) && [[ $err == *"busy"* ]] || fail "--remount of a busy mount: $status $out $err"
    [[ -d $mnt/mine && $(daemons) == "$first" ]] || fail "the busy mount was replaced"

    # --remount: a new mount and daemon; what was made on the old one is gone.
    run_demo --remount "$mnt" -o page_size=65536
    [[ $err == *"--remount: unmounted the taskfs on $mnt; its tasks are gone"* ]] || fail "--remount said: $err"
    mounted && [[ ! -e $mnt/mine && $(cat "$mnt/host_page_size") == 65536 ]] ||
      fail "--remount did not mount afresh: $(ls "$mnt")"
    await exited "$first" || fail "the first daemon did not exit"
    second=$(daemons)
    [[ $second =~ ^[0-9]+$ && $second != "$first" ]] || fail "daemons after --remount: $second"
    check_hint 65536

    # Dead: its daemon killed, the mount stays and every access fails with
    # ENOTCONN; demo.sh says so in the daemon's words, clears it and mounts.
    kill -9 "$second"
    await gone || fail "the killed daemon is still there"
    stat_err=$(LC_ALL=C stat "$mnt" 2>&1) && fail "the mount is not dead"
    [[ $stat_err == *"Transport endpoint is not connected"* ]] || fail "stat said: $stat_err"
    run_demo "$mnt"
    [[ $err == *"mountpoint $mnt: a dead FUSE mount (its daemon is gone); clearing it with 'fusermount3 -u -z $mnt'"* ]] ||
      fail "dead mount said: $err"
    mounted && [[ -d $mnt/demo ]] || fail "not mounted afresh: $out"
    [[ $(grep -c " $mnt fuse.taskfs " /proc/self/mounts) == 1 ]] || fail "mounts stacked"
    check_hint 4096
    ;;
  *) fail "unknown mode $mode" ;;
esac
echo "demo_check $mode: ok"
