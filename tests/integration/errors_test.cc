// docs/reference.md §7 errors: every failed operation of a task is recorded in
// TASK/errors as `SEQ uid UID OPERATION: KERN_NAME: REASON`, oldest first, the
// last 256 kept, on every path (mem I/O, the seven ioctls, ctl commands however
// they were cut, copy-from and vm_map_copy naming the task as source), before
// the reply; the file is read-only for everyone and gone with its task.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "taskfs/ioctl.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

const std::string kUid = std::to_string(::getuid());

// The lines of a text, without their '\n'.
std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string Hex(std::uint64_t v) {
  std::ostringstream out;
  out << "0x" << std::hex << v;
  return out.str();
}

// The `id` of a task, from its status.
std::uint64_t TaskId(const Mount& mount, const std::string& task) {
  return std::strtoull(
      StatusValue(ReadFile(mount / (task + "/status")), "id").c_str(), nullptr,
      10);
}

// st_size of path; -1 if stat fails.
off_t Size(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

// ioctl returning 0 or the errno.
template <typename T>
int Ioctl(int fd, unsigned long cmd, T* arg) {
  return ::ioctl(fd, cmd, arg) < 0 ? errno : 0;
}

// The size of the kernel's mem requests on this host, as the daemon chooses
// it (fs/fuse_channel.cc): half of fs.fuse.max_pages_limit (256 by
// default) pages, at most 1 MiB.
std::uint64_t RequestBytes() {
  unsigned limit = 256;
  std::ifstream in("/proc/sys/fs/fuse/max_pages_limit");
  unsigned value = 0;
  if (in >> value && value > 0) limit = value;
  const long host_page = ::sysconf(_SC_PAGESIZE);
  const std::uint64_t page = host_page > 0 ? host_page : 4096;
  const std::uint64_t pages =
      std::min<std::uint64_t>(limit, 2 * (1 << 20) / page);
  return std::min<std::uint64_t>(1 << 20, pages / 2 * page);
}

// A mount with tasks t (0x10000-0x14000: rw- 0x10000-0x13000, r-- 0x13000)
// and u (empty), and a record of what t's errors file must hold.
class ErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mount_.ok()) << mount_.error();
    ASSERT_EQ(::mkdir((mount_ / "t").c_str(), 0700), 0) << std::strerror(errno);
    ASSERT_EQ(::mkdir((mount_ / "u").c_str(), 0700), 0) << std::strerror(errno);
    ASSERT_EQ(Ctl("allocate 0x10000 16K\nprotect 0x13000 4K r--\n"), 0);
    ASSERT_EQ(ReadFile(mount_ / "t/maps"),
              "0000000000010000-0000000000013000 rw-/rwx copy\n"
              "0000000000013000-0000000000014000 r--/rwx copy\n");
    fd_ = ::open((mount_ / "t/mem").c_str(), O_RDWR);
    ASSERT_GE(fd_, 0) << std::strerror(errno);
    ASSERT_EQ(Errors(), "");
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
  }

  int Ctl(const std::string& commands, const std::string& task = "t") {
    return WriteFile(mount_ / (task + "/ctl"), commands);
  }
  std::string Errors(const std::string& task = "t") {
    return ReadFile(mount_ / (task + "/errors"));
  }

  // Asserts that t's errors file is what it was plus exactly one line,
  // `SEQ uid UID entry`, with the next SEQ.
  void ExpectRecorded(const std::string& entry) {
    expected_.push_back(std::to_string(expected_.size() + 1) + " uid " + kUid +
                        " " + entry);
    EXPECT_EQ(SplitLines(Errors()), expected_);
  }
  // Asserts that t's errors file has not changed.
  void ExpectNothingNew() { EXPECT_EQ(SplitLines(Errors()), expected_); }

  Mount mount_{{"-o", "tasks=none,address_bits=32"}};
  int fd_ = -1;
  std::vector<std::string> expected_;  // t's errors, in order
};

// --- docs/reference.md §7's example, on the embedded demo
// ---------------------------------

TEST(ErrorsDemoTest, TheSpecExample) {
  Mount m(std::vector<std::string>{});
  ASSERT_TRUE(m.ok()) << m.error();
  const std::string maps = ReadFile(m / "demo/maps");
  ASSERT_NE(maps.find("0000000000600000-0000000000610000 rw-/rwx copy\n"
                      "0000000000610000-0000000000620000 ---/rwx copy\n"),
            std::string::npos)
      << maps;
  EXPECT_EQ(ReadFile(m / "demo/errors"), "");
  EXPECT_EQ(WriteFile(m / "demo/ctl", "allocate 0x600000 4K\n"), ENOMEM);
  std::string data;
  EXPECT_EQ(ReadMem(m / "demo/mem", 0x610000, 0x1000, &data), EACCES);
  EXPECT_EQ(ReadFile(m / "demo/errors"),
            "1 uid " + kUid +
                " ctl allocate 0x600000 4K: KERN_NO_SPACE: overlaps region "
                "0x600000-0x610000\n"
                "2 uid " +
                kUid +
                " pread 0x610000 0x1000: KERN_PROTECTION_FAILURE: page "
                "0x610000 is ---/rwx, read needs r\n");
  // The other task of the demo saw none of it.
  EXPECT_EQ(ReadFile(m / "child/errors"), "");
}

