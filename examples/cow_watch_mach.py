#!/usr/bin/env python3
"""cow_watch.py written with the taskfs module: copy-on-write in status.

Usage: cow_watch_mach.py TASK_DIR [PAGES]

The same steps and the same output as cow_watch.py, with Task.vm_allocate,
Task.vm_write, Task.vm_copy and Task.vm_deallocate instead of raw ioctls
and pwrite, and Task.status() instead of parsing the file:

  1. allocates two regions of PAGES pages (default 8): zero-fill memory
     costs nothing yet;
  2. writes every page of the first: resident_bytes grows by PAGES pages;
  3. vm_copies it onto the second: a virtual copy, so resident_bytes does
     not grow but shared_bytes does;
  4. writes one page of the copy: that page breaks away;
  5. deallocates both regions: back to where it started.

Exits 0 if every change is the expected one, 1 if not or when a call
fails (printing the Mach name and the daemon's reason), 2 on usage or
setup errors. TASK_DIR may also be given as its mem file. Needs the taskfs
package (cmake --install, or PYTHONPATH=build/python).
"""

import os
import sys

import taskfs


def main(argv):
    if len(argv) not in (2, 3):
        print("usage: cow_watch_mach.py TASK_DIR [PAGES]", file=sys.stderr)
        return 2
    task_dir = argv[1][:-4] if argv[1].endswith("/mem") else argv[1]
    try:
        pages = int(argv[2]) if len(argv) == 3 else 8
        if pages < 1:
            raise ValueError("PAGES must be at least 1")
        task = taskfs.Task.open(task_dir)
    except (taskfs.MachError, ValueError) as e:
        print(f"cow_watch_mach.py: {e}", file=sys.stderr)
        return 2

    with task:
        page = task.page_size
        size = pages * page
        ok = True
        previous = None

        def show(what, resident_delta, shared_delta):
            """Prints one row; checks the change since the previous row."""
            nonlocal ok, previous
            s = task.status()
            resident, shared = s["resident_bytes"], s["shared_bytes"]
            verdict = ""
            if previous is not None:
                want = (previous[0] + resident_delta * page,
                        previous[1] + shared_delta * page)
                good = (resident, shared) == want
                ok = ok and good
                verdict = f"{resident_delta:+d}/{shared_delta:+d} pages " + (
                    "ok" if good else f"FAILED: expected {want[0]} {want[1]}")
            print(f"{what:<36} {resident:>14} {shared:>12}  {verdict}".rstrip())
            previous = (resident, shared)

        try:
            print(f"task {task.name}, page size {page}, {pages} pages")
            print(f"{'step':<36} {'resident_bytes':>14} {'shared_bytes':>12}  change")
            show("before", 0, 0)
            src = task.vm_allocate(size)
            dst = task.vm_allocate(size)
            show(f"vm_allocate 0x{src:x}, 0x{dst:x}", 0, 0)

            task.vm_write(src, b"".join(bytes([0x41 + i % 26]) * page
                                        for i in range(pages)))
            show(f"write {pages} pages at 0x{src:x}", pages, 0)

            task.vm_copy(src, size, dst)
            show(f"vm_copy 0x{src:x} -> 0x{dst:x}", 0, pages)

            task.vm_write(dst, b"Z" * page)
            show(f"write 1 page at 0x{dst:x}", 1, -1)

            task.vm_deallocate(src, size)
            task.vm_deallocate(dst, size)
            show("vm_deallocate both", -(pages + 1), -(pages - 1))
        except taskfs.MachError as e:
            print(f"cow_watch_mach.py: {task_dir}: {e}", file=sys.stderr)
            return 1
    print("copy-on-write behaved as expected" if ok else "unexpected numbers: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
