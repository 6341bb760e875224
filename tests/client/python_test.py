"""The taskfs Python package and taskfs-ctl through a real mount.

Run by CTest (ClientPython.*) with PYTHONPATH at the build's copy of the
package, TASKFS_DAEMON the daemon built there and TASKFS_CTL its taskfs-ctl:
    python3 -m unittest -v python_test.TaskTest
Each test class mounts a fresh taskfs on a mkdtemp directory, waits for it in
/proc/self/mountinfo with a deadline, and always unmounts and reaps it.

ErrorsFileTest needs the daemon's errors file (docs/reference.md §7).
"""

import array
import ctypes
import errno
import os
import pathlib
import pwd
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import taskfs
import taskfs._table

DAEMON = os.environ.get("TASKFS_DAEMON", "taskfs")
CTL = os.environ.get("TASKFS_CTL", "taskfs-ctl")
PAGE = 4096
A = 0x100000  # where the tests allocate
NOBODY = pwd.getpwnam("nobody").pw_uid
LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def is_mountpoint(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


class Mount:
    """taskfs -f OPTIONS on a fresh directory; always unmounted at close()."""

    def __init__(self, options="tasks=none"):
        self.path = tempfile.mkdtemp(prefix="taskfs-py-")
        os.chmod(self.path, 0o755)
        self.log = tempfile.TemporaryFile()
        test = os.getpid()

        def end_with_the_test():
            # The daemon ends with this process, even one killed before
            # close() ran (SIGKILL, ctest's timeout): SIGTERM, a clean
            # unmount. A test already gone ends the daemon here.
            if (LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0
                    or os.getppid() != test):
                os._exit(126)

        self.daemon = subprocess.Popen([DAEMON, "-f", "-o", options, self.path],
                                       stdin=subprocess.DEVNULL,
                                       stdout=self.log, stderr=self.log,
                                       preexec_fn=end_with_the_test)
        deadline = time.monotonic() + 20
        while not self.mounted():
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"taskfs did not mount: {self.daemon_log()}")
            time.sleep(0.01)

    def mounted(self):
        return is_mountpoint(self.path)

    def daemon_log(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def close(self):
        if self.mounted():
            subprocess.run(["fusermount3", "-u", "-z", self.path], timeout=20)
        try:
            self.daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
        if self.mounted():
            subprocess.run(["umount", "-l", self.path], timeout=20)
        os.rmdir(self.path)

    def __truediv__(self, rel):
        return os.path.join(self.path, rel)


class MountedTest(unittest.TestCase):
    OPTIONS = "tasks=none"

    @classmethod
    def setUpClass(cls):
        cls.mount = Mount(cls.OPTIONS)

    @classmethod
    def tearDownClass(cls):
        cls.mount.close()

    def setUp(self):
        self.task = taskfs.Task.create(self.mount.path, self.id().split(".")[-1])
        self.addCleanup(self._remove, self.task)

    def _remove(self, task):
        try:
            task.terminate()
        except taskfs.MachError:
            pass
        task.close()

    def fill(self, pages, byte=b"p"):
        self.task.vm_allocate(pages * PAGE, A)
        data = bytes((i * 7 + j) % 251 for i in range(pages) for j in range(16))
        data = (data * (pages * PAGE // len(data) + 1))[:pages * PAGE]
        self.task.vm_write(A, data)
        return data

    def assertMachError(self, name, call, *args, **kwargs):
        with self.assertRaises(taskfs.MachError) as cm:
            call(*args, **kwargs)
        e = cm.exception
        self.assertEqual(e.name, name)
        self.assertEqual(e.kern_return, getattr(taskfs, name))
        self.assertEqual(e.errno, REFERENCE_ERRNO[name])
        self.assertIsInstance(e, OSError)
        return e


# docs/reference.md §2, written out independently of include/taskfs/errno_table.h.
REFERENCE_ERRNO = {
    "KERN_SUCCESS": 0,
    "KERN_INVALID_ARGUMENT": errno.EINVAL,
    "KERN_INVALID_ADDRESS": errno.EFAULT,
    "KERN_PROTECTION_FAILURE": errno.EACCES,
    "KERN_NO_SPACE": errno.ENOMEM,
    "KERN_RESOURCE_SHORTAGE": errno.ENOSPC,
    "KERN_INVALID_TASK": errno.ESRCH,
    "KERN_NAME_EXISTS": errno.EEXIST,
    "KERN_FAILURE": errno.EIO,
}
MACH_NUMBERS = {
    "KERN_SUCCESS": 0, "KERN_INVALID_ADDRESS": 1, "KERN_PROTECTION_FAILURE": 2,
    "KERN_NO_SPACE": 3, "KERN_INVALID_ARGUMENT": 4, "KERN_FAILURE": 5,
    "KERN_RESOURCE_SHORTAGE": 6, "KERN_NAME_EXISTS": 13, "KERN_INVALID_TASK": 16,
}


class FixtureTest(unittest.TestCase):
    def test_a_killed_test_leaves_no_mount_and_no_daemon(self):
        """A test killed before close() (ctest's timeout, a SIGKILL by hand)
        leaves neither its mount nor its daemon behind."""
        script = ("import python_test, time\n"
                  "m = python_test.Mount()\n"
                  "print(m.path, m.daemon.pid, flush=True)\n"
                  "time.sleep(600)\n")
        test = subprocess.Popen([sys.executable, "-c", script],
                                cwd=os.path.dirname(os.path.abspath(__file__)),
                                stdout=subprocess.PIPE)
        try:
            fields = test.stdout.readline().split()
        finally:
            test.kill()
            test.wait()
            test.stdout.close()
        self.assertEqual(len(fields), 2, "the killed test did not mount")
        path, daemon = fields[0].decode(), int(fields[1])

        def daemon_gone():
            # No process, or a zombie no one reaps (its parent was the test).
            try:
                with open(f"/proc/{daemon}/stat") as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except FileNotFoundError:
                return True

        deadline = time.monotonic() + 20
        while ((is_mountpoint(path) or not daemon_gone())
               and time.monotonic() < deadline):
            time.sleep(0.01)
        was_mounted, gone = is_mountpoint(path), daemon_gone()
        # Whatever happened, nothing is left behind by this test.
        if not gone:
            os.kill(daemon, signal.SIGKILL)
        if was_mounted:
            subprocess.run(["umount", "-l", path], timeout=20)
        os.rmdir(path)
        self.assertFalse(was_mounted, f"{path} still mounted 20 s after its test died")
        self.assertTrue(gone, f"daemon {daemon} still runs 20 s after its test died")


def run_as_nobody(fn):
    """Runs fn() in a forked child as nobody; returns what it returned (a
    small int) or raises if it died."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            code = fn()
        except BaseException as e:  # report, never fall back into unittest
            os.write(w, repr(e).encode()[:200])
        finally:
            os.write(w, b"\n%d" % code)
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    text, _, code = out.rpartition("\n")
    return int(code), text


class TaskTest(MountedTest):
    def test_constants_have_machs_numbers(self):
        for name, number in MACH_NUMBERS.items():
            self.assertEqual(getattr(taskfs, name), number, name)
        self.assertEqual((taskfs.VM_PROT_NONE, taskfs.VM_PROT_READ,
                          taskfs.VM_PROT_WRITE, taskfs.VM_PROT_EXECUTE,
                          taskfs.VM_PROT_ALL), (0, 1, 2, 4, 7))
        self.assertEqual((taskfs.VM_INHERIT_SHARE, taskfs.VM_INHERIT_COPY,
                          taskfs.VM_INHERIT_NONE), (0, 1, 2))

    def test_table_is_generated_from_the_c_header(self):
        path = taskfs._table.__file__
        with open(path) as f:
            self.assertIn("Generated at build time by python/gen_table.c", f.read())
        # The build's copy, not a source file.
        self.assertNotIn(os.sep + "tests" + os.sep, path)
        self.assertEqual({n: e for n, _, e in taskfs._table.KERN_TABLE}, REFERENCE_ERRNO)
        for name, number in MACH_NUMBERS.items():
            self.assertEqual(taskfs.errno_from_kern(number), REFERENCE_ERRNO[name])
            self.assertEqual(taskfs.kern_from_errno(REFERENCE_ERRNO[name]), number)
            self.assertEqual(taskfs.kern_name(number), name)
        self.assertEqual(taskfs.kern_from_errno(errno.EPERM), taskfs.KERN_FAILURE)
        self.assertEqual(taskfs.kern_name(42), "KERN_UNKNOWN")

    def test_struct_formats_are_the_c_structs(self):
        # gen_table derives each format from the C struct (and checks it
        # statically); here the struct module must read it as the same size
        # the ioctl number encodes (asm-generic: bits 16-29).
        structs = taskfs._table.IOCTL_STRUCTS
        numbers = {
            "taskfs_vm_copy": taskfs._table.TASKFS_IOC_VM_COPY,
            "taskfs_vm_allocate": taskfs._table.TASKFS_IOC_VM_ALLOCATE,
            "taskfs_vm_deallocate": taskfs._table.TASKFS_IOC_VM_DEALLOCATE,
            "taskfs_vm_protect": taskfs._table.TASKFS_IOC_VM_PROTECT,
            "taskfs_vm_inherit": taskfs._table.TASKFS_IOC_VM_INHERIT,
            "taskfs_vm_region": taskfs._table.TASKFS_IOC_VM_REGION,
            "taskfs_vm_map_copy": taskfs._table.TASKFS_IOC_VM_MAP_COPY,
            "taskfs_last_reason": taskfs._table.TASKFS_IOC_LAST_REASON,
            "taskfs_vm_remap": taskfs._table.TASKFS_IOC_VM_REMAP,
        }
        # The page query's array element, and the query: its header and
        # TASKFS_PAGE_QUERY_MAX of them, the size its number encodes.
        element = structs["taskfs_page_state"]
        self.assertEqual(element, ("=IIQ", 16, ("flags", "mappings", "identity")))
        query = (struct.calcsize(taskfs._table.PAGE_QUERY_HEADER)
                 + taskfs._table.TASKFS_PAGE_QUERY_MAX * element[1])
        self.assertEqual(taskfs._table.PAGE_QUERY_SIZE, query)
        self.assertEqual((taskfs._table.TASKFS_IOC_VM_PAGE_QUERY >> 16) & 0x3FFF,
                         query)
        # vm_read_list: its header, TASKFS_READ_LIST_MAX entries and the
        # data area, the size its number encodes.
        entry = structs["taskfs_vm_read_entry"]
        self.assertEqual(entry, ("=QQiI", 24,
                                 ("address", "size", "kern_return", "pad")))
        header = struct.calcsize(taskfs._table.READ_LIST_HEADER)
        self.assertEqual(taskfs._table.READ_LIST_ENTRIES, header)
        self.assertEqual(taskfs._table.READ_LIST_DATA,
                         header + taskfs._table.TASKFS_READ_LIST_MAX * entry[1])
        read_list = (taskfs._table.READ_LIST_DATA
                     + taskfs._table.TASKFS_READ_LIST_DATA)
        self.assertEqual(taskfs._table.READ_LIST_SIZE, read_list)
        self.assertEqual((taskfs._table.TASKFS_IOC_VM_READ_LIST >> 16) & 0x3FFF,
                         read_list)
        structs = {n: v for n, v in structs.items()
                   if n not in ("taskfs_page_state", "taskfs_vm_read_entry")}
        self.assertEqual(set(structs), set(numbers))
        for name, (fmt, size, fields) in structs.items():
            self.assertTrue(fmt.startswith("="), name)
            self.assertEqual(struct.calcsize(fmt), size, name)
            self.assertEqual((numbers[name] >> 16) & 0x3FFF, size, name)
            self.assertEqual(len(fields), len(struct.unpack(fmt, bytes(size))),
                             name)
        self.assertEqual(structs["taskfs_vm_region"][2],
                         ("address", "size", "prot", "max_prot", "inheritance",
                          "pad"))
        self.assertEqual(taskfs.Task._REGION.format,
                         structs["taskfs_vm_region"][0])
        self.assertEqual(taskfs.Task._MAP_COPY.format,
                         structs["taskfs_vm_map_copy"][0])
        self.assertEqual(structs["taskfs_last_reason"][0], "=Q1016s")

    def test_task_name_rule_is_the_daemons(self):
        # valid_task_name is <taskfs/task_name.h>'s rule: the daemon takes
        # exactly the names it takes.
        longest = "n" * taskfs._table.TASK_NAME_MAX
        for name in ["a", longest, longest + "n", ".a", "a.", "-_.x",
                     "host_page_size", "host_page_sizeX", "a b", "a:b",
                     "\u00e9", "x\u00e9", "A9"]:
            path = self.mount / name
            try:
                os.mkdir(path, 0o700)
                taken = True
            except OSError as e:
                # EEXIST: the kernel finds the root's host_page_size first.
                self.assertIn(e.errno, (errno.EINVAL, errno.EEXIST), name)
                taken = False
            self.assertEqual(taskfs.valid_task_name(name), taken, name)
            if taken:
                os.rmdir(path)
        self.assertFalse(taskfs.valid_task_name(""))
        self.assertEqual(taskfs._table.TASK_NAME_RULE,
                         "1 to 64 of A-Z a-z 0-9 . _ -, not starting with "
                         "'.', not host_page_size")
        # Checked before anything is made: nothing outside the mount.
        for name in ("..", "../escape", "a\nb", "host_page_size"):
            e = self.assertMachError("KERN_INVALID_ARGUMENT", taskfs.Task.create,
                                     self.mount.path, name)
            self.assertIn(taskfs._table.TASK_NAME_RULE, e.reason)
            self.assertMachError("KERN_INVALID_ARGUMENT", self.task.fork, name)
        self.assertFalse(os.path.exists(self.mount / "../escape"))

    def test_open_create_close_and_context_manager(self):
        with taskfs.Task.open(self.task.path + "/") as t:
            self.assertEqual(t.name, self.task.name)
            self.assertEqual(t.id, self.task.id)
            self.assertEqual(t.page_size, PAGE)
            self.assertTrue(t.writable)
        e = self.assertMachError("KERN_INVALID_TASK", t.vm_read, A, PAGE)
        self.assertEqual(e.reason, "task closed")
        t.close()  # idempotent
        self.assertMachError("KERN_INVALID_TASK", taskfs.Task.open,
                             self.mount / "nosuch")
        self.assertMachError("KERN_INVALID_TASK", taskfs.Task.open, self.mount.path)
        self.assertMachError("KERN_NAME_EXISTS", taskfs.Task.create,
                             self.mount.path, self.task.name)
        self.assertMachError("KERN_INVALID_ARGUMENT", taskfs.Task.create,
                             self.mount.path, ".hidden")
        self.assertMachError("KERN_INVALID_ARGUMENT", taskfs.Task.create,
                             "/nonexistent/mnt", "x")

    def test_allocate_anywhere_fixed_and_rounding(self):
        self.assertEqual(self.task.vm_allocate(3 * PAGE), 0)
        self.assertEqual(self.task.vm_allocate(2, 0x20fff), 0x20000)
        self.assertEqual(self.task.maps(),
                         "0000000000000000-0000000000003000 rw-/rwx copy\n"
                         "0000000000020000-0000000000021000 rw-/rwx copy\n")
        self.assertMachError("KERN_NO_SPACE", self.task.vm_allocate, PAGE, 0x1000)
        self.assertMachError("KERN_NO_SPACE", self.task.vm_allocate, 1 << 47)
        self.assertMachError("KERN_INVALID_ADDRESS", self.task.vm_allocate,
                             PAGE, 1 << 47)
        self.task.vm_deallocate(0, 0x21000)
        self.assertEqual(self.task.maps(), "")

    def test_write_takes_any_bytes_like_object_at_any_alignment(self):
        self.task.vm_allocate(8 * PAGE, A)
        raw = bytearray(os.urandom(3 * PAGE + 1))
        self.task.vm_write(A, memoryview(raw)[1:])  # not aligned anywhere
        self.assertEqual(self.task.vm_read(A, 3 * PAGE), bytes(raw[1:]))
        self.task.vm_write(A, b"b" * PAGE)
        self.task.vm_write(A + PAGE, bytearray(b"c" * PAGE))
        words = array.array("I", [0x41424344]) * (PAGE // 4)
        self.task.vm_write(A + 2 * PAGE, words)
        got = self.task.vm_read(A, 3 * PAGE)
        self.assertIsInstance(got, bytes)
        self.assertEqual(got, b"b" * PAGE + b"c" * PAGE + words.tobytes())
        self.task.vm_write(A, b"")
        self.assertEqual(self.task.vm_read(A, 0), b"")

    def test_read_overwrite_fills_the_callers_buffer(self):
        pages = (3 << 20) // PAGE  # six requests of 512 KiB
        data = self.fill(pages)
        buf = bytearray(pages * PAGE)
        self.assertEqual(self.task.vm_read_overwrite(A, buf), pages * PAGE)
        self.assertEqual(bytes(buf), data)
        # Into part of a buffer, and into an array of words.
        buf = bytearray(b"x" * (3 * PAGE))
        self.assertEqual(
            self.task.vm_read_overwrite(A + PAGE, memoryview(buf)[PAGE:]),
            2 * PAGE)
        self.assertEqual(bytes(buf), b"x" * PAGE + data[PAGE:3 * PAGE])
        words = array.array("I", [0]) * (PAGE // 4)
        self.assertEqual(self.task.vm_read_overwrite(A, words), PAGE)
        self.assertEqual(words.tobytes(), data[:PAGE])
        self.assertEqual(self.task.vm_read_overwrite(A, bytearray()), 0)
        # Mach's errors, with the buffer's size as the read's.
        self.task.vm_protect(A, PAGE, taskfs.VM_PROT_NONE)
        self.assertMachError("KERN_PROTECTION_FAILURE",
                             self.task.vm_read_overwrite, A, bytearray(PAGE))
        self.assertMachError("KERN_INVALID_ARGUMENT",
                             self.task.vm_read_overwrite, A + PAGE,
                             bytearray(100))
        self.assertMachError("KERN_INVALID_ADDRESS",
                             self.task.vm_read_overwrite, 1 << 47,
                             bytearray(PAGE))
        for bad in (b"read-only", "text", 42):
            with self.assertRaises(TypeError) as raised:
                self.task.vm_read_overwrite(A, bad)
            self.assertIn("vm_read_overwrite: buffer must be a writable "
                          "bytes-like object", str(raised.exception))

    def test_read_and_write_of_several_requests(self):
        pages = (3 << 20) // PAGE  # six requests of 512 KiB
        data = self.fill(pages)
        self.assertEqual(self.task.vm_read(A, pages * PAGE), data)
        self.task.vm_protect(A + (pages - 1) * PAGE, PAGE, taskfs.VM_PROT_READ)
        self.assertMachError("KERN_PROTECTION_FAILURE", self.task.vm_write, A,
                             b"n" * (pages * PAGE))
        # The requests before the failing one stay written.
        after = self.task.vm_read(A, pages * PAGE)
        self.assertEqual(after[:5 << 19], b"n" * (5 << 19))
        self.assertEqual(after[5 << 19:], data[5 << 19:])
        self.task.vm_protect(A + (pages - 1) * PAGE, PAGE, taskfs.VM_PROT_NONE)
        self.assertMachError("KERN_PROTECTION_FAILURE", self.task.vm_read, A,
                             pages * PAGE)

    def test_copy_protect_inherit_region_and_regions(self):
        data = self.fill(4)
        self.task.vm_allocate(4 * PAGE, 0x400000)
        self.task.vm_copy(A, 4 * PAGE, 0x400000)
        self.task.vm_write(A, b"s" * PAGE)
        self.assertEqual(self.task.vm_read(0x400000, 4 * PAGE), data)
        self.task.vm_protect(A, PAGE, taskfs.VM_PROT_READ | taskfs.VM_PROT_EXECUTE)
        self.task.vm_protect(A + PAGE, PAGE, taskfs.VM_PROT_READ, set_maximum=True)
        self.task.vm_inherit(A + 2 * PAGE, PAGE, taskfs.VM_INHERIT_SHARE)
        self.task.vm_inherit(A + 3 * PAGE, PAGE, taskfs.VM_INHERIT_NONE)
        r = self.task.vm_region(A + PAGE + 5)
        self.assertEqual(r, taskfs.Region(A + PAGE, A + 2 * PAGE, taskfs.VM_PROT_READ,
                                          taskfs.VM_PROT_READ, taskfs.VM_INHERIT_COPY))
        self.assertEqual(self.task.vm_region(0).start, A)
        regions = self.task.regions()
        self.assertEqual(len(regions), 5)
        prot = lambda p: "".join(c if p & b else "-" for c, b in zip("rwx", (1, 2, 4)))
        inh = {0: "share", 1: "copy", 2: "none"}
        self.assertEqual(self.task.maps(), "".join(
            f"{r.start:016x}-{r.end:016x} {prot(r.protection)}/"
            f"{prot(r.max_protection)} {inh[r.inheritance]}\n" for r in regions))
        self.assertMachError("KERN_NO_SPACE", self.task.vm_region, 0x400000 + 4 * PAGE)

    def test_region_repr_is_the_maps_line(self):
        self.fill(3)
        self.task.vm_protect(A + PAGE, PAGE, taskfs.VM_PROT_READ, set_maximum=True)
        self.task.vm_protect(A + 2 * PAGE, PAGE, taskfs.VM_PROT_READ | taskfs.VM_PROT_EXECUTE)
        self.task.vm_inherit(A + 2 * PAGE, PAGE, taskfs.VM_INHERIT_SHARE)
        regions = self.task.regions()
        self.assertEqual([repr(r) for r in regions], [
            f"Region(0x{A:x}-0x{A + PAGE:x} rw-/rwx copy)",
            f"Region(0x{A + PAGE:x}-0x{A + 2 * PAGE:x} r--/r-- copy)",
            f"Region(0x{A + 2 * PAGE:x}-0x{A + 3 * PAGE:x} r-x/rwx share)"])
        # The fields stay Mach's numbers.
        self.assertEqual(tuple(regions[2]), (A + 2 * PAGE, A + 3 * PAGE, 5, 7, 0))
        self.assertEqual(regions[1].protection, taskfs.VM_PROT_READ)
        self.assertEqual(repr(taskfs.Region(0, PAGE, 0, 0, taskfs.VM_INHERIT_NONE)),
                         "Region(0x0-0x1000 ---/--- none)")
        self.assertEqual(repr(taskfs.Region(0, PAGE, 9, 7, 5)),
                         "Region(0x0-0x1000 9/rwx 5)")

    def test_map_copy_fork_terminate_and_status(self):
        data = self.fill(2)
        self.task.vm_inherit(A, PAGE, taskfs.VM_INHERIT_SHARE)
        other = taskfs.Task.create(self.mount.path, "other-" + self.task.name)
        self.addCleanup(self._remove, other)
        other.vm_map_copy(self.task, A, 2 * PAGE, 0x800000, dst_alloc=True)
        self.assertEqual(other.vm_read(0x800000, 2 * PAGE), data)
        other.vm_map_copy(self.task, A + PAGE, PAGE, 0x800000, src_destroy=True)
        self.assertEqual(other.vm_read(0x800000, PAGE), data[PAGE:])
        self.assertEqual(len(self.task.regions()), 1)
        child = self.task.fork("child-" + self.task.name)
        self.addCleanup(self._remove, child)
        child.vm_write(A, b"S" * PAGE)
        self.assertEqual(self.task.vm_read(A, PAGE), b"S" * PAGE)  # share
        status = child.status()
        self.assertEqual(status["name"], child.name)
        self.assertIsInstance(status["id"], int)
        self.assertEqual(status["page_size"], PAGE)
        child.terminate()
        self.assertFalse(os.path.exists(child.path))
        self.assertMachError("KERN_INVALID_TASK", child.vm_read, A, PAGE)
        self.assertMachError("KERN_INVALID_TASK", child.terminate)
        self.assertMachError("KERN_INVALID_TASK", other.vm_map_copy, child, A,
                             PAGE, 0x900000, dst_alloc=True)
        # A new task of the same name is not the old one's.
        again = taskfs.Task.create(self.mount.path, child.name)
        self.addCleanup(self._remove, again)
        self.assertMachError("KERN_INVALID_TASK", child.terminate)
        self.assertTrue(os.path.exists(again.path))

    def test_map_copy_from_another_mount_is_invalid_task(self):
        # Two mounts, each with a task of id 1: the ioctl's source id would
        # name the destination's own mount's task 1.
        first = Mount()
        self.addCleanup(first.close)
        second = Mount()
        self.addCleanup(second.close)
        self.assertNotEqual(os.stat(first.path).st_dev, os.stat(second.path).st_dev)
        src = taskfs.Task.create(first.path, "src")
        self.addCleanup(src.close)
        dst = taskfs.Task.create(second.path, "dst")
        self.addCleanup(dst.close)
        self.assertEqual(src.id, dst.id)
        greeting = b"hello from the first mount".ljust(PAGE, b"\0")
        src.vm_allocate(PAGE, A)
        src.vm_write(A, greeting)
        dst.vm_allocate(PAGE, A)
        dst.vm_write(A, b"d" * PAGE)
        maps = dst.maps()
        for call, args, kwargs in (
                (dst.vm_map_copy, (src, A, PAGE, 0x800000), {"dst_alloc": True}),
                (dst.vm_map_copy, (src, A, PAGE, A), {}),
                (src.vm_map_copy, (dst, A, PAGE, 0x800000), {"dst_alloc": True})):
            e = self.assertMachError("KERN_INVALID_TASK", call, *args, **kwargs)
            self.assertIn("source task is on another mount", e.reason)
            self.assertIn(first.path, e.reason)
            self.assertIn(second.path, e.reason)
            self.assertEqual(e.operation, "ioctl vm_map_copy")
        # Refused before any ioctl: nothing changed, nothing recorded.
        self.assertEqual(dst.maps(), maps)
        self.assertEqual(dst.vm_read(A, PAGE), b"d" * PAGE)
        self.assertEqual(src.vm_read(A, PAGE), greeting)
        self.assertEqual([r for r in dst.errors() + src.errors()
                          if r.operation.startswith("ioctl vm_map_copy")], [])
        # On one mount the copy works.
        near = taskfs.Task.create(second.path, "near")
        self.addCleanup(near.close)
        near.vm_allocate(PAGE, A)
        near.vm_write(A, greeting)
        dst.vm_map_copy(near, A, PAGE, 0x800000, dst_alloc=True)
        self.assertEqual(dst.vm_read(0x800000, PAGE), greeting)
        self.assertEqual(dst.vm_read(A, PAGE), b"d" * PAGE)

    def test_wrong_argument_types_are_type_errors(self):
        t = self.task
        t.vm_allocate(2 * PAGE, A)
        maps = t.maps()
        for call, args, message in (
                (t.vm_map_copy, ("nosuch", A, PAGE, A),
                 "vm_map_copy: src_task must be a taskfs.Task, not str"),
                (t.vm_map_copy, (t.id, A, PAGE, A),
                 "vm_map_copy: src_task must be a taskfs.Task, not int"),
                (t.vm_map_copy, (t, "0x100000", PAGE, A),
                 "vm_map_copy: src must be an int, not str"),
                (t.vm_allocate, ("4096",), "vm_allocate: size must be an int, not str"),
                (t.vm_allocate, (PAGE, float(A)),
                 "vm_allocate: address must be an int, not float"),
                (t.vm_deallocate, (A, b"4096"),
                 "vm_deallocate: size must be an int, not bytes"),
                (t.vm_protect, (A, PAGE, "r--"), "vm_protect: prot must be an int, not str"),
                (t.vm_inherit, (A, PAGE, "share"),
                 "vm_inherit: inheritance must be an int, not str"),
                (t.vm_copy, (A, PAGE, None), "vm_copy: dst must be an int, not NoneType"),
                (t.vm_region, ("0",), "vm_region: address must be an int, not str"),
                (t.vm_read, (hex(A), PAGE), "vm_read: address must be an int, not str"),
                (t.vm_write, (A, "x" * PAGE),
                 "vm_write: data must be a bytes-like object, not str"),
                (t.vm_write, (str(A), b"x" * PAGE),
                 "vm_write: address must be an int, not str"),
                (t.ctl, (b"allocate anywhere 4K",), "ctl: command must be a str, not bytes"),
                (t.fork, (b"kid",), "fork: name must be a str, not bytes"),
                (taskfs.Task.create, (self.mount.path, b"x"),
                 "mkdir: name must be a str, not bytes"),
                (taskfs.Task.create, (self.mount.path.encode(), "x"),
                 "mkdir: mountpoint must be a str path, not bytes"),
                (taskfs.Task.open, (t.path.encode(),),
                 "open: task_dir must be a str path, not bytes"),
                (taskfs.valid_task_name, (b"x",),
                 "valid_task_name: name must be a str, not bytes")):
            with self.assertRaises(TypeError, msg=message) as cm:
                call(*args)
            self.assertEqual(str(cm.exception), message)
        self.assertEqual(t.maps(), maps)
        self.assertFalse(os.path.exists(self.mount / "x"))
        self.assertFalse(os.path.exists(self.mount / "kid"))
        # What stands for an int or a path still does.
        with taskfs.Task.open(pathlib.Path(t.path)) as again:
            self.assertEqual(again.id, t.id)
        self.assertEqual(t.vm_region(True).start, A)
        t.vm_write(A, bytearray(b"y" * PAGE))

    def test_remap_shares_and_copies(self):
        self.fill(2)
        t = self.task
        t.vm_protect(A + PAGE, PAGE, taskfs.VM_PROT_READ)
        with taskfs.Task.create(self.mount.path, "remap_u") as u:
            self.addCleanup(self._remove, u)
            address, cur, mx = u.remap(t, A, 2 * PAGE, 0x800000)
            self.assertEqual((address, cur, mx),
                             (0x800000, taskfs.VM_PROT_READ, taskfs.VM_PROT_ALL))
            self.assertEqual(u.vm_read(address, 2 * PAGE), t.vm_read(A, 2 * PAGE))
            u.vm_write(address, b"s" * PAGE)
            self.assertEqual(t.vm_read(A, PAGE), b"s" * PAGE)  # shared
            address, cur, mx = u.remap(t, A, PAGE, copy=True,
                                       inheritance=taskfs.VM_INHERIT_NONE)
            self.assertEqual((address, cur), (0, taskfs.VM_PROT_DEFAULT))
            self.assertEqual(u.vm_region(0).inheritance, taskfs.VM_INHERIT_NONE)
            u.vm_write(0, b"c" * PAGE)
            self.assertEqual(t.vm_read(A, PAGE), b"s" * PAGE)  # copied
            e = self.assertMachError("KERN_NO_SPACE", u.remap, t, A, PAGE,
                                     0x800000)
            self.assertEqual(e.reason, "overlaps region 0x800000-0x801000")
            e = self.assertMachError("KERN_INVALID_ADDRESS", u.remap, t, A,
                                     3 * PAGE, 0x900000)
            self.assertEqual(e.reason, f"page 0x{A + 2 * PAGE:x} is not allocated")
            with self.assertRaises(TypeError):
                u.remap("t", A, PAGE)

    def test_ctl_runs_one_command(self):
        self.assertEqual(self.task.ctl("allocate anywhere 64K"), "0x0")
        self.assertEqual(self.task.ctl("protect 0 4K r--"), "ok")
        self.assertMachError("KERN_INVALID_ARGUMENT", self.task.ctl, "frobnicate")

    def test_error_records_parse_and_reason_selection(self):
        text = ("41 uid 1000 pread 0x610000 0x1000: KERN_PROTECTION_FAILURE: "
                "page 0x610000 is ---/rwx, read needs r\n"
                "42 uid 1000 ctl allocate 0x600000 4K: KERN_NO_SPACE: overlaps "
                "region 0x600000-0x610000\n")
        records = taskfs._parse_errors(text)
        self.assertEqual(records[0], taskfs.ErrorRecord(
            41, 1000, "pread 0x610000 0x1000", "KERN_PROTECTION_FAILURE",
            "page 0x610000 is ---/rwx, read needs r"))
        self.assertEqual(records[1].operation, "ctl allocate 0x600000 4K")
        # The reason is the daemon's for this very call, never a guess from
        # the errors file.
        me = os.geteuid()
        fake = [taskfs.ErrorRecord(2, me, "pread 0x0 0x1000", "KERN_INVALID_ADDRESS", "new")]
        self.task.errors = lambda: fake
        e = self.assertMachError("KERN_INVALID_ADDRESS", self.task.vm_read, 0, PAGE)
        self.assertEqual(e.reason, "page 0x0 is not allocated")
        del self.task.errors

    def test_threads_on_one_task_and_a_racing_close(self):
        import threading
        self.task.vm_allocate(8 * 16 * PAGE, A)
        errors = []

        def worker(task, i):
            mine = A + i * 16 * PAGE
            try:
                for r in range(30):
                    data = bytes([i * 31 + r & 0xff]) * (8 * PAGE)
                    task.vm_write(mine, data)
                    task.vm_copy(mine, 8 * PAGE, mine + 8 * PAGE)
                    if task.vm_read(mine + 8 * PAGE, 8 * PAGE) != data:
                        errors.append(f"thread {i} round {r}: mismatch")
                    task.vm_region(mine)
            except taskfs.MachError as e:
                if e.name != "KERN_INVALID_TASK":
                    errors.append(f"thread {i}: {e}")

        threads = [threading.Thread(target=worker, args=(self.task, i))
                   for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        # A second Task on the same directory, closed while in use: calls
        # either work or fail with KERN_INVALID_TASK, never touch another fd.
        other = taskfs.Task.open(self.task.path)
        threads = [threading.Thread(target=worker, args=(other, i)) for i in range(4)]
        for t in threads:
            t.start()
        other.close()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertMachError("KERN_INVALID_TASK", other.vm_read, A, PAGE)

    def test_mach_error_is_an_oserror_with_the_mach_code(self):
        e = self.assertMachError("KERN_INVALID_ADDRESS", self.task.vm_read, A, PAGE)
        self.assertEqual(e.strerror, os.strerror(errno.EFAULT))
        self.assertTrue(str(e).startswith(f"pread 0x{A:x} 0x1000: KERN_INVALID_ADDRESS"))
        import pickle
        again = pickle.loads(pickle.dumps(e))
        self.assertEqual((again.kern_return, again.errno, again.reason),
                         (e.kern_return, e.errno, e.reason))


    def test_read_list_reads_each_entry_and_goes_on_after_failures(self):
        data = self.fill(4)
        self.task.vm_protect(A + 2 * PAGE, PAGE, taskfs.VM_PROT_WRITE)
        got = self.task.read_list([
            (A, PAGE),                # read
            (A + 0x100000, PAGE),     # not allocated
            (A + 2 * PAGE, PAGE),     # no read permission
            (A + 4, PAGE),            # not a page multiple
            (A + PAGE, 0),            # empty
            (A + 3 * PAGE, PAGE),     # read
        ])
        self.assertEqual(len(got), 6)
        self.assertEqual(got[0], data[:PAGE])
        self.assertEqual(got[5], data[3 * PAGE:])
        self.assertEqual(got[4], b"")
        names = [e.name for e in got[1:4]]
        self.assertEqual(names, ["KERN_INVALID_ADDRESS",
                                 "KERN_PROTECTION_FAILURE",
                                 "KERN_INVALID_ARGUMENT"])
        for e in got[1:4]:
            self.assertIsInstance(e, taskfs.MachError)
            self.assertEqual(e.errno, REFERENCE_ERRNO[e.name])
        # The last failed entry of a request has the daemon's reason.
        self.assertIn("is not a multiple of the page size", got[3].reason)
        # Each failed entry has its line in errors.
        lines = [r.operation for r in self.task.errors()]
        self.assertTrue(any("0x%x 0x1000" % (A + 0x100000) in op
                            for op in lines), lines)
        self.assertTrue(any("0x%x 0x1000" % (A + 2 * PAGE) in op
                            for op in lines), lines)
        self.assertEqual(self.task.read_list([]), [])

    def test_read_list_larger_than_one_request(self):
        data = self.fill(16)
        self.task.vm_protect(A + 15 * PAGE, PAGE, taskfs.VM_PROT_NONE)
        ranges = [(A + (i % 16) * PAGE, PAGE) for i in range(300)]
        ranges[10] = (A, 15 * PAGE)  # more than a request holds: alone
        ranges[11] = (A, 16 * PAGE)  # the same, fails
        got = self.task.read_list(ranges)
        self.assertEqual(len(got), 300)
        for i, (address, size) in enumerate(ranges):
            fails = i == 11 or (i not in (10, 11) and i % 16 == 15)
            if fails:
                self.assertIsInstance(got[i], taskfs.MachError, i)
                self.assertEqual(got[i].name, "KERN_PROTECTION_FAILURE", i)
            else:
                self.assertEqual(got[i], data[address - A:address - A + size],
                                 i)

    def test_read_list_checks_its_argument(self):
        with self.assertRaises(TypeError):
            self.task.read_list([(A, "x")])
        with self.assertRaises(TypeError):
            self.task.read_list([A])
        with self.assertRaises(TypeError) as cm:
            self.task.read_list(None)
        self.assertEqual(str(cm.exception),
                         "read_list: ranges must be an iterable of "
                         "(address, size) pairs, not NoneType")
        for bad in ((A, PAGE, 0), "ab", [(A,)]):
            with self.assertRaises(TypeError) as cm:
                self.task.read_list([bad])
            self.assertIn("read_list: each range must be an (address, size) "
                          "pair", str(cm.exception))
        with self.assertRaises(TypeError) as cm:
            self.task.read_list([(A, 1.0)])
        self.assertEqual(str(cm.exception),
                         "read_list: size must be an int, not float")

    def test_read_list_of_more_than_this_process_holds(self):
        # A range this process has no memory for is a MachError like any
        # other failure, returned by read_list and raised by vm_read, never
        # a MemoryError: past the end of the address space, as the daemon
        # says; inside it, KERN_NO_SPACE, as libtaskfs's vm_read.
        data = self.fill(1)
        end = os.stat(self.task.path + "/mem").st_size
        # Nearly all of a 2^47 address space: more than a process's own
        # (47 bits, whatever the overcommit policy) holds.
        self.assertGreaterEqual(end, 1 << 47)
        huge = (1 << 47) - 2 * A
        got = self.task.read_list([(A, 1 << 62), (A, huge), (A, PAGE)])
        self.assertEqual([e.name for e in got[:2]],
                         ["KERN_INVALID_ADDRESS", "KERN_NO_SPACE"])
        self.assertIn("past the end of the address space", got[0].reason)
        self.assertEqual(got[2], data)
        e = self.assertMachError("KERN_NO_SPACE", self.task.vm_read, A, huge)
        self.assertEqual(e.errno, errno.ENOMEM)
        self.assertMachError("KERN_INVALID_ADDRESS", self.task.vm_read,
                             end - PAGE, 1 << 62)
        r = ctl(self.task.path, "read", hex(A), hex(huge))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b": KERN_NO_SPACE: no memory in this process", r.stderr)
        self.assertNotIn(b"Traceback", r.stderr)


class ErrorsTest(MountedTest):
    """Each code of each call, and each argument rule."""

    OPTIONS = "tasks=none,allow_other"  # another user reaches the task

    def test_read_and_write_codes(self):
        self.fill(2)
        t = self.task
        self.assertMachError("KERN_INVALID_ARGUMENT", t.vm_read, A + 1, PAGE)
        self.assertMachError("KERN_INVALID_ARGUMENT", t.vm_read, A, PAGE + 1)
        self.assertMachError("KERN_INVALID_ARGUMENT", t.vm_read, A + 1, 0)
        self.assertMachError("KERN_INVALID_ARGUMENT", t.vm_write, A + 1, b"x" * PAGE)
        self.assertMachError("KERN_INVALID_ARGUMENT", t.vm_write, A, b"x" * 100)
        self.assertMachError("KERN_INVALID_ARGUMENT", t.vm_write, A + 1, b"")
        self.assertMachError("KERN_INVALID_ADDRESS", t.vm_read, 0x900000, PAGE)
        self.assertMachError("KERN_INVALID_ADDRESS", t.vm_write, 0x900000, b"x" * PAGE)
        self.assertMachError("KERN_INVALID_ADDRESS", t.vm_read, 1 << 47, PAGE)
        self.assertMachError("KERN_INVALID_ADDRESS", t.vm_read, 1 << 63, PAGE)
        self.assertMachError("KERN_INVALID_ADDRESS", t.vm_write, 1 << 47, b"x" * PAGE)
        self.assertMachError("KERN_INVALID_ADDRESS", t.vm_write, 1 << 64, b"x" * PAGE)
        t.vm_protect(A + PAGE, PAGE, taskfs.VM_PROT_NONE)
        self.assertMachError("KERN_PROTECTION_FAILURE", t.vm_read, A, 2 * PAGE)
        self.assertMachError("KERN_PROTECTION_FAILURE", t.vm_write, A, b"x" * 2 * PAGE)
        self.assertEqual(t.vm_read(A, PAGE)[:1], b"\x00")  # unchanged (pattern)

    def test_ioctl_codes(self):
        self.fill(2)
        t = self.task
        self.assertMachError("KERN_INVALID_ARGUMENT", t.vm_copy, A + 1, PAGE, A)
        self.assertMachError("KERN_INVALID_ADDRESS", t.vm_copy, 0x900000, PAGE, A)
        self.assertMachError("KERN_INVALID_ADDRESS", t.vm_copy, A, PAGE, 0x900000)
        self.assertMachError("KERN_INVALID_ARGUMENT", t.vm_protect, A, PAGE, 8)
        self.assertMachError("KERN_INVALID_ADDRESS", t.vm_protect, A, 3 * PAGE, 1)
        t.vm_protect(A, PAGE, taskfs.VM_PROT_READ, set_maximum=True)
        self.assertMachError("KERN_PROTECTION_FAILURE", t.vm_protect, A, PAGE,
                             taskfs.VM_PROT_ALL)
        self.assertMachError("KERN_PROTECTION_FAILURE", t.vm_copy, A + PAGE, PAGE, A)
        self.assertMachError("KERN_INVALID_ARGUMENT", t.vm_inherit, A, PAGE, 5)
        self.assertMachError("KERN_INVALID_ADDRESS", t.vm_inherit, A, 3 * PAGE, 0)
        self.assertMachError("KERN_NO_SPACE", t.vm_allocate, PAGE, A)
        self.assertMachError("KERN_NO_SPACE", t.vm_region, A + 2 * PAGE)
        self.assertMachError("KERN_INVALID_ADDRESS", t.vm_deallocate, 1 << 47, PAGE)
        self.assertMachError("KERN_NO_SPACE", t.vm_map_copy, t, A, PAGE, A,
                             dst_alloc=True)
        self.assertMachError("KERN_NAME_EXISTS", t.fork, t.name)
        self.assertMachError("KERN_INVALID_ARGUMENT", t.fork, "bad name")

    def test_other_users_task_read_only_and_errno_outside_the_table(self):
        self.fill(1)
        os.chmod(self.task.path, 0o755)
        os.chmod(self.task.path + "/mem", 0o644)
        path = self.task.path

        def as_nobody():
            t = taskfs.Task.open(path)
            if t.writable:
                return 1
            if len(t.vm_read(A, PAGE)) != PAGE:
                return 2
            for call, args in ((t.vm_write, (A, b"x" * PAGE)),
                               (t.vm_allocate, (PAGE,)),
                               (t.vm_copy, (A, PAGE, A)),
                               (t.fork, ("theirs",))):
                try:
                    call(*args)
                    return 3
                except taskfs.MachError as e:
                    if e.name != "KERN_PROTECTION_FAILURE":
                        return 4
            try:
                t.terminate()  # EPERM: outside §2's table
                return 5
            except taskfs.MachError as e:
                if e.name != "KERN_FAILURE" or e.errno != errno.EIO:
                    return 6
            return 0

        code, text = run_as_nobody(as_nobody)
        self.assertEqual(code, 0, text)


class XnuFlavorTest(MountedTest):
    """An XNU mount (docs/reference.md §5): any byte range gets through."""

    OPTIONS = "tasks=none,flavor=xnu"

    def test_flavor_is_read_from_status(self):
        self.assertEqual(self.task.flavor, "xnu")
        self.assertEqual(self.task.status()["flavor"], "xnu")

    def test_any_byte_range(self):
        data = self.fill(2)
        self.assertEqual(self.task.vm_read(A + PAGE - 1, 3),
                         data[PAGE - 1:PAGE + 2])
        self.task.vm_write(A + 3, b"xnu")
        self.assertEqual(self.task.vm_read(A, 8), data[:3] + b"xnu" + data[6:8])
        self.assertEqual(self.task.vm_read(A + 1, 0), b"")
        self.task.vm_write(A + 1, b"")
        buf = bytearray(5)
        self.assertEqual(self.task.vm_read_overwrite(A + 2, buf), 5)
        self.assertEqual(bytes(buf), data[2:3] + b"xnu" + data[6:7])
        self.assertMachError("KERN_INVALID_ADDRESS", self.task.vm_read,
                             A + 2 * PAGE - 1, 2)


    def test_read_list_of_byte_ranges(self):
        data = self.fill(2)
        got = self.task.read_list([(A + 5, 100), (A + PAGE - 2, 4),
                                   (A + 2 * PAGE - 2, 4), (A + 3, 0)])
        self.assertEqual(got[0], data[5:105])
        self.assertEqual(got[1], data[PAGE - 2:PAGE + 2])
        self.assertIsInstance(got[2], taskfs.MachError)
        self.assertEqual(got[2].name, "KERN_INVALID_ADDRESS")
        self.assertEqual(got[3], b"")


class LimitsTest(MountedTest):
    OPTIONS = "tasks=none,memory_limit=4M"

    def test_memory_limit_is_resource_shortage(self):
        self.task.vm_allocate(8 << 20, A)
        self.assertMachError("KERN_RESOURCE_SHORTAGE", self.task.vm_write, A,
                             b"r" * (8 << 20))

    def test_read_lists_at_the_limit_hold_nothing(self):
        # A task filled to the limit, read by 8 threads at once with lists
        # of 64 entries (several requests each): every read succeeds, and
        # none stays charged or pinned. Then lists of failing and succeeding entries (each failure
        # a line in errors): every entry's result is right.
        t = self.task
        t.vm_allocate(4 << 20, A)
        pages = 0
        with self.assertRaises(taskfs.MachError) as cm:
            while True:
                t.vm_write(A + pages * PAGE, bytes([pages % 251 + 1]) * PAGE)
                pages += 1
        self.assertEqual(cm.exception.name, "KERN_RESOURCE_SHORTAGE")
        unallocated = A + (4 << 20)

        def expect(address):
            if address >= unallocated:
                return "KERN_INVALID_ADDRESS"
            return bytes([(address - A) // PAGE % 251 + 1]) * PAGE

        def reader(seed, failing):
            for k in range(40):
                ranges = [(A + (seed * 7 + k + j) % pages * PAGE, PAGE)
                          for j in range(64)]
                if failing:
                    ranges[::2] = [(unallocated + j * PAGE, PAGE)
                                   for j in range(32)]
                for cut in (3, 64):
                    got = t.read_list(ranges[:cut])
                    self.assertEqual(len(got), cut)
                    for (address, _), result in zip(ranges, got):
                        if isinstance(result, taskfs.MachError):
                            result = result.name
                        self.assertEqual(result, expect(address))

        def run_readers(failing):
            errors = []

            def run(seed):
                try:
                    reader(seed, failing)
                except BaseException as e:  # reported by the main thread
                    errors.append(e)

            threads = [threading.Thread(target=run, args=(i,))
                       for i in range(8)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            self.assertEqual(errors, [])

        run_readers(failing=False)
        # Freed and written again, the task holds every page it held: the
        # reads left nothing charged or pinned (the log could make room for
        # a few hundred bytes, not for a page).
        t.vm_deallocate(A, 4 << 20)
        t.vm_allocate(4 << 20, A)
        for page in range(pages):
            t.vm_write(A + page * PAGE, bytes([page % 251 + 1]) * PAGE)
        self.assertMachError("KERN_RESOURCE_SHORTAGE", t.vm_write,
                             A + pages * PAGE, b"z" * PAGE)
        run_readers(failing=True)


def ctl(*args, stdin=b"", env_module=False):
    argv = ([sys.executable, "-m", "taskfs"] if env_module else [CTL]) + list(args)
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=60)


class CtlTest(MountedTest):
    def test_ctl_commands_print_their_result(self):
        d = self.task.path
        r = ctl(d, "allocate", "anywhere", "64K")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"0x0\n", b""))
        for command in (["allocate", "0x100000", "8K"],
                        ["protect", "0", "4K", "r--"],
                        ["protect", "0x1000", "4K", "max", "r--"],
                        ["inherit", "0x2000", "4K", "share"],
                        ["copy", "0x100000", "4K", "0x3000"],
                        ["deallocate", "0x101000", "4K"],
                        ["fork", "kid-" + self.task.name]):
            r = ctl(d, *command)
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"ok\n", b""),
                             command)
        other = taskfs.Task.create(self.mount.path, "src-" + self.task.name)
        self.addCleanup(self._remove, other)
        self.addCleanup(self._remove, taskfs.Task.open(self.mount / ("kid-" + self.task.name)))
        other.vm_allocate(PAGE, 0x700000)
        r = ctl(d, "copy-from", other.name, "0x700000", "4K", "0x700000", "alloc")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(ctl(d, "maps").stdout.decode(), self.task.maps())
        self.assertIn(b"name: " + self.task.name.encode(), ctl(d, "status").stdout)

    def test_read_and_write(self):
        d = self.task.path
        self.task.vm_allocate(2 * PAGE, A)
        data = os.urandom(2 * PAGE)
        r = ctl(d, "write", hex(A), stdin=data)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"", b""))
        r = ctl(d, "read", hex(A), "8K")
        self.assertEqual((r.returncode, r.stdout), (0, data))
        r = ctl(d, "read", str(A + PAGE), "4096", env_module=True)
        self.assertEqual((r.returncode, r.stdout), (0, data[PAGE:]))

    def test_failures_print_one_line_and_exit_1(self):
        d = self.task.path
        r = ctl(d, "read", "0x900000", "4K")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, b"")
        self.assertTrue(r.stderr.startswith(
            b"taskfs-ctl: read 0x900000 4K: KERN_INVALID_ADDRESS: "), r.stderr)
        self.assertEqual(r.stderr.count(b"\n"), 1)
        r = ctl(d, "allocate", "0x100000", "lots")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith(
            b"taskfs-ctl: allocate 0x100000 lots: KERN_INVALID_ARGUMENT: "), r.stderr)
        r = ctl(d, "write", "0x0", stdin=b"x" * 100)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b": KERN_INVALID_ARGUMENT: ", r.stderr)
        r = ctl(self.mount / "nosuch", "maps")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith(b"taskfs-ctl: maps: KERN_INVALID_TASK: "))

    def test_usage_is_one_line_and_exit_2(self):
        for args in ([], [self.task.path], [self.task.path, "frobnicate"],
                     [self.task.path, "read", "0x0"], [self.task.path, "read", "x", "4K"],
                     [self.task.path, "maps", "extra"]):
            r = ctl(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(r.stdout, b"")
            self.assertEqual(r.stderr.count(b"\n"), 1, r.stderr)
            self.assertIn(b"usage: taskfs-ctl TASK_DIR COMMAND", r.stderr)

    def test_help_is_a_manual(self):
        for module in (False, True):
            r = ctl("--help", env_module=module)
            self.assertEqual(r.returncode, 0)
            for section in (b"NAME", b"SYNOPSIS", b"DESCRIPTION", b"EXIT STATUS",
                            b"copy-from TASK", b"read ADDR SIZE", b"write ADDR"):
                self.assertIn(section, r.stdout)


class RestoreTest(MountedTest):
    """Task.restore and taskfs-ctl restore (docs/reference.md §10): cores of
    tasks and of a Linux process by gdb's gcore; malformed cores refused
    with what and where, changing nothing."""

    OPTIONS = "tasks=none,address_bits=47"

    def core_of(self, task):
        """A copy of task's core file, in a file removed after the test."""
        fd, path = tempfile.mkstemp(prefix="taskfs-core-")
        os.close(fd)
        self.addCleanup(os.unlink, path)
        subprocess.run(["cp", "--sparse=always", task.path + "/core", path],
                       check=True)
        return path

    def fresh(self, name):
        task = taskfs.Task.create(self.mount.path, name)
        self.addCleanup(self._remove, task)
        return task

    def assert_same(self, a, b):
        self.assertEqual(a.maps(), b.maps())
        for region in a.regions():
            if region.protection & taskfs.VM_PROT_READ:
                size = region.end - region.start
                self.assertEqual(a.vm_read(region.start, size),
                                 b.vm_read(region.start, size),
                                 f"bytes of {region!r}")

    def test_a_tasks_core_restores_equal(self):
        t = self.task
        prots = ["---", "r--", "-w-", "rw-", "--x", "r-x", "-wx", "rwx"]
        for i, prot in enumerate(prots):
            address = A + i * 8 * PAGE
            t.vm_allocate(4 * PAGE, address)
            t.vm_write(address + PAGE, bytes([i + 1]) * (2 * PAGE))
            t.ctl(f"protect {address:#x} {4 * PAGE} {prot}")
        t.ctl(f"protect {A:#x} {4 * PAGE} max r--")
        t.ctl(f"inherit {A + 8 * PAGE:#x} {4 * PAGE} share")
        t.ctl(f"inherit {A + 16 * PAGE:#x} {4 * PAGE} none")
        sparse = 1 << 40
        t.vm_allocate(1 << 30, sparse)
        t.vm_write(sparse + (1 << 29), b"s" * PAGE)
        path = self.core_of(t)
        r = self.fresh("restored")
        self.assertEqual(r.restore(path), [])
        self.assert_same(t, r)
        # The pages of the regions without read are not in the core.
        self.assertEqual(r.status()["resident_bytes"], (4 * 2 + 1) * PAGE)

    def test_the_demos_core_through_taskfs_ctl(self):
        demo = Mount("page_size=4096")
        self.addCleanup(demo.log.close)
        self.addCleanup(demo.close)
        with taskfs.Task.open(demo / "demo") as source:
            path = self.core_of(source)
        r = self.fresh("demo")
        out = subprocess.run([CTL, r.path, "restore", path],
                             capture_output=True, check=True)
        self.assertEqual(out.stdout, b"ok\n")
        with open(demo / "demo/maps") as f:
            self.assertEqual(r.maps(), f.read())
        with open(os.path.join(os.path.dirname(__file__), "..", "..",
                               "examples", "greeting.txt"), "rb") as f:
            greeting = f.read()
        self.assertEqual(r.vm_read(0x600000, PAGE)[:len(greeting)], greeting)

    def test_a_gcore_of_a_linux_process(self):
        work = tempfile.mkdtemp(prefix="taskfs-gcore-")
        self.addCleanup(subprocess.run, ["rm", "-rf", work])
        source = os.path.join(work, "hold.c")
        with open(source, "w") as f:
            f.write(
                "#include <stdio.h>\n#include <string.h>\n"
                "#include <sys/mman.h>\n#include <unistd.h>\n"
                "int main(void) {\n"
                "  char *p = mmap((void *)0x7e0000000000, 1 << 16,\n"
                "                 PROT_READ | PROT_WRITE,\n"
                "                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);\n"
                "  if (p == MAP_FAILED) return 1;\n"
                "  for (int i = 0; i < 1 << 16; ++i) p[i] = (char)(i * 7 + 3);\n"
                "  strcpy(p, \"taskfs gcore marker\");\n"
                "  printf(\"%p\\n\", (void *)p); fflush(stdout);\n"
                "  pause(); return 0;\n}\n")
        binary = os.path.join(work, "hold")
        subprocess.run(["cc", "-O0", "-o", binary, source], check=True)
        proc = subprocess.Popen([binary], stdout=subprocess.PIPE)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        address = int(proc.stdout.readline(), 16)
        core = os.path.join(work, "core")
        subprocess.run(["gdb", "-nx", "-batch", "-p", str(proc.pid), "-ex",
                        f"gcore {core}"], capture_output=True, check=True,
                       timeout=120)
        with open(f"/proc/{proc.pid}/maps") as f:
            vsyscall = "[vsyscall]" in f.read()
        r = self.fresh("gcore")
        skipped = r.restore(core)
        want = bytes((i * 7 + 3) & 0xFF for i in range(1 << 16))
        want = b"taskfs gcore marker\0" + want[20:]
        self.assertEqual(r.vm_read(address, 1 << 16), want)
        region = r.vm_region(address)
        self.assertEqual((region.start, region.max_protection,
                          region.inheritance),
                         (address, taskfs.VM_PROT_ALL, taskfs.VM_INHERIT_COPY))
        self.assertEqual(region.protection,
                         taskfs.VM_PROT_READ | taskfs.VM_PROT_WRITE)
        if vsyscall:
            self.assertEqual(len(skipped), 1, skipped)
            self.assertIn("0xffffffffff600000", skipped[0])

    def malformed(self, path, change):
        """A copy of the core at path, changed by change(bytearray)."""
        with open(path, "rb") as f:
            data = bytearray(f.read())
        change(data)
        fd, bad = tempfile.mkstemp(prefix="taskfs-bad-")
        self.addCleanup(os.unlink, bad)
        os.write(fd, data)
        os.close(fd)
        return bad

    def test_malformed_cores_are_refused_with_what_and_where(self):
        t = self.task
        for i in range(3):
            t.vm_allocate(2 * PAGE, A + i * 4 * PAGE)
            t.vm_write(A + i * 4 * PAGE, b"m" * PAGE)
        path = self.core_of(t)
        phdr = 64 + 56  # program header 1: segment 0

        def set_u64(offset, value):
            return lambda d: d.__setitem__(slice(offset, offset + 8),
                                           struct.pack("<Q", value))
        cases = {
            "truncated": (lambda d: d.__delitem__(slice(40, None)),
                          "shorter than an ELF header"),
            "bad magic": (lambda d: d.__setitem__(0, 0x7e), "bad magic"),
            "overlap": (set_u64(phdr + 56 * 2 + 16, A + PAGE),
                        "segment 2: 0x101000 overlaps segment 0"),
            "beyond the file": (set_u64(phdr + 56 + 8, 1 << 30),
                                "segment 1: bytes [0x40000000"),
        }
        r = self.fresh("target")
        r.vm_allocate(PAGE, 1 << 30)
        before = r.maps()
        for name, (change, message) in cases.items():
            with self.subTest(name):
                bad = self.malformed(path, change)
                with self.assertRaises(taskfs.MachError) as caught:
                    r.restore(bad)
                self.assertEqual(caught.exception.name, "KERN_INVALID_ARGUMENT")
                self.assertIn(f"{bad}: ", caught.exception.reason)
                self.assertIn(message, caught.exception.reason)
                self.assertEqual(r.maps(), before)
        out = subprocess.run([CTL, r.path, "restore",
                              self.malformed(path, cases["bad magic"][0])],
                             capture_output=True)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"KERN_INVALID_ARGUMENT", out.stderr)
        self.assertIn(b"bad magic", out.stderr)

    def test_a_region_in_the_way_is_no_space_and_changes_nothing(self):
        t = self.task
        t.vm_allocate(2 * PAGE, A)
        t.vm_allocate(2 * PAGE, A + 8 * PAGE)
        path = self.core_of(t)
        r = self.fresh("target")
        r.vm_allocate(PAGE, A + 9 * PAGE)
        before = r.maps()
        with self.assertRaises(taskfs.MachError) as caught:
            r.restore(path)
        self.assertEqual(caught.exception.name, "KERN_NO_SPACE")
        self.assertIn("segment 1: 0x108000-0x10a000 overlaps region "
                      "Region(0x109000-0x10a000", caught.exception.reason)
        self.assertEqual(r.maps(), before)

    def test_at_the_memory_limit_what_was_done_is_undone(self):
        small = Mount("tasks=none,memory_limit=16M")
        self.addCleanup(small.log.close)
        self.addCleanup(small.close)
        t = self.task
        for i in range(4):
            t.vm_allocate(8 << 20, A + i * (16 << 20))
            t.vm_write(A + i * (16 << 20), os.urandom(8 << 20))
        path = self.core_of(t)
        r = taskfs.Task.create(small.path, "r")
        self.addCleanup(r.close)
        with self.assertRaises(taskfs.MachError) as caught:
            r.restore(path)
        self.assertEqual(caught.exception.name, "KERN_RESOURCE_SHORTAGE")
        self.assertEqual(r.maps(), "")
        self.assertEqual(r.status()["resident_bytes"], 0)


class ErrorsFileTest(MountedTest):
    """MachError.reason and taskfs-ctl's REASON come from the errors file."""

    def newest(self, word):
        me = os.geteuid()
        records = [r for r in self.task.errors()
                   if r.uid == me and r.operation.startswith(word)]
        self.assertTrue(records, f"no errors line for {word!r}")
        return records[-1]

    def check(self, word, name, call, *args, **kwargs):
        e = self.assertMachError(name, call, *args, **kwargs)
        record = self.newest(word)
        self.assertEqual(record.name, name)
        self.assertNotEqual(e.reason, "")
        self.assertEqual(e.reason, record.reason)
        return e

    def test_the_errors_file_exists(self):
        self.assertTrue(os.path.exists(self.task.path + "/errors"))

    def test_reason_of_each_path(self):
        self.fill(2)
        t = self.task
        t.vm_protect(A + PAGE, PAGE, taskfs.VM_PROT_NONE)
        e = self.check("pread", "KERN_PROTECTION_FAILURE", t.vm_read, A, 2 * PAGE)
        self.assertIn(f"0x{A + PAGE:x}", e.reason)  # the lowest offending page
        e = self.check("pwrite", "KERN_PROTECTION_FAILURE", t.vm_write, A,
                       b"x" * 2 * PAGE)
        self.assertIn(f"0x{A + PAGE:x}", e.reason)
        self.check("pread", "KERN_INVALID_ARGUMENT", t.vm_read, A + 1, PAGE)
        self.check("ioctl vm_copy", "KERN_INVALID_ADDRESS", t.vm_copy, 0x900000, PAGE, A)
        self.check("ioctl vm_allocate", "KERN_NO_SPACE", t.vm_allocate, PAGE, A)
        self.check("ioctl vm_deallocate", "KERN_INVALID_ADDRESS", t.vm_deallocate,
                   1 << 47, PAGE)
        self.check("ioctl vm_protect", "KERN_INVALID_ARGUMENT", t.vm_protect, A, PAGE, 8)
        self.check("ioctl vm_inherit", "KERN_INVALID_ADDRESS", t.vm_inherit, A,
                   3 * PAGE, 0)
        self.check("ioctl vm_region", "KERN_NO_SPACE", t.vm_region, A + 2 * PAGE)
        self.check("ioctl vm_map_copy", "KERN_NO_SPACE", t.vm_map_copy, t, A, PAGE,
                   A, dst_alloc=True)
        self.check("ctl allocate 0x100000 4K", "KERN_NO_SPACE", t.ctl,
                   "allocate 0x100000 4K")

    def test_concurrent_failures_each_get_their_own_reason(self):
        """Threads of several processes fail on one task at once, each at
        addresses of its own: each MachError.reason names its own."""
        import threading
        threads, processes, rounds = 4, 3, 30
        t = self.task
        t.vm_allocate(threads * (processes + 1) * PAGE, A)
        t.vm_protect(A, threads * (processes + 1) * PAGE, taskfs.VM_PROT_READ)
        holes = 0x40000000

        def worker(task, index, bad):
            for r in range(rounds):
                hole = holes + (index * rounds + r) * PAGE
                try:
                    task.vm_read(hole, PAGE)
                    bad.append("read of a hole succeeded")
                except taskfs.MachError as e:
                    if e.reason != f"page 0x{hole:x} is not allocated":
                        bad.append(e.reason)
                page = A + index * PAGE
                try:
                    task.vm_write(page, b"w" * PAGE)
                    bad.append("write of a read-only page succeeded")
                except taskfs.MachError as e:
                    if e.reason != f"page 0x{page:x} is r--/rwx, write needs w":
                        bad.append(e.reason)
                try:
                    task.ctl(f"protect 0x{hole:x} 4K r--")
                    bad.append("protect of a hole succeeded")
                except taskfs.MachError as e:
                    if f"0x{hole:x}" not in e.reason:
                        bad.append(e.reason)

        def run(task, first):
            bad = []
            ts = [threading.Thread(target=worker, args=(task, first + i, bad))
                  for i in range(threads)]
            for th in ts:
                th.start()
            for th in ts:
                th.join()
            return bad

        pids = []
        for p in range(1, processes + 1):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    with taskfs.Task.open(t.path) as mine:
                        code = 0 if not run(mine, p * threads) else 3
                finally:
                    os._exit(code)
            pids.append(pid)
        bad = run(t, 0)
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        self.assertEqual(bad, [])

    def test_taskfs_ctl_prints_the_reason(self):
        self.fill(1)
        r = ctl(self.task.path, "allocate", "0x100000", "4K")
        self.assertEqual(r.returncode, 1)
        record = self.newest("ctl allocate 0x100000 4K")
        self.assertEqual(r.stderr.decode(),
                         f"taskfs-ctl: allocate 0x100000 4K: KERN_NO_SPACE: "
                         f"{record.reason}\n")

    def test_errors_lists_failures_in_order(self):
        for i in range(3):
            with self.assertRaises(taskfs.MachError):
                self.task.vm_read(0x900000 + i * PAGE, PAGE)
        records = self.task.errors()
        self.assertGreaterEqual(len(records), 3)
        seqs = [r.seq for r in records]
        self.assertEqual(seqs, sorted(seqs))
        self.assertTrue(records[-1].operation.startswith("pread"))


# --- page states, find and diff (docs/reference.md §9) ----------------------

def reference_find(task, pattern):
    """Every address of pattern in task's readable memory, by plain reads of
    each run of adjacent readable regions."""
    spans = []
    for r in task.regions():
        if not r.protection & taskfs.VM_PROT_READ:
            continue
        if spans and spans[-1][1] == r.start:
            spans[-1][1] = r.end
        else:
            spans.append([r.start, r.end])
    found = []
    for start, end in spans:
        data = task.vm_read(start, end - start)
        i = data.find(pattern)
        while i >= 0:
            found.append(start + i)
            i = data.find(pattern, i + 1)
    return found


def reference_diff(a, b):
    """Task.diff's entries by plain reads: maps lines of one task only, then
    runs of differing pages where both can read."""
    ra, rb = a.maps().splitlines(), b.maps().splitlines()

    def parse(line):
        span, attrs = line.split(" ", 1)
        s, e = (int(x, 16) for x in span.split("-"))
        return s, e, attrs

    entries = [("<",) + parse(x) for x in ra if x not in set(rb)]
    entries += [(">",) + parse(x) for x in rb if x not in set(ra)]
    readable_b = {}
    for s, e, attrs in map(parse, rb):
        for p in range(s, e, PAGE):
            readable_b[p] = attrs[0] == "r"
    for s, e, attrs in map(parse, ra):
        for p in range(s, e, PAGE):
            if attrs[0] != "r" or not readable_b.get(p):
                continue
            if a.vm_read(p, PAGE) != b.vm_read(p, PAGE):
                last = entries[-1] if entries else None
                if last and last[0] == "!" and last[2] == p:
                    entries[-1] = ("!", last[1], p + PAGE, None)
                else:
                    entries.append(("!", p, p + PAGE, None))
    order = {"<": 0, ">": 1, "!": 2}
    return sorted(entries, key=lambda x: (x[1], order[x[0]]))


class ToolsTest(MountedTest):
    OPTIONS = "tasks=none,address_bits=32"

    def random_task(self, rng, task):
        """A few regions of random protections, some of their pages written
        with bytes from a small alphabet (so patterns recur), some left
        never written; adjacent regions included."""
        address = A
        for _ in range(rng.randint(2, 5)):
            pages = rng.randint(1, 12)
            task.vm_allocate(pages * PAGE, address)
            for p in range(pages):
                if rng.random() < 0.6:
                    data = bytes(rng.choice(b"ab\0") for _ in range(PAGE))
                    task.vm_write(address + p * PAGE, data)
            prot = rng.choice([taskfs.VM_PROT_DEFAULT, taskfs.VM_PROT_READ,
                               taskfs.VM_PROT_NONE, taskfs.VM_PROT_DEFAULT])
            task.vm_protect(address, pages * PAGE, prot)
            address += pages * PAGE + rng.choice([0, 0, PAGE, 3 * PAGE])

    def new_random_task(self, rng, name):
        """A new task name, made by random_task and removed at the end."""
        task = taskfs.Task.create(self.mount.path, name)
        self.addCleanup(self._remove, task)
        self.random_task(rng, task)
        return task

    def test_page_query_flags_mappings_identity(self):
        t = self.task
        t.vm_allocate(1200 * PAGE, A)  # more than one ioctl's worth
        t.vm_write(A + PAGE, b"x" * PAGE)
        t.vm_write(A + 1100 * PAGE, b"y" * PAGE)
        states = t.page_query(A - PAGE, 1202 * PAGE + 1)
        self.assertEqual(len(states), 1203)
        self.assertEqual(states[0], taskfs.PageState(0, 0, 0))  # unallocated
        self.assertEqual(states[1], (taskfs.PAGE_ALLOCATED, 0, 0))  # zeros
        self.assertEqual(states[2].flags,
                         taskfs.PAGE_ALLOCATED | taskfs.PAGE_RESIDENT)
        self.assertEqual(states[2].mappings, 1)
        self.assertNotEqual(states[2].identity, 0)
        self.assertEqual(states[1101].flags, states[2].flags)
        self.assertNotEqual(states[1101].identity, states[2].identity)
        self.assertEqual(states[1202], (0, 0, 0))
        # A fork shares the page: same identity, two mappings, shared.
        child = t.fork("pq-child")
        self.addCleanup(self._remove, child)
        mine, theirs = t.page_query(A + PAGE, 1), child.page_query(A + PAGE, 1)
        self.assertEqual(mine, theirs)
        self.assertEqual(mine[0].flags, taskfs.PAGE_ALLOCATED
                         | taskfs.PAGE_RESIDENT | taskfs.PAGE_SHARED)
        self.assertEqual(mine[0].mappings, 2)
        self.assertEqual(t.page_query(A, 0), [])
        self.assertMachError("KERN_INVALID_ADDRESS", t.page_query,
                             (1 << 32) - PAGE, 2 * PAGE)

    def test_ctl_pages_prints_runs_of_equal_state(self):
        t = self.task
        t.vm_allocate(8 * PAGE, A)
        t.vm_write(A + 2 * PAGE, b"z" * 2 * PAGE)
        r = ctl(t.path, "pages", hex(A - PAGE), "40K")
        self.assertEqual((r.returncode, r.stderr), (0, b""))
        self.assertEqual(r.stdout.decode(),
                         f"{A - PAGE:016x}-{A:016x} --- 0\n"
                         f"{A:016x}-{A + 2 * PAGE:016x} a-- 0\n"
                         f"{A + 2 * PAGE:016x}-{A + 4 * PAGE:016x} ar- 1\n"
                         f"{A + 4 * PAGE:016x}-{A + 8 * PAGE:016x} a-- 0\n"
                         f"{A + 8 * PAGE:016x}-{A + 9 * PAGE:016x} --- 0\n")

    def test_find_matches_plain_reads(self):
        import random
        for seed in range(6):
            rng = random.Random(seed)
            t = self.new_random_task(rng, f"find-{seed}")
            for pattern in (b"ab", b"ba\0a", b"a" * 9, b"\0", b"\0" * 5,
                            b"b\0\0", bytes(PAGE + 3),
                            b"\0" * 3 + b"ab", b"zz"):
                self.assertEqual(list(t.find(pattern)),
                                 reference_find(t, pattern), (seed, pattern))

    def small_find_chunks(self, task, threads, kept):
        """find in one-page chunks on threads threads, each keeping kept
        matches of its chunk: the boundaries a large task has, in a small
        one."""
        task._FIND_CHUNK = PAGE
        task._FIND_THREADS = threads
        task._FIND_KEPT = kept

    def test_find_in_small_chunks_matches_plain_reads(self):
        import random
        for seed in range(4):
            rng = random.Random(50 + seed)
            t = self.new_random_task(rng, f"chunks-{seed}")
            for threads, kept in ((1, 4096), (2, 1), (3, 7)):
                self.small_find_chunks(t, threads, kept)
                for pattern in (b"ab", b"ba\0a", b"a" * 9, b"\0", b"b\0\0",
                                bytes(PAGE + 3), b"a" * (2 * PAGE + 1)):
                    self.assertEqual(list(t.find(pattern)),
                                     reference_find(t, pattern),
                                     (seed, threads, kept, pattern))

    def test_find_at_chunk_boundaries_and_region_ends(self):
        t = self.task
        t.vm_allocate(8 * PAGE, A)
        t.vm_allocate(PAGE, A + 8 * PAGE)
        t.vm_protect(A + 8 * PAGE, PAGE, taskfs.VM_PROT_NONE)
        # Across chunks 0|1 (two threads' buffers), across chunks 2|3|4 (a
        # pattern longer than a chunk), ending at the last byte of the
        # readable memory, and one byte at that last byte.
        data = bytearray(b"\1" * 8 * PAGE)
        data[PAGE - 2:PAGE + 2] = b"XY12"
        data[3 * PAGE - 1:4 * PAGE + 1] = b"L" * (PAGE + 2)
        data[8 * PAGE - 3:] = b"END"
        t.vm_write(A, data)
        for threads in (1, 2, 4):
            self.small_find_chunks(t, threads, 4096)
            self.assertEqual(list(t.find(b"XY12")), [A + PAGE - 2], threads)
            self.assertEqual(list(t.find(b"\1L" + b"L" * (PAGE + 1) + b"\1")),
                             [A + 3 * PAGE - 2], threads)
            self.assertEqual(list(t.find(b"END")), [A + 8 * PAGE - 3])
            self.assertEqual(list(t.find(b"D")), [A + 8 * PAGE - 1])
            # Dense matches: more in each chunk than a thread keeps.
            self.small_find_chunks(t, threads, 5)
            self.assertEqual(list(t.find(b"\1\1")),
                             reference_find(t, b"\1\1"), threads)
        # Stopping early leaves no read behind: the task closes cleanly.
        self.small_find_chunks(t, 3, 4096)
        found = t.find(b"\1")
        self.assertEqual(next(found), A)
        found.close()

    def test_find_takes_only_bytes(self):
        # An int was searched as that many zero bytes, a list of ints as
        # their bytes: a pattern is a bytes-like object, else TypeError
        # naming the call, as every argument of the package.
        t = self.task
        t.vm_allocate(PAGE, A)
        t.vm_write(A, b"\0\0\0AB".ljust(PAGE, b"\1"))
        for bad in (3, "AB", None, [65, 66], 2.0):
            with self.assertRaises(TypeError) as cm:
                list(t.find(bad))
            self.assertEqual(str(cm.exception),
                             "find: pattern must be a bytes-like object, not "
                             + type(bad).__name__)
        for good in (b"AB", bytearray(b"AB"), memoryview(b"xABx")[1:3],
                     array.array("B", b"AB")):
            self.assertEqual(list(t.find(good)), [A + 3], good)
        self.assertEqual(list(t.find(array.array("H", [0, 0x4241]))),
                         [A + 1] if sys.byteorder == "little" else [])

    def test_find_at_its_real_chunk_boundary(self):
        # find's own 1 MiB chunks: overlapping matches across the boundary
        # between two chunks (a page boundary too), a match ending on it and
        # one starting on it, an unreadable page and a hole after them.
        t = self.task
        mib = 1 << 20
        self.assertEqual(t._FIND_CHUNK, mib)
        t.vm_allocate(mib + 8 * PAGE, A)
        t.vm_protect(A + mib + 4 * PAGE, PAGE, taskfs.VM_PROT_NONE)
        t.vm_deallocate(A + mib + 6 * PAGE, PAGE)
        t.vm_write(A + mib - PAGE, bytes(PAGE - 3) + b"ABA")
        t.vm_write(A + mib, b"BABAB" + bytes(PAGE - 5))
        t.vm_write(A + mib + 3 * PAGE, bytes(PAGE - 2) + b"AB")
        t.vm_write(A + mib + 5 * PAGE, b"AB" + bytes(PAGE - 2))
        t.vm_write(A + mib + 7 * PAGE, b"ABAB" + bytes(PAGE - 4))
        for pattern in (b"ABAB", b"AB", b"BA", b"\0A", b"B\0", b"A"):
            self.assertEqual(list(t.find(pattern)), reference_find(t, pattern),
                             pattern)
        self.assertEqual(list(t.find(b"ABAB")),
                         [A + mib - 3, A + mib - 1, A + mib + 1, A + mib + 7 * PAGE])
        self.assertEqual(list(t.find(b"\0ABA")), [A + mib - 4])

    def test_find_across_pages_regions_and_never_written_memory(self):
        t = self.task
        t.vm_allocate(2 * PAGE, A)
        t.vm_allocate(2 * PAGE, A + 2 * PAGE)  # adjacent: one span
        t.vm_allocate(PAGE, A + 5 * PAGE)
        t.vm_protect(A + 5 * PAGE, PAGE, taskfs.VM_PROT_NONE)
        t.vm_write(A + PAGE, bytes(PAGE - 3) + b"NEE")   # across the regions
        t.vm_write(A + 2 * PAGE, b"DLE" + bytes(PAGE - 3))
        self.assertEqual(list(t.find(b"NEEDLE")), [A + 2 * PAGE - 3])
        # A match reaching into a page never written (zeros).
        t.vm_write(A + 3 * PAGE, bytes(PAGE - 2) + b"QQ")
        t.vm_deallocate(A, PAGE)
        self.assertEqual(list(t.find(b"QQ\0\0")), [])  # A+4P: not allocated
        t.vm_write(A + PAGE, bytes(PAGE - 2) + b"RR")  # A+2P written: "DLE"
        self.assertEqual(list(t.find(b"RRDLE")), [A + 2 * PAGE - 2])
        # The unreadable region is skipped, even for zeros.
        self.assertEqual(list(t.find(bytes(PAGE))),
                         reference_find(t, bytes(PAGE)))
        self.assertTrue(all(a < A + 4 * PAGE for a in t.find(b"\0")))
        r = ctl(t.path, "find", "RR\\x44LE")
        self.assertEqual((r.returncode, r.stdout), (0, b"%#x\n" % (A + 2 * PAGE - 2)))
        numbers = struct.pack("=IQ", 0xdeadbeef, 1 << 40)
        t.vm_write(A + 2 * PAGE, (b"DLE" + bytes(61) + numbers).ljust(PAGE, b"\0"))
        r = ctl(t.path, "find", "--u32", "0xdeadbeef")
        self.assertEqual(r.stdout, b"%#x\n" % (A + 2 * PAGE + 64))
        r = ctl(t.path, "find", "--u64", str(1 << 40))
        self.assertEqual(r.stdout, b"%#x\n" % (A + 2 * PAGE + 68))
        self.assertEqual(ctl(t.path, "find", "--u32", "0x1FFFFFFFF").returncode, 2)
        # --u32/--u64 without its VALUE, or with more, is a usage error, not
        # a search for the option's own text.
        t.vm_write(A + 2 * PAGE, b"--u32--u64".ljust(PAGE, b"\0"))
        self.assertEqual(list(t.find(b"--u32")), [A + 2 * PAGE])
        for args in (["--u32"], ["--u64"], ["--u32", "1", "2"]):
            r = ctl(t.path, "find", *args)
            self.assertEqual((r.returncode, r.stdout), (2, b""), args)
            self.assertIn(b"takes one VALUE", r.stderr, args)
        for value in ("-1", "0x", "1x", "4G"):
            r = ctl(t.path, "find", "--u32", value)
            self.assertEqual((r.returncode, r.stdout), (2, b""), value)
        r = ctl(t.path, "find", "--u64", str((1 << 64) - 1))
        self.assertEqual((r.returncode, r.stdout), (0, b""))

    def test_diff_matches_plain_reads(self):
        import random
        for seed in range(6):
            rng = random.Random(100 + seed)
            a = self.new_random_task(rng, f"diff-a{seed}")
            for r in a.regions():
                a.vm_protect(r.start, r.end - r.start, taskfs.VM_PROT_DEFAULT)
            b = a.fork(f"diff-b{seed}")
            self.addCleanup(self._remove, b)
            self.assertEqual(a.diff(b), [])
            regions = a.regions()
            read_only = set()
            for _ in range(rng.randint(1, 6)):
                r = rng.choice(regions)
                p = rng.randrange(r.start, r.end, PAGE)
                if p in read_only:
                    continue
                what = rng.random()
                if what < 0.5:
                    b.vm_write(p, bytes(rng.choice(b"abc") for _ in range(PAGE)))
                elif what < 0.65:
                    b.vm_write(p, bytes(PAGE))  # zeros over a page
                elif what < 0.8:
                    b.vm_copy(r.start, PAGE, p)  # a copy: maybe equal bytes
                else:
                    b.vm_protect(p, PAGE, taskfs.VM_PROT_READ)
                    read_only.add(p)
            got = [(e.kind, e.start, e.end,
                    repr(e.region).split(" ", 1)[1].rstrip(")") if e.region
                    else None) for e in a.diff(b)]
            self.assertEqual(got, reference_diff(a, b), seed)
            out = ctl("diff", a.path, b.path)
            self.assertEqual(out.returncode, 0, out.stderr)
            want = "".join(
                f"{k} {s:016x}-{e:016x}" + (f" {x}" if x else "") + "\n"
                for k, s, e, x in reference_diff(a, b))
            self.assertEqual(out.stdout.decode(), want, seed)

    def test_diff_of_unreadable_memory_is_by_identity(self):
        a = self.task
        a.vm_allocate(4 * PAGE, A)
        a.vm_write(A, b"q" * 4 * PAGE)
        b = a.fork("unread-b")
        self.addCleanup(self._remove, b)
        b.vm_write(A + PAGE, b"r" * PAGE)
        a.vm_protect(A, 4 * PAGE, taskfs.VM_PROT_NONE)
        b.vm_protect(A, 4 * PAGE, taskfs.VM_PROT_NONE)
        self.assertEqual([tuple(e)[:3] for e in a.diff(b)],
                         [("?", A + PAGE, A + 2 * PAGE)])


if __name__ == "__main__":
    unittest.main()