// What users would type: the errno of the write, then the line at once.
TEST(ErrorsDemoTest, ShellEchoThenTail) {
  Mount m(std::vector<std::string>{});
  ASSERT_TRUE(m.ok()) << m.error();
  const RunResult r = RunCommand(
      {"sh", "-c",
       "echo 'allocate 0x600000 4K' > \"$0/demo/ctl\"; echo \"write $?\"; "
       "tail -n 1 \"$0/demo/errors\"",
       m.path()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "write 1\n1 uid " + kUid +
                       " ctl allocate 0x600000 4K: KERN_NO_SPACE: overlaps "
                       "region 0x600000-0x610000\n");
}

// --- every path records ------------------------------------------------------

TEST_F(ErrorsTest, MemReadAndWrite) {
  AlignedBuffer b(2 * kPage);
  EXPECT_EQ(Err(::pwrite(fd_, b.data, kPage, 0x13000)), EACCES);
  ExpectRecorded(
      "pwrite 0x13000 0x1000: KERN_PROTECTION_FAILURE: page 0x13000 is "
      "r--/rwx, write needs w");
  // The lowest offending page of a range is named.
  EXPECT_EQ(Err(::pwrite(fd_, b.data, 2 * kPage, 0x12000)), EACCES);
  ExpectRecorded(
      "pwrite 0x12000 0x2000: KERN_PROTECTION_FAILURE: page 0x13000 is "
      "r--/rwx, write needs w");
  EXPECT_EQ(Err(::pwrite(fd_, b.data, kPage, 0x40000)), EFAULT);
  ExpectRecorded(
      "pwrite 0x40000 0x1000: KERN_INVALID_ADDRESS: page 0x40000 is not "
      "allocated");
  EXPECT_EQ(Err(::pread(fd_, b.data, 2 * kPage, 0x13000)), EFAULT);
  ExpectRecorded(
      "pread 0x13000 0x2000: KERN_INVALID_ADDRESS: page 0x14000 is not "
      "allocated");
  EXPECT_EQ(Err(::pread(fd_, b.data, kPage, 0x10800)), EINVAL);
  ExpectRecorded(
      "pread 0x10800 0x1000: KERN_INVALID_ARGUMENT: address 0x10800 is not a "
      "multiple of the page size 0x1000");
  // A write past the address space (2^32 here).
  EXPECT_EQ(Err(::pwrite(fd_, b.data, kPage, 0x100000000)), EFAULT);
  ExpectRecorded(
      "pwrite 0x100000000 0x1000: KERN_INVALID_ADDRESS: "
      "0x100000000-0x100001000 "
      "is not inside the address space [0, 0x100000000)");
  // Successes and an end-of-file read add nothing.
  EXPECT_EQ(::pwrite(fd_, b.data, kPage, 0x10000), static_cast<ssize_t>(kPage));
  EXPECT_EQ(::pread(fd_, b.data, kPage, 0x13000), static_cast<ssize_t>(kPage));
  EXPECT_EQ(::pread(fd_, b.data, kPage, 0x100000000), 0);
  ExpectNothingNew();
}

TEST_F(ErrorsTest, EachIoctl) {
  taskfs_vm_copy c{0x10800, kPage, 0x11000};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_COPY, &c), EINVAL);
  ExpectRecorded(
      "ioctl vm_copy 0x10800 0x1000 0x11000: KERN_INVALID_ARGUMENT: source "
      "0x10800 is not a multiple of the page size 0x1000");
  c = {0x10000, kPage, 0x13000};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_COPY, &c), EACCES);
  ExpectRecorded(
      "ioctl vm_copy 0x10000 0x1000 0x13000: KERN_PROTECTION_FAILURE: page "
      "0x13000 is r--/rwx, write needs w");

  taskfs_vm_allocate a{0x13000, kPage, 0, 0};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_ALLOCATE, &a), ENOMEM);
  ExpectRecorded(
      "ioctl vm_allocate 0x13000 0x1000 flags 0x0: KERN_NO_SPACE: overlaps "
      "region 0x13000-0x14000");
  a = {0x40000, kPage, 4, 0};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_ALLOCATE, &a), EINVAL);
  ExpectRecorded(
      "ioctl vm_allocate 0x40000 0x1000 flags 0x4: KERN_INVALID_ARGUMENT: "
      "flags 0x4 has bits beyond anywhere (1)");

  taskfs_vm_deallocate d{0xfffff000, 2 * kPage};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_DEALLOCATE, &d), EFAULT);
  ExpectRecorded(
      "ioctl vm_deallocate 0xfffff000 0x2000: KERN_INVALID_ADDRESS: "
      "0xfffff000-0x100001000 is not inside the address space [0, "
      "0x100000000)");

  taskfs_vm_protect p{0x10000, kPage, 0, 8};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_PROTECT, &p), EINVAL);
  ExpectRecorded(
      "ioctl vm_protect 0x10000 0x1000 set_maximum 0 0x8: "
      "KERN_INVALID_ARGUMENT: protection 0x8 has bits beyond rwx");
  p = {0x10000, kPage, 2, 1};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_PROTECT, &p), EINVAL);
  ExpectRecorded(
      "ioctl vm_protect 0x10000 0x1000 set_maximum 2 0x1: "
      "KERN_INVALID_ARGUMENT: set_maximum 2 is neither 0 nor 1");

  taskfs_vm_inherit in{0x10000, kPage, 3, 0};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_INHERIT, &in), EINVAL);
  ExpectRecorded(
      "ioctl vm_inherit 0x10000 0x1000 3: KERN_INVALID_ARGUMENT: inheritance "
      "3 is not share (0), copy (1) or none (2)");
  in = {0x13000, 2 * kPage, 2, 0};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_INHERIT, &in), EFAULT);
  ExpectRecorded(
      "ioctl vm_inherit 0x13000 0x2000 2: KERN_INVALID_ADDRESS: page 0x14000 "
      "is not allocated");

  taskfs_vm_region r{0x20000, 0, 0, 0, 0, 0};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_REGION, &r), ENOMEM);
  ExpectRecorded(
      "ioctl vm_region 0x20000: KERN_NO_SPACE: no region at or above "
      "0x20000");

  taskfs_vm_map_copy m{
      9999, 0x10000, kPage, 0x40000, TASKFS_VM_MAP_COPY_DST_ALLOC, 0};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_MAP_COPY, &m), ESRCH);
  ExpectRecorded(
      "ioctl vm_map_copy task 9999 0x10000 0x1000 0x40000 flags 0x1: "
      "KERN_INVALID_TASK: no task has id 9999");
  m = {TaskId(mount_, "u"), 0x10000, kPage, 0x40000, 8, 0};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_MAP_COPY, &m), EINVAL);
  ExpectRecorded("ioctl vm_map_copy task " + std::to_string(m.src_task_id) +
                 " 0x10000 0x1000 0x40000 flags 0x8: KERN_INVALID_ARGUMENT: "
                 "flags 0x8 has bits beyond dst_alloc (1) and src_destroy (2)");

  // The successful forms add nothing.
  r = {0x10000, 0, 0, 0, 0, 0};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_REGION, &r), 0);
  a = {0x40000, kPage, 0, 0};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_ALLOCATE, &a), 0);
  ExpectNothingNew();
}

