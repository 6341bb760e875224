#!/usr/bin/env python3
"""Watch copy-on-write happen in a taskfs task's status file.

Usage: cow_watch.py MEMFILE [PAGES]

In the task whose mem file is MEMFILE (its status is the sibling file):

  1. allocates two regions of PAGES pages (default 8) with
     TASKFS_IOC_VM_ALLOCATE: zero-fill memory costs nothing yet;
  2. writes every page of the first: resident_bytes grows by PAGES pages;
  3. vm_copies it onto the second with TASKFS_IOC_VM_COPY: a virtual copy,
     so resident_bytes does not grow but shared_bytes does (each page is now
     mapped at two addresses);
  4. writes one page of the copy: that page breaks away, resident_bytes
     grows by one page and shared_bytes shrinks by one;
  5. deallocates both regions: back to where it started.

Prints resident_bytes and shared_bytes after each step, checks each change
against the expected one, and exits 0 if all match, 1 if not, 2 on usage or
setup errors. Python 3 standard library only.
"""

import fcntl
import os
import struct
import sys

# The ioctl numbers, as <linux/ioctl.h>'s _IOW/_IOWR compute them for
# <taskfs/ioctl.h>: dir << 30 | size << 16 | type << 8 | nr.
_IOC_WRITE, _IOC_READ = 1, 2


def _IOC(direction, kind, nr, size):
    return (direction << 30) | (size << 16) | (ord(kind) << 8) | nr


TASKFS_IOC_VM_COPY = _IOC(_IOC_WRITE, "M", 1, 24)
TASKFS_IOC_VM_ALLOCATE = _IOC(_IOC_READ | _IOC_WRITE, "M", 2, 24)
TASKFS_IOC_VM_DEALLOCATE = _IOC(_IOC_WRITE, "M", 3, 16)
TASKFS_VM_ALLOCATE_ANYWHERE = 1


def vm_allocate_anywhere(fd, size):
    arg = bytearray(struct.pack("<QQII", 0, size, TASKFS_VM_ALLOCATE_ANYWHERE, 0))
    fcntl.ioctl(fd, TASKFS_IOC_VM_ALLOCATE, arg, True)
    return struct.unpack_from("<Q", arg)[0]


def vm_copy(fd, src, size, dst):
    fcntl.ioctl(fd, TASKFS_IOC_VM_COPY, struct.pack("<QQQ", src, size, dst))


def vm_deallocate(fd, address, size):
    fcntl.ioctl(fd, TASKFS_IOC_VM_DEALLOCATE, struct.pack("<QQ", address, size))


def status(status_path):
    """The task's status file as a dict of ints (where values are numbers)."""
    values = {}
    with open(status_path) as f:
        for line in f:
            key, _, value = line.partition(":")
            value = value.strip()
            values[key.strip()] = int(value) if value.isdigit() else value
    return values


def main(argv):
    if len(argv) not in (2, 3):
        print("usage: cow_watch.py MEMFILE [PAGES]", file=sys.stderr)
        return 2
    mem_path = argv[1]
    status_path = os.path.join(os.path.dirname(os.path.abspath(mem_path)), "status")
    try:
        pages = int(argv[2]) if len(argv) == 3 else 8
        if pages < 1:
            raise ValueError("PAGES must be at least 1")
        page = status(status_path)["page_size"]
        fd = os.open(mem_path, os.O_RDWR)
    except (OSError, ValueError, KeyError) as e:
        print(f"cow_watch.py: {e}", file=sys.stderr)
        return 2

    size = pages * page
    ok = True
    previous = None

    def show(what, resident_delta, shared_delta):
        """Prints one row; checks the change since the previous row."""
        nonlocal ok, previous
        s = status(status_path)
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
        print(f"task {status(status_path)['name']}, page size {page}, {pages} pages")
        print(f"{'step':<36} {'resident_bytes':>14} {'shared_bytes':>12}  change")
        show("before", 0, 0)
        src = vm_allocate_anywhere(fd, size)
        dst = vm_allocate_anywhere(fd, size)
        show(f"vm_allocate 0x{src:x}, 0x{dst:x}", 0, 0)

        for i in range(pages):
            os.pwrite(fd, bytes([0x41 + i % 26]) * page, src + i * page)
        show(f"write {pages} pages at 0x{src:x}", pages, 0)

        vm_copy(fd, src, size, dst)
        show(f"vm_copy 0x{src:x} -> 0x{dst:x}", 0, pages)

        os.pwrite(fd, b"Z" * page, dst)
        show(f"write 1 page at 0x{dst:x}", 1, -1)

        vm_deallocate(fd, src, size)
        vm_deallocate(fd, dst, size)
        show("vm_deallocate both", -(pages + 1), -(pages - 1))
    except OSError as e:
        print(f"cow_watch.py: {mem_path}: {e}", file=sys.stderr)
        return 1
    finally:
        os.close(fd)
    print("copy-on-write behaved as expected" if ok else "unexpected numbers: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
