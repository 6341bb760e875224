"""Mach's VM calls on the tasks of a taskfs mount (docs/reference.md §9).

    import taskfs
    with taskfs.Task.create("/mnt/taskfs", "scratch") as t:
        addr = t.vm_allocate(64 * 1024)          # anywhere; returns the address
        t.vm_write(addr, b"hello".ljust(4096, b"\\0"))
        assert t.vm_read(addr, 4096).startswith(b"hello")
        try:
            t.vm_read(addr + 1, 4096)
        except taskfs.MachError as e:
            print(e.name, e.errno, e.reason)     # KERN_INVALID_ARGUMENT 22 ...

A Task works through the task directory's files only (pread/pwrite/ioctl on
mem, writes to ctl, mkdir/rmdir), with the calling process's permissions. A
failure raises MachError, an OSError whose errno is docs/reference.md §2's errno, with
.kern_return (Mach's number), .name ("KERN_PROTECTION_FAILURE") and .reason:
the line the daemon recorded for it in the task's errors file (docs/reference.md §7), or
"" when there is none. An argument of the wrong type raises TypeError naming
the call, the argument and the type expected. vm_map_copy's source must be a
Task of the same mount (else KERN_INVALID_TASK). Standard library only;
Python 3.9 or later. A Task is safe to use from several threads: every call
is one system call (or a loop of preads/pwrites at explicit offsets), and
close() from one thread closes the descriptor only once the calls of the
others are done with it.
"""

import array
import collections
import concurrent.futures
import contextlib
import ctypes
import errno as _errno
import fcntl
import operator
import os
import re
import struct
import sys
import threading

from . import _table
from ._table import (  # noqa: F401  (re-exported: Mach's numbers)
    VM_INHERIT_COPY,
    VM_INHERIT_DEFAULT,
    VM_INHERIT_NONE,
    VM_INHERIT_SHARE,
    VM_PROT_ALL,
    VM_PROT_DEFAULT,
    VM_PROT_EXECUTE,
    VM_PROT_NONE,
    VM_PROT_READ,
    VM_PROT_WRITE,
)

__all__ = [
    "Task", "Region", "ErrorRecord", "PageState", "DiffEntry", "MachError",
    "kern_name", "PAGE_ALLOCATED", "PAGE_RESIDENT", "PAGE_SHARED",
    "errno_from_kern", "kern_from_errno", "valid_task_name",
]

# KERN_* constants, from the C header through the generated table.
for _name, _kern, _errno_value in _table.KERN_TABLE:
    globals()[_name] = _kern
    __all__.append(_name)
__all__ += [n for n in dir(_table) if n.startswith(("VM_PROT_", "VM_INHERIT_"))]

_KERN_OF_ERRNO = {e: k for _, k, e in _table.KERN_TABLE}
_ERRNO_OF_KERN = {k: e for _, k, e in _table.KERN_TABLE}
_NAME_OF_KERN = {k: n for n, k, _ in _table.KERN_TABLE}


def kern_from_errno(error):
    """The kern_return_t of an errno by docs/reference.md §2; KERN_FAILURE outside it."""
    return _KERN_OF_ERRNO.get(error, _table_kern("KERN_FAILURE"))


def errno_from_kern(kern):
    """The errno of a kern_return_t by docs/reference.md §2; EIO for an unknown code."""
    return _ERRNO_OF_KERN.get(kern, _errno.EIO)


def kern_name(kern):
    """"KERN_INVALID_ADDRESS" etc.; "KERN_UNKNOWN" for other values."""
    return _NAME_OF_KERN.get(kern, "KERN_UNKNOWN")


def _table_kern(name):
    for n, k, _ in _table.KERN_TABLE:
        if n == name:
            return k
    raise KeyError(name)


def valid_task_name(name):
    """Whether name (a str) is a name the daemon takes for a task (docs/reference.md §4),
    by the rule of <taskfs/task_name.h> (_table.TASK_NAME_RULE in words).
    TypeError if name is not a str."""
    _check_type(name, str, "name", "a str", "valid_task_name")
    return (0 < len(name) <= _table.TASK_NAME_MAX
            and not name.startswith(".")
            and all(c in _table.TASK_NAME_CHARS for c in name)
            and name != _table.TASK_NAME_RESERVED)


def _check_task_name(name, operation):
    """MachError(KERN_INVALID_ARGUMENT) unless valid_task_name(name) (a str):
    checked before anything is made, as libtaskfs does, so that a name can
    neither reach outside the mount ("../x") nor add a ctl line."""
    if not valid_task_name(name):
        raise MachError(_table_kern("KERN_INVALID_ARGUMENT"),
                        f"bad task name '{name[:80]}' "
                        f"({_table.TASK_NAME_RULE})", operation)


def _check_type(value, kind, what, expected, operation):
    """TypeError naming the call, the argument and the type expected, unless
    value is a kind."""
    if not isinstance(value, kind):
        raise TypeError(f"{operation}: {what} must be {expected}, "
                        f"not {type(value).__name__}")


def _int(value, what, operation):
    """value as an int (anything with __index__; not a float or a str), else
    TypeError naming the call and the argument."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{operation}: {what} must be an int, not "
                        f"{type(value).__name__}") from None


def _path(value, what, operation):
    """A str path (or os.PathLike giving one), else TypeError: a Task's paths
    are str."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    _check_type(value, str, what, "a str path", operation)
    return value


class MachError(OSError):
    """A failed Mach call: OSError(errno) with the Mach code and the reason.

    .errno is docs/reference.md §2's errno for the code, .kern_return the code's number,
    .name its name, .reason the REASON the daemon recorded in the task's
    errors file for this failure ("" if none could be found).
    """

    def __init__(self, kern_return, reason="", operation=""):
        error = errno_from_kern(kern_return)
        super().__init__(error, os.strerror(error))
        self.kern_return = kern_return
        self.name = kern_name(kern_return)
        self.reason = reason
        self.operation = operation

    def __str__(self):
        text = f"{self.operation}: {self.name}" if self.operation else self.name
        return f"{text}: {self.reason or self.strerror}"

    def __reduce__(self):
        return (MachError, (self.kern_return, self.reason, self.operation))


_INHERIT_NAMES = {
    _table.VM_INHERIT_SHARE: "share",
    _table.VM_INHERIT_COPY: "copy",
    _table.VM_INHERIT_NONE: "none",
}


def _prot_text(prot):
    """A protection as the maps file writes it: "rw-", "r-x", "---"; the
    number for one with bits beyond VM_PROT_ALL."""
    if prot & ~_table.VM_PROT_ALL:
        return str(prot)
    return "".join(c if prot & bit else "-" for c, bit in
                   (("r", _table.VM_PROT_READ), ("w", _table.VM_PROT_WRITE),
                    ("x", _table.VM_PROT_EXECUTE)))


