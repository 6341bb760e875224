#!/usr/bin/env python3
"""Writes the binary seed inputs of the vm_ops, ioctl, line_assembler and
state_restore fuzz targets.

The encodings are described at the top of fuzz_vm_ops.cc, fuzz_ioctl.cc,
fuzz_line_assembler.cc and fuzz_state_restore.cc; this script spells a few
inputs in them, one file per seed, into corpus/NAME/ next to it. Run it
again after changing an encoding. (The ctl_parser seeds are plain text, written by hand.)
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# --- vm_ops ------------------------------------------------------------------

(ALLOCATE, ANYWHERE, DEALLOCATE, PROTECT, INHERIT, READ, WRITE, FILL, COPY,
 MAP_COPY, REGION, FIND_DATA, FIND_HOLE, CHECK_TASK, PIN, CHECK_PIN, FORK,
 CREATE, TERMINATE, COPY_CHAIN, MAP_COPY_CHAIN, FORK_CHAIN,
 ALIGNED_COPY) = range(23)

BIG_SPACE = 3  # page kind: 4 KiB pages in a 2^31 space
PAGE = 4096
CHUNK = 512  # pages
LEVEL = 512 * CHUNK


def config(page_kind=0, limit_half_pages=40, xnu=False):  # 0: no limit
    n = 63 if limit_half_pages == 0 else limit_half_pages - 1
    return bytes([page_kind | (n << 2), 1 if xnu else 0])


def page(n):  # address: page n of the window, 0..63
    return bytes([n]) if n < 32 else bytes([0x20 | (n - 32)])


def unaligned(n, offset):  # address: page n plus an odd offset
    return bytes([0x40 | n, offset])


def allocated(k):  # address: the k-th allocated page of the task
    return bytes([0x60, k])


def top(n):  # address: 2^24 - n pages
    return bytes([0x80 | n])


def past(n):  # address: 2^24 + n pages
    return bytes([0xa0 | n])


def near_top_of_64(n):  # address: 2^64 - (n + 1) pages
    return bytes([0xc0 | n])


def raw(value):  # address or size: any 64-bit value
    return bytes([0xe0]) + struct.pack('<Q', value)


def pages(n):  # size: n pages, 0..15
    return bytes([n])


def unaligned_size(n, offset):
    return bytes([0x40 | n, offset])


def whole_space(less=0):  # size: 2^24 - less pages
    return bytes([0x80 | less])


def wrapping(n):  # size: 2^64 - n pages
    return bytes([0xc0 | n])


def at_page(n):  # address or size: n 4 KiB pages, as a raw value
    return raw(n * PAGE)


def stride(kind, n=0):  # a chain's stride: see NextStride
    return bytes([kind << 5 | n])


def chain(copies, ring=0):  # a chain's count byte; ring: places, 0 for none
    return bytes([(copies - 1) | ((ring - 1) << 6 if ring else 0)])


def chain_writes(every, page_of_range=0):
    return bytes([every | page_of_range << 3])


def hops(n, dst_alloc=False, src_destroy=False):
    return bytes([(n - 1) | (0x40 if dst_alloc else 0) |
                  (0x80 if src_destroy else 0)])


def forks(n, terminate_parents=False, write=False):
    return bytes([(n - 1) | (0x10 if terminate_parents else 0) |
                  (0x20 if write else 0)])


def aligned(k, d=0, level=False):  # page (or size) k units + d
    assert -8 <= d <= 7
    return bytes([(0x80 if level else 0) | k << 4 | (d + 8)])


(ALLOC_SRC, ALLOC_DST, WRITE_BOUNDARIES, WRITE_AFTER, ACROSS, DST_ALLOC,
 SRC_DESTROY, FREE_AFTER) = (1 << i for i in range(8))


def call(op, *operands):
    return bytes([op]) + b''.join(
        bytes([x]) if isinstance(x, int) else x for x in operands)


def seed(*parts):
    return b''.join(parts)


VM_OPS = {
    'allocate_fixed': seed(
        config(),
        call(ALLOCATE, 0, page(4), pages(3)),
        call(ALLOCATE, 0, page(5), pages(1)),
        call(ALLOCATE, 0, top(1), pages(2))),
    'allocate_anywhere': seed(
        config(),
        call(ANYWHERE, 0, page(0), pages(2)),
        call(ANYWHERE, 0, page(0), pages(0)),
        call(ANYWHERE, 0, page(0), whole_space())),
    'deallocate': seed(
        config(),
        call(ALLOCATE, 0, page(0), pages(8)),
        call(DEALLOCATE, 0, unaligned(2, 7), pages(2)),
        call(DEALLOCATE, 0, page(0), wrapping(1))),
    'protect': seed(
        config(),
        call(ALLOCATE, 0, page(1), pages(4)),
        call(PROTECT, 0, page(2), pages(1), 0, 5),
        call(PROTECT, 0, page(1), pages(4), 1, 1),
        call(PROTECT, 0, page(1), pages(1), 0, 3),
        call(PROTECT, 0, page(1), pages(1), 0, 0xf3)),
    'inherit': seed(
        config(),
        call(ALLOCATE, 0, page(1), pages(3)),
        call(INHERIT, 0, page(1), pages(1), 0),
        call(INHERIT, 0, page(2), pages(1), 2),
        call(INHERIT, 0, page(1), pages(3), 0xff)),
    'read_write': seed(
        config(),
        call(ALLOCATE, 0, page(0), pages(4)),
        call(WRITE, 0, page(1), pages(2), 0x42),
        call(READ, 0, page(0), pages(4)),
        call(READ, 0, page(0), pages(5)),
        call(WRITE, 0, unaligned(1, 3), pages(1), 1)),
    'read_pinned_large': seed(
        config(0, 0),
        call(ANYWHERE, 0, page(0), whole_space()),
        call(WRITE, 0, top(2), pages(1), 9),
        call(READ, 0, page(0), whole_space())),
    'fill': seed(
        config(),
        call(ALLOCATE, 0, page(2), pages(2)),
        call(FILL, 0, unaligned(2, 5), unaligned_size(0, 9), 0xcc),
        call(FILL, 0, page(3), pages(1), 0x11)),
    'copy': seed(
        config(),
        call(ALLOCATE, 0, page(0), pages(8)),
        call(WRITE, 0, page(0), pages(2), 7),
        call(COPY, 0, page(0), pages(4), page(2)),
        call(WRITE, 0, page(2), pages(1), 8),
        call(READ, 0, page(0), pages(8))),
    'map_copy': seed(
        config(),
        call(CREATE, 1),
        call(ALLOCATE, 0, page(0), pages(4)),
        call(WRITE, 0, page(0), pages(4), 3),
        call(MAP_COPY, 1, page(8), 0, page(0), pages(2), 1),
        call(MAP_COPY, 1, page(8), 0, page(2), pages(2), 2),
        call(MAP_COPY, 0, page(0), 0, page(0), pages(1), 3)),
    'region_find': seed(
        config(),
        call(ALLOCATE, 0, page(3), pages(2)),
        call(PROTECT, 0, page(4), pages(1), 0, 1),
        call(REGION, 0, page(0)),
        call(REGION, 0, page(4)),
        call(REGION, 0, page(6)),
        call(FIND_DATA, 0, page(0)),
        call(FIND_HOLE, 0, page(3)),
        call(FIND_DATA, 0, near_top_of_64(0)),
        call(FIND_HOLE, 0, past(1))),
    'statistics': seed(
        config(),
        call(ALLOCATE, 0, page(0), pages(3)),
        call(WRITE, 0, page(0), pages(2), 5),
        call(COPY, 0, page(0), pages(1), page(2)),
        call(CHECK_TASK, 0)),
    'pin': seed(
        config(),
        call(ALLOCATE, 0, page(0), pages(2)),
        call(WRITE, 0, page(0), pages(2), 1),
        call(PIN, 0, 0, page(0), pages(2)),
        call(WRITE, 0, page(0), pages(1), 2),
        call(CHECK_PIN, 0),
        call(CHECK_PIN, 0x80)),
    'fork': seed(
        config(),
        call(ALLOCATE, 0, page(0), pages(3)),
        call(INHERIT, 0, page(0), pages(1), 0),
        call(INHERIT, 0, page(2), pages(1), 2),
        call(WRITE, 0, page(0), pages(2), 4),
        call(FORK, 0, 1),
        call(WRITE, 1, page(0), pages(2), 6),
        call(READ, 0, page(0), pages(2)),
        call(FORK, 0, 1),
        call(FORK, 0, 0xf9)),
    'tasks': seed(
        config(),
        call(CREATE, 1),
        call(CREATE, 1),
        call(CREATE, 0xf8),
        call(CREATE, 2),
        call(CREATE, 3),
        call(CREATE, 4),
        call(TERMINATE, 1),
        call(TERMINATE, 1),
        call(ALLOCATE, 1, page(0), pages(1))),
    'xnu_byte_ranges': seed(
        config(xnu=True),
        call(ALLOCATE, 0, page(0), pages(8)),
        call(WRITE, 0, unaligned(0, 7), unaligned_size(1, 9), 3),
        call(READ, 0, unaligned(0, 5), unaligned_size(2, 3)),
        call(COPY, 0, unaligned(1, 11), unaligned_size(2, 1), unaligned(4, 3)),
        call(READ, 0, unaligned(3, 1), unaligned_size(3, 5)),
        call(PIN, 0, 0, unaligned(4, 1), unaligned_size(1, 1)),
        call(WRITE, 0, unaligned(4, 9), unaligned_size(0, 3), 5),
        call(CHECK_PIN, 0),
        call(PROTECT, 0, page(6), pages(1), 0, 0),
        call(READ, 0, unaligned(5, 3), unaligned_size(1, 1)),
        call(WRITE, 0, unaligned(7, 1), unaligned_size(1, 1), 6),
        call(READ, 0, page(0), pages(0)),
        call(CHECK_TASK, 0)),
    'xnu_forks_and_copies': seed(
        config(0, 30, xnu=True),
        call(ALLOCATE, 0, page(0), pages(4)),
        call(WRITE, 0, unaligned(0, 1), unaligned_size(3, 1), 2),
        call(FORK, 0, 1),
        call(COPY, 1, unaligned(0, 3), unaligned_size(1, 5), unaligned(2, 7)),
        call(MAP_COPY, 0, page(8), 1, page(0), pages(2), 1),
        call(READ, 0, unaligned(8, 1), unaligned_size(1, 3)),
        call(CHECK_TASK, 1)),
    'memory_limit': seed(
        config(0, 9),
        call(ALLOCATE, 0, page(0), pages(8)),
        call(WRITE, 0, page(0), pages(4), 1),
        call(WRITE, 0, page(4), pages(2), 2),
        call(FILL, 0, page(6), pages(2), 3),
        call(COPY, 0, page(0), pages(4), page(4))),
    'large_pages': seed(
        config(1, 0),
        call(ALLOCATE, 0, page(1), pages(2)),
        call(WRITE, 0, page(1), pages(1), 1),
        call(ANYWHERE, 0, page(0), whole_space(1))),
    'huge_pages_edges': seed(
        config(2, 5),
        call(ALLOCATE, 0, top(2), pages(2)),
        call(WRITE, 0, top(1), pages(1), 1),
        call(COPY, 0, top(2), pages(1), top(1)),
        call(ALLOCATE, 0, raw(0xfffffffffffff000), raw(0x2000))),
    # Six nested copies of 520 pages a chunk apart, both sides written
    # after each.
    'copy_chain': seed(
        config(0, 0),
        call(ANYWHERE, 0, page(0), whole_space()),
        call(WRITE, 0, page(0), pages(4), 1),
        call(WRITE, 0, at_page(511), pages(2), 2),
        call(WRITE, 0, at_page(519), pages(1), 3),
        call(COPY_CHAIN, 0, page(0), at_page(520), stride(2), chain(6),
             chain_writes(1, 3)),
        call(READ, 0, at_page(3072), pages(8))),
    # 64 copies round a ring of three places 511 pages apart (every chunk
    # cut otherwise than the last), a write on each side every other copy.
    'copy_ring': seed(
        config(0, 0),
        call(ANYWHERE, 0, page(0), whole_space()),
        call(WRITE, 0, page(0), pages(2), 4),
        call(WRITE, 0, at_page(599), pages(1), 5),
        call(COPY_CHAIN, 0, page(0), at_page(600), stride(3, 1),
             chain(64, ring=3), chain_writes(2, 1))),
    # Chains onto their own source: a page up 40 times, then a page down.
    'copy_chain_overlap': seed(
        config(0, 0),
        call(ANYWHERE, 0, page(0), whole_space()),
        call(WRITE, 0, page(0), pages(8), 6),
        call(WRITE, 0, at_page(512), pages(1), 7),
        call(COPY_CHAIN, 0, page(0), at_page(513), stride(0, 1), chain(40),
             chain_writes(3)),
        call(COPY_CHAIN, 0, at_page(2000), at_page(513), stride(5), chain(20),
             chain_writes(4, 2))),
    # Copies from task to task round three tasks: onto memory, as new
    # memory, and moving.
    'map_copy_chain': seed(
        config(0, 0),
        call(CREATE, 1),
        call(CREATE, 2),
        call(ALLOCATE, 0, page(0), at_page(1024)),
        call(ALLOCATE, 1, page(0), at_page(1024)),
        call(ALLOCATE, 2, page(0), at_page(1024)),
        call(WRITE, 0, page(0), pages(3), 8),
        call(WRITE, 0, at_page(511), pages(2), 9),
        call(MAP_COPY_CHAIN, 0, page(0), at_page(1024), hops(9), 0x0b),
        call(MAP_COPY_CHAIN, 1, page(0), at_page(520), hops(5, True), 0x01),
        call(MAP_COPY_CHAIN, 2, page(0), at_page(513), hops(3, True, True),
             0x03)),
    # Twelve nested forks, each parent terminated once forked, with a page
    # written on both sides after each; a share page and a none page along.
    'fork_chain': seed(
        config(0, 0),
        call(ALLOCATE, 0, page(0), at_page(600)),
        call(INHERIT, 0, page(0), pages(1), 0),
        call(INHERIT, 0, page(1), pages(1), 2),
        call(WRITE, 0, page(0), pages(4), 10),
        call(WRITE, 0, at_page(512), pages(1), 11),
        call(FORK_CHAIN, 0, forks(12, True, True), 1, page(2)),
        call(FORK_CHAIN, 12, forks(3, False, True), 5, at_page(512))),
    # Copies of chunks: one exactly, aligned alike; 1,025 pages a page
    # off; two chunks onto their own range a chunk up; a chunk and two
    # pages from another task as new memory, moving them.
    'aligned_copy_chunks': seed(
        config(0, 0),
        call(ANYWHERE, 0, page(0), whole_space()),
        call(ALIGNED_COPY, 0, aligned(0), aligned(2), aligned(1),
             WRITE_BOUNDARIES | WRITE_AFTER),
        call(ALIGNED_COPY, 0, aligned(0, 1), aligned(4), aligned(2, 1),
             WRITE_BOUNDARIES | WRITE_AFTER),
        call(ALIGNED_COPY, 0, aligned(0), aligned(1), aligned(2),
             WRITE_AFTER),
        call(CREATE, 1),
        call(ALIGNED_COPY, 0, aligned(1, -1), aligned(6), aligned(1, 2),
             ALLOC_SRC | WRITE_BOUNDARIES | WRITE_AFTER | ACROSS | DST_ALLOC
             | SRC_DESTROY)),
    # In the big space: a level-2 node exactly onto the next one, then
    # 519 pages across the node boundary onto a range a chunk in.
    'aligned_copy_radix': seed(
        config(BIG_SPACE, 0),
        call(ALIGNED_COPY, 0, aligned(0, level=True), aligned(1, level=True),
             aligned(1, level=True),
             ALLOC_SRC | ALLOC_DST | WRITE_BOUNDARIES | WRITE_AFTER),
        call(ALIGNED_COPY, 0, aligned(1, -3, level=True), aligned(2, 7),
             aligned(1, 7), WRITE_BOUNDARIES | WRITE_AFTER | FREE_AFTER)),
    # In the big space: a level-2 node moved from another task as new
    # memory, then freed.
    'aligned_map_copy_radix': seed(
        config(BIG_SPACE, 0),
        call(CREATE, 1),
        call(ALIGNED_COPY, 0, aligned(0, level=True), aligned(1, level=True),
             aligned(1, level=True),
             ALLOC_SRC | WRITE_BOUNDARIES | WRITE_AFTER | ACROSS | DST_ALLOC
             | SRC_DESTROY | FREE_AFTER)),
}

# --- ioctl -------------------------------------------------------------------

COPY_CMD, ALLOC_CMD, DEALLOC_CMD, PROTECT_CMD, INHERIT_CMD, REGION_CMD, \
    MAP_COPY_CMD, READ_LIST_CMD, PAGE_QUERY_CMD, REMAP_CMD = range(10)
TERMINATE_B = 0xe0


def ioctl(cmd, arg, on_b=False, deny_write_b=False, in_size=None,
          out_size=None):
    flags = (1 if on_b else 0) | (2 if deny_write_b else 0)
    in_byte = 0 if in_size is None else 0xc0 | in_size
    out_byte = 0 if out_size is None else 0xc0 | out_size
    if in_size is not None:
        arg = (arg + bytes(64))[:in_size]
    return bytes([cmd, flags, in_byte, out_byte]) + arg


def raw_ioctl(number, arg=b'', in_size=0):
    return bytes([0xf0]) + struct.pack('<I', number) + bytes(
        [0, 0xc0 | in_size, 0xc0]) + arg[:in_size]


def q(*values):
    return struct.pack('<' + 'Q' * len(values), *values)


def q2i2(a, b, c, d):
    return struct.pack('<QQII', a, b, c, d)


MAP_COPY_DST_ALLOC, MAP_COPY_SRC_DESTROY = 1, 2


def map_copy(src_task_id, src, size, dst, flags):
    return q(src_task_id, src, size, dst) + struct.pack('<II', flags, 0)


READ_LIST_SIZE = 8 + 64 * 24 + 14336


def read_list(entries, count=None):
    """A whole taskfs_vm_read_list: count, then (address, size) entries."""
    arg = struct.pack('<II', len(entries) if count is None else count, 0)
    for address, size in entries:
        arg += struct.pack('<QQiI', address, size, 0, 0)
    return arg + bytes(READ_LIST_SIZE - len(arg))


PAGE_QUERY_SIZE = 16 + 16 * 1000
REMAP_ANYWHERE, REMAP_COPY = 1, 2


def page_query(address, count):
    """A whole taskfs_vm_page_query: address, count, room for the pages."""
    return q(address, count) + bytes(PAGE_QUERY_SIZE - 16)


def remap(src_task_id, src, size, target, flags, inheritance):
    return q(src_task_id, src, size, target) + struct.pack(
        '<IIII', flags, inheritance, 0, 0)


IOCTL = {
    'copy': ioctl(COPY_CMD, q(0x1000, 0x2000, 0x3000)),
    'allocate_fixed': ioctl(ALLOC_CMD, q2i2(0x20000, 0x3000, 0, 0)),
    'allocate_anywhere': seed(
        ioctl(ALLOC_CMD, q2i2(0, 0x1000, 1, 0x55)),
        ioctl(ALLOC_CMD, q2i2(0, 0x1000, 2, 0))),
    'deallocate': ioctl(DEALLOC_CMD, q(0x2000, 0x1000)),
    'protect': seed(
        ioctl(PROTECT_CMD, q2i2(0x1000, 0x1000, 0, 1)),
        ioctl(PROTECT_CMD, q2i2(0x1000, 0x1000, 1, 5)),
        ioctl(PROTECT_CMD, q2i2(0x1000, 0x1000, 2, 1))),
    'inherit': seed(
        ioctl(INHERIT_CMD, q2i2(0x1000, 0x2000, 0, 0)),
        ioctl(INHERIT_CMD, q2i2(0x1000, 0x2000, 3, 0))),
    'region': seed(
        ioctl(REGION_CMD, q(0, 0, 0, 0)),
        ioctl(REGION_CMD, q(0x8000, 0, 0, 0), on_b=True),
        ioctl(REGION_CMD, q(0x100000, 0, 0, 0))),
    'map_copy': seed(
        ioctl(MAP_COPY_CMD, map_copy(2, 0x8000, 0x2000, 0x40000,
                                     MAP_COPY_DST_ALLOC)),
        ioctl(MAP_COPY_CMD, map_copy(2, 0x8000, 0x1000, 0x1000,
                                     MAP_COPY_SRC_DESTROY),
              deny_write_b=True),
        ioctl(MAP_COPY_CMD, map_copy(1, 0x1000, 0x1000, 0x9000, 0),
              on_b=True),
        ioctl(MAP_COPY_CMD, map_copy(7, 0, 0x1000, 0, 0))),
    'read_list': seed(
        ioctl(READ_LIST_CMD, read_list([(0x1000, 0x1000), (0x9000, 0x1000),
                                        (0x1001, 0x10), (0, 0),
                                        (0x2000, 0x2000)])),
        ioctl(READ_LIST_CMD, read_list([(0x8000, 0x1000)]), on_b=True),
        ioctl(READ_LIST_CMD, read_list([], count=65)),
        ioctl(READ_LIST_CMD, read_list([(0x1000, 0x3000), (0x4000, 0x1000)])),
        ioctl(READ_LIST_CMD, read_list([(0x1000, 0x1000)]), out_size=8)),
    'page_query': seed(
        ioctl(PAGE_QUERY_CMD, page_query(0x1000, 8)),
        ioctl(PAGE_QUERY_CMD, page_query(0x8123, 4), on_b=True),
        ioctl(PAGE_QUERY_CMD, page_query(0, 1001)),
        ioctl(PAGE_QUERY_CMD, page_query(0xfff000, 2))),
    'remap': seed(
        ioctl(REMAP_CMD, remap(1, 0x1000, 0x2000, 0, REMAP_ANYWHERE, 1)),
        ioctl(REMAP_CMD, remap(2, 0x8000, 0x1000, 0x30000, REMAP_COPY, 0)),
        ioctl(REMAP_CMD, remap(2, 0x8000, 0x1000, 0x30000, 0, 2),
              deny_write_b=True),
        ioctl(REMAP_CMD, remap(2, 0x8000, 0x1000, 0, REMAP_ANYWHERE
                               | REMAP_COPY, 1), deny_write_b=True),
        ioctl(PAGE_QUERY_CMD, page_query(0, 64)),
        ioctl(REMAP_CMD, remap(1, 0x1000, 0x1000, 0, 4, 0))),
    'short_arguments': seed(
        ioctl(COPY_CMD, q(0x1000, 0x1000, 0x2000), in_size=16),
        ioctl(REGION_CMD, q(0, 0, 0, 0), out_size=16),
        ioctl(ALLOC_CMD, q2i2(0, 0x1000, 1, 0), out_size=0),
        ioctl(DEALLOC_CMD, b'', in_size=0),
        ioctl(PAGE_QUERY_CMD, page_query(0x1000, 1), in_size=16),
        ioctl(REMAP_CMD, remap(1, 0x1000, 0x1000, 0, 1, 0), out_size=40)),
    'terminated_task': seed(
        bytes([TERMINATE_B]),
        ioctl(MAP_COPY_CMD, map_copy(2, 0x8000, 0x1000, 0x1000, 0)),
        ioctl(REGION_CMD, q(0, 0, 0, 0), on_b=True)),
    'unknown_commands': seed(
        raw_ioctl(0),
        raw_ioctl(0xc0284d08, bytes(40), 40),  # number 8
        raw_ioctl(0x40184d01, q(0x1000, 0x1000, 0x2000), 24)),  # VM_COPY
}


# --- line_assembler -----------------------------------------------------------

CTL_LIMIT = 0x80  # kMaxCtlLine


def stream(limit, gaps, text):
    return bytes([limit, len(gaps)] + list(gaps)) + text


LINE_ASSEMBLER = {
    'uncut': stream(CTL_LIMIT, [], b'allocate 0x10000 4K\nprotect 0x10000 4K r--\n'),
    'cut_in_lines': stream(
        CTL_LIMIT, [5, 17, 9, 30],
        b'allocate 0x10000 4K\nprotect 0x10000 4K r--\n'
        b'inherit 0x10000 4K share\n'),
    'no_final_newline': stream(CTL_LIMIT, [3, 4], b'fork a\nfork b\nfork c'),
    'blank_lines': stream(16, [1, 1, 1, 1, 1], b'\n\nx\n\n# note\ny'),
    'too_long': stream(8, [3, 3, 3, 3, 3, 3],
                       b'short\nthis line is long\nok\n'),
    'too_long_when_joined': stream(8, [9, 4], b'1\n1234567\n89\nz\n'),
    'nul_bytes': stream(CTL_LIMIT, [4, 4], b'a\x00b\nc\nd\x00'),
    'limit_zero': stream(0, [1, 2], b'a\n\nb\n'),
    'pieces_without_newline': stream(CTL_LIMIT, [2, 2, 2, 2, 20],
                                     b'allocate anywhere 8K\nfork child\n'),
}

# --- state_restore -----------------------------------------------------------

PAGES_PER_LEAF = 512


def rec(kind, payload):  # a record without its CRC: type, length, payload
    assert len(payload) < 256
    return bytes([kind, len(payload)]) + payload


def task(name, extra=b''):
    return rec(2, struct.pack('<I', len(name)) + name +
               struct.pack('<I', len(extra)) + extra)


def obj(i):
    return rec(3, struct.pack('<Q', i))


def page_rec(index, page_id, kept=0):  # the target appends the page's bytes
    return rec(4, struct.pack('<QQB', index, page_id, kept))


def page_ref(index, page_id):
    return rec(5, struct.pack('<QQ', index, page_id))


def entry(start, end, obj_id, offset=0, prot=3, maximum=7, inherit=1):
    return rec(6, struct.pack('<QQIIIQQ', start, end, prot, maximum, inherit,
                              obj_id, offset))


def node(index, level, node_id, first=True):
    return rec(8 if first else 9, struct.pack('<QIQ', index, level, node_id))


VERSION2_WITH_END = bytes([3])
VERSION1_WITH_END = bytes([2])
LEAF = PAGES_PER_LEAF * PAGE

STATE_RESTORE = {
    'one_task': VERSION2_WITH_END + task(b'a', b'attrs') + obj(0) +
    page_rec(0, 0) + page_rec(9, 1) + entry(0x10000, 0x12000, 0) +
    entry(0x20000, 0x22000, 0, offset=8, prot=1, maximum=5),
    'shared_page': VERSION2_WITH_END + task(b'a') + obj(0) +
    page_rec(0, 0, kept=1) + page_ref(1, 0) + entry(0x10000, 0x12000, 0),
    'share_region': VERSION2_WITH_END + task(b'a') + obj(0) + page_rec(0, 0) +
    entry(0x10000, 0x11000, 0, inherit=0) + task(b'b') +
    entry(0x10000, 0x11000, 0, inherit=0),
    'forked_leaf': VERSION2_WITH_END + task(b'a') + obj(0) + node(0, 0, 0) +
    page_rec(0, 0, kept=1) + page_rec(5, 1, kept=1) +
    entry(0x100000, 0x100000 + LEAF, 0) + task(b'b') + obj(1) +
    node(0, 0, 0, first=False) + entry(0x100000, 0x100000 + LEAF, 1),
    'leaf_twice_in_one_object': VERSION2_WITH_END + task(b'a') + obj(0) +
    node(0, 0, 0) + page_rec(3, 0, kept=1) +
    node(PAGES_PER_LEAF, 0, 0, first=False) +
    entry(0x100000, 0x100000 + 2 * LEAF, 0),
    'version1': VERSION1_WITH_END + task(b'a') + obj(0) + page_rec(0, 0) +
    entry(0x10000, 0x11000, 0),
    'empty_task': VERSION2_WITH_END + task(b'a') + task(b'b'),
}


def write(target, seeds):
    directory = os.path.join(HERE, 'corpus', target)
    os.makedirs(directory, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(directory, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    write('vm_ops', VM_OPS)
    write('ioctl', IOCTL)
    write('line_assembler', LINE_ASSEMBLER)
    write('state_restore', STATE_RESTORE)
