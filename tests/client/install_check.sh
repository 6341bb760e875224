#!/usr/bin/env bash
# Runs the README's install steps as written (the fenced blocks of its
# "## Installing") and then uses what they installed, from there alone: a C
# program built with nothing but
#   cc prog.c $(pkg-config --cflags --libs taskfs)
# (and one linking libtaskfs.a), a macOS-style program built with nothing but
#   cc prog.c $(pkg-config --cflags --libs taskfs-mach)
# that walks the demo's regions and scans them, a Python script that imports taskfs and
# reads the demo's greeting, taskfs-ctl and man taskfs, all against a real
# mount of the installed daemon, which is always unmounted and reaped.
#   prefix: the block with `--prefix`, with P set to a fresh directory.
#   system: the other block (`cmake --install build`, `ldconfig`), as root
#           in a private mount namespace whose /usr/local and /etc are
#           overlays on a fresh directory: the host's are not touched.
# Usage: install_check.sh SOURCE_DIR BUILD_DIR PYTHON_SITEDIR LIBDIR
#                         prefix|system [SANITIZER_CFLAGS]
# (run by CTest; a sanitizer build's library needs its runtime linked too)
# No `cmd | grep -q` here: with pipefail, grep's early exit fails cmd.
set -euo pipefail
source_dir=$1 build=$2 sitedir=$3 libdir=$4 mode=$5 san=${6:-}
fail() { echo "install_check $mode: FAILED: $*" >&2; exit 1; }

if [[ $mode == system && -z ${TASKFS_INSTALL_CHECK_NS:-} ]]; then
  exec unshare --mount --propagation private \
    env TASKFS_INSTALL_CHECK_NS=1 bash "$0" "$@"
fi

if [[ $mode == system && $(readlink /proc/self/ns/mnt) == $(readlink /proc/1/ns/mnt) ]]; then
  fail "not in a mount namespace of its own"
