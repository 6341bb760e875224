"""taskfs-ctl: one Mach call on a taskfs task from the command line.

Run as `taskfs-ctl TASK_DIR COMMAND...` or `python3 -m taskfs TASK_DIR
COMMAND...`; `taskfs-ctl --help` prints the manual below.
"""

import os
import sys

import taskfs

PROG = "taskfs-ctl"

USAGE = f"usage: {PROG} TASK_DIR COMMAND [ARG...]   (see {PROG} --help)"

MANUAL = f"""\
NAME
    {PROG} - run one Mach VM call on a taskfs task

SYNOPSIS
    {PROG} TASK_DIR COMMAND [ARG...]
    {PROG} diff TASK_A TASK_B
    python3 -m taskfs TASK_DIR COMMAND [ARG...]
    {PROG} --help

DESCRIPTION
    TASK_DIR is a task directory of a taskfs mount (MOUNT/NAME). COMMAND is
    one ctl command of taskfs(1), written to the task's ctl file as given,
    or one of read, write, maps, status, errors, pages, find:

    allocate ADDR SIZE              vm_allocate at ADDR (rounded to pages)
    allocate anywhere SIZE          vm_allocate anywhere; prints the address
    deallocate ADDR SIZE            vm_deallocate
    protect ADDR SIZE [max] PROT    vm_protect; PROT as in maps (rw-, r-x, ---)
    inherit ADDR SIZE share|copy|none
                                    vm_inherit
    copy SRC SIZE DST               vm_copy
    copy-from TASK SRC SIZE DST [alloc] [destroy]
                                    vm_map_copy from task TASK (a name)
    fork CHILD                      task_create with inherit_memory
    read ADDR SIZE                  vm_read: the bytes to stdout
    write ADDR                      vm_write of stdin (a page-multiple length)
    restore FILE                    recreate the regions and bytes of the core
                                    file FILE (a task's core, or a Linux
                                    process's by gdb's gcore); prints each
                                    segment skipped as outside the address
                                    space, then "ok"
    maps, status, errors            print the task's file of that name
    pages ADDR SIZE                 the page-state query: one line per run
                                    of pages of equal flags and mappings,
                                    START-END FLAGS MAPPINGS (FLAGS: a
                                    allocated, r resident, s shared, or -)
    find PATTERN                    every address (0x..., one a line) where
    find --u32 VALUE                PATTERN (bytes, \\xNN escapes) or the
    find --u64 VALUE                native-endian number occurs in readable
                                    memory, ascending

    diff TASK_A TASK_B prints how two tasks differ, one line each, sorted by
    address (START-END in 16 hex digits, as in maps):
        < START-END PROT/MAX INHERIT    a maps line only TASK_A has
        > START-END PROT/MAX INHERIT    a maps line only TASK_B has
        ! START-END                     pages whose contents differ
        ? START-END                     pages of different memory that one
                                        of the tasks cannot read
    Nothing is printed for equal tasks. Pages of the same memory and pages
    neither task wrote are not read.

    Numbers are decimal or 0x hex; sizes also take K, M, G (x1024). A ctl
    command prints the result line ctl gives: the address for
    `allocate anywhere`, "ok" for the others. read and write print nothing
    else.

EXIT STATUS
    0 on success (diff: also when the tasks differ). 1 if the call fails, with one line on stderr:
        {PROG}: COMMAND: KERN_NAME: REASON
    where REASON is the line the daemon recorded in the task's errors file
    (or the errno's text when it recorded none). 2 for a usage error, with
    one line on stderr.

EXAMPLES
    {PROG} /mnt/taskfs/demo allocate anywhere 64K
    {PROG} /mnt/taskfs/demo read 0x600000 4K | hexdump -C
    head -c 4096 /dev/zero | {PROG} /mnt/taskfs/demo write 0x600000
    {PROG} /mnt/taskfs/demo protect 0x600000 4K r--
    {PROG} /mnt/taskfs/demo find 'hello\\x00'
    {PROG} diff /mnt/taskfs/demo /mnt/taskfs/child

SEE ALSO
    taskfs(1), the taskfs Python module (python3 -c 'help("taskfs")')
"""

CTL_COMMANDS = ("allocate", "deallocate", "protect", "inherit", "copy",
                "copy-from", "fork")

_SUFFIXES = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class UsageError(Exception):
    pass


def parse_number(text):
    """Decimal or 0x hex, with an optional K/M/G/T suffix (x1024)."""
    scale = 1
    if text and text[-1].upper() in _SUFFIXES:
        scale = _SUFFIXES[text[-1].upper()]
        text = text[:-1]
    try:
        if text.lower().startswith("0x"):
            value = int(text[2:], 16)
        elif text.isdigit():
            value = int(text, 10)
        else:
            raise ValueError(text)
    except ValueError:
        raise UsageError(f"not a number: {text!r}") from None
    return value * scale


