#!/usr/bin/env bash
# A guided tour of taskfs with nothing but the shell, dd and hexdump.
#
# Usage: examples/tour.sh MOUNTPOINT
#
# MOUNTPOINT must hold the embedded demo (mounted with no tasks= option, or
# with -o tasks=examples/demo.tasks): task `demo` with text at 0x400000 (r-x),
# data at 0x600000 (rw-, holding a greeting), a guard page region at 0x610000
# (---) and a region at 0x700000 inherited `share` by the forked task `child`.
#
# Every step checks its result: the script exits nonzero, naming the step, as
# soon as anything does not happen as expected. The tasks it creates
# (tour-scratch, tour-child) are removed again on exit.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 MOUNTPOINT" >&2
  exit 2
fi
M=$(cd "$1" && pwd) || exit 2
cd "$M" # every path below is relative to the mountpoint

# --- helpers -----------------------------------------------------------------

fail() {
  echo "tour.sh: FAILED: $*" >&2
  exit 1
}
trap 'echo "tour.sh: unexpected failure at line $LINENO" >&2' ERR

step() { printf '\n== %s ==\n' "$*"; }

# show 'COMMAND': prints the command line as written, then runs it.
show() {
  printf '$ %s\n' "$1"
  eval "$1"
}

# mem is opened in direct-I/O mode: every read and write must be whole pages
# at page-aligned addresses. dd's buffers are page-aligned, so bs=4096 works.
PAGE=$(cat host_page_size 2>/dev/null) || fail "$M/host_page_size: not a taskfs mount"
# The commands below are written for the default page size.
[[ $PAGE == 4096 ]] || fail "the tour needs page_size=4096 (this mount has '$PAGE')"

