#!/usr/bin/env python3
"""Writes the binary seed inputs of the vm_ops, ioctl and line_assembler
fuzz targets.

The encodings are described at the top of fuzz_vm_ops.cc, fuzz_ioctl.cc and
fuzz_line_assembler.cc; this script spells a few inputs in them, one file
per seed, into corpus/vm_ops/, corpus/ioctl/ and corpus/line_assembler/
next to it. Run it again after changing an
encoding. (The ctl_parser seeds are plain text, written by hand.)
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# --- vm_ops ------------------------------------------------------------------

(ALLOCATE, ANYWHERE, DEALLOCATE, PROTECT, INHERIT, READ, WRITE, FILL, COPY,
 MAP_COPY, REGION, FIND_DATA, FIND_HOLE, CHECK_TASK, PIN, CHECK_PIN, FORK,
 CREATE, TERMINATE) = range(19)


def config(page_kind=0, limit_half_pages=40):  # 0 for no limit
    n = 63 if limit_half_pages == 0 else limit_half_pages - 1
    return bytes([page_kind | (n << 2)])


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
}

# --- ioctl -------------------------------------------------------------------

COPY_CMD, ALLOC_CMD, DEALLOC_CMD, PROTECT_CMD, INHERIT_CMD, REGION_CMD, \
    MAP_COPY_CMD = range(7)
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
    'short_arguments': seed(
        ioctl(COPY_CMD, q(0x1000, 0x1000, 0x2000), in_size=16),
        ioctl(REGION_CMD, q(0, 0, 0, 0), out_size=16),
        ioctl(ALLOC_CMD, q2i2(0, 0x1000, 1, 0), out_size=0),
        ioctl(DEALLOC_CMD, b'', in_size=0)),
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