def parse_pattern(args):
    """find's pattern: bytes with \\xNN escapes, or --u32/--u64 VALUE."""
    if args and args[0] in ("--u32", "--u64"):
        if len(args) != 2:
            raise UsageError(f"find {args[0]} takes one VALUE")
        bits = 32 if args[0] == "--u32" else 64
        value = parse_number(args[1])
        if value >= 1 << bits:
            raise UsageError(f"{args[1]} does not fit {bits} bits")
        return value.to_bytes(bits // 8, sys.byteorder)
    if len(args) != 1 or not args[0]:
        raise UsageError("find takes PATTERN, --u32 VALUE or --u64 VALUE")
    text, out, i = args[0], bytearray(), 0
    while i < len(text):
        if text.startswith("\\x", i):
            try:
                out.append(int(text[i + 2:i + 4], 16))
            except ValueError:
                raise UsageError(f"bad escape in {text!r}") from None
            if len(text[i + 2:i + 4]) != 2:
                raise UsageError(f"bad escape in {text!r}")
            i += 4
        elif text.startswith("\\\\", i):
            out.append(0x5C)
            i += 2
        else:
            out += text[i].encode()
            i += 1
    return bytes(out)


def _flags_text(flags):
    return "".join(c if flags & bit else "-" for c, bit in
                   (("a", taskfs.PAGE_ALLOCATED), ("r", taskfs.PAGE_RESIDENT),
                    ("s", taskfs.PAGE_SHARED)))


def diff_lines(entries):
    """diff's lines (docs/reference.md §9.3) of Task.diff's entries."""
    lines = []
    for e in entries:
        line = f"{e.kind} {e.start:016x}-{e.end:016x}"
        if e.region is not None:
            line += " " + repr(e.region).split(" ", 1)[1].rstrip(")")
        lines.append(line + "\n")
    return "".join(lines)


def run(task_dir, args, stdin, stdout):
    command = args[0]
    if command == "pages":
        if len(args) != 3:
            raise UsageError("pages takes ADDR SIZE")
        address, size = parse_number(args[1]), parse_number(args[2])
        with taskfs.Task.open(task_dir) as task:
            page = task.page_size
            start = address - address % page
            runs = []
            for i, st in enumerate(task.page_query(address, size)):
                a = start + i * page
                if runs and runs[-1][2:] == [st.flags, st.mappings]:
                    runs[-1][1] = a + page
                else:
                    runs.append([a, a + page, st.flags, st.mappings])
        stdout.write("".join(f"{s:016x}-{e:016x} {_flags_text(f)} {m}\n"
                             for s, e, f, m in runs).encode())
        return
    if command == "find":
        pattern = parse_pattern(args[1:])
        with taskfs.Task.open(task_dir) as task:
            for address in task.find(pattern):
                stdout.write(f"0x{address:x}\n".encode())
        return
    if command in ("maps", "status", "errors"):
        if len(args) != 1:
            raise UsageError(f"{command} takes no arguments")
        with taskfs.Task.open(task_dir):  # KERN_INVALID_TASK if no task
            with open(os.path.join(task_dir, command), "rb") as f:
                stdout.write(f.read())
        return
    if command == "read":
        if len(args) != 3:
            raise UsageError("read takes ADDR SIZE")
        address, size = parse_number(args[1]), parse_number(args[2])
        with taskfs.Task.open(task_dir) as task:
            stdout.write(task.vm_read(address, size))
        return
    if command == "write":
        if len(args) != 2:
            raise UsageError("write takes ADDR (the bytes come from stdin)")
        address = parse_number(args[1])
        data = stdin.read()
        with taskfs.Task.open(task_dir) as task:
            task.vm_write(address, data)
        return
    if command == "restore":
        if len(args) != 2:
            raise UsageError("restore takes FILE")
        with taskfs.Task.open(task_dir) as task:
            for line in task.restore(args[1]):
                stdout.write(f"skipped {line}\n".encode())
        stdout.write(b"ok\n")
        return
    if command in CTL_COMMANDS:
        with taskfs.Task.open(task_dir) as task:
            result = task.ctl(" ".join(args))
        stdout.write((result + "\n").encode())
        return
    raise UsageError(f"unknown command {command!r}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        sys.stdout.write(MANUAL)
        return 0
    if len(argv) < 2:
        print(f"{PROG}: {USAGE}", file=sys.stderr)
        return 2
    task_dir, args = argv[0], argv[1:]
    try:
        if argv[0] == "diff":
            if len(argv) != 3:
                raise UsageError("diff takes TASK_A TASK_B")
            with taskfs.Task.open(argv[1]) as a, taskfs.Task.open(argv[2]) as b:
                sys.stdout.buffer.write(diff_lines(a.diff(b)).encode())
        else:
            run(task_dir, args, sys.stdin.buffer, sys.stdout.buffer)
        sys.stdout.flush()
    except UsageError as e:
        print(f"{PROG}: {e}; {USAGE}", file=sys.stderr)
        return 2
    except taskfs.MachError as e:
        print(f"{PROG}: {' '.join(args)}: {e.name}: {e.reason or e.strerror}",
              file=sys.stderr)
        return 1
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:
        print(f"{PROG}: {' '.join(args)}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