// The kernel passes exactly _IOC_SIZE(cmd) bytes, so a struct of the wrong
// size is a different command number: ENOTTY, which is no Mach failure of
// the task and is not recorded; neither is an unknown command.
TEST_F(ErrorsTest, MisSizedAndUnknownIoctlsAreEnottyAndNotRecorded) {
  std::uint64_t arg[8] = {};
  EXPECT_EQ(Ioctl(fd_, _IOW('M', 1, std::uint64_t[2]), arg), ENOTTY);
  EXPECT_EQ(Ioctl(fd_, _IOWR('M', 7, std::uint64_t[4]), arg), ENOTTY);
  EXPECT_EQ(Ioctl(fd_, _IOR('M', 1, taskfs_vm_copy), arg), ENOTTY);
  EXPECT_EQ(Ioctl(fd_, _IOW('M', 99, taskfs_vm_copy), arg), ENOTTY);
  ExpectNothingNew();
}

TEST_F(ErrorsTest, CtlCommands) {
  EXPECT_EQ(Ctl("bogus 1\n"), EINVAL);
  ExpectRecorded("ctl bogus 1: KERN_INVALID_ARGUMENT: unknown command 'bogus'");
  EXPECT_EQ(Ctl("allocate 0x13000 4K\n"), ENOMEM);
  ExpectRecorded(
      "ctl allocate 0x13000 4K: KERN_NO_SPACE: overlaps region "
      "0x13000-0x14000");
  EXPECT_EQ(Ctl("protect 0x13000 8K r--\n"), EFAULT);
  ExpectRecorded(
      "ctl protect 0x13000 8K r--: KERN_INVALID_ADDRESS: page 0x14000 is not "
      "allocated");
  // A write of several lines stops at the first failing one, which alone
  // is recorded; the lines before it stay done and add nothing.
  EXPECT_EQ(Ctl("allocate 0x40000 4K\ninherit 0x40000 8K none\nbogus\n"),
            EFAULT);
  ExpectRecorded(
      "ctl inherit 0x40000 8K none: KERN_INVALID_ADDRESS: page 0x41000 is not "
      "allocated");
  EXPECT_EQ(Ctl("copy-from nosuch 0x10000 4K 0x50000 alloc\n"), ESRCH);
  ExpectRecorded(
      "ctl copy-from nosuch 0x10000 4K 0x50000 alloc: KERN_INVALID_TASK: no "
      "task is named nosuch");
  EXPECT_EQ(Ctl("deallocate 0x40000 4K\n"), 0);
  ExpectNothingNew();
}

// TASKFS_IOC_LAST_REASON (docs/reference.md §5.2): on the descriptor and
// thread of a failed request, that request's line and SEQ, once.
TEST_F(ErrorsTest, LastReasonIsTheCallersOwnLineOnce) {
  taskfs_last_reason last{};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_LAST_REASON, &last), 0);
  EXPECT_EQ(last.seq, 0u);
  EXPECT_STREQ(last.line, "");
  AlignedBuffer b(kPage);
  EXPECT_EQ(Err(::pwrite(fd_, b.data, kPage, 0x13000)), EACCES);
  // Another descriptor's failure, after it, is not this one's.
  const int other = ::open((mount_ / "t/mem").c_str(), O_RDWR);
  ASSERT_GE(other, 0);
  EXPECT_EQ(Err(::pread(other, b.data, kPage, 0x40000)), EFAULT);
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_LAST_REASON, &last), 0);
  EXPECT_EQ(last.seq, 1u);
  EXPECT_EQ(std::string(last.line),
            "1 uid " + kUid +
                " pwrite 0x13000 0x1000: KERN_PROTECTION_FAILURE: page "
                "0x13000 is r--/rwx, write needs w");
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_LAST_REASON, &last), 0);
  EXPECT_EQ(last.seq, 0u);  // asked once: forgotten
  EXPECT_EQ(Ioctl(other, TASKFS_IOC_LAST_REASON, &last), 0);
  EXPECT_EQ(last.seq, 2u);
  ::close(other);
  // Another thread's failure on the same descriptor is its own.
  EXPECT_EQ(Err(::pread(fd_, b.data, kPage, 0x50000)), EFAULT);
  std::thread([&] {
    AlignedBuffer mine(kPage);
    EXPECT_EQ(Err(::pread(fd_, mine.data, kPage, 0x60000)), EFAULT);
    taskfs_last_reason theirs{};
    EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_LAST_REASON, &theirs), 0);
    EXPECT_EQ(theirs.seq, 4u);
  }).join();
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_LAST_REASON, &last), 0);
  EXPECT_EQ(last.seq, 3u);
  EXPECT_NE(std::string(last.line).find("page 0x50000 is not allocated"),
            std::string::npos);
  // Asking records nothing, and works on a read-only descriptor too.
  const int ro = ::open((mount_ / "t/mem").c_str(), O_RDONLY);
  ASSERT_GE(ro, 0);
  EXPECT_EQ(Ioctl(ro, TASKFS_IOC_LAST_REASON, &last), 0);
  ::close(ro);
  EXPECT_EQ(SplitLines(Errors()).size(), 4u);
}