class Region(collections.namedtuple(
        "Region", "start end protection max_protection inheritance")):
    """vm_region's answer: [start, end), current and maximum protection
    (VM_PROT_* numbers), inheritance (a VM_INHERIT_* number). Its repr is
    the maps file's line: Region(0x100000-0x102000 rw-/rwx copy)."""

    __slots__ = ()

    def __repr__(self):
        inheritance = _INHERIT_NAMES.get(self.inheritance, str(self.inheritance))
        return (f"Region(0x{self.start:x}-0x{self.end:x} "
                f"{_prot_text(self.protection)}/"
                f"{_prot_text(self.max_protection)} {inheritance})")

# The page-state query's flags (docs/reference.md §5.2).
PAGE_ALLOCATED = _table.TASKFS_PAGE_ALLOCATED
PAGE_RESIDENT = _table.TASKFS_PAGE_RESIDENT
PAGE_SHARED = _table.TASKFS_PAGE_SHARED

# One page's state: flags (PAGE_*), how many addresses map its memory, and
# its identity (equal for two resident pages exactly when they are the same
# memory; 0 if not resident).
PageState = collections.namedtuple("PageState", "flags mappings identity")

# One difference of Task.diff (docs/reference.md §9.4): kind "<" (a maps
# line only the first task has), ">" (only the second), "!" (pages whose
# contents differ) or "?" (pages that differ, unreadable in one task);
# [start, end); region, the Region of "<" and ">", else None.
DiffEntry = collections.namedtuple("DiffEntry", "kind start end region")

# One line of a task's errors file (docs/reference.md §7).
ErrorRecord = collections.namedtuple("ErrorRecord", "seq uid operation name reason")


def _parse_errors(text):
    records = []
    for line in text.splitlines():
        # SEQ uid UID OPERATION: KERN_NAME: REASON
        head, sep, rest = line.partition(" uid ")
        if not sep or not head.isdigit():
            continue
        uid_text, _, rest = rest.partition(" ")
        operation, sep, tail = rest.rpartition(": KERN_")
        if not sep or not uid_text.isdigit():
            continue
        name, _, reason = tail.partition(": ")
        records.append(ErrorRecord(int(head), int(uid_text), operation,
                                   "KERN_" + name, reason))
    return records


# _resident_runs' byte per page: 1 for resident flags, else 0.
_RESIDENT_BYTES = bytes(1 if v & _table.TASKFS_PAGE_RESIDENT else 0
                        for v in range(256))
_RESIDENT_RUN = re.compile(b"\x01+")
_FLAGS_BYTE = 0 if sys.byteorder == "little" else 3


def _libc_memmem():
    """glibc's memmem through ctypes, or None where it cannot be had."""
    try:
        memmem = ctypes.CDLL(None, use_errno=False).memmem
    except (OSError, AttributeError):
        return None
    memmem.restype = ctypes.c_void_p
    memmem.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p,
                       ctypes.c_size_t]
    return memmem


_MEMMEM = _libc_memmem()


class _Searcher:
    """Calls (buf, lo, hi) -> the offsets where pattern starts within
    buf[lo:hi], ascending: libc's memmem where there is one (faster than
    bytes.find, and it lets other threads run), else bytes.find."""

    def __init__(self, pattern):
        self.pattern = pattern

    def __call__(self, buf, lo, hi):
        n = len(self.pattern)
        if _MEMMEM is None:
            i = buf.find(self.pattern, lo, hi)
            while i >= 0:
                yield i
                i = buf.find(self.pattern, i + 1, hi)
            return
        c_buf = (ctypes.c_char * len(buf)).from_buffer(buf)
        try:
            base = ctypes.addressof(c_buf)
            i = lo
            while hi - i >= n:
                found = _MEMMEM(base + i, hi - i, self.pattern, n)
                if found is None:
                    return
                i = found - base
                yield i
                i += 1
        finally:
            del c_buf


def _maps_runs(regions):
    """regions with adjacent ones of equal attributes joined: maps's lines."""
    runs = []
    for r in regions:
        if runs and runs[-1].end == r.start and runs[-1][2:] == r[2:]:
            runs[-1] = runs[-1]._replace(end=r.end)
        else:
            runs.append(r)
    return runs


def _dev_text(dev):
    return f"{os.major(dev)}:{os.minor(dev)}"


def _check_empty_transfer(address, size, page, operation):
    """Mach's argument check for a zero-size read or write, which never
    reaches the daemon (a zero-length pread sends no request)."""
    if size < 0 or address < 0 or (size == 0 and address % page != 0):
        raise MachError(_table_kern("KERN_INVALID_ARGUMENT"),
                        f"address 0x{address:x} or size {size} is not a "
                        f"page multiple ({page})", operation)


# --- core files (docs/reference.md §10) ---------------------------------------

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_NHDR = struct.Struct("<III")
_PT_LOAD, _PT_NOTE, _PN_XNUM = 1, 4, 0xFFFF
_PF_X, _PF_W, _PF_R = 1, 2, 4
_TASKFS_NOTE_TYPE = 0x54460001
_NOTE_HEAD = struct.Struct("<IIQQ")
_NOTE_REGION = struct.Struct("<QQII")

CoreSegment = collections.namedtuple(
    "CoreSegment", "index offset address filesz memsz prot max_prot inheritance")


class CoreFormatError(ValueError):
    """A malformed core file: str() says what is wrong and where."""


def _prot_from_flags(flags):
    return ((VM_PROT_READ if flags & _PF_R else 0)
            | (VM_PROT_WRITE if flags & _PF_W else 0)
            | (VM_PROT_EXECUTE if flags & _PF_X else 0))


