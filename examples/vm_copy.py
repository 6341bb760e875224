#!/usr/bin/env python3
"""vm_allocate and vm_copy through ioctl(2) on a taskfs mem file.

Usage: vm_copy.py MEMFILE [PAGES]

Allocates two regions of PAGES pages (default 16) anywhere in the task with
TASKFS_IOC_VM_ALLOCATE, writes a pattern into the first (every 8-byte word
holds its own address), copies it onto the second with TASKFS_IOC_VM_COPY,
and checks that the copy reads back equal; then that a later write to the
source does not show through to the copy (vm_copy is a virtual,
copy-on-write copy), and that an unaligned vm_copy fails with EINVAL.
Finally it deallocates both regions again, leaving the task as it was.

The ioctl numbers are computed exactly as <linux/ioctl.h>'s _IOW/_IOWR do
for <taskfs/ioctl.h> (asm-generic layout: x86, arm, riscv, ...). The structs
are little-endian u64s (and u32s), so struct.pack('<QQQ', ...) builds them.

Exit status: 0 if everything behaved as described, 1 if not, 2 on usage or
setup errors. Python 3 standard library only.
"""

import errno
import fcntl
import os
import struct
import sys

# <asm-generic/ioctl.h>: nr in bits 0-7, type 8-15, size 16-29, dir 30-31.
_IOC_WRITE = 1
_IOC_READ = 2


def _IOC(direction, kind, nr, size):
    return (direction << 30) | (size << 16) | (ord(kind) << 8) | nr


def _IOW(kind, nr, size):
    return _IOC(_IOC_WRITE, kind, nr, size)


def _IOWR(kind, nr, size):
    return _IOC(_IOC_READ | _IOC_WRITE, kind, nr, size)


# <taskfs/ioctl.h>
TASKFS_IOC_VM_COPY = _IOW("M", 1, 24)        # {u64 src, u64 size, u64 dst}
TASKFS_IOC_VM_ALLOCATE = _IOWR("M", 2, 24)   # {u64 address, u64 size,
#                                               u32 flags, u32 pad}
TASKFS_IOC_VM_DEALLOCATE = _IOW("M", 3, 16)  # {u64 address, u64 size}
TASKFS_VM_ALLOCATE_ANYWHERE = 1


def vm_allocate_anywhere(fd, size):
    arg = bytearray(struct.pack("<QQII", 0, size, TASKFS_VM_ALLOCATE_ANYWHERE, 0))
    fcntl.ioctl(fd, TASKFS_IOC_VM_ALLOCATE, arg, True)  # address comes back
    return struct.unpack_from("<Q", arg)[0]


def vm_copy(fd, src, size, dst):
    fcntl.ioctl(fd, TASKFS_IOC_VM_COPY, struct.pack("<QQQ", src, size, dst))


def vm_deallocate(fd, address, size):
    fcntl.ioctl(fd, TASKFS_IOC_VM_DEALLOCATE, struct.pack("<QQ", address, size))


def page_size_of(mem_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(mem_path)))
    with open(os.path.join(root, "host_page_size")) as f:
        return int(f.read().strip())


def pattern(address, size):
    """size bytes in which every 8-byte word holds its own address."""
    return b"".join(struct.pack("<Q", address + i) for i in range(0, size, 8))


def chunk_of(page):
    """Bytes per pread/pwrite: whole pages, 256 KiB or one page if larger.

    mem wants page multiples, and one FUSE request carries at most 1 MiB
    (from a buffer that is not page-aligned, stay well below that)."""
    return max(page, (256 << 10) // page * page)


def read_all(fd, address, size, page):
    out = bytearray()
    step = chunk_of(page)
    for a in range(address, address + size, step):
        out += os.pread(fd, min(step, address + size - a), a)
    return bytes(out)


def write_all(fd, address, data, page):
    step = chunk_of(page)
    for off in range(0, len(data), step):
        os.pwrite(fd, data[off:off + step], address + off)


def main(argv):
    if len(argv) not in (2, 3):
        print("usage: vm_copy.py MEMFILE [PAGES]", file=sys.stderr)
        return 2
    mem_path = argv[1]
    try:
        pages = int(argv[2]) if len(argv) == 3 else 16
        if pages < 1:
            raise ValueError("PAGES must be at least 1")
        page = page_size_of(mem_path)
        fd = os.open(mem_path, os.O_RDWR)  # ioctls that change memory need write
    except (OSError, ValueError) as e:
        print(f"vm_copy.py: {e}", file=sys.stderr)
        return 2

    size = pages * page
    ok = True

    def check(condition, what):
        nonlocal ok
        print(f"  {'ok' if condition else 'FAILED'}: {what}")
        ok = ok and condition

    print(f"TASKFS_IOC_VM_ALLOCATE = 0x{TASKFS_IOC_VM_ALLOCATE:08x}, "
          f"TASKFS_IOC_VM_COPY = 0x{TASKFS_IOC_VM_COPY:08x}, "
          f"page size {page}")
    try:
        src = vm_allocate_anywhere(fd, size)
        dst = vm_allocate_anywhere(fd, size)
        print(f"vm_allocate(anywhere, {size} bytes) -> src 0x{src:x}")
        print(f"vm_allocate(anywhere, {size} bytes) -> dst 0x{dst:x}")

        data = pattern(src, size)
        write_all(fd, src, data, page)
        print(f"pwrite {size} bytes at 0x{src:x} (each 8-byte word holds its address)")

        vm_copy(fd, src, size, dst)
        print(f"vm_copy(src=0x{src:x}, size={size}, dst=0x{dst:x})")
        check(read_all(fd, dst, size, page) == data,
              f"0x{dst:x}..0x{dst + size:x} reads back the {pages} pages of the source")

        os.pwrite(fd, b"\xff" * page, src)
        print(f"pwrite one page of 0xff at 0x{src:x} (the source)")
        check(read_all(fd, dst, page, page) == data[:page],
              "the copy still holds the old contents (copy-on-write)")
        check(read_all(fd, src, page, page) == b"\xff" * page,
              "the source holds the new contents")

        try:
            vm_copy(fd, src + 8, page, dst)
            check(False, "an unaligned vm_copy fails")
        except OSError as e:
            check(e.errno == errno.EINVAL,
                  f"vm_copy(src=0x{src + 8:x}, ...) fails with "
                  f"{errno.errorcode.get(e.errno, e.errno)} (KERN_INVALID_ARGUMENT)")

        vm_deallocate(fd, src, size)
        vm_deallocate(fd, dst, size)
        print(f"vm_deallocate 0x{src:x} and 0x{dst:x}")
    except OSError as e:
        print(f"vm_copy.py: {mem_path}: {e}", file=sys.stderr)
        return 1
    finally:
        os.close(fd)
    print("all checks passed" if ok else "some checks FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
