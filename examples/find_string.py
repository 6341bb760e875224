#!/usr/bin/env python3
"""Search a taskfs task's memory for a string.

Usage: find_string.py MEMFILE NEEDLE

Walks the task's allocated regions with lseek(SEEK_DATA) / lseek(SEEK_HOLE),
reads them with os.pread in page-aligned, page-sized chunks (mem is a
direct-I/O file: offset and size must be multiples of the page size) and
prints the address of every match as 0xADDR, one per line, in ascending
order. Pages without read permission (EACCES, e.g. a --- guard page) are
skipped; a match never spans a skipped page.

The page size is read from host_page_size at the mount root, two directories
above MEMFILE (MOUNTPOINT/TASK/mem).

Exit status: 0 if the needle was found, 1 if not, 2 on errors.
Python 3 standard library only.
"""

import errno
import os
import sys

# Bytes per pread: 1 MiB (or one page, if pages are larger), into an ordinary
# bytes object: any buffer works (docs/reference.md §5.1).
CHUNK_BYTES = 1 << 20


def page_size_of(mem_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(mem_path)))
    with open(os.path.join(root, "host_page_size")) as f:
        return int(f.read().strip())


def regions(fd):
    """Yields (start, end) of each run of allocated memory, ascending."""
    address = 0
    while True:
        try:
            start = os.lseek(fd, address, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:  # no allocated memory at or above
                return
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end
        address = end


def readable_runs(fd, start, end, page):
    """Yields (address, bytes) for each readable run of [start, end).

    Consecutive chunks of one run come out as separate pieces; a piece whose
    address is not where the previous one ended starts a new run.
    """
    chunk = max(page, CHUNK_BYTES // page * page)
    address = start
    while address < end:
        size = min(chunk, end - address)
        try:
            data = os.pread(fd, size, address)
        except OSError as e:
            # EACCES: some page lacks read permission; EFAULT: the region
            # went away meanwhile. Retry this chunk page by page.
            if e.errno not in (errno.EACCES, errno.EFAULT):
                raise
            for a in range(address, address + size, page):
                try:
                    yield a, os.pread(fd, page, a)
                except OSError as e2:
                    if e2.errno not in (errno.EACCES, errno.EFAULT):
                        raise
            address += size
            continue
        if not data:
            break
        # A chunk of several requests comes back short when a later request
        # fails; the next pread starts at that request and reports it.
        yield address, data
        address += len(data)


def find(fd, needle, page):
    """Yields the address of every match, ascending."""
    for start, end in regions(fd):
        # The tail of the previous piece (len(needle) - 1 bytes) so that a
        # match spanning two chunks is found, and where that tail begins.
        carry, carry_at = b"", None
        for address, data in readable_runs(fd, start, end, page):
            if carry_at is None or carry_at + len(carry) != address:
                carry, carry_at = b"", address  # a new readable run
            window = carry + data
            base = address - len(carry)
            i = window.find(needle)
            while i != -1:
                yield base + i
                i = window.find(needle, i + 1)
            keep = min(len(needle) - 1, len(window))
            # Only the part a later match could still use (it must end in
            # the next piece, so it starts in the last len(needle)-1 bytes).
            carry = window[len(window) - keep:] if keep else b""
            carry_at = base + len(window) - len(carry)


def main(argv):
    if len(argv) != 3 or not argv[2]:
        print("usage: find_string.py MEMFILE NEEDLE", file=sys.stderr)
        return 2
    mem_path, needle = argv[1], argv[2].encode()
    try:
        page = page_size_of(mem_path)
        fd = os.open(mem_path, os.O_RDONLY)
    except (OSError, ValueError) as e:
        print(f"find_string.py: {e}", file=sys.stderr)
        return 2
    found = False
    try:
        for address in find(fd, needle, page):
            print(f"0x{address:x}")
            found = True
    except OSError as e:
        print(f"find_string.py: {mem_path}: {e}", file=sys.stderr)
        return 2
    finally:
        os.close(fd)
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
