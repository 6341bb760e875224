// docs/reference.md §3 through real mounts: the effect of every -o option, the
// mount(8) form with a SOURCE, the mount type, clean unmounting by signal and
// by fusermount3, the startup log line and statfs. What ends the daemon before
// it mounts (--help, --version, a bad option, a memory limit too small for
// the tasks) is in taskfs_main_test.cc.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

// The value of key in a task's status, "" if absent.
std::string StatusFileValue(const std::string& status_path,
                            const std::string& key) {
  std::istringstream lines(ReadFile(status_path));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(key + ": ", 0) == 0) return line.substr(key.size() + 2);
  }
  return "";
}

// The part of a /proc/self/mountinfo line after " - ": file system type,
// source and super options.
struct MountInfo {
  bool found = false;
  std::string type;
  std::string source;
  std::string super_options;
};

MountInfo FindMountInfo(const std::string& mountpoint) {
  MountInfo info;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string f;
    for (int i = 0; i < 5 && fields >> f; ++i) {
    }
    if (f != mountpoint) continue;
    while (fields >> f && f != "-") {
    }
    info.found = static_cast<bool>(fields >> info.type >> info.source >>
                                   info.super_options);
  }
  return info;
}

// Polls the daemon's log until a line matches, with a deadline (the log
// line may come a moment after the mount appears). Returns the line or "".
std::string AwaitLogLine(const Mount& mount, const std::regex& pattern) {
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (true) {
    std::istringstream lines(mount.DaemonLog());
    std::string line;
    while (std::getline(lines, line)) {
      if (std::regex_search(line, pattern)) return line;
    }
    if (std::chrono::steady_clock::now() >= until) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Writes data (page-aligned size) at addr through mem: 0 or the errno.
int WriteMem(const std::string& mem, std::uint64_t addr, std::size_t n,
             char byte) {
  const int fd = ::open(mem.c_str(), O_WRONLY);
  if (fd < 0) return errno;
  void* p = nullptr;
  if (posix_memalign(&p, kPage, n) != 0) std::abort();
  std::memset(p, byte, n);
  const ssize_t r = ::pwrite(fd, p, n, static_cast<off_t>(addr));
  const int error = r < 0 ? errno : 0;
  std::free(p);
  ::close(fd);
  return error;
}

// --- every -o option has its effect -----------------------------------------

// A test killed before its destructors run (ctest's timeout, a SIGKILL by
// hand) leaves neither its mount nor its daemon behind: the daemon gets
// SIGTERM when the test's process dies, and unmounts.
TEST(MountTest, DaemonEndsWithTheTestThatStartedIt) {
  // Close-on-exec: the daemon must not hold the pipe open, or its end of
  // file would wait for the daemon.
  int report[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  const pid_t test = ::fork();
  ASSERT_GE(test, 0);
  if (test == 0) {
    ::close(report[0]);
    Mount mount;
    const std::string line =
        mount.ok() ? mount.path() + " " + std::to_string(mount.daemon_pid()) +
                         " " + mount.log_path()
                   : std::string("failed");
    if (::write(report[1], line.data(), line.size()) < 0) ::_exit(1);
    ::close(report[1]);
    ::pause();  // until killed, its destructors never run
    ::_exit(0);
  }
  ::close(report[1]);
  std::string line;
  char buffer[256];
  ssize_t n;
  while ((n = ::read(report[0], buffer, sizeof buffer)) > 0) {
    line.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(report[0]);
  ::kill(test, SIGKILL);
  ::waitpid(test, nullptr, 0);
  std::istringstream fields(line);
  std::string path, log;
  pid_t daemon = -1;
  fields >> path >> daemon >> log;
  ASSERT_GT(daemon, 0) << "the mount in the killed test: " << line;

  // Gone: no process, or a zombie no one reaps (its parent was the test).
  auto daemon_gone = [daemon] {
    const std::string stat =
        ReadFile("/proc/" + std::to_string(daemon) + "/stat");
    const std::size_t close = stat.rfind(')');
    return stat.empty() ||
           (close != std::string::npos && stat.compare(close, 4, ") Z ") == 0);
  };
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((IsMountpoint(path) || !daemon_gone()) &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const bool mounted = IsMountpoint(path);
  const bool gone = daemon_gone();
  // Whatever happened, nothing is left behind by this test.
  if (!gone) ::kill(daemon, SIGKILL);
  if (mounted) RunCommand({"umount", "-l", path}, std::chrono::seconds(20));
  ::rmdir(path.c_str());
  ::unlink(log.c_str());
  EXPECT_FALSE(mounted) << path << " is still mounted 20 s after its test died";
  EXPECT_TRUE(gone) << "daemon " << daemon
                    << " still runs 20 s after its test died";
}

TEST(MountTest, PageSizeOption) {
  Mount mount({"-o", "tasks=none,page_size=16384"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_EQ(ReadFile(mount / "host_page_size"), "16384\n");
  ASSERT_EQ(::mkdir((mount / "t").c_str(), 0700), 0);
  EXPECT_EQ(StatusFileValue(mount / "t/status", "page_size"), "16384");
  // Rounding follows the page size.
  ASSERT_EQ(WriteFile(mount / "t/ctl", "allocate 0x10001 1\n"), 0);
  EXPECT_EQ(ReadFile(mount / "t/maps"),
            "0000000000010000-0000000000014000 rw-/rwx copy\n");
  // I/O must be aligned to the mount's page size, not the host's.
  EXPECT_EQ(WriteMem(mount / "t/mem", 0x11000, kPage, 'x'), EINVAL);
  EXPECT_EQ(WriteMem(mount / "t/mem", 0x10000, 16384, 'x'), 0);
}

TEST(MountTest, AddressBitsOption) {
  Mount mount({"-o", "tasks=none,address_bits=30"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(::mkdir((mount / "t").c_str(), 0700), 0);
  struct stat st;
  ASSERT_EQ(::stat((mount / "t/mem").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, off_t{1} << 30);
  EXPECT_EQ(StatusFileValue(mount / "t/status", "address_bits"), "30");
  EXPECT_EQ(WriteFile(mount / "t/ctl", "allocate 0x3ffff000 4K\n"), 0);
  EXPECT_EQ(WriteFile(mount / "t/ctl", "allocate 0x40000000 4K\n"), EFAULT);
}

TEST(MountTest, DefaultAddressBitsAndPageSize) {
  Mount mount;
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_EQ(ReadFile(mount / "host_page_size"), "4096\n");
  ASSERT_EQ(::mkdir((mount / "t").c_str(), 0700), 0);
  struct stat st;
  ASSERT_EQ(::stat((mount / "t/mem").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, off_t{1} << 47);
  EXPECT_EQ(StatusFileValue(mount / "t/status", "address_bits"), "47");
}

TEST(MountTest, MaxTasksOption) {
  Mount mount({"-o", "tasks=none,max_tasks=2"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(::mkdir((mount / "a").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((mount / "b").c_str(), 0700), 0);
  EXPECT_EQ(::mkdir((mount / "c").c_str(), 0700), -1);
  EXPECT_EQ(errno, ENOSPC);
  // A fork counts too.
  EXPECT_EQ(WriteFile(mount / "a/ctl", "fork c\n"), ENOSPC);
  EXPECT_EQ(ListDir(mount.path()),
            (std::vector<std::string>{"host_page_size", "a", "b"}));
  // Removing one makes room again.
  ASSERT_EQ(::rmdir((mount / "a").c_str()), 0);
  EXPECT_EQ(::mkdir((mount / "c").c_str(), 0700), 0) << std::strerror(errno);
}

TEST(MountTest, MemoryLimitOption) {
  constexpr std::uint64_t kLimit = 1 << 20;
  Mount mount({"-o", "tasks=none,memory_limit=1M"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(::mkdir((mount / "t").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((mount / "u").c_str(), 0700), 0);
  // Address space is not memory: allocating far more than the limit works.
  ASSERT_EQ(WriteFile(mount / "t/ctl", "allocate 0x100000 64M\n"), 0);
  ASSERT_EQ(WriteFile(mount / "u/ctl", "allocate 0x100000 4K\n"), 0);
  // Pages fill what the tasks' records leave of the limit (docs/reference.md
  // §3: the limit covers both).
  const std::string mem = mount / "t/mem";
  std::uint64_t pages = 0;
  int e = 0;
  while (pages <= kLimit / kPage &&
         (e = WriteMem(mem, 0x100000 + pages * kPage, kPage, 'x')) == 0) {
    ++pages;
  }
  EXPECT_EQ(e, ENOSPC);
  EXPECT_GT(pages, 200u);
  EXPECT_LT(pages, kLimit / kPage);
  EXPECT_EQ(StatusFileValue(mount / "t/status", "resident_bytes"),
            std::to_string(pages * kPage));
  EXPECT_LE(StatfsUsedBytes(mount.path()), kLimit);
  // Rewriting a resident page needs nothing more.
  EXPECT_EQ(WriteMem(mem, 0x100000, kPage, 'y'), 0);
  // A copy-on-write copy of a page shares it (into a page-table chunk that
  // exists: one holds 512 pages, 0x100000-0x300000 here), but writing either
  // side needs a page. Far away it needs a new chunk, which is memory too.
  ASSERT_EQ(WriteFile(mount / "t/ctl", "copy 0x100000 4K 0x2f0000\n"), 0);
  EXPECT_EQ(WriteMem(mem, 0x2f0000, kPage, 'z'), ENOSPC);
  EXPECT_EQ(WriteFile(mount / "t/ctl", "copy 0x100000 4K 0x1000000\n"), ENOSPC);
  // The limit is the mount's, across tasks: u's page does not fit either,
  // nor does a new task's record.
  EXPECT_EQ(WriteMem(mount / "u/mem", 0x100000, kPage, 'u'), ENOSPC);
  EXPECT_EQ(::mkdir((mount / "v").c_str(), 0700), -1);
  EXPECT_EQ(errno, ENOSPC);
  // Freeing memory makes room again, even when the free splits a region
  // (one more map entry, which the reserve lets it have at the limit).
  ASSERT_EQ(WriteFile(mount / "t/ctl", "deallocate 0x101000 8K\n"), 0);
  EXPECT_EQ(WriteMem(mem, 0x100000 + pages * kPage, kPage, 'x'), 0);
}

TEST(MountTest, MaxTasksAppliesToManifestTasks) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string manifest =
      dir.Write("three.tasks", "task a\ntask b\n# c is one too many\ntask c\n");
  const std::string mountpoint = dir.MakeDir("mnt");
  const RunResult r = RunCommand(
      {DaemonPath(), "-f", "-o", "max_tasks=2,tasks=" + manifest, mountpoint},
      std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("taskfs: " + manifest + ":4: ", 0), 0u) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_FALSE(IsMountpoint(mountpoint));
}

// --- what a manifest may be -------------------------------------------------

// A manifest must be a regular file: /proc's files say st_size 0 and read
// on (/proc/self/mem used to mount as an empty manifest).
TEST(MountTest, ManifestThatIsNoRegularFileIsRefused) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string mountpoint = dir.MakeDir("mnt");
  for (const std::string manifest :
       {"/proc/self/mem", "/proc/self/status", "/dev/null"}) {
    SCOPED_TRACE(manifest);
    const RunResult r =
        RunCommand({DaemonPath(), "-f", "-o", "tasks=" + manifest, mountpoint},
                   std::chrono::seconds(10));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.err.rfind("taskfs: " + manifest + ": not a regular file", 0),
              0u)
        << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    EXPECT_FALSE(IsMountpoint(mountpoint));
  }
}

// A `load` of a 3 GiB file (sparse: no disk) under memory_limit=512M is
// refused before a byte of it is read, whether the pages it needs pass the
// limit or its region is too small; the daemon used to read it whole first
// (2 GiB resident). The bound: a load holds at most one 1 MiB piece of its
// file, so the daemon's peak resident memory stays under 64 MiB (idle it is
// about 5 MiB; ru_maxrss also counts the test's own pages the forked child
// held before exec).
TEST(MountTest, LoadOfAHugeFileIsRefusedWithoutReadingIt) {
  constexpr long kBoundKib = 64 * 1024;
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string big = dir / "big.bin";
  ASSERT_EQ(RunCommand({"truncate", "-s", "3G", big}).exit_code, 0);
  const std::string mountpoint = dir.MakeDir("mnt");
  struct Row {
    std::string region;  // the allocate line
    std::string named;   // what the error must say
  };
  for (const Row& row :
       {Row{"allocate 0x100000000 4G",
            "load failed: KERN_RESOURCE_SHORTAGE: 'big.bin' holds 3221225472 "
            "bytes"},
        Row{"allocate 0x100000000 64K",
            "load failed: KERN_INVALID_ADDRESS: 'big.bin' holds 3221225472 "
            "bytes"}}) {
    SCOPED_TRACE(row.region);
    const std::string manifest = dir.Write(
        "big.tasks", "task a\n" + row.region + "\nload 0x100000000 big.bin\n");
    const auto start = std::chrono::steady_clock::now();
    const RunResult r =
        RunCommand({DaemonPath(), "-f", "-o",
                    "memory_limit=512M,tasks=" + manifest, mountpoint},
                   std::chrono::seconds(60));
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.err.rfind("taskfs: " + manifest + ":3: " + row.named, 0), 0u)
        << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    EXPECT_GT(r.max_rss_kib, 0);
    EXPECT_LT(r.max_rss_kib, kBoundKib);
    EXPECT_LT(took, std::chrono::seconds(5));
    EXPECT_FALSE(IsMountpoint(mountpoint));
  }
}

TEST(MountTest, EveryLogLevelIsAccepted) {
  for (const char* level : {"trace", "debug", "info", "warn", "error", "off"}) {
    SCOPED_TRACE(level);
    Mount mount({"-o", std::string("tasks=none,log_level=") + level});
    EXPECT_TRUE(mount.ok()) << mount.error();
  }
}

TEST(MountTest, LogLevelDebugLogsFailuresWithTheKernName) {
  Mount mount({"-o", "tasks=none,log_level=debug"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(::mkdir((mount / "t").c_str(), 0700), 0);
  ASSERT_EQ(WriteFile(mount / "t/ctl", "allocate 0x10000 4K\n"), 0);
  ASSERT_EQ(WriteFile(mount / "t/ctl", "allocate 0x10000 4K\n"), ENOMEM);
  EXPECT_NE(AwaitLogLine(mount, std::regex("debug.*KERN_NO_SPACE")), "")
      << mount.DaemonLog();
  ASSERT_EQ(WriteFile(mount / "t/ctl", "protect 0x20000 4K r--\n"), EFAULT);
  EXPECT_NE(AwaitLogLine(mount, std::regex("debug.*KERN_INVALID_ADDRESS")), "")
      << mount.DaemonLog();
}

TEST(MountTest, LogLevelInfoDoesNotLogFailures) {
  Mount mount({"-o", "tasks=none"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(::mkdir((mount / "t").c_str(), 0700), 0);
  ASSERT_EQ(WriteFile(mount / "t/ctl", "allocate 0x10000 4K\n"), 0);
  ASSERT_EQ(WriteFile(mount / "t/ctl", "allocate 0x10000 4K\n"), ENOMEM);
  // The startup line comes first: once it is there, the log is written.
  ASSERT_NE(AwaitLogLine(mount, std::regex("info")), "") << mount.DaemonLog();
  EXPECT_EQ(mount.DaemonLog().find("KERN_NO_SPACE"), std::string::npos)
      << mount.DaemonLog();
  EXPECT_EQ(mount.DaemonLog().find("debug"), std::string::npos)
      << mount.DaemonLog();
}

TEST(MountTest, LogLevelOffLogsNothing) {
  Mount mount({"-o", "tasks=none,log_level=off"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(::mkdir((mount / "t").c_str(), 0700), 0);
  EXPECT_EQ(WriteFile(mount / "t/ctl", "protect 0x20000 4K r--\n"), EFAULT);
  EXPECT_EQ(mount.StopWith(SIGTERM), 0);
  EXPECT_EQ(mount.DaemonLog(), "");
}

TEST(MountTest, TasksNoneStartsEmpty) {
  Mount mount({"-o", "tasks=none"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_EQ(ListDir(mount.path()),
            (std::vector<std::string>{"host_page_size"}));
  struct stat st;
  ASSERT_EQ(::stat(mount.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  EXPECT_EQ(st.st_uid, ::getuid());
  ASSERT_EQ(::stat((mount / "host_page_size").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444u);
}

TEST(MountTest, NoTasksOptionMountsTheEmbeddedDemo) {
  Mount mount(std::vector<std::string>{});  // no options: the demo
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_EQ(ListDir(mount.path()),
            (std::vector<std::string>{"host_page_size", "demo", "child"}));
}

TEST(MountTest, StandardFuseOptionsWork) {
  Mount mount({"-s", "-o", "tasks=none,allow_other"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  const MountInfo info = FindMountInfo(mount.path());
  ASSERT_TRUE(info.found);
  EXPECT_NE(info.super_options.find("allow_other"), std::string::npos)
      << info.super_options;
  // default_permissions is always on.
  EXPECT_NE(info.super_options.find("default_permissions"), std::string::npos)
      << info.super_options;
  ASSERT_EQ(::mkdir((mount / "t").c_str(), 0700), 0);
  EXPECT_EQ(WriteFile(mount / "t/ctl", "allocate 0x10000 4K\n"), 0);
}

TEST(MountTest, DebugOptionTracesRequests) {
  Mount mount({"-d", "-o", "tasks=none"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(::mkdir((mount / "t").c_str(), 0700), 0);
  EXPECT_NE(AwaitLogLine(mount, std::regex("MKDIR")), "") << mount.DaemonLog();
}

TEST(MountTest, AutoUnmountUnmountsWhenTheDaemonIsKilled) {
  Mount mount({"-o", "tasks=none,auto_unmount"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_EQ(mount.StopWith(SIGKILL), -1);
  // The unmount is fusermount3's, a process of its own that notices the
  // daemon's end and may wait its turn for a core: on a 2-core machine
  // running builds beside the tests it took over 10 s, so the deadline is
  // generous. A mount that stays fails all the same.
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (IsMountpoint(mount.path()) &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(IsMountpoint(mount.path()));
}

// --- a mountpoint that is already a mount (docs/reference.md §3)
// -------------------------

// The one line a refused start prints, or a note of what it printed instead.
std::string OneLine(const RunResult& r) {
  if (r.err.empty() || r.err.back() != '\n' ||
      r.err.find('\n') != r.err.size() - 1) {
    return "not one line: [" + r.err + "]";
  }
  return r.err;
}

int MountCount(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  int count = 0;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    if (point == path) ++count;
  }
  return count;
}

TEST(MountTest, SecondDaemonOnAMountedMountpointIsRefused) {
  Mount mount({"-o", "tasks=none"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(::mkdir((mount / "first").c_str(), 0700), 0);
  const RunResult r =
      RunCommand({DaemonPath(), "-f", "-o", "tasks=none", mount.path()},
                 std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(OneLine(r), "taskfs: mountpoint " + mount.path() +
                            ": already a mount (fuse.taskfs); unmount it "
                            "first or choose another directory\n");
  // Nothing was stacked: the first daemon's tasks are still what shows.
  EXPECT_EQ(MountCount(mount.path()), 1);
  EXPECT_EQ(ListDir(mount.path()),
            (std::vector<std::string>{"host_page_size", "first"}));
}

TEST(MountTest, MountpointThatIsAnotherFileSystemsMountIsRefused) {
  TempDir dir;
  const std::string point = dir.MakeDir("tmpfs");
  ASSERT_EQ(RunCommand({"mount", "-t", "tmpfs", "none", point}).exit_code, 0);
  const RunResult r =
      RunCommand({DaemonPath(), "-f", "-o", "tasks=none", point + "/"},
                 std::chrono::seconds(20));
  const int mounts = MountCount(point);
  RunCommand({"umount", "-l", point});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(OneLine(r), "taskfs: mountpoint " + point +
                            "/: already a mount (tmpfs); unmount it first or "
                            "choose another directory\n");
  EXPECT_EQ(mounts, 1);
}

TEST(MountTest, DeadMountIsNamedWithItsRemedy) {
  Mount mount({"-o", "tasks=none"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_EQ(mount.StopWith(SIGKILL), -1);  // no auto_unmount: the mount stays
  const RunResult r =
      RunCommand({DaemonPath(), "-f", "-o", "tasks=none", mount.path()},
                 std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(OneLine(r), "taskfs: mountpoint " + mount.path() +
                            ": a dead FUSE mount (its daemon is gone); clear "
                            "it with 'fusermount3 -u " +
                            mount.path() + "'\n");
  // The remedy it names works, and then the daemon mounts there again.
  EXPECT_EQ(RunCommand({"fusermount3", "-u", mount.path()}).exit_code, 0);
  EXPECT_FALSE(IsMountpoint(mount.path()));
  Mount again({"-o", "tasks=none"}, MountAs{mount.path()});
  EXPECT_TRUE(again.ok()) << again.error();
}

// --- the mount(8) form: SOURCE MOUNTPOINT -----------------------------------

// The fixture runs `taskfs -f OPTIONS... MOUNTPOINT`: a SOURCE as the last
// option makes `taskfs -f -o OPTS SOURCE MOUNTPOINT`.
TEST(MountTest, SourceNoneMountsNoTasks) {
  Mount mount({"-o", "page_size=16384", "none"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_EQ(ListDir(mount.path()),
            (std::vector<std::string>{"host_page_size"}));
  EXPECT_EQ(ReadFile(mount / "host_page_size"), "16384\n");
}

TEST(MountTest, SourceManifestLoadsIt) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string manifest =
      dir.Write("m.tasks", "task one\nallocate 0x10000 4K\ntask two\n");
  Mount mount({"-o", "address_bits=30", manifest});
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_EQ(ListDir(mount.path()),
            (std::vector<std::string>{"host_page_size", "one", "two"}));
  EXPECT_EQ(ReadFile(mount / "one/maps"),
            "0000000000010000-0000000000011000 rw-/rwx copy\n");
  EXPECT_EQ(StatusFileValue(mount / "one/status", "address_bits"), "30");
  // mount(8) shows the manifest as the source.
  const MountInfo info = FindMountInfo(mount.path());
  ASSERT_TRUE(info.found);
  EXPECT_EQ(info.source, manifest);
}

TEST(MountTest, SourceManifestThatIsBadEndsTheDaemon) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string manifest = dir.Write("bad.tasks", "task one\nbogus\n");
  const std::string mountpoint = dir.MakeDir("mnt");
  const RunResult r = RunCommand({DaemonPath(), "-f", manifest, mountpoint},
                                 std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("taskfs: " + manifest + ":2: ", 0), 0u) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_FALSE(IsMountpoint(mountpoint));
}

// Exactly as mount(8) runs a helper: `taskfs SOURCE MOUNTPOINT -o OPTS`, in
// the background. The daemon forks away once mounted; fusermount3 -u ends it.
TEST(MountTest, MountHelperArgumentOrderInTheBackground) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string mountpoint = dir.MakeDir("mnt");
  const RunResult r =
      RunCommand({DaemonPath(), "none", mountpoint, "-o", "page_size=8192"},
                 std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(IsMountpoint(mountpoint)) << r.err;
  EXPECT_EQ(ReadFile(mountpoint + "/host_page_size"), "8192\n");
  EXPECT_EQ(ListDir(mountpoint), (std::vector<std::string>{"host_page_size"}));
  const MountInfo info = FindMountInfo(mountpoint);
  EXPECT_EQ(info.type, "fuse.taskfs");
  const RunResult u =
      RunCommand({"fusermount3", "-u", mountpoint}, std::chrono::seconds(20));
  EXPECT_EQ(u.exit_code, 0) << u.err;
  EXPECT_FALSE(IsMountpoint(mountpoint));
}

// --- what a mount looks like, and how it ends -------------------------------

TEST(MountTest, MountTypeIsFuseTaskfs) {
  Mount mount;
  ASSERT_TRUE(mount.ok()) << mount.error();
  const MountInfo info = FindMountInfo(mount.path());
  ASSERT_TRUE(info.found);
  EXPECT_EQ(info.type, "fuse.taskfs");
}

TEST(MountTest, SigtermUnmountsAndExitsZero) {
  Mount mount;
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_EQ(mount.StopWith(SIGTERM), 0) << mount.DaemonLog();
  EXPECT_FALSE(IsMountpoint(mount.path()));
}

TEST(MountTest, SigintUnmountsAndExitsZero) {
  Mount mount;
  ASSERT_TRUE(mount.ok()) << mount.error();
  // With a file open: the unmount must still be clean.
  ASSERT_EQ(::mkdir((mount / "t").c_str(), 0700), 0);
  const int fd = ::open((mount / "t/status").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  EXPECT_EQ(mount.StopWith(SIGINT), 0) << mount.DaemonLog();
  EXPECT_FALSE(IsMountpoint(mount.path()));
  ::close(fd);
}

TEST(MountTest, FusermountUnmountEndsTheDaemonWithZero) {
  Mount mount;
  ASSERT_TRUE(mount.ok()) << mount.error();
  const RunResult r =
      RunCommand({"fusermount3", "-u", mount.path()}, std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(IsMountpoint(mount.path()));
  // Signal 0 sends nothing: StopWith only waits for the daemon's own exit.
  EXPECT_EQ(mount.StopWith(0), 0) << mount.DaemonLog();
}

TEST(MountTest, StartupLineNamesMountpointPageSizeAndTasks) {
  Mount mount({"-o", "page_size=16384"});  // the demo: two tasks
  ASSERT_TRUE(mount.ok()) << mount.error();
  const std::string line =
      AwaitLogLine(mount, std::regex(" info: .*" + mount.path()));
  ASSERT_NE(line, "") << mount.DaemonLog();
  EXPECT_TRUE(std::regex_search(line, std::regex("\\b16384\\b"))) << line;
  EXPECT_TRUE(std::regex_search(
      line, std::regex("\\b2 tasks?\\b|\\btasks?[:=]? ?2\\b")))
      << line;
}

TEST(MountTest, StatfsReportsPageSizeAndNameMax) {
  for (const char* page_size : {"4096", "65536"}) {
    SCOPED_TRACE(page_size);
    Mount mount({"-o", std::string("tasks=none,page_size=") + page_size});
    ASSERT_TRUE(mount.ok()) << mount.error();
    struct statvfs st;
    ASSERT_EQ(::statvfs(mount.path().c_str(), &st), 0) << std::strerror(errno);
    EXPECT_EQ(st.f_bsize, std::strtoul(page_size, nullptr, 10));
    EXPECT_EQ(st.f_namemax, 64u);
  }
}

}  // namespace
}  // namespace taskfs::testing
