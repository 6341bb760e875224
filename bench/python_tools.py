#!/usr/bin/env python3
"""python_tools.py: Task.find against dd, and Task.diff of two forks.

    python3 bench/python_tools.py --build BUILD_DIR [--size-mib 1024] [--reps 5]

Mounts BUILD_DIR's daemon on a fresh directory (as root) and writes SIZE
MiB of random bytes into a task. find: times, alternating their order each
repetition, dd reading those bytes from mem (bs=8M, to /dev/null) and
Task.find of a pattern that does not occur (so every byte is searched).
diff: forks the task twice, writes one page of the second fork, and times
Task.diff of the two forks (which share all but that page). Prints the
stamp of bench/mdreport.py and a markdown table of the medians. Python 3
standard library plus the build's taskfs package.
"""

import argparse
import os
import statistics
import subprocess
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
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, os.path.join(args.build, "python"))
    import taskfs

    size = args.size_mib * MiB
    base = 0x40000000
    daemon = os.path.join(args.build, "fs", "taskfs")
    with FuseMount("taskfs", [daemon], ["-f", "-o", "tasks=none"]) as mount:
        task = taskfs.Task.create(mount.path, "bench")
        task.vm_allocate(size, base)
        chunk = os.urandom(MiB) * 8
        for off in range(0, size, len(chunk)):
            task.vm_write(base + off, chunk[:min(len(chunk), size - off)])
        mem = os.path.join(mount.path, "bench", "mem")
        dd = ["dd", f"if={mem}", "of=/dev/null", "bs=8M", f"skip={base}",
              "iflag=skip_bytes", f"count={size // (8 * MiB)}", "status=none"]
        pattern = b"\xfe\xed\xfa\xce-not-there"
        ways = {
            "dd bs=8M": lambda: subprocess.run(dd, check=True),
            "Task.find": lambda: sum(1 for _ in task.find(pattern)),
        }
        times = {name: [] for name in ways}
        for rep in range(args.reps):
            names = list(ways)
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                start = time.perf_counter()
                ways[name]()
                times[name].append(time.perf_counter() - start)
        a, b = task.fork("bench-a"), task.fork("bench-b")
        b.vm_write(base + size // 2, b"x" * a.page_size)
        diffs, found = [], None
        for _ in range(args.reps):
            start = time.perf_counter()
            found = a.diff(b)
            diffs.append(time.perf_counter() - start)
        assert [tuple(e)[:3] for e in found] == [
            ("!", base + size // 2, base + size // 2 + a.page_size)], found
        for t in (a, b, task):
            t.terminate()
            t.close()
    command = (f"python3 bench/python_tools.py --build BUILD "
               f"--size-mib {args.size_mib} --reps {args.reps}")
    print("\n".join(mdreport.stamp_lines(command)))
    print()
    print(f"| {args.size_mib} MiB | median | throughput | ratio to dd |")
    print("|---|---:|---:|---:|")
    ref = statistics.median(times["dd bs=8M"])
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"| `{name}` | {median * 1e3:.0f} ms | "
              f"{size / median / 1e9:.2f} GB/s | {ref / median:.2f} |")
    median = statistics.median(diffs)
    print(f"| `Task.diff` of two forks differing in one page | "
          f"{median * 1e3:.1f} ms | | |")


if __name__ == "__main__":
    main()