TEST_F(ErrorsTest, LastReasonOfACtlWriteIsAskedOnCtl) {
  const int ctl = ::open((mount_ / "t/ctl").c_str(), O_RDWR);
  ASSERT_GE(ctl, 0);
  const std::string line = "allocate 0x13000 4K\n";
  EXPECT_EQ(Err(::write(ctl, line.data(), line.size())), ENOMEM);
  taskfs_last_reason last{};
  EXPECT_EQ(Ioctl(ctl, TASKFS_IOC_LAST_REASON, &last), 0);
  EXPECT_EQ(last.seq, 1u);
  EXPECT_EQ(std::string(last.line),
            "1 uid " + kUid +
                " ctl allocate 0x13000 4K: KERN_NO_SPACE: overlaps region "
                "0x13000-0x14000");
  // Not on mem: each open file keeps its own.
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_LAST_REASON, &last), 0);
  EXPECT_EQ(last.seq, 0u);
  ::close(ctl);
  // Other files have no reason channel.
  const int maps = ::open((mount_ / "t/maps").c_str(), O_RDONLY);
  ASSERT_GE(maps, 0);
  EXPECT_EQ(Ioctl(maps, TASKFS_IOC_LAST_REASON, &last), ENOTTY);
  ::close(maps);
}

// A write that holds a newline but ends inside a line keeps the cut line
// for the next write (docs/reference.md §6): it fails, and is recorded, only
// when completed.
TEST_F(ErrorsTest, CtlLineCutAcrossTwoWrites) {
  const int fd = ::open((mount_ / "t/ctl").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const std::string first = "allocate 0x40000 4K\nallocate 0x1";
  const std::string second = "3000 4K\n";
  EXPECT_EQ(::write(fd, first.data(), first.size()),
            static_cast<ssize_t>(first.size()));
  ExpectNothingNew();  // the cut line has not run
  EXPECT_EQ(Err(::write(fd, second.data(), second.size())), ENOMEM);
  ExpectRecorded(
      "ctl allocate 0x13000 4K: KERN_NO_SPACE: overlaps region "
      "0x13000-0x14000");
  EXPECT_EQ(::close(fd), 0);  // the failing write dropped the line
  ExpectNothingNew();
}

// close(2) runs a cut line the last write kept, and fails with its errno.
TEST_F(ErrorsTest, CtlCutLineRunAtClose) {
  const int fd = ::open((mount_ / "t/ctl").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const std::string line = "allocate 0x40000 4K\nprotect 0x40000 4K rwz";
  EXPECT_EQ(::write(fd, line.data(), line.size()),
            static_cast<ssize_t>(line.size()));
  ExpectNothingNew();
  EXPECT_EQ(Err(::close(fd)), EINVAL);
  ExpectRecorded(
      "ctl protect 0x40000 4K rwz: KERN_INVALID_ARGUMENT: bad protection "
      "'rwz' (want e.g. rw- or r-x)");

  // A cut line whose command the core refuses, run at close.
  const int fd2 = ::open((mount_ / "t/ctl").c_str(), O_WRONLY);
  ASSERT_GE(fd2, 0) << std::strerror(errno);
  const std::string cut = "deallocate 0x40000 4K\nallocate 0x13000 4K";
  EXPECT_EQ(::write(fd2, cut.data(), cut.size()),
            static_cast<ssize_t>(cut.size()));
  ExpectNothingNew();
  EXPECT_EQ(Err(::close(fd2)), ENOMEM);
  ExpectRecorded(
      "ctl allocate 0x13000 4K: KERN_NO_SPACE: overlaps region "
      "0x13000-0x14000");
  EXPECT_EQ(ReadFile(mount_ / "t/maps"),
            "0000000000010000-0000000000013000 rw-/rwx copy\n"
            "0000000000013000-0000000000014000 r--/rwx copy\n");
}

// copy-from and vm_map_copy that fail are in the errors of both tasks,
// each with its own SEQ; a task copying from itself records once. The
// destination's line is the call as written; the source's is the daemon's
// own account of it (the caller may hold no right on the source), so no
// text of the caller's reaches it.
TEST_F(ErrorsTest, CopyFromRecordsInDestinationAndSource) {
  ASSERT_EQ(Ctl("allocate 0x20000 4K\nprotect 0x20000 4K ---\n", "u"), 0);
  EXPECT_EQ(Ctl("copy-from u 0x20000 4K 0x50000 alloc # NOTICE from admin\n"),
            EACCES);
  const std::string why =
      ": KERN_PROTECTION_FAILURE: page 0x20000 is ---/rwx, read needs r";
  ExpectRecorded(
      "ctl copy-from u 0x20000 4K 0x50000 alloc # NOTICE from "
      "admin" +
      why);
  const std::string t = std::to_string(TaskId(mount_, "t"));
  const std::string copy_from = " vm_map_copy 0x20000 0x1000 into task id " +
                                t + " at 0x50000 alloc" + why;
  EXPECT_EQ(Errors("u"), "1 uid " + kUid + copy_from + "\n");

  const std::uint64_t u = TaskId(mount_, "u");
  taskfs_vm_map_copy m{u, 0x21000, kPage, 0x50000, TASKFS_VM_MAP_COPY_DST_ALLOC,
                       0};
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_MAP_COPY, &m), EFAULT);
  const std::string map_copy_why =
      ": KERN_INVALID_ADDRESS: page 0x21000 is not allocated";
  ExpectRecorded("ioctl vm_map_copy task " + std::to_string(u) +
                 " 0x21000 0x1000 0x50000 flags 0x1" + map_copy_why);
  EXPECT_EQ(Errors("u"), "1 uid " + kUid + copy_from + "\n2 uid " + kUid +
                             " vm_map_copy 0x21000 0x1000 into task id " + t +
                             " at 0x50000 alloc" + map_copy_why + "\n");

  // Copying from itself: one line, in t only.
  EXPECT_EQ(Ctl("copy-from t 0x10000 4K 0x13000\n"), EACCES);
  ExpectRecorded(
      "ctl copy-from t 0x10000 4K 0x13000: KERN_PROTECTION_FAILURE: page "
      "0x13000 is r--/rwx, write needs w");
  EXPECT_EQ(SplitLines(Errors("u")).size(), 2u);
}