fi
work=$(mktemp -d /tmp/taskfs-install-XXXXXX)
overlays=()
mnt=$work/mnt
daemon=
cleanup() {
  if grep -qs " $mnt " /proc/self/mountinfo; then fusermount3 -u -z "$mnt" || true; fi
  if [[ -n $daemon ]]; then
    for _ in $(seq 200); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
  fi
  if grep -qs " $mnt " /proc/self/mountinfo; then umount -l "$mnt" || true; fi
  for ((i = ${#overlays[@]} - 1; i >= 0; i--)); do umount -l "${overlays[i]}" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The fenced ```sh blocks of the README's "## Installing", one per element.
mapfile -d '' blocks < <(awk '
  /^## / { section = ($0 == "## Installing") }
  section && /^```/ {
    if (inside) { inside = 0; printf "%c", 0 } else if ($0 == "```sh") inside = 1
    next
  }
  section && inside' "$source_dir/README.md")
steps=
for block in "${blocks[@]}"; do
  [[ $block == *"cmake --install build"* ]] || continue
  kind=system
  if [[ $block == *--prefix* ]]; then kind=prefix; fi
  if [[ $kind == "$mode" ]]; then
    [[ -z $steps ]] || fail "two $mode blocks under ## Installing"
    steps=$block
  fi
done
[[ -n $steps ]] || fail "no $mode block (\`\`\`sh with cmake --install build) under ## Installing"

# The README's steps run here, where build/ is the build under test, in an
# environment of Debian's defaults: nothing of this build on any path.
ln -s "$build" "$work/build"
cd "$work"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
unset PYTHONPATH PYTHONHOME LD_LIBRARY_PATH PKG_CONFIG_PATH MANPATH
export PYTHONDONTWRITEBYTECODE=1
case $mode in
  prefix)
    prefix=$work/prefix
    [[ $(grep -c '^P=' <<<"$steps") == 1 ]] || fail "the prefix block does not set P once: $steps"
    steps=$(sed "s|^P=.*|P=$prefix|" <<<"$steps")
    ;;
  system)
    prefix=/usr/local
    # On a tmpfs of its own: an overlay's upper directory cannot be on an
    # overlay (a container's /tmp often is).
    mkdir "$work/overlay"
    mount -t tmpfs tmpfs "$work/overlay"
    overlays+=("$work/overlay")
    for dir in /usr/local /etc; do
      mkdir -p "$work/overlay$dir/upper" "$work/overlay$dir/work"
      mount -t overlay overlay -o "lowerdir=$dir,upperdir=$work/overlay$dir/upper,workdir=$work/overlay$dir/work" "$dir"
      overlays+=("$dir")
    done
    ;;
esac
echo "install_check $mode: running the README's steps:"
echo "$steps"
eval "$steps"

for f in bin/taskfs bin/taskfs-ctl include/taskfs/mach.h share/man/man1/taskfs.1 \
         include/taskfs-mach/mach/mach.h include/taskfs-mach/mach/mach_vm.h \
         include/taskfs-mach/mach/vm_region.h include/taskfs-mach/mach/vm_map.h \
         include/taskfs-mach/mach/mach_init.h include/taskfs-mach/mach/mach_traps.h \
         include/taskfs-mach/mach/task.h include/taskfs-mach/mach/mach_error.h \
         "$libdir/libtaskfs.a" "$libdir/libtaskfs.so" "$libdir/pkgconfig/taskfs.pc" \
         "$libdir/pkgconfig/taskfs-mach.pc" \
         "$sitedir/taskfs/__init__.py" "$sitedir/taskfs/__main__.py" \
         "$sitedir/taskfs/_table.py"; do
  [[ -e $prefix/$f ]] || fail "not installed: $f"
done
grep -q "Generated at build time" "$prefix/$sitedir/taskfs/_table.py" ||
  fail "_table.py is not the generated table"
[[ $(command -v taskfs) == "$prefix/bin/taskfs" ]] || fail "taskfs on PATH: $(command -v taskfs)"
[[ $(command -v taskfs-ctl) == "$prefix/bin/taskfs-ctl" ]] || fail "taskfs-ctl on PATH: $(command -v taskfs-ctl)"
if [[ $mode == system ]]; then
  grep -q "libtaskfs.so.0 .*=> $prefix/$libdir/libtaskfs.so.0\$" <<<"$(ldconfig -p)" ||
    fail "ldconfig's cache has no libtaskfs.so.0: $(ldconfig -p | grep taskfs)"
fi
if command -v man >/dev/null; then
  # (Debian's /usr/local/man is a link to share/man.)
  [[ $(realpath "$(man -w taskfs)") == "$(realpath "$prefix/share/man/man1/taskfs.1")" ]] ||
    fail "man -w taskfs: $(man -w taskfs)"
else
  echo "install_check $mode: man is not installed: man taskfs not checked"
fi

cat >"$work/prog.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <taskfs/mach.h>

int main(int argc, char **argv) {
  task_t t;
  kern_return_t kr = taskfs_task_create(argv[1], argc > 2 ? argv[2] : "installed", &t);
  if (kr != KERN_SUCCESS) { printf("create: %s\n", mach_error_string(kr)); return 1; }
  vm_address_t a = 0;
  if ((kr = vm_allocate(t, &a, 8192, TRUE)) != KERN_SUCCESS) return 2;
  static char page[4096] __attribute__((aligned(4096))) = "from an installed libtaskfs";
  if ((kr = vm_write(t, a, (vm_offset_t)page, sizeof page)) != KERN_SUCCESS) return 3;
  vm_offset_t data; mach_msg_type_number_t n;
  if ((kr = vm_read(t, a, 4096, &data, &n)) != KERN_SUCCESS) return 4;
  printf("%s\n", (char *)data);
  vm_deallocate(mach_task_self(), data, n);
  kr = vm_read(t, a + 1, 4096, &data, &n);
  printf("%s\n", mach_error_string(kr));
  return taskfs_task_close(t) == KERN_SUCCESS ? 0 : 5;
}
EOF
cc -Wall -Werror $san "$work/prog.c" -o "$work/prog" $(pkg-config --cflags --libs taskfs)
cc -Wall -Werror $san "$work/prog.c" -o "$work/prog-static" \
  $(pkg-config --cflags taskfs) "$prefix/$libdir/libtaskfs.a" $(pkg-config --static --libs-only-other taskfs)
grep -qF "libtaskfs.so.0 => $prefix/$libdir/libtaskfs.so.0 " <<<"$(ldd "$work/prog")" ||
  fail "prog's libtaskfs: $(ldd "$work/prog")"
grep -q libtaskfs <<<"$(ldd "$work/prog-static")" && fail "the static program links libtaskfs.so"
# The README's other way to run it: an rpath instead of LD_LIBRARY_PATH.
cc -Wall -Werror $san "$work/prog.c" -o "$work/prog-rpath" $(pkg-config --cflags --libs taskfs) \
  -Wl,-rpath,"$prefix/$libdir"

# A macOS tool as written for macOS: the region walker prints what maps
# shows, then it scans the readable regions for "Hello" a page at a time.
cat >"$work/walker.c" <<'EOF'
#include <mach/mach.h>
#include <mach/mach_error.h>
#include <mach/mach_init.h>
#include <mach/mach_traps.h>
#include <mach/mach_vm.h>
#include <mach/task.h>
#include <mach/vm_map.h>
#include <mach/vm_region.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prot(vm_prot_t p, char *s) {
  s[0] = p & VM_PROT_READ ? 'r' : '-';
  s[1] = p & VM_PROT_WRITE ? 'w' : '-';
  s[2] = p & VM_PROT_EXECUTE ? 'x' : '-';
  s[3] = 0;
  return s;
}

int main(int argc, char **argv) {
  if (argc < 2) return 9;
  mach_port_t task;
  kern_return_t kr = task_for_pid(mach_task_self(), atoi(argv[1]), &task);
  if (kr != KERN_SUCCESS) { printf("task_for_pid: %s\n", mach_error_string(kr)); return 1; }
  mach_vm_address_t addr = 0, found = 0;
  mach_vm_size_t size;
  vm_region_basic_info_data_64_t info;
  mach_msg_type_number_t count = VM_REGION_BASIC_INFO_COUNT_64;
  mach_port_t object;
  while (mach_vm_region(task, &addr, &size, VM_REGION_BASIC_INFO_64,
                        (vm_region_info_t)&info, &count, &object) == KERN_SUCCESS) {
    char a[4], b[4];
    printf("%016llx-%016llx %s/%s %s\n", (unsigned long long)addr,
           (unsigned long long)(addr + size), prot(info.protection, a),
           prot(info.max_protection, b),
           info.inheritance == VM_INHERIT_SHARE ? "share"
           : info.inheritance == VM_INHERIT_COPY ? "copy" : "none");
    static char page[4096];
    for (mach_vm_address_t p = addr; found == 0 && (info.protection & VM_PROT_READ) &&
                                     p < addr + size; p += sizeof page) {
      mach_vm_size_t got;
      if (mach_vm_read_overwrite(task, p, sizeof page, (mach_vm_address_t)page, &got) != KERN_SUCCESS)
        return 2;
      char *hit = memmem(page, got, "Hello", 5);
      if (hit != NULL) found = p + (mach_vm_address_t)(hit - page);
    }
    addr += size;
    count = VM_REGION_BASIC_INFO_COUNT_64;
  }
  printf("Hello at 0x%llx\n", (unsigned long long)found);
  if (task_suspend(task) != KERN_SUCCESS || task_resume(task) != KERN_SUCCESS) return 3;
  if (mach_port_deallocate(mach_task_self(), task) != KERN_SUCCESS) return 4;
  kr = task_for_pid(mach_task_self(), 999999, &task);
  printf("%s\n", mach_error_string(kr));
  return 0;
}
EOF
cc -Wall -Werror -D_GNU_SOURCE $san "$work/walker.c" -o "$work/walker" $(pkg-config --cflags --libs taskfs-mach)
grep -qF "libtaskfs.so.0 => $prefix/$libdir/libtaskfs.so.0 " <<<"$(ldd "$work/walker")" ||
  fail "walker's libtaskfs: $(ldd "$work/walker")"

cat >"$work/greeting.py" <<'EOF'
import sys

import taskfs

task = taskfs.Task.open(sys.argv[1] + "/demo")
print(taskfs.__file__)
print(task.vm_read(0x600000, task.page_size).split(b"\n")[0].decode())
EOF

# The installed daemon, from PATH, with the embedded demo.
mkdir "$mnt"
taskfs -f "$mnt" >"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 200); do
  grep -qs " $mnt " /proc/self/mountinfo && break
  kill -0 "$daemon" 2>/dev/null || fail "daemon exited: $(cat "$work/daemon.log")"
  sleep 0.1
done
grep -qs " $mnt " /proc/self/mountinfo || fail "no mount within 20 s"

want=$'from an installed libtaskfs\n(os/kern) invalid argument'
out=$("$work/prog" "$mnt") || fail "prog: $out"
[[ $out == "$want" ]] || fail "prog printed: $out"
out=$(env -u LD_LIBRARY_PATH "$work/prog-static" "$mnt" static) || fail "prog-static: $out"
[[ $out == "$want" ]] || fail "prog-static printed: $out"
out=$(env -u LD_LIBRARY_PATH "$work/prog-rpath" "$mnt" rpath) || fail "prog-rpath: $out"
[[ $out == "$want" ]] || fail "prog-rpath printed: $out"

demo_id=$(sed -n 's/^id: //p' "$mnt/demo/status")
out=$(TASKFS_MOUNT=$mnt "$work/walker" "$demo_id") || fail "walker: $out"
want=$(cat "$mnt/demo/maps")$'\nHello at 0x600000\n(os/kern) failure'
[[ $out == "$want" ]] || fail "walker printed: $out"

out=$(python3 "$work/greeting.py" "$mnt") || fail "greeting.py: $out"
[[ $out == "$prefix/$sitedir/taskfs/__init__.py"$'\n'"Hello from taskfs! This is the data region of task demo." ]] ||
  fail "greeting.py printed: $out"
out=$(/usr/bin/python3 -c 'import taskfs; print(taskfs.KERN_NO_SPACE)')
[[ $out == 3 ]] || fail "system python3: $out"
out=$(taskfs-ctl "$mnt/installed" allocate anywhere 4K) || fail "taskfs-ctl: $out"
[[ $out == 0x2000 ]] || fail "taskfs-ctl allocate printed: $out"
taskfs-ctl "$mnt/installed" read 0x0 4K >"$work/page" || fail "taskfs-ctl read failed"
out=$(head -c 27 "$work/page")
[[ $out == "from an installed libtaskfs" ]] || fail "taskfs-ctl read printed: $out"
if taskfs-ctl "$mnt/nosuch" maps 2>"$work/err"; then fail "nosuch succeeded"; fi
grep -q "^taskfs-ctl: maps: KERN_INVALID_TASK: " "$work/err" || fail "error line: $(cat "$work/err")"
grep -q "^SYNOPSIS" <<<"$(taskfs-ctl --help)" || fail "taskfs-ctl --help"
echo "install_check $mode: ok"
