#!/usr/bin/env python3
"""core_read.py: reading a task's core file against reading its mem.

    python3 bench/core_read.py --build BUILD_DIR [--size-mib 1024] [--reps 5]

Mounts BUILD_DIR's daemon on a fresh directory (as root), writes SIZE MiB
into a task, then times, alternating their order each repetition, reading
the region whole from mem and the whole core file, each in 1 MiB reads
into one buffer. Then it makes a task of 1 TiB with one page written and
times `cp --sparse=always` of its core. Prints the stamp of
bench/mdreport.py and a markdown table. Python 3 standard library only.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mdreport  # noqa: E402
from perf_compare import FuseMount  # noqa: E402

MiB = 1 << 20


def read_all(path, offset, size, buffer):
    """Reads [offset, offset + size) of path in 1 MiB reads; the bytes."""
    fd = os.open(path, os.O_RDONLY)
    done = 0
    view = memoryview(buffer)
    try:
        while done < size:
            n = os.preadv(fd, [view[:min(MiB, size - done)]], offset + done)
            if n <= 0:
                break
            done += n
    finally:
        os.close(fd)
    return done


def ctl(mount, task, line):
    with open(os.path.join(mount, task, "ctl"), "w") as f:
        f.write(line + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True, help="a Release build dir")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    size = args.size_mib * MiB
    base = 0x10000000
    daemon = os.path.join(args.build, "fs", "taskfs")
    buffer = bytearray(MiB)
    times = {"mem": [], "core": []}
    with FuseMount("taskfs", [daemon], ["-f", "-o", "tasks=none"]) as mount:
        os.mkdir(os.path.join(mount.path, "bench"))
        ctl(mount.path, "bench", f"allocate {base:#x} {size}")
        mem = os.path.join(mount.path, "bench", "mem")
        fd = os.open(mem, os.O_WRONLY)
        chunk = os.urandom(MiB)
        for i in range(args.size_mib):
            os.pwrite(fd, chunk, base + i * MiB)
        os.close(fd)
        core = os.path.join(mount.path, "bench", "core")
        core_size = os.stat(core).st_size
        ways = {
            "mem": lambda: read_all(mem, base, size, buffer),
            "core": lambda: read_all(core, 0, core_size, buffer),
        }
        for rep in range(args.reps):
            names = list(ways)
            for name in names[rep % 2:] + names[:rep % 2]:
                start = time.perf_counter()
                ways[name]()
                times[name].append(time.perf_counter() - start)

        os.mkdir(os.path.join(mount.path, "sparse"))
        ctl(mount.path, "sparse", "allocate 0x10000000000 1T")
        fd = os.open(os.path.join(mount.path, "sparse", "mem"), os.O_WRONLY)
        os.pwrite(fd, b"x" * 4096, 0x10000000000 + (1 << 39))
        os.close(fd)
        cp_times = []
        with tempfile.TemporaryDirectory() as out:
            for _ in range(args.reps):
                start = time.perf_counter()
                subprocess.run(["cp", "--sparse=always",
                                os.path.join(mount.path, "sparse", "core"),
                                os.path.join(out, "core")], check=True)
                cp_times.append(time.perf_counter() - start)
                os.unlink(os.path.join(out, "core"))

    command = (f"python3 bench/core_read.py --build BUILD "
               f"--size-mib {args.size_mib} --reps {args.reps}")
    print("\n".join(mdreport.stamp_lines(command)))
    print()
    mem_t = statistics.median(times["mem"])
    core_t = statistics.median(times["core"])
    print("| measure | median | figure |")
    print("|---|---:|---:|")
    print(f"| read mem, {args.size_mib} MiB written | {mem_t * 1e3:.0f} ms | "
          f"{size / MiB / mem_t:,.0f} MiB/s |")
    print(f"| read core, {args.size_mib} MiB written | {core_t * 1e3:.0f} ms | "
          f"{size / MiB / core_t:,.0f} MiB/s |")
    print(f"| core speed / mem speed | | {mem_t / core_t:.2f} |")
    print(f"| cp --sparse=always of the core of 1 TiB, one page written | "
          f"{statistics.median(cp_times) * 1e3:.0f} ms | |")


if __name__ == "__main__":
    main()
