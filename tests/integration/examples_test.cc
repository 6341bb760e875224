// The programs in examples/ run for real against a mount of the demo: each
// must exit as documented and print what its README paragraph promises.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "taskfs/ioctl.h"
#include "tests/integration/mount_fixture.h"

namespace taskfs::testing {
namespace {

constexpr std::size_t kPage = 4096;
const char kGreeting[] =
    "Hello from taskfs! This is the data region of task demo.\n";

std::string Example(const std::string& name) {
  return SourceDir() + "/examples/" + name;
}

std::string DemoManifest() { return Example("demo.tasks"); }

// What a failed RunCommand printed, for assertion messages.
std::string Describe(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout\n" + r.out +
         "--- stderr\n" + r.err;
}

// Collapses runs of spaces, so that table rows compare without the padding.
std::string Squeeze(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  return out;
}

// Reads n bytes at addr of a mem file ("" on error), page-aligned buffer.
std::string ReadMem(const std::string& mem, std::uint64_t addr, std::size_t n) {
  const int fd = ::open(mem.c_str(), O_RDONLY);
  if (fd < 0) return "";
  void* p = nullptr;
  if (posix_memalign(&p, kPage, n) != 0) std::abort();
  const ssize_t got = ::pread(fd, p, n, static_cast<off_t>(addr));
  std::string out = got == static_cast<ssize_t>(n)
                        ? std::string(static_cast<char*>(p), n)
                        : "";
  std::free(p);
  ::close(fd);
  return out;
}

// Writes data (a multiple of the page size) at addr; 0 or errno.
int WriteMem(const std::string& mem, std::uint64_t addr,
             const std::string& data) {
  const int fd = ::open(mem.c_str(), O_WRONLY);
  if (fd < 0) return errno;
  void* p = nullptr;
  if (posix_memalign(&p, kPage, data.size()) != 0) std::abort();
  std::memcpy(p, data.data(), data.size());
  const ssize_t n = ::pwrite(fd, p, data.size(), static_cast<off_t>(addr));
  const int error = n < 0 ? errno : 0;
  std::free(p);
  ::close(fd);
  return error;
}

// One suite for every example. region_walk.c is compiled on first use.
class Examples : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!region_walk_.empty()) ::unlink(region_walk_.c_str());
    if (!region_walk_mach_.empty()) ::unlink(region_walk_mach_.c_str());
  }
#if defined(TASKFS_CLIENT_LIB)
  // Compiles examples/region_walk_mach.c against the build's libtaskfs;
  // "" on failure (after a failed assertion).
  std::string RegionWalkMach() {
    if (!region_walk_mach_.empty()) return region_walk_mach_;
    char path[] = "/tmp/taskfs-region_walk_mach-XXXXXX";
    const int fd = ::mkstemp(path);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    if (fd < 0) return "";
    ::close(fd);
    region_walk_mach_ = path;
    std::vector<std::string> argv = {"cc",
                                     "-Wall",
                                     "-Werror",
                                     "-I",
                                     TASKFS_CLIENT_INCLUDE,
                                     "-o",
                                     region_walk_mach_,
                                     Example("region_walk_mach.c"),
                                     TASKFS_CLIENT_LIB,
                                     "-pthread"};
    // A sanitizer build's library needs its runtime.
    if (std::string(TASKFS_CLIENT_CFLAGS) != "") {
      argv.push_back(TASKFS_CLIENT_CFLAGS);
    }
    const RunResult cc = RunCommand(argv);
    EXPECT_EQ(cc.exit_code, 0) << Describe(cc);
    return cc.exit_code == 0 ? region_walk_mach_ : "";
  }