def parse_core(path):
    """The PT_LOAD segments of the ELF64 core file at path, as CoreSegment
    tuples ascending by address, with the maximum protection and
    inheritance of its TASKFS note, or VM_PROT_ALL and VM_INHERIT_COPY for a
    core without one (a Linux core of gdb's gcore). CoreFormatError names
    what is wrong and where ("FILE: segment 3: ...")."""
    def bad(what):
        return CoreFormatError(f"{path}: {what}")

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size

        def read(offset, length, what):
            if offset + length > size:
                raise bad(f"{what} lies beyond the end of the file "
                          f"({offset + length} > {size} bytes)")
            f.seek(offset)
            return f.read(length)

        if size < _EHDR.size:
            raise bad(f"truncated: {size} bytes, shorter than an ELF header")
        ehdr = _EHDR.unpack(read(0, _EHDR.size, "the ELF header"))
        ident, e_type, _, _, _, phoff, shoff, _, _, phentsize, phnum = ehdr[:11]
        if ident[:4] != b"\x7fELF":
            raise bad("bad magic: not an ELF file")
        if ident[4] != 2 or ident[5] != 1:
            raise bad("not a little-endian ELF64 file")
        if e_type != 4:
            raise bad(f"e_type {e_type} is not ET_CORE (4)")
        if phentsize != _PHDR.size:
            raise bad(f"e_phentsize {phentsize} is not {_PHDR.size}")
        if phnum == _PN_XNUM:
            phnum = _SHDR.unpack(read(shoff, _SHDR.size,
                                      "section header 0"))[7]
        table = read(phoff, phnum * _PHDR.size, "the program headers")
        loads, note = [], None
        for i in range(phnum):
            (p_type, flags, offset, vaddr, _, filesz, memsz,
             _) = _PHDR.unpack_from(table, i * _PHDR.size)
            if p_type == _PT_NOTE:
                notes = read(offset, filesz, f"program header {i} (note)")
                at = 0
                while at + _NHDR.size <= len(notes):
                    namesz, descsz, n_type = _NHDR.unpack_from(notes, at)
                    name_at = at + _NHDR.size
                    desc_at = name_at + ((namesz + 3) & ~3)
                    if notes[name_at:name_at + namesz] == b"TASKFS\0" and \
                            n_type == _TASKFS_NOTE_TYPE:
                        note = notes[desc_at:desc_at + descsz]
                    at = desc_at + ((descsz + 3) & ~3)
            elif p_type == _PT_LOAD:
                where = f"segment {len(loads)}"
                if filesz > memsz:
                    raise bad(f"{where}: p_filesz {filesz:#x} exceeds p_memsz "
                              f"{memsz:#x}")
                if offset + filesz > size:
                    raise bad(f"{where}: bytes [{offset:#x}, "
                              f"{offset + filesz:#x}) lie beyond the end of "
                              f"the file ({size:#x} bytes)")
                if vaddr + memsz > 1 << 64:
                    raise bad(f"{where}: {vaddr:#x}+{memsz:#x} wraps")
                loads.append([len(loads), offset, vaddr, filesz, memsz,
                              _prot_from_flags(flags), VM_PROT_ALL,
                              VM_INHERIT_COPY])
    ordered = sorted((CoreSegment(*load) for load in loads),
                     key=lambda s: s.address)
    for before, after in zip(ordered, ordered[1:]):
        if before.address + before.memsz > after.address:
            raise bad(f"segment {after.index}: {after.address:#x} overlaps "
                      f"segment {before.index} "
                      f"({before.address:#x}-{before.address + before.memsz:#x})")
    if note is not None:
        if len(note) < _NOTE_HEAD.size:
            raise bad("TASKFS note: truncated")
        _, _, _, count = _NOTE_HEAD.unpack_from(note)
        if count != len(loads) or \
                len(note) < _NOTE_HEAD.size + count * _NOTE_REGION.size:
            raise bad(f"TASKFS note: {count} regions for {len(loads)} "
                      "segments")
        for i in range(count):
            start, length, max_prot, inheritance = _NOTE_REGION.unpack_from(
                note, _NOTE_HEAD.size + i * _NOTE_REGION.size)
            if start != loads[i][2] or length != loads[i][4]:
                raise bad(f"segment {i}: the TASKFS note says "
                          f"{start:#x}+{length:#x}")
            loads[i][6], loads[i][7] = max_prot, inheritance
    segments = [CoreSegment(*load) for load in loads]
    return sorted(segments, key=lambda s: s.address)