// remap and vm_remap that fail are in the errors of both tasks too, the
// source's line again the daemon's own account of the call.
TEST_F(ErrorsTest, RemapRecordsInDestinationAndSource) {
  ASSERT_EQ(Ctl("allocate 0x20000 4K\n", "u"), 0);
  EXPECT_EQ(Ctl("remap u 0x21000 4K 0x50000 share # NOTICE from admin\n"),
            EFAULT);
  const std::string why =
      ": KERN_INVALID_ADDRESS: page 0x21000 is not allocated";
  ExpectRecorded("ctl remap u 0x21000 4K 0x50000 share # NOTICE from admin" +
                 why);
  const std::string t = std::to_string(TaskId(mount_, "t"));
  const std::string share =
      " vm_remap 0x21000 0x1000 into task id " + t + " at 0x50000 share" + why;
  EXPECT_EQ(Errors("u"), "1 uid " + kUid + share + "\n");

  const std::uint64_t u = TaskId(mount_, "u");
  taskfs_vm_remap m{};
  m.src_task_id = u;
  m.src_address = 0x1f000;
  m.size = 2 * kPage;
  m.flags = TASKFS_VM_REMAP_ANYWHERE | TASKFS_VM_REMAP_COPY;
  m.inheritance = TASKFS_VM_INHERIT_COPY;
  EXPECT_EQ(Ioctl(fd_, TASKFS_IOC_VM_REMAP, &m), EFAULT);
  const std::string copy_why =
      ": KERN_INVALID_ADDRESS: page 0x1f000 is not allocated";
  ExpectRecorded("ioctl vm_remap task " + std::to_string(u) +
                 " 0x1f000 0x2000 0x0 flags 0x3 inheritance 1" + copy_why);
  EXPECT_EQ(Errors("u"), "1 uid " + kUid + share + "\n2 uid " + kUid +
                             " vm_remap 0x1f000 0x2000 into task id " + t +
                             " anywhere copy" + copy_why + "\n");

  // Remapping from itself: one line, in t only.
  EXPECT_EQ(Ctl("remap t 0x30000 4K anywhere copy\n"), EFAULT);
  EXPECT_EQ(SplitLines(Errors("u")).size(), 2u);
}