#endif
  // Compiles examples/region_walk.c as its comment says; "" on failure
  // (after a failed assertion).
  std::string RegionWalk() {
    if (!region_walk_.empty()) return region_walk_;
    char path[] = "/tmp/taskfs-region_walk-XXXXXX";
    const int fd = ::mkstemp(path);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    if (fd < 0) return "";
    ::close(fd);
    region_walk_ = path;
    const RunResult cc =
        RunCommand({"cc", "-Wall", "-Werror", "-I", SourceDir() + "/include",
                    "-o", region_walk_, Example("region_walk.c")});
    EXPECT_EQ(cc.exit_code, 0) << Describe(cc);
    return cc.exit_code == 0 ? region_walk_ : "";
  }

 private:
  std::string region_walk_;
  std::string region_walk_mach_;
};

// --- tour.sh -----------------------------------------------------------------

RunResult RunTour(const Mount& m) {
  return RunCommand({"bash", Example("tour.sh"), m.path()},
                    std::chrono::seconds(120));
}

TEST_F(Examples, TourRunsCleanOnTheEmbeddedDemo) {
  Mount m(std::vector<std::string>{});  // no options: the embedded demo
  ASSERT_TRUE(m.ok()) << m.error();
  const RunResult r = RunTour(m);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.err, "");
  for (const char* want : {
           "|Hello from taskf|",  // the data region dump
           "|patched by tour.|",  // the patched page
           "dd: error writing 'demo/mem': Permission denied",  // text, guard
           "dd: error reading 'demo/mem': Permission denied",  // guard
           "dd: error reading 'demo/mem': Bad address",
           "dd: error reading 'demo/mem': Invalid argument",
           // demo/errors after section 4
           "pread 0x610000 0x1000: KERN_PROTECTION_FAILURE: page 0x610000 is "
           "---/rwx, read needs r\n",
           "addr=0x0\n",  // allocate anywhere
           "0000000000400000-0000000000410000 r-x/rwx copy\n",
           "error KERN_INVALID_TASK\n",
           "child      0x700000: written by tour-child into the share region",
           "demo       0x600000: Hello from taskfs! This is the data region",
           "tour-child 0x600000: tour-child's own greeting.",
           "== Done: every step behaved as expected ==",
       }) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  }
  // It cleans up after itself: only the demo's tasks are left.
  EXPECT_EQ(ListDir(m.path()),
            (std::vector<std::string>{"host_page_size", "demo", "child"}));
  // And can run again on the same mount.
  const RunResult again = RunTour(m);
  EXPECT_EQ(again.exit_code, 0) << Describe(again);
}

TEST_F(Examples, TourRunsOnTheDemoManifestFile) {
  Mount m({"-o", "tasks=" + DemoManifest()});
  ASSERT_TRUE(m.ok()) << m.error();
  const RunResult r = RunTour(m);
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
}

TEST_F(Examples, TourFailsWithoutTheDemo) {
  Mount m({"-o", "tasks=none"});
  ASSERT_TRUE(m.ok()) << m.error();
  const RunResult r = RunTour(m);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("tour.sh: FAILED: no demo tasks"), std::string::npos)
      << r.err;
}

TEST_F(Examples, TourFailsWhenAnExpectedResultDoesNotHappen) {
  Mount m(std::vector<std::string>{});
  ASSERT_TRUE(m.ok()) << m.error();
  // Overwrite the greeting: the tour must notice and stop.
  ASSERT_EQ(WriteMem(m / "demo/mem", 0x600000, std::string(kPage, 'x')), 0);
  const RunResult r = RunTour(m);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(
      r.err.find("FAILED: the data region does not start with the greeting"),
      std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.find("== Done"), std::string::npos);
}

TEST_F(Examples, TourNeedsTheDefaultPageSize) {
  Mount m({"-o", "page_size=16384"});
  ASSERT_TRUE(m.ok()) << m.error();
  const RunResult r = RunTour(m);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("page_size=4096"), std::string::npos) << r.err;
}

// --- find_string.py
// ------------------------------------------------------------

RunResult FindString(const std::string& mem, const std::string& needle) {
  return RunCommand({"python3", Example("find_string.py"), mem, needle});
}

