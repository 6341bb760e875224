// fs/taskfs_main.cc, the daemon's entry point, run as users run it: --help
// and --version exit 0 without mounting; a bad command line, or a memory
// limit too small for the tasks it is to create, ends it before it mounts
// with one line on stderr and exit status 1.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace taskfs::testing {
namespace {

// --- --help, --version and options that must not mount ---------------------

TEST(TaskfsMainTest, HelpAndVersionExitZero) {
  for (const char* flag : {"--help", "-h"}) {
    SCOPED_TRACE(flag);
    const RunResult r =
        RunCommand({DaemonPath(), flag}, std::chrono::seconds(20));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::string all = r.out + r.err;
    EXPECT_NE(all.find("MOUNTPOINT"), std::string::npos) << all;
    for (const char* option :
         {"page_size", "address_bits", "tasks", "memory_limit", "max_tasks",
          "log_level", "flavor=F"}) {
      EXPECT_NE(all.find(option), std::string::npos) << option;
    }
  }
  for (const char* flag : {"--version", "-V"}) {
    SCOPED_TRACE(flag);
    const RunResult r =
        RunCommand({DaemonPath(), flag}, std::chrono::seconds(20));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("taskfs ", 0), 0u) << r.out;
  }
}

// The version line names this build's version (CMake's project version) and
// the libfuse it runs with.
TEST(TaskfsMainTest, VersionLineNamesTheProjectAndLibfuseVersions) {
  const RunResult r =
      RunCommand({DaemonPath(), "--version"}, std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::string prefix =
      std::string("taskfs ") + TASKFS_PROJECT_VERSION + " (libfuse 3.";
  EXPECT_EQ(r.out.rfind(prefix, 0), 0u) << r.out;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;  // one line
  EXPECT_EQ(r.out.substr(r.out.size() - 2), ")\n") << r.out;
}

struct BadOptions {
  std::vector<std::string> args;  // after "taskfs -f"; "@" is the mountpoint
  std::string named;              // what the one-line error must mention
};

// Each bad command line ends the daemon before mounting: exit status 1 and
// one line on stderr naming the problem.
TEST(TaskfsMainTest, BadOptionsEndTheDaemonBeforeMounting) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string mountpoint = dir.MakeDir("mnt");
  const std::string missing = dir / "missing";
  const std::string file = dir.Write("file", "not a directory\n");
  const std::vector<BadOptions> cases = {
      {{"-o", "page_size=5000", "@"}, "page_size"},
      {{"-o", "page_size=2048", "@"}, "page_size"},
      {{"-o", "page_size=131072", "@"}, "page_size"},
      {{"-o", "page_size=4k", "@"}, "page_size"},
      {{"-o", "address_bits=99", "@"}, "address_bits"},
      {{"-o", "address_bits=23", "@"}, "address_bits"},
      {{"-o", "address_bits=63", "@"}, "address_bits"},
      {{"-o", "memory_limit=x", "@"}, "memory_limit"},
      {{"-o", "memory_limit=-1M", "@"}, "memory_limit"},
      {{"-o", "max_tasks=0", "@"}, "max_tasks"},
      {{"-o", "max_tasks=many", "@"}, "max_tasks"},
      {{"-o", "log_level=loud", "@"}, "log_level"},
      {{"-o", "frobnicate=1", "@"}, "frobnicate"},
      {{"-o", "tasks=none", missing}, missing},
      {{"-o", "tasks=none", file}, file},
      {{"-o", "tasks=none"}, "mountpoint"},
  };
  for (const BadOptions& c : cases) {
    std::vector<std::string> argv = {DaemonPath(), "-f"};
    for (const std::string& a : c.args) {
      argv.push_back(a == "@" ? mountpoint : a);
    }
    SCOPED_TRACE(::testing::PrintToString(argv));
    const RunResult r = RunCommand(argv, std::chrono::seconds(20));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;  // one line
    EXPECT_NE(r.err.find(c.named), std::string::npos) << r.err;
    EXPECT_FALSE(IsMountpoint(mountpoint));
    EXPECT_FALSE(IsMountpoint(file));
  }
}

// --- a memory limit too small for the tasks ---------------------------------

// Starts `taskfs -f -o memory_limit=LIMIT[,EXTRA] MOUNTPOINT`: it must mount
// (then the Mount unmounts it and reaps the daemon) or exit 1 with one line
// on stderr naming the limit, never end by a signal. True if it mounted.
bool MountsOrRefusesTheLimit(std::uint64_t limit, const std::string& extra) {
  SCOPED_TRACE("memory_limit=" + std::to_string(limit) + " " + extra);
  Mount mount({"-o", "memory_limit=" + std::to_string(limit) +
                         (extra.empty() ? "" : "," + extra)});
  if (mount.ok()) return true;
  const std::string log = mount.DaemonLog();
  EXPECT_EQ(mount.exit_status(), 1) << mount.error();
  EXPECT_EQ(log.rfind("taskfs: ", 0), 0u) << log;
  EXPECT_EQ(log.find('\n'), log.size() - 1) << "not one line: " << log;
  const std::string named = limit == 0
                                ? "bad memory_limit '0'"
                                : "KERN_RESOURCE_SHORTAGE: memory limit " +
                                      std::to_string(limit) + " bytes";
  EXPECT_NE(log.find(named), std::string::npos) << log;
  return false;
}

// Every memory limit too small for the tasks to create ends the daemon with
// one line and exit status 1 (it used to abort on an uncaught LimitReached):
// every 4 KiB from 0 to 64 KiB and the odd values around the first pages,
// then the least limit that mounts, found by bisection, and the values
// around it. For the embedded demo and for its copy on disk, whose `load`
// reads a file.
TEST(TaskfsMainTest, EveryLimitTooSmallForTheTasksIsOneLine) {
  const std::string on_disk = "tasks=" + SourceDir() + "/examples/demo.tasks";
  for (const std::string& tasks : {std::string(), on_disk}) {
    SCOPED_TRACE(tasks.empty() ? "the embedded demo" : tasks);
    std::vector<std::uint64_t> limits = {1, 4095, 4096, 4097, 8191, 8192};
    for (std::uint64_t l = 0; l <= 64 * 1024; l += 4096) limits.push_back(l);
    for (const std::uint64_t limit : limits) {
      EXPECT_FALSE(MountsOrRefusesTheLimit(limit, tasks));
    }
    std::uint64_t refused = 64 * 1024;
    std::uint64_t mounts = 4 << 20;
    ASSERT_TRUE(MountsOrRefusesTheLimit(mounts, tasks));
    while (mounts - refused > 1) {
      const std::uint64_t mid = refused + (mounts - refused) / 2;
      if (MountsOrRefusesTheLimit(mid, tasks)) {
        mounts = mid;
      } else {
        refused = mid;
      }
    }
    std::printf("the demo (%s) needs memory_limit=%llu\n",
                tasks.empty() ? "embedded" : "on disk",
                static_cast<unsigned long long>(mounts));
    EXPECT_FALSE(MountsOrRefusesTheLimit(mounts - 1, tasks));
    EXPECT_FALSE(MountsOrRefusesTheLimit(mounts - 4096, tasks));
    EXPECT_TRUE(MountsOrRefusesTheLimit(mounts, tasks));
    EXPECT_TRUE(MountsOrRefusesTheLimit(mounts + 4096, tasks));
  }
}

}  // namespace
}  // namespace taskfs::testing