TEST(ErrorsLimitTest, MemoryLimitNamesLimitUseAndNeed) {
  Mount m({"-o", "tasks=none,memory_limit=1M"});
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(::mkdir((m / "t").c_str(), 0700), 0);
  ASSERT_EQ(WriteFile(m / "t/ctl", "allocate 0x1000000 4M\n"), 0);
  const int fd = ::open((m / "t/mem").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  AlignedBuffer b(2 << 20);
  std::memset(b.data, 0x5a, b.size);
  const std::uint64_t request = RequestBytes();
  ASSERT_EQ((1u << 20) % request, 0u);
  // 2 MiB goes in requests: those that fit in the 1 MiB limit, beside the
  // task's records, are done and the call returns their bytes; the next
  // request is refused and recorded, naming the limit, what was in use and
  // what it needed.
  const ssize_t done = ::pwrite(fd, b.data, b.size, 0x1000000);
  ASSERT_GT(done, 0) << std::strerror(errno);
  EXPECT_EQ(static_cast<std::uint64_t>(done) % request, 0u);
  EXPECT_LT(done, 1 << 20);
  const std::regex line(
      "1 uid " + kUid + " pwrite " + Hex(0x1000000 + done) + " " +
      Hex(request) +
      ": KERN_RESOURCE_SHORTAGE: memory limit 1048576 bytes: ([0-9]+) in "
      "use, the write needs " +
      std::to_string(request) + " more\n");
  std::smatch match;
  const std::string errors = ReadFile(m / "t/errors");
  ASSERT_TRUE(std::regex_match(errors, match, line)) << errors;
  const std::uint64_t in_use = std::stoull(match[1]);
  EXPECT_GE(in_use, static_cast<std::uint64_t>(done));
  EXPECT_GT(in_use + request, 1u << 20);  // why it was refused
  // The rest, written again, is ENOSPC at once, and recorded as SEQ 2.
  EXPECT_EQ(Err(::pwrite(fd, b.data, b.size - done, 0x1000000 + done)), ENOSPC);
  EXPECT_EQ(SplitLines(ReadFile(m / "t/errors")).size(), 2u);
  ::close(fd);
}

// A transfer of several requests failing in its second: the call returns
// the first request's bytes, and the line names the failing request.
TEST_F(ErrorsTest, LargeTransferNamesTheFailingRequest) {
  const std::uint64_t request = RequestBytes();
  const std::uint64_t start = 0x400000;
  const std::uint64_t bad = start + request + kPage;  // in the second request
  ASSERT_EQ(Ctl("allocate " + Hex(start) + " " + Hex(4 * request) +
                "\nprotect " + Hex(bad) + " 4K ---\n"),
            0);
  AlignedBuffer b(4 * request);
  const ssize_t r = ::pread(fd_, b.data, b.size, static_cast<off_t>(start));
  ASSERT_EQ(r, static_cast<ssize_t>(request)) << std::strerror(errno);
  ExpectRecorded("pread " + Hex(start + static_cast<std::uint64_t>(r)) + " " +
                 Hex(request) + ": KERN_PROTECTION_FAILURE: page " + Hex(bad) +
                 " is ---/rwx, read needs r");
  const ssize_t w = ::pwrite(fd_, b.data, b.size, static_cast<off_t>(start));
  ASSERT_EQ(w, static_cast<ssize_t>(request)) << std::strerror(errno);
  ExpectRecorded("pwrite " + Hex(start + static_cast<std::uint64_t>(w)) + " " +
                 Hex(request) + ": KERN_PROTECTION_FAILURE: page " + Hex(bad) +
                 " is ---/rwx, write needs w");
}

// --- SEQ and the ring ----------------------------------------------------

TEST_F(ErrorsTest, SeqCountsPerTask) {
  const std::string u_line = " uid " + kUid +
                             " ctl bogus: KERN_INVALID_ARGUMENT: unknown "
                             "command 'bogus'";
  EXPECT_EQ(Ctl("bogus\n"), EINVAL);
  ExpectRecorded("ctl bogus: KERN_INVALID_ARGUMENT: unknown command 'bogus'");
  EXPECT_EQ(Ctl("bogus\n", "u"), EINVAL);
  EXPECT_EQ(Ctl("allocate 0x13000 4K\n"), ENOMEM);
  ExpectRecorded(
      "ctl allocate 0x13000 4K: KERN_NO_SPACE: overlaps region "
      "0x13000-0x14000");
  EXPECT_EQ(Ctl("bogus\n", "u"), EINVAL);
  EXPECT_EQ(Ctl("bogus\n", "u"), EINVAL);
  ExpectNothingNew();
  EXPECT_EQ(Errors("u"), "1" + u_line + "\n2" + u_line + "\n3" + u_line + "\n");
  // A new task starts from 1 again.
  ASSERT_EQ(::rmdir((mount_ / "u").c_str()), 0);
  ASSERT_EQ(::mkdir((mount_ / "u").c_str(), 0700), 0);
  EXPECT_EQ(Errors("u"), "");
  EXPECT_EQ(Ctl("bogus\n", "u"), EINVAL);
  EXPECT_EQ(Errors("u"), "1" + u_line + "\n");
}

TEST_F(ErrorsTest, TheLast256AreKeptOldestFirst) {
  AlignedBuffer b(kPage);
  std::vector<std::string> all;
  for (std::uint64_t i = 1; i <= 300; ++i) {
    const std::uint64_t addr = 0x100000 + i * kPage;
    ASSERT_EQ(Err(::pread(fd_, b.data, kPage, static_cast<off_t>(addr))),
              EFAULT);
    all.push_back(std::to_string(i) + " uid " + kUid + " pread " + Hex(addr) +
                  " 0x1000: KERN_INVALID_ADDRESS: page " + Hex(addr) +
                  " is not allocated");
    // Successes in between add nothing.
    ASSERT_EQ(::pread(fd_, b.data, kPage, 0x10000),
              static_cast<ssize_t>(kPage));
  }
  const std::vector<std::string> lines = SplitLines(Errors());
  ASSERT_EQ(lines.size(), 256u);
  EXPECT_EQ(lines.front().substr(0, 3), "45 ");
  EXPECT_EQ(lines.back().substr(0, 4), "300 ");
  EXPECT_EQ(lines, std::vector<std::string>(all.begin() + 44, all.end()));
  // One more pushes out the oldest.
  ASSERT_EQ(Ctl("bogus\n"), EINVAL);
  const std::vector<std::string> after = SplitLines(Errors());
  ASSERT_EQ(after.size(), 256u);
  EXPECT_EQ(after.front(), all[45]);
  EXPECT_EQ(after.back(), "301 uid " + kUid +
                              " ctl bogus: KERN_INVALID_ARGUMENT: unknown "
                              "command 'bogus'");
}

// --- the caller's uid ----------------------------------------------------

TEST(ErrorsUidTest, AnotherUsersFailureRecordsItsUid) {
  const Identity other{40002, 40002, {}};
  Mount m({"-o", "tasks=none,allow_other"});
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(::mkdir((m / "t").c_str(), 0700), 0);
  ASSERT_EQ(
      WriteFile(m / "t/ctl", "allocate 0x10000 4K\nprotect 0x10000 4K r--\n"),
      0);
  ASSERT_EQ(::chmod((m / "t").c_str(), 0711), 0);
  ASSERT_EQ(::chmod((m / "t/mem").c_str(), 0606), 0);
  ASSERT_EQ(::chmod((m / "t/ctl").c_str(), 0602), 0);
  const std::string mem = m / "t/mem";
  const std::string ctl = m / "t/ctl";
  const std::string errors = m / "t/errors";
  EXPECT_EQ(
      RunAs(other, [&] { return WriteMem(mem, 0x10000, Pattern(kPage, 1)); }),
      EACCES);
  EXPECT_EQ(
      RunAs(other, [&] { return WriteFile(ctl, "allocate 0x10000 4K\n"); }),
      ENOMEM);
  // Root's own failure in between.
  EXPECT_EQ(WriteMem(mem, 0x10000, Pattern(kPage, 2)), EACCES);
  EXPECT_EQ(ReadFile(errors),
            "1 uid 40002 pwrite 0x10000 0x1000: KERN_PROTECTION_FAILURE: page "
            "0x10000 is r--/rwx, write needs w\n"
            "2 uid 40002 ctl allocate 0x10000 4K: KERN_NO_SPACE: overlaps "
            "region 0x10000-0x11000\n"
            "3 uid " +
                kUid +
                " pwrite 0x10000 0x1000: KERN_PROTECTION_FAILURE: page "
                "0x10000 is r--/rwx, write needs w\n");
  // errors is 0400: the other user may not read it.
  EXPECT_EQ(RunAs(other,
                  [&] {
                    const int fd = ::open(errors.c_str(), O_RDONLY);
                    if (fd < 0) return errno;
                    ::close(fd);
                    return 0;
                  }),
            EACCES);
}

// --- a read-only file, gone with its task ----------------------------------

TEST_F(ErrorsTest, ReadOnlyForEveryoneMode0400) {
  const std::string errors = mount_ / "t/errors";
  struct stat st;
  ASSERT_EQ(::stat(errors.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode, static_cast<mode_t>(S_IFREG | 0400));
  EXPECT_EQ(Err(::open(errors.c_str(), O_WRONLY)), EACCES);
  EXPECT_EQ(Err(::open(errors.c_str(), O_RDWR)), EACCES);
  EXPECT_EQ(Err(::open(errors.c_str(), O_WRONLY | O_TRUNC)), EACCES);
  // Whatever its mode says.
  ASSERT_EQ(::chmod(errors.c_str(), 0600), 0);
  EXPECT_EQ(Err(::open(errors.c_str(), O_WRONLY)), EACCES);
  EXPECT_EQ(Err(::open(errors.c_str(), O_RDWR)), EACCES);
  ExpectNothingNew();
}

TEST_F(ErrorsTest, ReadsAreAtOffsetsThatStayPutAsLinesAreAdded) {
  const int fd = ::open((mount_ / "t/errors").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[4096];
  EXPECT_EQ(::pread(fd, buf, sizeof buf, 0), 0);
  ASSERT_EQ(Ctl("bogus 1\n"), EINVAL);
  const std::string one = "1 uid " + kUid +
                          " ctl bogus 1: KERN_INVALID_ARGUMENT: unknown "
                          "command 'bogus'\n";
  ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  ASSERT_GE(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), one);
  ASSERT_EQ(Ctl("bogus 2\n"), EINVAL);
  const std::string two = "2 uid " + kUid +
                          " ctl bogus 2: KERN_INVALID_ARGUMENT: unknown "
                          "command 'bogus'\n";
  // The new line is where the file ended, and earlier bytes stay put.
  n = ::pread(fd, buf, sizeof buf, 10);
  ASSERT_GE(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)),
            (one + two).substr(10));
  n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(one.size()));
  ASSERT_GE(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), two);
  // Reading in small pieces while failures are added gives every line once.
  std::string pieces;
  for (off_t off = 0;; off += 7) {
    n = ::pread(fd, buf, 7, off);
    ASSERT_GE(n, 0);
    if (n == 0) break;
    pieces.append(buf, static_cast<std::size_t>(n));
    if (off == 14) {
      ASSERT_EQ(Ctl("bogus 3\n"), EINVAL);
    }
  }
  EXPECT_EQ(SplitLines(pieces).size(), 3u);
  EXPECT_EQ(pieces.substr(0, one.size() + two.size()), one + two);
  ::close(fd);
}