TEST_F(Examples, FindStringFindsTheGreeting) {
  Mount m(std::vector<std::string>{});
  ASSERT_TRUE(m.ok()) << m.error();
  RunResult r = FindString(m / "demo/mem", "Hello from taskfs");
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "0x600000\n");
  // Every match, ascending; the child has the same data (a copy region).
  r = FindString(m / "child/mem", "task");
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "0x60000b\n0x60002e\n");
}

TEST_F(Examples, FindStringExitsOneWhenNotFound) {
  Mount m(std::vector<std::string>{});
  ASSERT_TRUE(m.ok()) << m.error();
  const RunResult r = FindString(m / "demo/mem", "Goodbye from taskfs");
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");
}

TEST_F(Examples, FindStringWithLargePages) {
  Mount m({"-o", "page_size=65536"});
  ASSERT_TRUE(m.ok()) << m.error();
  const RunResult r = FindString(m / "demo/mem", "task demo");
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "0x60002e\n");
}

TEST_F(Examples, FindStringAcrossChunksAndRegionsSkippingUnreadablePages) {
  Mount m({"-o", "tasks=none"});
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(::mkdir((m / "t").c_str(), 0700), 0) << std::strerror(errno);
  ASSERT_EQ(
      WriteFile(m / "t/ctl", "allocate 0x100000 1M\nallocate 0x500000 4K\n"),
      0);
  const std::string needle = "NEEDLE-xyz";
  const std::string mem = m / "t/mem";
  // Across the boundary of two 256 KiB reads: 4 bytes before 0x140000.
  std::string two(2 * kPage, '\0');
  two.replace(kPage - 4, needle.size(), needle);
  ASSERT_EQ(WriteMem(mem, 0x13f000, two), 0);
  // Into a page that is then made unreadable: not a match (and no error).
  ASSERT_EQ(WriteMem(mem, 0x180000, two), 0);
  std::string one(kPage, '\0');
  one.replace(0x10, needle.size(), needle);
  ASSERT_EQ(WriteMem(mem, 0x182000, one), 0);  // after the unreadable page
  ASSERT_EQ(WriteFile(m / "t/ctl", "protect 0x181000 4K ---\n"), 0);
  one.replace(0x10, needle.size(), std::string(needle.size(), '\0'));
  one.replace(0, needle.size(), needle);
  ASSERT_EQ(WriteMem(mem, 0x500000, one), 0);  // another region
  const RunResult r = FindString(mem, needle);
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "0x13fffc\n0x182010\n0x500000\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(Examples, FindStringUsage) {
  const RunResult r = RunCommand({"python3", Example("find_string.py")});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find("usage:"), std::string::npos);
}

// --- vm_copy.py
// ----------------------------------------------------------------

TEST_F(Examples, VmCopyAllocatesCopiesAndVerifies) {
  Mount m(std::vector<std::string>{});
  ASSERT_TRUE(m.ok()) << m.error();
  const std::string maps_before = ReadFile(m / "demo/maps");
  const RunResult r =
      RunCommand({"python3", Example("vm_copy.py"), m / "demo/mem"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.err, "");
  // The numbers Python computed are the C header's.
  char numbers[128];
  std::snprintf(numbers, sizeof numbers,
                "TASKFS_IOC_VM_ALLOCATE = 0x%08x, TASKFS_IOC_VM_COPY = 0x%08x",
                static_cast<unsigned>(TASKFS_IOC_VM_ALLOCATE),
                static_cast<unsigned>(TASKFS_IOC_VM_COPY));
  for (const std::string& want : {
           std::string(numbers),
           std::string("vm_allocate(anywhere, 65536 bytes) -> src 0x0\n"),
           std::string("vm_allocate(anywhere, 65536 bytes) -> dst 0x10000\n"),
           std::string("vm_copy(src=0x0, size=65536, dst=0x10000)\n"),
           std::string(
               "ok: 0x10000..0x20000 reads back the 16 pages of the source"),
           std::string(
               "ok: the copy still holds the old contents (copy-on-write)"),
           std::string("fails with EINVAL (KERN_INVALID_ARGUMENT)"),
           std::string("all checks passed\n"),
       }) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  }
  EXPECT_EQ(r.out.find("FAILED"), std::string::npos) << r.out;
  // It deallocated what it allocated.
  EXPECT_EQ(ReadFile(m / "demo/maps"), maps_before);
}