class Task:
    """An open taskfs task: its directory, and its mem file open read-write
    (or read-only when only that is allowed).

    Use Task.open(task_dir) or Task.create(mountpoint, name); close() or a
    with block releases the descriptor (the task lives on until
    terminate()).
    """

    # The ioctl structs of <taskfs/ioctl.h>, in the formats gen_table
    # derived from the C structs: native byte order ("="), standard sizes,
    # no padding beyond the structs' own.
    _ALLOCATE = struct.Struct(_table.IOCTL_STRUCTS["taskfs_vm_allocate"][0])
    _COPY = struct.Struct(_table.IOCTL_STRUCTS["taskfs_vm_copy"][0])
    _DEALLOCATE = struct.Struct(_table.IOCTL_STRUCTS["taskfs_vm_deallocate"][0])
    _PROTECT = struct.Struct(_table.IOCTL_STRUCTS["taskfs_vm_protect"][0])
    _INHERIT = struct.Struct(_table.IOCTL_STRUCTS["taskfs_vm_inherit"][0])
    _REGION = struct.Struct(_table.IOCTL_STRUCTS["taskfs_vm_region"][0])
    _MAP_COPY = struct.Struct(_table.IOCTL_STRUCTS["taskfs_vm_map_copy"][0])
    _REMAP = struct.Struct(_table.IOCTL_STRUCTS["taskfs_vm_remap"][0])

    def __init__(self, task_dir):
        """Opens task_dir; MachError(KERN_INVALID_TASK) if it is no task."""
        task_dir = _path(task_dir, "task_dir", "open")
        self.path = os.path.normpath(task_dir)
        self.name = os.path.basename(self.path)
        self.mountpoint = os.path.dirname(self.path)
        self._fd = -1
        # Guards _fd, _users and _closing: a call holds the descriptor as a
        # user, so close() from another thread closes it only after the last
        # call using it is done (and new calls fail with KERN_INVALID_TASK).
        self._lock = threading.Lock()
        self._users = 0
        self._closing = False
        mem = os.path.join(self.path, "mem")
        try:
            try:
                self._fd = os.open(mem, os.O_RDWR | os.O_CLOEXEC)
                self.writable = True
            except PermissionError:
                self._fd = os.open(mem, os.O_RDONLY | os.O_CLOEXEC)
                self.writable = False
            mem_stat = os.fstat(self._fd)
            self.page_size = mem_stat.st_blksize
            # The mount: each taskfs mount has a device of its own, and a
            # task id means something only on its mount.
            self._dev = mem_stat.st_dev
            status = self.status()
            self.id = int(status["id"])
            # The mount's flavor (docs/reference.md §3): an XNU mount takes
            # any byte range, so the client checks no alignment there.
            self.flavor = status.get("flavor", "classic")
            self._align = 1 if self.flavor == "xnu" else self.page_size
        except OSError as e:
            self._close_fd()
            raise self._open_error(e, f"open {task_dir}") from None
        except (KeyError, ValueError):
            self._close_fd()
            raise MachError(_table_kern("KERN_INVALID_TASK"),
                            f"{task_dir} has no task status",
                            f"open {task_dir}") from None

    @classmethod
    def open(cls, task_dir):
        """The task at task_dir (MOUNT/NAME)."""
        return cls(task_dir)

    @classmethod
    def create(cls, mountpoint, name):
        """mkdir MOUNTPOINT/NAME (task_create of an empty task) and open it.
        MachError(KERN_INVALID_ARGUMENT) for a name valid_task_name refuses."""
        mountpoint = _path(mountpoint, "mountpoint", "mkdir")
        _check_type(name, str, "name", "a str", "mkdir")
        path = os.path.join(mountpoint, name)
        _check_task_name(name, f"mkdir {path}")
        try:
            os.mkdir(path, 0o700)
        except OSError as e:
            kern = (_table_kern("KERN_INVALID_ARGUMENT")
                    if e.errno in (_errno.ENOENT, _errno.ENOTDIR)
                    else kern_from_errno(e.errno))
            raise MachError(kern, e.strerror, f"mkdir {path}") from None
        return cls(path)

    # --- the descriptor ------------------------------------------------------

    def _close_fd(self):
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def close(self):
        """Closes the descriptor (once no call uses it); the task lives on.
        Idempotent."""
        with self._lock:
            self._closing = True
            if self._users == 0:
                self._close_fd()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"Task({self.path!r})"

    def _acquire(self, operation):
        """The descriptor, held until _release(); KERN_INVALID_TASK once
        closed."""
        with self._lock:
            if self._fd < 0 or self._closing:
                raise MachError(_table_kern("KERN_INVALID_TASK"), "task closed",
                                operation)
            self._users += 1
            return self._fd

    def _release(self):
        with self._lock:
            self._users -= 1
            if self._closing and self._users == 0:
                self._close_fd()

    # --- errors --------------------------------------------------------------

    @staticmethod
    def _open_error(error, operation):
        if error.errno in (_errno.ENOENT, _errno.ENOTDIR):
            return MachError(_table_kern("KERN_INVALID_TASK"),
                             "no such task", operation)
        return MachError(kern_from_errno(error.errno), "", operation)

    def _failure(self, error, fd, operation):
        """MachError for an OSError of a request made on descriptor fd, with
        the reason the daemon recorded for that very request."""
        return MachError(kern_from_errno(error.errno), self._last_reason(fd),
                         operation)

    _LAST_REASON = struct.Struct(_table.IOCTL_STRUCTS["taskfs_last_reason"][0])

    def _last_reason(self, fd):
        """REASON of this thread's last failed request on fd (its errors
        line, asked of the daemon by TASKFS_IOC_LAST_REASON right after the
        failure, so other threads' and processes' failures do not count);
        "" if there is none."""
        buf = bytearray(self._LAST_REASON.size)
        try:
            fcntl.ioctl(fd, _table.TASKFS_IOC_LAST_REASON, buf, True)
        except OSError:
            return ""
        line = self._LAST_REASON.unpack(buf)[1].split(b"\0", 1)[0]
        records = _parse_errors(line.decode("utf-8", "replace"))
        return records[0].reason if records else ""

    # --- files ---------------------------------------------------------------

    def _read_text(self, leaf):
        with open(os.path.join(self.path, leaf), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def status(self):
        """The status file as a dict; numeric values as ints."""
        values = {}
        for line in self._read_text("status").splitlines():
            key, sep, value = line.partition(":")
            if not sep:
                continue
            value = value.strip()
            values[key.strip()] = int(value) if value.isdigit() else value
        return values

    def maps(self):
        """The maps file's text."""
        return self._read_text("maps")

    def errors(self):
        """The errors file (docs/reference.md §7) as a list of ErrorRecord, oldest first."""
        return _parse_errors(self._read_text("errors"))

    def ctl(self, command):
        """Runs one ctl command line (docs/reference.md §6) and returns its result line
        ("ok", or the address for `allocate anywhere`)."""
        _check_type(command, str, "command", "a str", "ctl")
        line = command.rstrip("\n")
        operation = "ctl " + line
        try:
            fd = os.open(os.path.join(self.path, "ctl"), os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            raise self._open_error(e, operation) from None
        try:
            os.write(fd, (line + "\n").encode())
            return os.read(fd, 4096).decode().strip()
        except OSError as e:
            raise self._failure(e, fd, operation) from None
        finally:
            os.close(fd)

    # --- ioctls --------------------------------------------------------------

    @staticmethod
    def _ints(operation, **values):
        """The values as ints, in order; TypeError for one that is not."""
        return [_int(v, what, operation) for what, v in values.items()]

    def _ioctl(self, word, request, packed, changes, mutable=False):
        operation = "ioctl " + word
        fd = self._acquire(operation)
        own = -1
        try:
            if changes and not self.writable:
                try:
                    own = fd = os.open(os.path.join(self.path, "mem"),
                                       os.O_RDWR | os.O_CLOEXEC)
                except OSError as e:
                    raise self._open_error(e, operation) from None
            if mutable:
                buf = bytearray(packed)
                fcntl.ioctl(fd, request, buf, True)
                return bytes(buf)
            fcntl.ioctl(fd, request, packed)
            return None
        except OSError as e:
            if isinstance(e, MachError):
                raise
            raise self._failure(e, fd, operation) from None
        finally:
            if own >= 0:
                os.close(own)
            self._release()

    def vm_allocate(self, size, address=None):
        """Allocates size bytes (rounded to pages) at address, or anywhere if
        address is None; returns the address."""
        size = _int(size, "size", "vm_allocate")
        if address is not None:
            address = _int(address, "address", "vm_allocate")
        flags = _table.TASKFS_VM_ALLOCATE_ANYWHERE if address is None else 0
        out = self._ioctl("vm_allocate", _table.TASKFS_IOC_VM_ALLOCATE,
                          self._ALLOCATE.pack(address or 0, size, flags, 0),
                          True, mutable=True)
        return self._ALLOCATE.unpack(out)[0]

    def vm_deallocate(self, address, size):
        address, size = self._ints("vm_deallocate", address=address, size=size)
        self._ioctl("vm_deallocate", _table.TASKFS_IOC_VM_DEALLOCATE,
                    self._DEALLOCATE.pack(address, size), True)

    def vm_protect(self, address, size, prot, set_maximum=False):
        address, size, prot = self._ints("vm_protect", address=address,
                                         size=size, prot=prot)
        self._ioctl("vm_protect", _table.TASKFS_IOC_VM_PROTECT,
                    self._PROTECT.pack(address, size, 1 if set_maximum else 0,
                                       prot), True)

    def vm_inherit(self, address, size, inheritance):
        address, size, inheritance = self._ints(
            "vm_inherit", address=address, size=size, inheritance=inheritance)
        self._ioctl("vm_inherit", _table.TASKFS_IOC_VM_INHERIT,
                    self._INHERIT.pack(address, size, inheritance, 0), True)

    def vm_copy(self, src, size, dst):
        src, size, dst = self._ints("vm_copy", src=src, size=size, dst=dst)
        self._ioctl("vm_copy", _table.TASKFS_IOC_VM_COPY,
                    self._COPY.pack(src, size, dst), True)

    def vm_region(self, address):
        """The region holding address, else the first above it
        (MachError KERN_NO_SPACE if none)."""
        address = _int(address, "address", "vm_region")
        out = self._ioctl("vm_region", _table.TASKFS_IOC_VM_REGION,
                          self._REGION.pack(address, 0, 0, 0, 0, 0), False,
                          mutable=True)
        start, size, prot, max_prot, inheritance, _ = self._REGION.unpack(out)
        return Region(start, start + size, prot, max_prot, inheritance)

    def regions(self):
        """Every region, ascending, by vm_region from 0."""
        found, address = [], 0
        while True:
            try:
                region = self.vm_region(address)
            except MachError as e:
                if e.kern_return == _table_kern("KERN_NO_SPACE"):
                    return found
                raise
            found.append(region)
            if region.end <= address:
                return found
            address = region.end

    def vm_map_copy(self, src_task, src, size, dst, dst_alloc=False,
                    src_destroy=False):
        """Copies [src, src+size) of src_task (a Task) to dst of this task.

        src_task must be on this task's mount: the ioctl names it by its id,
        which means something only there. A src_task of another mount is
        MachError(KERN_INVALID_TASK), refused before any I/O."""
        operation = "ioctl vm_map_copy"
        _check_type(src_task, Task, "src_task", "a taskfs.Task",
                    "vm_map_copy")
        src, size, dst = self._ints("vm_map_copy", src=src, size=size, dst=dst)
        if src_task._dev != self._dev:
            raise MachError(
                _table_kern("KERN_INVALID_TASK"),
                f"source task is on another mount: {src_task.path} is on "
                f"{src_task.mountpoint} (device {_dev_text(src_task._dev)}), "
                f"this task on {self.mountpoint} "
                f"(device {_dev_text(self._dev)})", operation)
        flags = ((_table.TASKFS_VM_MAP_COPY_DST_ALLOC if dst_alloc else 0)
                 | (_table.TASKFS_VM_MAP_COPY_SRC_DESTROY if src_destroy else 0))
        self._ioctl("vm_map_copy", _table.TASKFS_IOC_VM_MAP_COPY,
                    self._MAP_COPY.pack(src_task.id, src, size, dst, flags, 0),
                    True)

    def remap(self, src_task, src_address, size, address=None, copy=False,
              inheritance=_table.VM_INHERIT_DEFAULT):
        """Maps [src_address, +size) of src_task (a Task of this mount; this
        task too) into this task, as XNU's mach_vm_remap: at address, or
        anywhere if address is None; with copy a copy-on-write copy, else
        the same memory (a write through either mapping is seen through
        both). Returns (address, cur_protection, max_protection): where it
        went and the protections common to every source page."""
        operation = "ioctl vm_remap"
        _check_type(src_task, Task, "src_task", "a taskfs.Task", "remap")
        src_address, size, inheritance = self._ints(
            "remap", src_address=src_address, size=size,
            inheritance=inheritance)
        if address is not None:
            address = _int(address, "address", "remap")
        if src_task._dev != self._dev:
            raise MachError(
                _table_kern("KERN_INVALID_TASK"),
                f"source task is on another mount: {src_task.path} is on "
                f"{src_task.mountpoint} (device {_dev_text(src_task._dev)}), "
                f"this task on {self.mountpoint} "
                f"(device {_dev_text(self._dev)})", operation)
        flags = ((_table.TASKFS_VM_REMAP_ANYWHERE if address is None else 0)
                 | (_table.TASKFS_VM_REMAP_COPY if copy else 0))
        out = self._ioctl("vm_remap", _table.TASKFS_IOC_VM_REMAP,
                          self._REMAP.pack(src_task.id, src_address, size,
                                           address or 0, flags, inheritance,
                                           0, 0),
                          True, mutable=True)
        values = self._REMAP.unpack(out)
        return values[3], values[6], values[7]

    # --- mem I/O -------------------------------------------------------------

    def vm_read(self, address, size):
        """size bytes at address (both page multiples, or any on an XNU
        mount), as bytes.

        A transfer the kernel cuts into several requests is continued after
        a short read, so the call returns everything or raises the failing
        request's error. The bytes are read straight into the object
        returned: no copy beyond the kernel's. A size this process has no
        memory for is KERN_NO_SPACE (KERN_INVALID_ADDRESS if the range runs
        past the address space), never MemoryError."""
        address, size = self._ints("vm_read", address=address, size=size)
        operation = f"pread 0x{address:x} 0x{size:x}"
        _check_empty_transfer(address, size, self._align, operation)
        fd = self._acquire(operation)
        try:
            data = self._pread(fd, size, address, operation)
            if len(data) == size:
                return data
            if not data:
                raise self._past_end(fd, address, operation)
            # A short read: the rest goes into a buffer of the whole.
            buf = bytearray(size)
            with memoryview(buf) as view:
                view[:len(data)] = data
                self._read_into(fd, view, len(data), address, operation)
            return bytes(buf)
        except MemoryError:
            # No room here for the result: a range past the address space
            # (mem's size) is what the daemon would have said; else, as
            # libtaskfs's vm_read when it cannot allocate the data.
            end = os.fstat(fd).st_size
            if size > end or address > end - size:
                raise MachError(_table_kern("KERN_INVALID_ADDRESS"),
                                f"0x{address:x}+0x{size:x} runs past the end "
                                f"of the address space (0x{end:x})",
                                operation) from None
            raise MachError(_table_kern("KERN_NO_SPACE"),
                            f"no memory in this process for 0x{size:x} bytes",
                            operation) from None
        finally:
            self._release()

    def vm_read_overwrite(self, address, buffer):
        """Reads len(buffer) bytes at address into buffer (any writable
        bytes-like object; address and length page multiples, or any on an
        XNU mount), as Mach's
        vm_read_overwrite does; returns the number of bytes read."""
        address = _int(address, "address", "vm_read_overwrite")
        try:
            view = memoryview(buffer)
        except TypeError:
            raise TypeError("vm_read_overwrite: buffer must be a writable "
                            "bytes-like object, not "
                            f"{type(buffer).__name__}") from None
        with view:
            if view.readonly:
                raise TypeError("vm_read_overwrite: buffer must be a writable "
                                "bytes-like object, not a read-only "
                                f"{type(buffer).__name__}")
            with view.cast("B") as out:
                size = out.nbytes
                operation = f"pread 0x{address:x} 0x{size:x}"
                _check_empty_transfer(address, size, self._align,
                                      operation)
                fd = self._acquire(operation)
                try:
                    self._read_into(fd, out, 0, address, operation)
                finally:
                    self._release()
        return size

    def _past_end(self, fd, address, operation):
        """The error of a read that meets the end of the address space."""
        return MachError(_table_kern("KERN_INVALID_ADDRESS"),
                         self._last_reason(fd) or
                         f"0x{address:x} is past the end of the address space",
                         operation)

    @contextlib.contextmanager
    def _read_errors(self, fd, operation):
        """A pread's errors as MachError: the failing request's, or an address
        past any address space."""
        try:
            yield
        except MachError:
            raise
        except OSError as e:
            raise self._failure(e, fd, operation) from None
        except OverflowError:
            raise MachError(_table_kern("KERN_INVALID_ADDRESS"),
                            "address beyond any address space",
                            operation) from None

    def _pread(self, fd, size, address, operation):
        """os.pread, its errors as MachError."""
        with self._read_errors(fd, operation):
            return os.pread(fd, size, address)

    def _read_into(self, fd, view, done, address, operation):
        """Fills view[done:] from address + done on, continuing short reads;
        MachError for a failing request or the end of the address space."""
        size = view.nbytes
        with self._read_errors(fd, operation):
            while done < size:
                n = os.preadv(fd, [view[done:]], address + done)
                if n == 0:
                    raise self._past_end(fd, address + done, operation)
                done += n

    def vm_write(self, address, data):
        """Writes data (any bytes-like object, any alignment, a page-multiple
        length) at address.

        The daemon takes a write in requests of 512 KiB, each atomic: when a
        later request of a larger write fails, the requests before it stay
        written and the failing request's error is raised."""
        address = _int(address, "address", "vm_write")
        try:
            view = memoryview(data)
        except TypeError:
            raise TypeError("vm_write: data must be a bytes-like object, not "
                            f"{type(data).__name__}") from None
        view = view.cast("B")
        operation = f"pwrite 0x{address:x} 0x{len(view):x}"
        _check_empty_transfer(address, len(view), self._align, operation)
        fd = self._acquire(operation)
        own = -1
        done = 0
        try:
            if not self.writable and len(view):
                try:
                    own = fd = os.open(os.path.join(self.path, "mem"),
                                       os.O_RDWR | os.O_CLOEXEC)
                except OSError as e:
                    raise self._open_error(e, operation) from None
            while done < len(view):
                done += os.pwrite(fd, view[done:], address + done)
        except MachError:
            raise
        except OSError as e:
            raise self._failure(e, fd, operation) from None
        except OverflowError:
            raise MachError(_table_kern("KERN_INVALID_ADDRESS"),
                            "address beyond any address space",
                            operation) from None
        finally:
            view.release()
            if own >= 0:
                os.close(own)
            self._release()

    # --- vm_read_list --------------------------------------------------------

    _READ_ENTRY = struct.Struct(_table.IOCTL_STRUCTS["taskfs_vm_read_entry"][0])
    _READ_LIST_HEADER = struct.Struct(_table.READ_LIST_HEADER)

    def read_list(self, ranges):
        """vm_read of each (address, size) of ranges, in one list of results
        in order: bytes for an entry read, a MachError (returned, not
        raised) for one that failed; a failure does not stop the others.
        Each entry is one vm_read by the mount's rules (page multiples, or
        any range on an XNU mount), atomic on its own. The entries go to the
        daemon as many per TASKFS_IOC_VM_READ_LIST as fit 64 entries and
        14 KiB: one round trip when the sizes add up to at most 14 KiB; an
        entry larger than that is read alone, by vm_read. A failed entry's
        reason is the daemon's when it was the last failure of its request
        (every failed entry has its line in errors), else "". Raises only
        for an argument of the wrong type, or if the task is closed."""
        entries = []
        try:
            pairs = iter(ranges)
        except TypeError:
            raise TypeError("read_list: ranges must be an iterable of "
                            "(address, size) pairs, not "
                            f"{type(ranges).__name__}") from None
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError("read_list: each range must be an "
                                "(address, size) pair, not "
                                f"{type(pair).__name__}")
            entries.append(tuple(self._ints("read_list", address=pair[0],
                                            size=pair[1])))
        results = [None] * len(entries)
        limit = _table.TASKFS_READ_LIST_DATA
        i = 0
        while i < len(entries):
            address, size = entries[i]
            if size > limit or not (0 <= address < 1 << 64) or size < 0:
                try:
                    results[i] = self.vm_read(address, size)
                except MachError as e:
                    results[i] = e
                i += 1
                continue
            batch, total = [], 0
            while (i < len(entries) and len(batch) < _table.TASKFS_READ_LIST_MAX
                   and 0 <= entries[i][0] < 1 << 64
                   and 0 <= entries[i][1] <= limit - total):
                batch.append(i)
                total += entries[i][1]
                i += 1
            self._read_batch(entries, batch, results)
        return results

    def _read_batch(self, entries, batch, results):
        """One TASKFS_IOC_VM_READ_LIST of entries[batch], into results."""
        buf = bytearray(_table.READ_LIST_SIZE)
        self._READ_LIST_HEADER.pack_into(buf, 0, len(batch), 0)
        for k, i in enumerate(batch):
            self._READ_ENTRY.pack_into(
                buf, _table.READ_LIST_ENTRIES + k * self._READ_ENTRY.size,
                entries[i][0], entries[i][1], 0, 0)
        operation = f"ioctl vm_read_list count {len(batch)}"
        fd = self._acquire(operation)
        try:
            try:
                fcntl.ioctl(fd, _table.TASKFS_IOC_VM_READ_LIST, buf, True)
            except OSError as e:
                raise self._failure(e, fd, operation) from None
            out = [self._READ_ENTRY.unpack_from(
                buf, _table.READ_LIST_ENTRIES + k * self._READ_ENTRY.size)
                for k in range(len(batch))]
            failed = [k for k, entry in enumerate(out) if entry[2] != 0]
            last_reason = self._last_reason(fd) if failed else ""
        finally:
            self._release()
        offset = _table.READ_LIST_DATA
        for k, (address, size, kr, _) in enumerate(out):
            if kr == 0:
                results[batch[k]] = bytes(buf[offset:offset + size])
            else:
                results[batch[k]] = MachError(
                    kr, last_reason if k == failed[-1] else "",
                    f"vm_read_list entry 0x{address:x} 0x{size:x}")
            offset += size

    # --- page states, find and diff -----------------------------------------

    _PAGE_STATE = struct.Struct(_table.IOCTL_STRUCTS["taskfs_page_state"][0])
    _PAGE_QUERY_HEADER = struct.Struct(_table.PAGE_QUERY_HEADER)

    def _page_states(self, address, count):
        """The raw taskfs_page_state array of count pages (at most
        TASKFS_PAGE_QUERY_MAX) from the page holding address, as bytes."""
        buf = bytearray(_table.PAGE_QUERY_SIZE)
        self._PAGE_QUERY_HEADER.pack_into(buf, 0, address, count)
        out = self._ioctl(f"vm_page_query 0x{address:x} {count}",
                          _table.TASKFS_IOC_VM_PAGE_QUERY, buf, False,
                          mutable=True)
        start = self._PAGE_QUERY_HEADER.size
        return out[start:start + count * self._PAGE_STATE.size]

    def _page_chunks(self, start, end):
        """(address, raw states) for the pages of [start, end) (page
        aligned), TASKFS_PAGE_QUERY_MAX pages at a time."""
        page = self.page_size
        step = _table.TASKFS_PAGE_QUERY_MAX * page
        for address in range(start, end, step):
            count = (min(end, address + step) - address) // page
            yield address, self._page_states(address, count)

    def page_query(self, address, size):
        """The PageState of each page of [address, address+size) rounded out
        to pages, in order; pages no region holds have flags 0."""
        address, size = self._ints("page_query", address=address, size=size)
        page = self.page_size
        start = address - address % page
        end = -(-(address + size) // page) * page
        states = []
        for _, raw in self._page_chunks(start, end):
            states.extend(PageState._make(t)
                          for t in self._PAGE_STATE.iter_unpack(raw))
        return states

    def _resident_runs(self, start, end):
        """[s, e) runs of resident pages within [start, end), ascending."""
        page = self.page_size
        runs = []
        for address, raw in self._page_chunks(start, end):
            # One byte per page: 1 if resident. The flags are below 256: a
            # state's flags byte is its first uint32's low-order byte.
            resident = raw[_FLAGS_BYTE::self._PAGE_STATE.size].translate(
                _RESIDENT_BYTES)
            for m in _RESIDENT_RUN.finditer(resident):
                s, e = address + m.start() * page, address + m.end() * page
                if runs and runs[-1][1] == s:
                    runs[-1][1] = e
                else:
                    runs.append([s, e])
        return runs

    def _readable_spans(self):
        """[start, end) of the readable memory, adjacent regions joined."""
        spans = []
        for region in self.regions():
            if not region.protection & _table.VM_PROT_READ:
                continue
            if spans and spans[-1][1] == region.start:
                spans[-1][1] = region.end
            else:
                spans.append([region.start, region.end])
        return spans

    # find reads and searches this much at a time, on this many threads at
    # once; a thread keeps this many matches of its chunk, the rest of a
    # dense chunk is searched as find's caller takes them.
    _FIND_CHUNK = 1 << 20
    _FIND_THREADS = 4
    _FIND_KEPT = 4096

    def _find_in(self, pool, pattern, start, end, lead, trail):
        """Addresses of pattern in [start, end), with lead zero bytes before
        start and trail after end (never-written memory) searched too.

        The chunks are read and searched on pool's threads, several at once,
        each into a buffer of its own (reads in flight together keep the
        daemon's threads busy, and a chunk is searched while its bytes are
        still in the cache); their matches are yielded here in order. A
        thread finds the matches that lie within its chunk; the ones that
        start in the n-1 bytes before a chunk (the lead's zeros, or the end
        of earlier chunks) and end in it are found here, in those bytes
        joined to the chunk's first ones."""
        n = len(pattern)
        chunk = self._FIND_CHUNK
        search = _Searcher(pattern)
        kept = self._FIND_KEPT

        def read_and_search(buf, address):
            size = min(chunk, end - address)
            with memoryview(buf) as view:
                self.vm_read_overwrite(address, view[:size])
            found, resume = [], None
            matches = search(buf, 0, size)
            try:
                for i in matches:
                    if len(found) == kept:
                        resume = i
                        break
                    found.append(i)
            finally:
                matches.close()
            return size, found, resume

        def joined(carry, head):
            """Offsets, from the end of carry, of the matches that start in
            carry (the bytes before head) and end in head."""
            window = carry + head
            i = window.find(pattern)
            while 0 <= i < len(carry):
                yield i - len(carry)
                i = window.find(pattern, i + 1)

        addresses = range(start, end, chunk)
        threads = min(self._FIND_THREADS, len(addresses))
        free = [bytearray(min(chunk, end - start)) for _ in range(threads + 1)]
        pending = collections.deque()
        submitted = 0
        carry = bytes(lead)  # the (at most n-1) bytes before the chunk
        try:
            for address in addresses:
                while free and submitted < len(addresses):
                    buf = free.pop()
                    pending.append((buf, pool.submit(
                        read_and_search, buf, addresses[submitted])))
                    submitted += 1
                buf, future = pending.popleft()
                size, found, resume = future.result()
                if n > 1:
                    head = bytes(buf[:min(n - 1, size)])
                    tail = bytes(buf[max(0, size - (n - 1)):size])
                    for i in joined(carry, head):
                        yield address + i
                    carry = (carry + tail)[-(n - 1):]
                for i in found:
                    yield address + i
                if resume is not None:
                    for i in search(buf, resume, size):
                        yield address + i
                free.append(buf)
            if n > 1 and trail:
                for i in joined(carry, bytes(trail)):
                    yield end + i
        finally:
            # Reads still in flight finish before their buffers go.
            for _, future in pending:
                future.cancel()
            concurrent.futures.wait([future for _, future in pending])

    def find(self, pattern):
        """Yields, ascending, every address where pattern (bytes) occurs in
        readable memory, matches across pages and adjacent regions
        included; unreadable regions and unallocated addresses are skipped.
        Pages never written are zeros and are read only when a match can
        lie in them. pattern is a bytes-like object (an int or a str is a
        TypeError, not a run of zeros or an encoding)."""
        try:
            with memoryview(pattern) as view:
                pattern = view.tobytes()
        except TypeError:
            raise TypeError("find: pattern must be a bytes-like object, not "
                            f"{type(pattern).__name__}") from None
        n = len(pattern)
        if n == 0:
            raise MachError(_table_kern("KERN_INVALID_ARGUMENT"),
                            "empty pattern", "find")
        zeros = pattern.count(0) == n
        with concurrent.futures.ThreadPoolExecutor(self._FIND_THREADS) as pool:
            for start, end in self._readable_spans():
                if zeros:
                    yield from self._find_in(pool, pattern, start, end, 0, 0)
                    continue
                # Runs of written pages, joined across gaps shorter than the
                # pattern (a match could span them); a match reaching into
                # the zeros around a run needs at most n-1 of them.
                runs = []
                for s, e in self._resident_runs(start, end):
                    if runs and s - runs[-1][1] < n:
                        runs[-1][1] = e
                    else:
                        runs.append([s, e])
                for s, e in runs:
                    lead = min(n - 1, s - start)
                    trail = min(n - 1, end - e)
                    yield from self._find_in(pool, pattern, s, e, lead, trail)

    def diff(self, other):
        """The differences between this task and other (a Task of the same
        mount) as DiffEntry tuples sorted by address: maps lines only one
        has ("<" this, ">" other), then, where both have readable memory,
        maximal runs of pages whose contents differ ("!"), or that hold
        different memory where either cannot be read ("?"). Pages of the
        same memory (equal identity) and pages neither task wrote are not
        read."""
        _check_type(other, Task, "other", "a taskfs.Task", "diff")
        mine, theirs = _maps_runs(self.regions()), _maps_runs(other.regions())
        entries = []
        a_lines, b_lines = set(mine), set(theirs)
        entries += [DiffEntry("<", r.start, r.end, r) for r in mine
                    if r not in b_lines]
        entries += [DiffEntry(">", r.start, r.end, r) for r in theirs
                    if r not in a_lines]
        page = self.page_size
        runs = []  # [kind, start, end] of pages to report or read

        def add(kind, a):
            if runs and runs[-1][0] == kind and runs[-1][2] == a:
                runs[-1][2] = a + page
            else:
                runs.append([kind, a, a + page])

        i = j = 0
        while i < len(mine) and j < len(theirs):
            ra, rb = mine[i], theirs[j]
            start, end = max(ra.start, rb.start), min(ra.end, rb.end)
            if start < end:
                readable = (ra.protection & rb.protection
                            & _table.VM_PROT_READ)
                kind = "read" if readable else "?"
                for (address, x), (_, y) in zip(
                        self._page_chunks(start, end),
                        other._page_chunks(start, end)):
                    # Two pages hold the same bytes if they are the same
                    # memory, or if neither was written (identity 0 both).
                    ids_x = array.array("Q", x)[1::2]
                    ids_y = array.array("Q", y)[1::2]
                    if ids_x == ids_y:
                        continue
                    for k, (p, q) in enumerate(zip(ids_x, ids_y)):
                        if p != q:
                            add(kind, address + k * page)
            if ra.end <= rb.end:
                i += 1
            else:
                j += 1
        chunk = self._FIND_CHUNK
        for kind, start, end in runs:
            if kind == "?":
                entries.append(DiffEntry("?", start, end, None))
                continue
            for address in range(start, end, chunk):
                n = min(chunk, end - address)
                a, b = self.vm_read(address, n), other.vm_read(address, n)
                if a == b:
                    continue
                for k in range(0, n, page):
                    if a[k:k + page] != b[k:k + page]:
                        p = address + k
                        last = entries[-1] if entries else None
                        if last and last.kind == "!" and last.end == p:
                            entries[-1] = last._replace(end=p + page)
                        else:
                            entries.append(DiffEntry("!", p, p + page, None))
        order = {"<": 0, ">": 1, "!": 2, "?": 3}
        entries.sort(key=lambda e: (e.start, order[e.kind]))
        return entries

    def restore(self, path):
        """Recreates the regions, protections and bytes of the core file at
        path (a core of a task, or of a Linux process by gdb's gcore) in
        this task; returns the segments skipped because they lie outside
        the address space, one line each. A malformed core is
        MachError(KERN_INVALID_ARGUMENT) naming what and where; a segment
        where the task has a region is KERN_NO_SPACE naming both. Either way
        nothing changes, and a later failure (the memory limit) undoes what
        was done."""
        path = _path(path, "path", "restore")
        operation = f"restore {path}"
        try:
            segments = parse_core(path)
        except CoreFormatError as e:
            raise MachError(_table_kern("KERN_INVALID_ARGUMENT"), str(e),
                            operation) from None
        except OSError as e:
            raise MachError(kern_from_errno(e.errno), f"{path}: {e.strerror}",
                            operation) from None
        limit = 1 << int(self.status()["address_bits"])
        page = self.page_size
        skipped, wanted = [], []
        for s in segments:
            if s.memsz == 0:
                continue
            if s.address + s.memsz > limit:
                skipped.append(f"segment {s.index}: {s.address:#x}-"
                               f"{s.address + s.memsz:#x} is outside the "
                               "address space")
                continue
            if s.address % page or s.memsz % page:
                raise MachError(
                    _table_kern("KERN_INVALID_ARGUMENT"),
                    f"{path}: segment {s.index}: {s.address:#x}+{s.memsz:#x} "
                    f"is not aligned to the task's {page}-byte pages",
                    operation)
            wanted.append(s)
        for s in wanted:
            for region in self.regions():
                if region.start < s.address + s.memsz and \
                        s.address < region.end:
                    raise MachError(
                        _table_kern("KERN_NO_SPACE"),
                        f"{path}: segment {s.index}: {s.address:#x}-"
                        f"{s.address + s.memsz:#x} overlaps region {region!r}",
                        operation)
        done = []
        try:
            with open(path, "rb") as f:
                for s in wanted:
                    self.vm_allocate(s.memsz, s.address)
                    done.append(s)
                    self._restore_bytes(f, s)
                    self.vm_protect(s.address, s.memsz, s.max_prot, True)
                    self.vm_protect(s.address, s.memsz, s.prot)
                    self.vm_inherit(s.address, s.memsz, s.inheritance)
        except BaseException:
            for s in done:
                try:
                    self.vm_deallocate(s.address, s.memsz)
                except MachError:
                    pass
            raise
        return skipped

    def _restore_bytes(self, f, segment):
        """Writes the segment's bytes from f, skipping its holes and its
        pages of zeros (unwritten pages read as zeros), each run of pages
        with data in one vm_write."""
        page = self.page_size
        zero = bytes(page)
        fd = f.fileno()
        done = 0
        while done < segment.filesz:
            try:
                data_at = os.lseek(fd, segment.offset + done, os.SEEK_DATA)
            except OSError:
                return  # nothing but holes from here
            done = max(done, (data_at - segment.offset) // page * page)
            if done >= segment.filesz:
                return
            n = min(1 << 20, segment.filesz - done)
            chunk = os.pread(fd, n, segment.offset + done)
            chunk += bytes(-len(chunk) % page)  # a foreign core's last page
            run = None  # where the current run of data pages starts
            for at in range(0, len(chunk) + page, page):
                data = at < len(chunk) and chunk[at:at + page] != zero
                if data and run is None:
                    run = at
                elif not data and run is not None:
                    self.vm_write(segment.address + done + run,
                                  memoryview(chunk)[run:at])
                    run = None
            done += n

    # --- tasks ---------------------------------------------------------------

    def fork(self, name):
        """`fork NAME` (task_create with inherit_memory): the child, open.
        MachError(KERN_INVALID_ARGUMENT) for a name valid_task_name refuses."""
        _check_type(name, str, "name", "a str", "fork")
        _check_task_name(name, f"ctl fork {name}")
        self.ctl(f"fork {name}")
        return Task(os.path.join(self.mountpoint, name))

    def terminate(self):
        """rmdir of the task (task_terminate); close() still to be called."""
        operation = f"rmdir {self.path}"
        try:
            if int(self.status()["id"]) != self.id:
                raise FileNotFoundError(_errno.ENOENT, "replaced")
            os.rmdir(self.path)
        except OSError as e:
            raise self._open_error(e, operation) from None
        except (KeyError, ValueError):
            raise MachError(_table_kern("KERN_INVALID_TASK"),
                            "no task status", operation) from None