// The size is the length of every line ever recorded, so it grows with each
// and never shrinks, also once the oldest are forgotten; reading from 0 (cat,
// Python's readlines) gives the kept lines once.
TEST_F(ErrorsTest, SizeIsTheTextsLengthAndOnlyGrows) {
  const std::string path = mount_ / "t/errors";
  EXPECT_EQ(Size(path), 0);
  std::uint64_t total = 0;
  for (int i = 1; i <= 300; ++i) {
    ASSERT_EQ(Ctl("bogus " + std::to_string(i) + "\n"), EINVAL);
    total += (std::to_string(i) + " uid " + kUid + " ctl bogus " +
              std::to_string(i) +
              ": KERN_INVALID_ARGUMENT: unknown command 'bogus'\n")
                 .size();
    if (i <= 3 || i % 50 == 0) {
      ASSERT_EQ(static_cast<std::uint64_t>(Size(path)), total) << i;
    }
  }
  const std::string text = Errors();
  const std::vector<std::string> lines = SplitLines(text);
  ASSERT_EQ(lines.size(), 256u);
  EXPECT_EQ(lines.front().substr(0, 3), "45 ");
  EXPECT_EQ(lines.back().substr(0, 4), "300 ");
  EXPECT_LT(text.size(), total);
  // The kept lines are the file's last bytes.
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string tail(text.size(), '\0');
  EXPECT_EQ(::pread(fd, tail.data(), tail.size(),
                    static_cast<off_t>(total - text.size())),
            static_cast<ssize_t>(text.size()));
  EXPECT_EQ(tail, text);
  ::close(fd);
  const RunResult py =
      RunCommand({"python3", "-c",
                  "import sys; l = open(sys.argv[1]).readlines(); "
                  "print(len(l), l[0].split()[0], l[-1].split()[0])",
                  path});
  EXPECT_EQ(py.exit_code, 0) << py.err;
  EXPECT_EQ(py.out, "256 45 300\n");
  const RunResult tail_n = RunCommand({"tail", "-n", "300", path});
  EXPECT_EQ(tail_n.out, text);
}