TEST_F(Examples, VmCopyWithOtherSizes) {
  Mount m({"-o", "tasks=none,page_size=16384"});
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(::mkdir((m / "t").c_str(), 0700), 0) << std::strerror(errno);
  const RunResult r =
      RunCommand({"python3", Example("vm_copy.py"), m / "t/mem", "40"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.out.find("-> dst 0xa0000\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("reads back the 40 pages"), std::string::npos) << r.out;
}

// --- cow_watch.py
// --------------------------------------------------------------

TEST_F(Examples, CowWatchShowsCopyOnWriteInStatus) {
  Mount m({"-o", "tasks=none"});
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(::mkdir((m / "cow").c_str(), 0700), 0) << std::strerror(errno);
  const RunResult r =
      RunCommand({"python3", Example("cow_watch.py"), m / "cow/mem"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const std::string out = Squeeze(r.out);
  for (const char* want : {
           "task cow, page size 4096, 8 pages\n",
           "before 0 0\n",
           "vm_allocate 0x0, 0x8000 0 0 +0/+0 pages ok\n",
           "write 8 pages at 0x0 32768 0 +8/+0 pages ok\n",
           "vm_copy 0x0 -> 0x8000 32768 32768 +0/+8 pages ok\n",
           "write 1 page at 0x8000 36864 28672 +1/-1 pages ok\n",
           "vm_deallocate both 0 0 -9/-7 pages ok\n",
           "copy-on-write behaved as expected\n",
       }) {
    EXPECT_NE(out.find(want), std::string::npos) << want << "\n" << r.out;
  }
}

TEST_F(Examples, CowWatchOnTheForkedDemoAndLargePages) {
  // demo's pages are already shared with child: only the changes count.
  Mount m({"-o", "page_size=16384"});
  ASSERT_TRUE(m.ok()) << m.error();
  const RunResult r =
      RunCommand({"python3", Example("cow_watch.py"), m / "demo/mem", "4"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const std::string out = Squeeze(r.out);
  EXPECT_NE(out.find("vm_copy 0x0 -> 0x10000 "), std::string::npos) << r.out;
  EXPECT_NE(out.find("+0/+4 pages ok\n"), std::string::npos) << r.out;
  EXPECT_NE(out.find("+1/-1 pages ok\n"), std::string::npos) << r.out;
  EXPECT_EQ(out.find("FAILED"), std::string::npos) << r.out;
}

// --- region_walk.c
// ---------------------------------------------------------------

TEST_F(Examples, RegionWalkPrintsExactlyTheMapsFile) {
  const std::string region_walk = RegionWalk();
  ASSERT_FALSE(region_walk.empty());
  Mount m(std::vector<std::string>{});
  ASSERT_TRUE(m.ok()) << m.error();
  for (const char* task : {"demo", "child"}) {
    const RunResult r =
        RunCommand({region_walk, m / (std::string(task) + "/mem")});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_EQ(r.out, ReadFile(m / (std::string(task) + "/maps"))) << task;
    EXPECT_EQ(r.err, "");
  }
  // Regions split by protect and merged again are walked as maps shows them.
  ASSERT_EQ(WriteFile(m / "demo/ctl", "protect 0x608000 4K r--\n"), 0);
  RunResult r = RunCommand({region_walk, m / "demo/mem"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, ReadFile(m / "demo/maps"));
  EXPECT_NE(r.out.find("0000000000608000-0000000000609000 r--/rwx copy\n"),
            std::string::npos)
      << r.out;
}

TEST_F(Examples, RegionWalkAllocatesFirst) {
  const std::string region_walk = RegionWalk();
  ASSERT_FALSE(region_walk.empty());
  Mount m({"-o", "tasks=none"});
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(::mkdir((m / "t").c_str(), 0700), 0) << std::strerror(errno);
  // An empty task: nothing at all.
  RunResult r = RunCommand({region_walk, m / "t/mem"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "");
  ASSERT_EQ(WriteFile(m / "t/ctl",
                      "allocate 0x200000 64K\ninherit 0x200000 64K none\n"),
            0);
  r = RunCommand({region_walk, "--allocate", "1M", m / "t/mem"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.err, "allocated 0x0-0x100000\n");
  EXPECT_EQ(r.out,
            "0000000000000000-0000000000100000 rw-/rwx copy\n"
            "0000000000200000-0000000000210000 rw-/rwx none\n");
  EXPECT_EQ(r.out, ReadFile(m / "t/maps"));
  // What it prints is what it allocated: whole pages.
  r = RunCommand({region_walk, "--allocate", "100", m / "t/mem"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.err, "allocated 0x100000-0x101000\n");
  EXPECT_EQ(r.out,
            "0000000000000000-0000000000101000 rw-/rwx copy\n"
            "0000000000200000-0000000000210000 rw-/rwx none\n");
  // A bad size is a usage error; a missing file an error.
  EXPECT_EQ(
      RunCommand({region_walk, "--allocate", "lots", m / "t/mem"}).exit_code,
      2);
  EXPECT_EQ(RunCommand({region_walk, m / "nosuchtask/mem"}).exit_code, 1);
}

#if defined(TASKFS_CLIENT_LIB)
// --- region_walk_mach.c and cow_watch_mach.py: the same programs on the
// client libraries ------------------------------------------------------

TEST_F(Examples, RegionWalkMachPrintsWhatRegionWalkPrints) {
  const std::string region_walk = RegionWalk();
  const std::string mach = RegionWalkMach();
  ASSERT_FALSE(region_walk.empty());
  ASSERT_FALSE(mach.empty());
  Mount m(std::vector<std::string>{});
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(WriteFile(m / "demo/ctl", "protect 0x608000 4K r--\n"), 0);
  for (const char* task : {"demo", "child"}) {
    const std::string t = task;
    const RunResult raw = RunCommand({region_walk, m / (t + "/mem")});
    const RunResult r = RunCommand({mach, m / t});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_EQ(r.out, raw.out) << task;
    EXPECT_EQ(r.out, ReadFile(m / (t + "/maps"))) << task;
    EXPECT_EQ(r.err, "");
    // The mem file works as the argument too.
    EXPECT_EQ(RunCommand({mach, m / (t + "/mem")}).out, raw.out);
  }
}

TEST_F(Examples, RegionWalkMachAllocatesFirst) {
  const std::string mach = RegionWalkMach();
  ASSERT_FALSE(mach.empty());
  Mount m({"-o", "tasks=none"});
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(::mkdir((m / "t").c_str(), 0700), 0) << std::strerror(errno);
  RunResult r = RunCommand({mach, m / "t"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "");
  r = RunCommand({mach, "--allocate", "100", m / "t"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.err, "allocated 0x0-0x1000\n");
  EXPECT_EQ(r.out, "0000000000000000-0000000000001000 rw-/rwx copy\n");
  EXPECT_EQ(RunCommand({mach, "--allocate", "lots", m / "t"}).exit_code, 2);
  r = RunCommand({mach, m / "nosuchtask"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "region_walk_mach: " + (m / "nosuchtask") +
                       ": (os/kern) invalid task\n");
}

RunResult CowWatchMach(const std::string& dir, const std::string& pages = "") {
  std::vector<std::string> argv = {"python3", Example("cow_watch_mach.py"),
                                   dir};
  if (!pages.empty()) argv.push_back(pages);
  return RunCommand(argv, std::chrono::seconds(60),
                    {std::string("PYTHONPATH=") + TASKFS_PYTHONPATH});
}

TEST_F(Examples, CowWatchMachPrintsWhatCowWatchPrints) {
  Mount m({"-o", "tasks=none"});
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(::mkdir((m / "cow").c_str(), 0700), 0) << std::strerror(errno);
  const RunResult raw =
      RunCommand({"python3", Example("cow_watch.py"), m / "cow/mem"});
  ASSERT_EQ(raw.exit_code, 0) << Describe(raw);
  const RunResult r = CowWatchMach(m / "cow");
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, raw.out);
  EXPECT_NE(r.out.find("copy-on-write behaved as expected\n"),
            std::string::npos);
  // Large pages, the forked demo.
  Mount big({"-o", "page_size=16384"});
  ASSERT_TRUE(big.ok()) << big.error();
  const RunResult r4 = CowWatchMach(big / "demo/mem", "4");
  ASSERT_EQ(r4.exit_code, 0) << Describe(r4);
  EXPECT_NE(Squeeze(r4.out).find("+1/-1 pages ok\n"), std::string::npos)
      << r4.out;
}

TEST_F(Examples, CowWatchMachReportsTheMachError) {
  Mount m({"-o", "tasks=none,memory_limit=1M"});
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(::mkdir((m / "cow").c_str(), 0700), 0) << std::strerror(errno);
  const RunResult r = CowWatchMach(m / "cow", "1024");
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("KERN_RESOURCE_SHORTAGE"), std::string::npos) << r.err;
  EXPECT_EQ(CowWatchMach(m / "nosuch").exit_code, 2);
}
#endif  // TASKFS_CLIENT_LIB

// --- demo.tasks and greeting.txt
// --------------------------------------------------

TEST_F(Examples, DemoManifestFileMirrorsTheEmbeddedDemo) {
  Mount embedded(std::vector<std::string>{});
  ASSERT_TRUE(embedded.ok()) << embedded.error();
  Mount file({"-o", "tasks=" + DemoManifest()});
  ASSERT_TRUE(file.ok()) << file.error();
  EXPECT_EQ(ListDir(file.path()), ListDir(embedded.path()));
  for (const char* task : {"demo", "child"}) {
    const std::string t = task;
    const std::string maps = ReadFile(embedded / (t + "/maps"));
    EXPECT_FALSE(maps.empty()) << t;
    EXPECT_EQ(ReadFile(file / (t + "/maps")), maps) << t;
    EXPECT_EQ(ReadFile(file / (t + "/status")),
              ReadFile(embedded / (t + "/status")))
        << t;
    // The same bytes in every readable region (the guard is ---).
    for (const std::uint64_t region : {0x400000u, 0x600000u, 0x700000u}) {
      const std::string bytes =
          ReadMem(embedded / (t + "/mem"), region, 0x10000);
      ASSERT_EQ(bytes.size(), 0x10000u) << t << " " << region;
      EXPECT_EQ(ReadMem(file / (t + "/mem"), region, 0x10000), bytes)
          << t << " " << region;
    }
  }
  // greeting.txt is the embedded greeting, loaded at 0x600000.
  const std::string greeting = ReadFile(Example("greeting.txt"));
  EXPECT_EQ(greeting, kGreeting);
  const std::string data = ReadMem(file / "demo/mem", 0x600000, kPage);
  EXPECT_EQ(data.substr(0, greeting.size()), greeting);
  EXPECT_EQ(data.substr(greeting.size()),
            std::string(kPage - greeting.size(), '\0'));
  // The text is all 0xc3, as `fill` says.
  EXPECT_EQ(ReadMem(file / "demo/mem", 0x400000, 0x10000),
            std::string(0x10000, '\xc3'));
}

// The file is the embedded demo's source and says so first (that the daemon
// holds it is checked by ManifestTest.EmbeddedDemoIsTheExamplesFiles).
TEST_F(Examples, DemoManifestFileSaysItIsTheEmbeddedDemosSource) {
  const std::string text = ReadFile(DemoManifest());
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.rfind("# This file is the embedded demo manifest's source", 0),
            0u)
      << text;
}

}  // namespace
}  // namespace taskfs::testing
