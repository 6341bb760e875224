#!/usr/bin/env python3
"""python_read.py: the Python client's reads against os.pread on one file.

    python3 bench/python_read.py --build BUILD_DIR [--size-mib 64] [--reps 7]

Mounts BUILD_DIR's daemon on a fresh directory (as root), writes SIZE MiB
into a task, then times, alternating their order each repetition, reading
it all with os.pread on the task's mem file, with Task.vm_read and with
Task.vm_read_overwrite into one buffer. Prints the stamp of
bench/mdreport.py and a markdown table: the median of each and its ratio
to os.pread. Python 3 standard library plus the build's taskfs package.
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True, help="a Release build dir")
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    sys.path.insert(0, os.path.join(args.build, "python"))
    import taskfs

    size = args.size_mib * MiB
    base = 0x10000000
    daemon = os.path.join(args.build, "fs", "taskfs")
    with FuseMount("taskfs", [daemon], ["-f", "-o", "tasks=none"]) as mount:
        task = taskfs.Task.create(mount.path, "bench")
        task.vm_allocate(size, base)
        task.vm_write(base, os.urandom(MiB) * args.size_mib)
        fd = os.open(os.path.join(mount.path, "bench", "mem"), os.O_RDONLY)
        buffer = bytearray(size)
        ways = {
            "os.pread": lambda: os.pread(fd, size, base),
            "Task.vm_read": lambda: task.vm_read(base, size),
            "Task.vm_read_overwrite": lambda: task.vm_read_overwrite(base,
                                                                     buffer),
        }
        times = {name: [] for name in ways}
        for rep in range(args.reps):
            names = list(ways)
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                start = time.perf_counter()
                ways[name]()
                times[name].append(time.perf_counter() - start)
        os.close(fd)
        task.close()
    command = (f"python3 bench/python_read.py --build BUILD "
               f"--size-mib {args.size_mib} --reps {args.reps}")
    print("\n".join(mdreport.stamp_lines(command)))
    print()
    print(f"| read of {args.size_mib} MiB | median | ratio to os.pread |")
    print("|---|---:|---:|")
    ref = statistics.median(times["os.pread"])
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"| `{name}` | {median * 1e3:.1f} ms | {median / ref:.2f} |")


if __name__ == "__main__":
    main()
