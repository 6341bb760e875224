#!/usr/bin/env bash
# Installs the build into a fresh prefix and uses the client side from there
# alone: a C program built with nothing but
#   cc prog.c $(pkg-config --cflags --libs taskfs)
# (and one with --static), `python3 -c 'import taskfs'` and taskfs-ctl with
# PYTHONPATH and PATH at the prefix only, all against a real mount of the
# installed daemon, which is always unmounted and reaped.
# Usage: install_check.sh BUILD_DIR PYTHON_SITEDIR LIBDIR [SANITIZER_CFLAGS]
# (run by CTest; a sanitizer build's library needs its runtime linked too)
set -euo pipefail
build=$1 sitedir=$2 libdir=$3 san=${4:-}

work=$(mktemp -d /tmp/taskfs-install-XXXXXX)
prefix=$work/prefix
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
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "install_check: FAILED: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/taskfs bin/taskfs-ctl include/taskfs/mach.h include/taskfs_ioctl.h \
         "$libdir/libtaskfs.a" "$libdir/libtaskfs.so" "$libdir/pkgconfig/taskfs.pc" \
         "$sitedir/taskfs/__init__.py" "$sitedir/taskfs/__main__.py" \
         "$sitedir/taskfs/_table.py"; do
  [[ -e $prefix/$f ]] || fail "not installed: $f"
done
grep -q "Generated at build time" "$prefix/$sitedir/taskfs/_table.py" ||
  fail "_table.py is not the generated table"

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
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
# Only the prefix: no PYTHONPATH or PATH of the build.
cc -Wall -Werror $san "$work/prog.c" -o "$work/prog" $(pkg-config --cflags --libs taskfs)
cc -Wall -Werror $san "$work/prog.c" -o "$work/prog-static" \
  $(pkg-config --cflags taskfs) "$prefix/$libdir/libtaskfs.a" $(pkg-config --static --libs-only-other taskfs)
ldd "$work/prog-static" | grep -q libtaskfs && fail "the static program links libtaskfs.so"

mkdir "$mnt"
"$prefix/bin/taskfs" -f -o tasks=none "$mnt" >"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 200); do
  grep -qs " $mnt " /proc/self/mountinfo && break
  kill -0 "$daemon" 2>/dev/null || fail "daemon exited: $(cat "$work/daemon.log")"
  sleep 0.1
done
grep -qs " $mnt " /proc/self/mountinfo || fail "no mount within 20 s"

want=$'from an installed libtaskfs\n(os/kern) invalid argument'
out=$(LD_LIBRARY_PATH=$prefix/$libdir "$work/prog" "$mnt") || fail "prog: $out"
[[ $out == "$want" ]] || fail "prog printed: $out"
out=$(env -u LD_LIBRARY_PATH "$work/prog-static" "$mnt" static) || fail "prog-static: $out"
[[ $out == "$want" ]] || fail "prog-static printed: $out"

py_env=(env -i "PATH=$prefix/bin:/usr/bin:/bin" "PYTHONPATH=$prefix/$sitedir" PYTHONDONTWRITEBYTECODE=1)
out=$("${py_env[@]}" python3 -c 'import taskfs; print(taskfs.__file__, taskfs.KERN_INVALID_TASK)')
[[ $out == "$prefix/$sitedir/taskfs/__init__.py 16" ]] || fail "import taskfs: $out"
out=$("${py_env[@]}" /usr/bin/python3 -c 'import taskfs; print(taskfs.KERN_NO_SPACE)')
[[ $out == 3 ]] || fail "system python3: $out"
[[ $("${py_env[@]}" bash -c "command -v taskfs-ctl") == "$prefix/bin/taskfs-ctl" ]] || fail "taskfs-ctl not on PATH"
out=$("${py_env[@]}" taskfs-ctl "$mnt/installed" allocate anywhere 4K) || fail "taskfs-ctl: $out"
[[ $out == 0x2000 ]] || fail "taskfs-ctl allocate printed: $out"
out=$("${py_env[@]}" taskfs-ctl "$mnt/installed" read 0x0 4K | head -c 27)
[[ $out == "from an installed libtaskfs" ]] || fail "taskfs-ctl read printed: $out"
if "${py_env[@]}" taskfs-ctl "$mnt/nosuch" maps 2>"$work/err"; then fail "nosuch succeeded"; fi
grep -q "^taskfs-ctl: maps: KERN_INVALID_TASK: " "$work/err" || fail "error line: $(cat "$work/err")"
"${py_env[@]}" taskfs-ctl --help | grep -q "^SYNOPSIS" || fail "taskfs-ctl --help"
echo "install_check: ok"