// tail -f, as users run it: FUSE has no inotify, so tail polls the size; each
// new failure shows within 2 s, also after more than 256 of them.
TEST_F(ErrorsTest, TailFollowShowsEachNewFailureWithin2s) {
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(Ctl("bogus " + std::to_string(i) + "\n"), EINVAL);
  }
  const TempDir scratch;
  const std::string out = scratch / "tail.out";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ::dup2(fd, 1) < 0) ::_exit(127);
    const std::string errors = mount_ / "t/errors";
    ::execlp("tail", "tail", "-f", errors.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Waits (2 s at most) for tail's output to end in the line of SEQ.
  const auto shows = [&](int seq) {
    const std::string want = std::to_string(seq) + " uid ";
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (;;) {
      const std::vector<std::string> lines = SplitLines(ReadFile(out));
      if (!lines.empty() && lines.back().starts_with(want)) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      ::usleep(20000);
    }
  };
  EXPECT_TRUE(shows(3)) << ReadFile(out);
  for (int i = 4; i <= 6; ++i) {
    ASSERT_EQ(Ctl("bogus " + std::to_string(i) + "\n"), EINVAL);
    EXPECT_TRUE(shows(i)) << ReadFile(out);
  }
  // Past the ring: lines forgotten before tail read them are skipped, the
  // rest come once and in order.
  for (int i = 7; i <= 400; ++i) {
    ASSERT_EQ(Ctl("bogus " + std::to_string(i) + "\n"), EINVAL);
  }
  EXPECT_TRUE(shows(400)) << ReadFile(out);
  ASSERT_EQ(Ctl("bogus 401\n"), EINVAL);
  EXPECT_TRUE(shows(401)) << ReadFile(out);
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const std::vector<std::string> lines = SplitLines(ReadFile(out));
  ASSERT_GE(lines.size(), 256u + 6);
  long last = 0;
  for (const std::string& line : lines) {
    const long seq = std::strtol(line.c_str(), nullptr, 10);
    ASSERT_GT(seq, last) << line;
    EXPECT_EQ(line.substr(line.find(" uid ")),
              " uid " + kUid + " ctl bogus " + std::to_string(seq) +
                  ": KERN_INVALID_ARGUMENT: unknown command 'bogus'");
    last = seq;
  }
  EXPECT_EQ(last, 401);
  for (int i = 1; i <= 6; ++i) {
    EXPECT_EQ(std::strtol(lines[i - 1].c_str(), nullptr, 10), i);
  }
}

// stat and find see a new line as a change of the file.
TEST_F(ErrorsTest, ModificationTimeIsTheLastLines) {
  const std::string path = mount_ / "t/errors";
  struct stat before;
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  const auto later = [](const timespec& a, const timespec& b) {
    return a.tv_sec != b.tv_sec ? a.tv_sec > b.tv_sec : a.tv_nsec > b.tv_nsec;
  };
  for (timespec now{}; !later(now, before.st_mtim);) {
    clock_gettime(CLOCK_REALTIME, &now);
  }
  ASSERT_EQ(Ctl("bogus\n"), EINVAL);
  struct stat after;
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  EXPECT_TRUE(later(after.st_mtim, before.st_mtim));
  EXPECT_EQ(after.st_ctim.tv_sec, after.st_mtim.tv_sec);
  EXPECT_EQ(after.st_ctim.tv_nsec, after.st_mtim.tv_nsec);
}

TEST_F(ErrorsTest, ReadAfterRmdirIsEsrch) {
  ASSERT_EQ(Ctl("bogus\n"), EINVAL);
  const int fd = ::open((mount_ / "t/errors").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::rmdir((mount_ / "t").c_str()), 0);
  char buf[4096];
  EXPECT_EQ(Err(::pread(fd, buf, sizeof buf, 0)), ESRCH);
  EXPECT_EQ(Err(::pread(fd, buf, sizeof buf, 5)), ESRCH);
  struct stat st;
  EXPECT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_mode, static_cast<mode_t>(S_IFREG | 0400));
  ::close(fd);
}

// A reader that took a snapshot before the task was removed gets ESRCH too
// when it continues at a later offset (docs/reference.md §4: I/O on the open
// files of a removed task fails with ESRCH).
TEST_F(ErrorsTest, ContinuingASnapshotAfterRmdirIsEsrch) {
  ASSERT_EQ(Ctl("bogus\n"), EINVAL);
  const int fd = ::open((mount_ / "t/errors").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[4096];
  ASSERT_GT(::pread(fd, buf, 5, 0), 0);
  ASSERT_EQ(::rmdir((mount_ / "t").c_str()), 0);
  EXPECT_EQ(Err(::pread(fd, buf, sizeof buf, 5)), ESRCH);
  EXPECT_EQ(Err(::pread(fd, buf, sizeof buf, 0)), ESRCH);
  ::close(fd);
}

}  // namespace
}  // namespace taskfs::testing
