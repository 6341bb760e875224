#!/usr/bin/env python3
"""xnu_reads.py: small reads in the XNU flavor, and large ones in both.

    python3 bench/xnu_reads.py --build BUILD_DIR [--reads 20000] [--reps 7]

Mounts BUILD_DIR's daemon twice on fresh directories (as root), one with
-o flavor=xnu and one classic, each with a task holding 64 MiB of written
memory. Times, alternating their order each repetition:

  - on the XNU mount, READS preads of 4 bytes at odd addresses and READS
    preads of 4 KiB at page addresses, spread over the 64 MiB (reads per
    second; their ratio is the small-read goal);
  - a 64 MiB pread on each mount (the large-transfer goal).

Prints the stamp of bench/mdreport.py and markdown tables of the medians.
Python 3 standard library only.
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mdreport  # noqa: E402
from perf_compare import FuseMount  # noqa: E402

MiB = 1 << 20
PAGE = 4096
SIZE = 64 * MiB
BASE = 0x10000000


def prepare(mount_path):
    """A task with SIZE bytes written at BASE; its mem file open read-only."""
    task = os.path.join(mount_path, "bench")
    os.mkdir(task)
    with open(os.path.join(task, "ctl"), "w") as ctl:
        ctl.write(f"allocate {BASE:#x} {SIZE}\n")
    fd = os.open(os.path.join(task, "mem"), os.O_RDWR)
    for off in range(0, SIZE, MiB):
        os.pwrite(fd, os.urandom(MiB), BASE + off)
    return fd


def small_reads(fd, n, size, odd):
    """n preads of size bytes, page after page; seconds taken."""
    pages = SIZE // PAGE - 1  # an odd read runs into the next page
    start = time.perf_counter()
    for i in range(n):
        address = BASE + (i * 7919 % pages) * PAGE + (PAGE - 2 if odd else 0)
        if len(os.pread(fd, size, address)) != size:
            raise SystemExit("short read")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True, help="a Release build dir")
    parser.add_argument("--reads", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    daemon = os.path.join(args.build, "fs", "taskfs")
    with FuseMount("xnu", [daemon],
                   ["-f", "-o", "tasks=none,flavor=xnu"]) as xnu, \
         FuseMount("classic", [daemon], ["-f", "-o", "tasks=none"]) as classic:
        xfd = prepare(xnu.path)
        cfd = prepare(classic.path)
        ways = {
            "4 B, across a page boundary (xnu)":
                lambda: small_reads(xfd, args.reads, 4, True),
            "4 KiB, page-aligned (xnu)":
                lambda: small_reads(xfd, args.reads, PAGE, False),
            "64 MiB (xnu)": lambda: timed(lambda: os.pread(xfd, SIZE, BASE)),
            "64 MiB (classic)":
                lambda: timed(lambda: os.pread(cfd, SIZE, BASE)),
        }
        times = {name: [] for name in ways}
        for rep in range(args.reps):
            names = list(ways)
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                times[name].append(ways[name]())
        os.close(xfd)
        os.close(cfd)
    command = (f"python3 bench/xnu_reads.py --build BUILD "
               f"--reads {args.reads} --reps {args.reps}")
    print("\n".join(mdreport.stamp_lines(command)))
    print()
    print(f"| {args.reads} preads of | median | reads per second | ratio |")
    print("|---|---:|---:|---:|")
    names = list(ways)
    ref = args.reads / statistics.median(times[names[1]])
    for name in names[:2]:
        median = statistics.median(times[name])
        rate = args.reads / median
        print(f"| {name} | {median * 1e3:.0f} ms | {rate:.0f} | "
              f"{rate / ref:.2f} |")
    print()
    print("| pread of 64 MiB | median | ratio to classic |")
    print("|---|---:|---:|")
    ref = statistics.median(times[names[3]])
    for name in names[2:]:
        median = statistics.median(times[name])
        print(f"| {name} | {median * 1e3:.1f} ms | {median / ref:.2f} |")


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
