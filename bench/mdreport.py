#!/usr/bin/env python3
"""mdreport.py: benchmark figures as markdown, stamped with commit and machine.

    python3 bench/mdreport.py stamp COMMAND...
    python3 bench/mdreport.py gbench RESULTS.json COMMAND...

`stamp` prints the stamp every table in docs/performance.md carries: the
commit (`git rev-parse --short HEAD`, `-dirty` when tracked files differ from
it), the machine (CPU model, cores, memory, kernel), the date and load
average, and the command that produced the figures. `gbench` prints that
stamp and then a table of a Google Benchmark JSON file
(`--benchmark_format=json` or `--benchmark_out=FILE`): one row a benchmark,
the medians when it was run with repetitions, its counters in the last
column. bench/perf_compare.py --markdown prints the same stamp through
stamp_lines(). Python 3 standard library only.
"""

import datetime
import json
import os
import platform
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(*args):
    try:
        return subprocess.run(["git", "-C", REPO, *args], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def commit():
    """The short commit of the checkout, with -dirty if tracked files differ."""
    head = _git("rev-parse", "--short", "HEAD")
    if head is None:
        return "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return head + ("-dirty" if dirty else "")


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / (1 << 20):.0f} GiB"
                    break
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} cores, {mem} memory, "
            f"Linux {platform.release()}")


def load_average():
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def stamp_lines(command):
    """The stamp, as markdown lines: commit, machine, date, load, command."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return [
        f"- commit: `{commit()}`",
        f"- machine: {machine()}",
        f"- date: {now:%Y-%m-%d %H:%M} UTC, load average {load_average()} "
        "at the end",
        f"- command: `{command}`",
    ]


STANDARD_KEYS = {
    "name", "family_index", "per_family_instance_index", "run_name",
    "run_type", "repetitions", "repetition_index", "threads", "iterations",
    "real_time", "cpu_time", "time_unit", "aggregate_name", "aggregate_unit",
    "error_occurred", "error_message", "label",
}


def _time(value, unit):
    ns = value * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]
    if ns < 1e3:
        return f"{ns:.1f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.2f} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.3f} ms"
    return f"{ns / 1e9:.2f} s"


def _number(value):
    if abs(value) >= 1e9:
        return f"{value:.3g}"
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _counter(key, value):
    if key.endswith("bytes_per_second"):
        return f"{key} {value / 1e9:,.2f} GB/s"
    if key.endswith("per_second"):
        return f"{key} {value:,.3g}/s"
    return f"{key} {_number(value)}"


def gbench_table(path):
    with open(path) as f:
        data = json.load(f)
    runs = data.get("benchmarks", [])
    medians = [r for r in runs if r.get("aggregate_name") == "median"]
    chosen = medians if medians else \
        [r for r in runs if r.get("run_type", "iteration") == "iteration"]
    lines = ["| benchmark | wall time | CPU time | counters |",
             "|---|---|---|---|"]
    for r in chosen:
        name = r.get("run_name", r["name"])
        if r.get("error_occurred"):
            lines.append(f"| `{name}` | error: {r.get('error_message', '')} "
                         "| | |")
            continue
        counters = ", ".join(
            _counter(k, v) for k, v in r.items()
            if k not in STANDARD_KEYS and isinstance(v, (int, float)))
        lines.append(f"| `{name}` | {_time(r['real_time'], r['time_unit'])} "
                     f"| {_time(r['cpu_time'], r['time_unit'])} "
                     f"| {counters} |")
    note = ("medians of the repetitions" if medians
            else "one run each")
    return lines, note


def main(argv):
    if len(argv) >= 2 and argv[1] == "stamp":
        print("\n".join(stamp_lines(" ".join(argv[2:]))))
        return 0
    if len(argv) >= 3 and argv[1] == "gbench":
        lines, note = gbench_table(argv[2])
        print("\n".join(stamp_lines(" ".join(argv[3:]))))
        print(f"- figures: {note}")
        print()
        print("\n".join(lines))
        return 0
    print(__doc__.strip().splitlines()[2], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
