#!/usr/bin/env python3
"""state_speed.py: saving and restoring -o state=DIR against dd.

    python3 bench/state_speed.py --build BUILD_DIR [--dir /var/tmp]
        [--size-mib 512] [--reps 5]

As root. Makes a fresh directory under --dir (mode 0700) holding the save
and dd's file, so both go to the same disk. Mounts BUILD_DIR's daemon with
-o state= on it, writes SIZE MiB of random bytes into a task and unmounts
(the first save). Then, alternating their order each repetition:

- save: the save as the daemon logs its time (written, fsync'd, renamed,
  the directory fsync'd), and from SIGTERM to the daemon's exit, which adds
  the unmount and freeing the task's memory;
- restore: the daemon's start until its mount appears, which is reading
  the save and building the task;
- dd write: `dd if=/dev/zero of=FILE bs=1M count=SIZE conv=fsync`;
- dd read: `dd if=FILE of=/dev/null bs=1M`;
- dd read into fresh memory: `dd if=FILE of=/dev/shm/... bs=1M`, which
  makes SIZE MiB of new memory resident, written by the kernel;
- dd read into one new buffer: `dd if=FILE of=/dev/null bs=SIZE count=1
  iflag=fullblock`, a process reading the bytes into SIZE MiB of its own
  new memory, as a restore must (on a virtual machine the first write to
  a process's page can cost more than reading it from the disk);
- write into a new task: the same bytes written through a new task's mem
  in 1 MiB pwrites, what filling that memory costs the daemon anyway.

Before each read, the file's pages are dropped from the page cache
(posix_fadvise DONTNEED on that file alone, after its fsync), so that both
reads come from the disk. Prints the stamp of bench/mdreport.py and a markdown
table of medians. Python 3 standard library only.
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mdreport  # noqa: E402
from perf_compare import mounted  # noqa: E402

MiB = 1 << 20
DEADLINE = 300.0


def start(daemon, state, options=""):
    """Starts the daemon on a fresh mountpoint; (process, mountpoint,
    seconds until the mount appeared)."""
    mountpoint = tempfile.mkdtemp(prefix="perf-state-")
    began = time.perf_counter()
    proc = subprocess.Popen(
        [daemon, "-f", "-o", f"state={state}{options}", mountpoint],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    while not mounted(mountpoint):
        if proc.poll() is not None:
            raise SystemExit(f"taskfs exited before mounting: "
                             f"{proc.stderr.read().decode(errors='replace')}")
        if time.perf_counter() - began > DEADLINE:
            proc.kill()
            raise SystemExit("taskfs did not mount in time")
        time.sleep(0.002)
    return proc, mountpoint, time.perf_counter() - began


def stop(proc, mountpoint):
    """SIGTERM until the daemon exits (its save); the seconds it took, and
    the seconds of the save alone as the daemon logs them."""
    began = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=DEADLINE)
    took = time.perf_counter() - began
    os.rmdir(mountpoint)
    log = proc.stderr.read().decode(errors="replace")
    if rc != 0:
        raise SystemExit(f"taskfs exited with {rc}: {log}")
    saved = re.search(r"saved \d+ tasks to .* bytes in (\d+) ms", log)
    return took, int(saved.group(1)) / 1e3


def uncache(path):
    """Drops path's (clean, synced) pages from the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def timed(argv):
    began = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def fill(mountpoint, task, size_mib):
    """Makes task with size_mib MiB of random bytes at 0x10000000."""
    os.mkdir(os.path.join(mountpoint, task))
    with open(os.path.join(mountpoint, task, "ctl"), "w") as f:
        f.write(f"allocate 0x10000000 {size_mib * MiB}\n")
    fd = os.open(os.path.join(mountpoint, task, "mem"), os.O_WRONLY)
    chunk = os.urandom(MiB)
    try:
        for i in range(size_mib):
            os.pwrite(fd, chunk[i % 251:] + chunk[:i % 251],
                      0x10000000 + i * MiB)
    finally:
        os.close(fd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True, help="a Release build dir")
    parser.add_argument("--dir", default="/var/tmp",
                        help="where the save and dd's file go")
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    daemon = os.path.join(args.build, "fs", "taskfs")
    work = tempfile.mkdtemp(prefix="taskfs-state-bench-", dir=args.dir)
    try:
        state = os.path.join(work, "state")
        os.mkdir(state, 0o700)
        os.chmod(state, 0o700)
        dd_file = os.path.join(work, "dd.bin")

        proc, mountpoint, _ = start(daemon, state, ",tasks=none")
        try:
            fill(mountpoint, "bench", args.size_mib)
        finally:
            stop(proc, mountpoint)
        save_bytes = os.stat(os.path.join(state, "tasks.state")).st_size

        times = {"save": [], "SIGTERM to exit": [], "restore": [], "dd write": [], "dd read": [],
                 "dd read into fresh memory": [],
                 "dd read into one new buffer": [],
                 "write into a new task": []}
        shm_file = tempfile.mktemp(prefix="taskfs-state-bench-", dir="/dev/shm")

        save_file = os.path.join(state, "tasks.state")

        def taskfs_round():
            uncache(save_file)
            proc, mountpoint, restore = start(daemon, state)
            times["restore"].append(restore)
            began = time.perf_counter()
            fill(mountpoint, "fresh", args.size_mib)
            times["write into a new task"].append(time.perf_counter() - began)
            os.rmdir(os.path.join(mountpoint, "fresh"))
            took, save = stop(proc, mountpoint)
            times["SIGTERM to exit"].append(took)
            times["save"].append(save)

        def dd_round():
            times["dd write"].append(timed(
                ["dd", "if=/dev/zero", f"of={dd_file}", "bs=1M",
                 f"count={args.size_mib}", "conv=fsync"]))
            uncache(dd_file)
            times["dd read"].append(timed(
                ["dd", f"if={dd_file}", "of=/dev/null", "bs=1M"]))
            uncache(dd_file)
            times["dd read into fresh memory"].append(timed(
                ["dd", f"if={dd_file}", f"of={shm_file}", "bs=1M"]))
            os.unlink(shm_file)
            uncache(dd_file)
            times["dd read into one new buffer"].append(timed(
                ["dd", f"if={dd_file}", "of=/dev/null",
                 f"bs={args.size_mib}M", "count=1", "iflag=fullblock"]))

        for rep in range(args.reps):
            rounds = [taskfs_round, dd_round]
            for run in rounds[rep % 2:] + rounds[:rep % 2]:
                run()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    command = (f"python3 bench/state_speed.py --build BUILD --dir {args.dir} "
               f"--size-mib {args.size_mib} --reps {args.reps}")
    print("\n".join(mdreport.stamp_lines(command)))
    print()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"Save file: {save_bytes:,} bytes for {args.size_mib} MiB written.")
    print()
    print("| measure | median | MiB/s |")
    print("|---|---:|---:|")
    rows = (("save", ""), ("SIGTERM to exit", ""), ("dd write", ""), ("restore", ""), ("dd read", ""),
            ("dd read into fresh memory", ""), ("dd read into one new buffer", ""),
            ("write into a new task", ""))
    for k, _ in rows:
        print(f"| {k} | {med[k] * 1e3:.0f} ms | "
              f"{args.size_mib / med[k]:,.0f} |")
    print()
    print(f"- save speed / dd write speed: {med['dd write'] / med['save']:.2f}")
    print(f"- restore speed / dd read speed: "
          f"{med['dd read'] / med['restore']:.2f}")
    print(f"- restore speed / dd read into fresh memory: "
          f"{med['dd read into fresh memory'] / med['restore']:.2f}")
    print(f"- restore speed / dd read into one new buffer: "
          f"{med['dd read into one new buffer'] / med['restore']:.2f}")
    print(f"- restore speed / write into a new task: "
          f"{med['write into a new task'] / med['restore']:.2f}")


if __name__ == "__main__":
    main()