tmp=$(mktemp -d)
cleanup() {
  exec 3>&-
  for t in tour-scratch tour-child; do
    if [[ -d $M/$t ]]; then rmdir "$M/$t"; fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

# page TASK ADDR FILE: copies the page at ADDR of TASK into FILE.
page() {
  dd if="$1/mem" of="$3" bs="$PAGE" skip=$(($2 / PAGE)) count=1 status=none
}
# text_at TASK ADDR N: the first N bytes of the page at ADDR, without NULs.
text_at() {
  page "$1" "$2" "$tmp/peek"
  head -c "$3" "$tmp/peek" | tr -d '\0'
}
# make_page FILE TEXT: a whole page holding TEXT, then zeros.
make_page() {
  printf '%s' "$2" >"$1"
  truncate -s "$PAGE" "$1"
}
# status_of TASK KEY: one value from TASK/status.
status_of() {
  awk -v key="$2:" '$1 == key { print $2 }' "$1/status"
}
# expect_error MESSAGE 'COMMAND': shows COMMAND, which must fail with MESSAGE
# on stderr.
expect_error() {
  printf '$ %s\n' "$2"
  if eval "$2" 2>"$tmp/err"; then
    fail "'$2' succeeded; expected '$1'"
  fi
  cat "$tmp/err"
  grep -q "$1" "$tmp/err" || fail "'$2' failed, but not with '$1'"
}

[[ -d demo && -d child ]] ||
  fail "no demo tasks in $M (mount it without tasks=, or with tasks=examples/demo.tasks)"
# Leftovers of an interrupted run.
for t in tour-scratch tour-child; do
  if [[ -d $t ]]; then rmdir "$t"; fi
done

# --- 1. What is there --------------------------------------------------------

step "1. The tasks and their address spaces"
show 'ls'
show 'cat demo/maps'
show 'cat demo/status'
[[ $(status_of demo regions) == 4 ]] || fail "demo should have 4 regions"
grep -qx '0000000000400000-0000000000410000 r-x/rwx copy' demo/maps ||
  fail "demo's text region is not 0x400000-0x410000 r-x"
grep -qx '0000000000700000-0000000000710000 rw-/rwx share' demo/maps ||
  fail "demo's share region is not 0x700000-0x710000 rw- share"

# --- 2. Reading memory -------------------------------------------------------

step "2. The data region (0x600000, 64 KiB) through dd | hexdump"
# mem is the address space: the file offset is the address.
show 'dd if=demo/mem bs=4096 skip=$((0x600000 / 4096)) count=16 status=none | hexdump -C'
greeting="Hello from taskfs! This is the data region of task demo."
[[ $(text_at demo 0x600000 ${#greeting}) == "$greeting" ]] ||
  fail "the data region does not start with the greeting"

# --- 3. Writing memory -------------------------------------------------------

step "3. Patch one page (0x601000) with dd and read it back"
make_page "$tmp/patch" "patched by tour.sh"
show 'dd if=$tmp/patch of=demo/mem bs=4096 seek=$((0x601000 / 4096)) conv=notrunc status=none'
show 'dd if=demo/mem bs=4096 skip=$((0x601000 / 4096)) count=1 status=none | hexdump -C'
page demo 0x601000 "$tmp/back"
cmp -s "$tmp/patch" "$tmp/back" || fail "0x601000 does not read back as written"
echo "read back: identical to what was written"

# --- 4. Protections and other errors -----------------------------------------

step "4. Mach's rules, as errnos"
make_page "$tmp/junk" "junk"
echo "# Write to the r-x text: KERN_PROTECTION_FAILURE"
expect_error "Permission denied" \
  'dd if=$tmp/junk of=demo/mem bs=4096 seek=$((0x400000 / 4096)) conv=notrunc status=none'
echo "# Write and read the --- guard region: KERN_PROTECTION_FAILURE"
expect_error "Permission denied" \
  'dd if=$tmp/junk of=demo/mem bs=4096 seek=$((0x610000 / 4096)) conv=notrunc status=none'
expect_error "Permission denied" \
  'dd if=demo/mem of=/dev/null bs=4096 skip=$((0x610000 / 4096)) count=1 status=none'
echo "# Read unallocated memory: KERN_INVALID_ADDRESS"
expect_error "Bad address" \
  'dd if=demo/mem of=/dev/null bs=4096 skip=$((0x800000 / 4096)) count=1 status=none'
echo "# Read 100 bytes, not a whole page: KERN_INVALID_ARGUMENT"
expect_error "Invalid argument" \
  'dd if=demo/mem of=/dev/null bs=100 skip=$((0x600000 / 100)) count=1 status=none'
# A failed operation changes nothing: the text is still all 0xc3 (x86 `ret`).
page demo 0x400000 "$tmp/text"
[[ $(LC_ALL=C tr -d '\303' <"$tmp/text" | wc -c) == 0 ]] ||
  fail "the text page changed after a refused write"
echo "the text page is unchanged: still all 0xc3"
echo "# Each failure is in demo/errors: who, the call, the Mach code and why."
show 'tail -n 5 demo/errors'
grep -q 'pread 0x610000 0x1000: KERN_PROTECTION_FAILURE: page 0x610000 is ---/rwx, read needs r$' demo/errors ||
  fail "demo/errors does not say why the guard page read failed"

# --- 5. A new task, commands through ctl --------------------------------------

step "5. A new task; allocate memory through ctl"
show 'mkdir tour-scratch'
# A read of ctl on the same open file returns the last command's result line.
show 'exec 3<>tour-scratch/ctl'
show 'echo "allocate anywhere 64K" >&3; read -r addr <&3; echo "addr=$addr"'
[[ $addr =~ ^0x[0-9a-f]+$ ]] || fail "allocate anywhere returned '$addr'"
show 'cat tour-scratch/maps'
[[ $(status_of tour-scratch virtual_bytes) == 65536 ]] ||
  fail "tour-scratch should have 64 KiB allocated"
[[ $(status_of tour-scratch resident_bytes) == 0 ]] ||
  fail "fresh memory should cost nothing until written"
page tour-scratch "$addr" "$tmp/zero"
[[ $(tr -d '\0' <"$tmp/zero" | wc -c) == 0 ]] || fail "new memory is not zero-filled"
echo "new memory reads as zeros; resident_bytes: $(status_of tour-scratch resident_bytes)"

# --- 6. Copy between tasks ---------------------------------------------------

step "6. Copy demo's greeting into tour-scratch (copy-from: vm_map_copy)"
show 'echo "copy-from demo 0x600000 4K $addr" >&3; read -r result <&3; echo "$result"'
[[ $result == ok ]] || fail "copy-from returned '$result'"
show 'dd if=tour-scratch/mem bs=4096 skip=$((addr / 4096)) count=1 status=none | hexdump -C'
[[ $(text_at tour-scratch "$addr" ${#greeting}) == "$greeting" ]] ||
  fail "the greeting did not arrive in tour-scratch"
echo "# With 'alloc' the destination becomes a new region with the source's"
echo "# protections: demo's text arrives r-x."
show 'echo "copy-from demo 0x400000 64K 0x400000 alloc" >&3; read -r result <&3; echo "$result"'
[[ $result == ok ]] || fail "copy-from ... alloc returned '$result'"
show 'cat tour-scratch/maps'
grep -qx '0000000000400000-0000000000410000 r-x/rwx copy' tour-scratch/maps ||
  fail "copy-from alloc did not create an r-x region at 0x400000"
echo "# The copies are virtual: the pages are shared copy-on-write."
show 'cat tour-scratch/status'
[[ $(status_of tour-scratch resident_bytes) == $((17 * PAGE)) &&
  $(status_of tour-scratch shared_bytes) == $((17 * PAGE)) ]] ||
  fail "tour-scratch should hold 17 pages, all shared with demo"
echo "# A failing command fails the write(2); ctl then says why."
printf '$ %s\n' 'echo "copy-from nosuchtask 0 4K 0" >&3'
if echo "copy-from nosuchtask 0 4K 0" >&3 2>"$tmp/err"; then
  fail "copy-from a task that does not exist succeeded"
fi
sed 's/^.*echo: //' "$tmp/err"
show 'read -r result <&3; echo "$result"'
[[ $result == "error KERN_INVALID_TASK" ]] || fail "ctl said '$result'"
exec 3>&-

# --- 7. Fork -----------------------------------------------------------------

step "7. Fork demo: share regions are shared, copy regions diverge"
show 'echo "fork tour-child" >demo/ctl'
show 'cat tour-child/maps'
cmp -s demo/maps tour-child/maps || fail "tour-child's maps differ from demo's"

echo "# tour-child writes its 0x700000 (inherit share): demo and child see it too."
make_page "$tmp/shared" "written by tour-child into the share region"
show 'dd if=$tmp/shared of=tour-child/mem bs=4096 seek=$((0x700000 / 4096)) conv=notrunc status=none'
for t in demo child tour-child; do
  printf '%-10s 0x700000: %s\n' "$t" "$(text_at "$t" 0x700000 43)"
  page "$t" 0x700000 "$tmp/seen"
  cmp -s "$tmp/shared" "$tmp/seen" || fail "$t does not see the write to the share region"
done

echo "# tour-child writes its 0x600000 (inherit copy): only tour-child changes."
make_page "$tmp/own" "tour-child's own greeting."
show 'dd if=$tmp/own of=tour-child/mem bs=4096 seek=$((0x600000 / 4096)) conv=notrunc status=none'
for t in demo tour-child; do
  printf '%-10s 0x600000: %s\n' "$t" "$(text_at "$t" 0x600000 ${#greeting})"
done
[[ $(text_at demo 0x600000 ${#greeting}) == "$greeting" ]] ||
  fail "a write to tour-child's copy region showed through to demo"
page tour-child 0x600000 "$tmp/seen"
cmp -s "$tmp/own" "$tmp/seen" || fail "tour-child's write to its copy region was lost"

echo "# The copy-on-write break shows in status: one page of tour-child is its own."
for t in demo tour-child; do
  printf '%-10s resident_bytes: %-7s shared_bytes: %s\n' "$t" \
    "$(status_of "$t" resident_bytes)" "$(status_of "$t" shared_bytes)"
done
(($(status_of tour-child resident_bytes) - $(status_of tour-child shared_bytes) == PAGE)) ||
  fail "tour-child should have exactly one page of its own"

step "Done: every step behaved as expected"
