// docs/reference.md §3: the memory limit holds for everything a user can make
// the daemon hold. Through a real mount with memory_limit=64M, each way of
// making the daemon hold memory ends in ENOSPC, the daemon's resident memory
// stays within its idle level + the limit + the open-file reserve + the pin
// reserve + the README's fixed base, and the daemon keeps serving another
// task:
//   - doubling copies of one written page towards 2^44 bytes, one page off
//     the source's alignment (aligned ones share page tables and cost per
//     copy: shown too, with 100 forks of the task holding them);
//   - 1,000,000 regions (vm_protect of every other page);
//   - 100,000 refused writes spread over 60 MiB;
//   - 10,000 tasks;
//   - 10,000 open files, and more at the limit;
//   - 3,000 open ctl files, each keeping a cut line that a 512 KiB write
//     of lines then continues.
// Every step checks the daemon's VmRSS and the test stops with a failure as
// soon as it passes the bound, before the machine is at risk (the bound is
// under 128 MiB).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/child_processes.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

constexpr long long kMiB = 1 << 20;
constexpr long long kLimit = 64 * kMiB;
// VmConfig::open_file_reserve: what open files may charge past the limit.
constexpr long long kReserve = 2 * kMiB;
// VmConfig::pin_reserve: what copies of pages that read replies still pin
// may take past the limit: a request (1 MiB at most) for each of libfuse's
// 10 worker threads, and the records of the slabs the copies may need.
constexpr long long kPinReserve = 10 * kMiB + 128 * 1024;
// The README's fixed base beyond the idle level: libfuse's worker threads
// (up to 10, each with a 1 MiB request buffer), the threads' reusable
// request vectors, and the allocator's slab rounding (2 MiB).
constexpr long long kBase = 24 * kMiB;

// prefix followed by n, built by appending (GCC 12's -Wrestrict takes
// "literal" + std::string&& for an overlap).
std::string Named(const char* prefix, std::uint64_t n) {
  std::string name(prefix);
  name.append(std::to_string(n));
  return name;
}

std::string Hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Raises this process's open-file limit to its maximum, which must allow
// at least `need` descriptors; *out gets the new limit.
void RaiseFileLimit(rlim_t need, rlimit* out) {
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, out), 0);
  ASSERT_GE(out->rlim_max, need) << "the test needs the descriptors";
  out->rlim_cur = out->rlim_max;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, out), 0) << std::strerror(errno);
}

class MemoryBoundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mount_.ok()) << mount_.error();
    daemon_ = mount_.daemon_pid();
    // The task that must keep being served: 16 written pages.
    ASSERT_EQ(::mkdir((mount_ / "other").c_str(), 0700), 0);
    ASSERT_EQ(WriteFile(mount_ / "other/ctl", "allocate 0x100000 64K\n"), 0);
    AlignedBuffer b(16 * kPage);
    std::memset(b.data, 'o', b.size);
    const int fd = ::open((mount_ / "other/mem").c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, b.data, b.size, 0x100000),
              static_cast<ssize_t>(b.size));
    ::close(fd);
    baseline_ = DaemonRss(daemon_);
    ASSERT_GT(baseline_, 0);
  }

  void TearDown() override {
    std::cout << "[ BOUND    ] daemon VmRSS peak " << peak_ << ", idle "
              << baseline_ << ": " << (peak_ - baseline_) / kMiB
              << " MiB above idle, bound "
              << (kLimit + kReserve + kPinReserve + kBase) / kMiB << " MiB\n";
  }

  // False (with a failure) once the daemon's VmRSS passes the bound; the
  // caller stops at once.
  bool WithinBound(const std::string& where) {
#ifdef TASKFS_SANITIZED
    (void)where;
    return true;  // shadow memory and quarantine: VmRSS says nothing here
#else
    const long long rss = DaemonRss(daemon_);
    peak_ = std::max(peak_, rss);
    if (rss < 0 || rss > baseline_ + kLimit + kReserve + kPinReserve + kBase) {
      ADD_FAILURE() << where << ": daemon VmRSS " << rss << " passes idle "
                    << baseline_ << " + limit " << kLimit << " + reserve "
                    << kReserve << " + pin reserve " << kPinReserve
                    << " + base " << kBase;
      return false;
    }
    return true;
#endif
  }

  // statfs's used figure never passes the limit and its reserve.
  void ExpectUsedWithinLimit() {
    EXPECT_LE(StatfsUsedBytes(mount_.path()), kLimit + kReserve);
  }

  // The other task still reads back, and a page of it is rewritten in
  // place (which needs no memory, even at the limit).
  void ExpectOtherServed() {
    const int fd = ::open((mount_ / "other/mem").c_str(), O_RDWR);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    AlignedBuffer b(16 * kPage);
    ASSERT_EQ(::pread(fd, b.data, b.size, 0x100000),
              static_cast<ssize_t>(b.size));
    for (std::size_t i = 0; i < b.size; ++i) {
      ASSERT_EQ(b.data[i], 'o') << "byte " << i;
    }
    EXPECT_EQ(::pwrite(fd, b.data, kPage, 0x100000),
              static_cast<ssize_t>(kPage))
        << std::strerror(errno);
    ::close(fd);
    EXPECT_NE(ReadFile(mount_ / "other/status").find("resident_bytes: 65536"),
              std::string::npos);
  }

  // Removes a task and checks the daemon takes new tasks again.
  void ExpectRemovedAndRoomAgain(const std::string& name) {
    ASSERT_EQ(::rmdir((mount_ / name).c_str()), 0) << std::strerror(errno);
    ASSERT_TRUE(
        PollUntil([&] { return StatfsUsedBytes(mount_.path()) < 4 * kMiB; },
                  std::chrono::seconds(10)))
        << StatfsUsedBytes(mount_.path()) << " bytes still used";
    ASSERT_EQ(::mkdir((mount_ / "again").c_str(), 0700), 0)
        << std::strerror(errno);
    ASSERT_EQ(::rmdir((mount_ / "again").c_str()), 0);
  }

  Mount mount_{{"-o", "tasks=none,memory_limit=64M,max_tasks=20000"}};
  pid_t daemon_ = -1;
  long long baseline_ = 0;
  long long peak_ = 0;
};

std::uint64_t MetadataOf(const std::string& dir) {
  return std::stoull("0" +
                     StatusValue(ReadFile(dir + "/status"), "metadata_bytes"));
}

// copy 0 N N doubles what holds the page, up to 2^44 bytes (2^32 pages):
// each copy shares the source's page-table subtrees, so metadata grows with
// the number of copies, not with the pages they map. Then forks of the task
// share its page tables whole.
TEST_F(MemoryBoundTest, DoublingCopiesAndForksCostPerCopyNotPerPage) {
  ASSERT_EQ(::mkdir((mount_ / "d").c_str(), 0700), 0);
  ASSERT_EQ(WriteFile(mount_ / "d/ctl", "allocate 0 16T\n"), 0);
  ASSERT_EQ(WriteMem(mount_ / "d/mem", 0, std::string(kPage, 'd')), 0);
  const std::uint64_t before = MetadataOf(mount_ / "d");
  for (unsigned k = 12; k < 44; ++k) {
    const std::uint64_t n = std::uint64_t{1} << k;
    ASSERT_EQ(
        WriteFile(mount_ / "d/ctl", "copy 0 " + Hex(n) + " " + Hex(n) + "\n"),
        0)
        << "copy of 2^" << k;
    if (!WithinBound(Named("copy of 2^", k))) return;
  }
  // The bound: a copy makes at most two new nodes on each of the tree's
  // four levels (of 4 KiB and a header each), 32 copies.
  const std::uint64_t after = MetadataOf(mount_ / "d");
  std::cout << "[ BOUND    ] 32 doubling copies to 2^44 bytes: metadata_bytes "
            << before << " -> " << after << "\n";
  EXPECT_LE(after - before, 32u * 2 * 4 * 4200);
  EXPECT_EQ(StatusValue(ReadFile(mount_ / "d/status"), "resident_bytes"),
            "4096");
  // A write at the top changes its page alone.
  const std::uint64_t top = (std::uint64_t{1} << 44) - kPage;
  ASSERT_EQ(WriteMem(mount_ / "d/mem", top, std::string(kPage, 't')), 0);
  std::string got;
  ASSERT_EQ(ReadMem(mount_ / "d/mem", top - kPage, kPage, &got), 0);
  EXPECT_EQ(got, std::string(kPage, 'd'));
  ASSERT_EQ(ReadMem(mount_ / "d/mem", 0, kPage, &got), 0);
  EXPECT_EQ(got, std::string(kPage, 'd'));
  ASSERT_EQ(ReadMem(mount_ / "d/mem", top, kPage, &got), 0);
  EXPECT_EQ(got, std::string(kPage, 't'));

  // 100 forks, each written once: a task record, its map and a path of
  // nodes apiece.
  const std::uint64_t used = StatfsUsedBytes(mount_.path());
  for (int fork = 1; fork <= 100; ++fork) {
    ASSERT_EQ(WriteFile(mount_ / "d/ctl", Named("fork d", fork).append("\n")),
              0)
        << fork;
    ASSERT_EQ(WriteMem(mount_ / Named("d", fork).append("/mem"), kPage << 20,
                       std::string(kPage, 'f')),
              0);
    if (!WithinBound("fork")) return;
  }
  const std::uint64_t per_fork = (StatfsUsedBytes(mount_.path()) - used) / 100;
  std::cout << "[ BOUND    ] 100 forks of the task, each written once: "
            << per_fork << " bytes each\n";
  EXPECT_LT(per_fork, 96 * 1024u);
  ASSERT_EQ(ReadMem(mount_ / "d/mem", kPage << 20, kPage, &got), 0);
  EXPECT_EQ(got, std::string(kPage, 'd'));
  ExpectUsedWithinLimit();
  ExpectOtherServed();
  for (int i = 1; i <= 100; ++i) {
    ASSERT_EQ(::rmdir((mount_ / Named("d", i)).c_str()), 0);
  }
  ExpectRemovedAndRoomAgain("d");
}

// Copies one page off the source's alignment share no subtree: each maps
// its pages slot by slot, and doubling them ends in ENOSPC at the limit.
TEST_F(MemoryBoundTest, UnalignedDoublingCopiesEndInEnospc) {
  ASSERT_EQ(::mkdir((mount_ / "d").c_str(), 0700), 0);
  ASSERT_EQ(WriteFile(mount_ / "d/ctl", "allocate 0 16T\n"), 0);
  ASSERT_EQ(WriteMem(mount_ / "d/mem", 0, std::string(kPage, 'd')), 0);
  int e = 0;
  unsigned k = 12;
  for (; k < 44 && e == 0; ++k) {
    const std::uint64_t n = std::uint64_t{1} << k;
    e = WriteFile(mount_ / "d/ctl",
                  "copy 0 " + Hex(n) + " " + Hex(n + kPage) + "\n");
    if (!WithinBound(Named("copy of 2^", k))) return;
  }
  EXPECT_EQ(e, ENOSPC) << "at 2^" << k - 1;
  EXPECT_LT(k - 1, 44u);
  std::cout << "[ BOUND    ] unaligned doubling copies refused at 2^" << k - 1
            << " bytes\n";
  ExpectUsedWithinLimit();
  // The refusal named the limit.
  EXPECT_NE(ReadFile(mount_ / "d/errors")
                .find("KERN_RESOURCE_SHORTAGE: memory "
                      "limit 67108864 bytes"),
            std::string::npos);
  ExpectOtherServed();
  ExpectRemovedAndRoomAgain("d");
}

TEST_F(MemoryBoundTest, AMillionRegionsEndInEnospc) {
  constexpr std::uint64_t kRegions = 1000000;
  ASSERT_EQ(::mkdir((mount_ / "r").c_str(), 0700), 0);
  ASSERT_EQ(WriteFile(mount_ / "r/ctl", "allocate 0 8G\n"), 0);
  // vm_protect of every other page: each makes two more regions. Batches
  // of 256 commands per write.
  int e = 0;
  std::uint64_t made = 1;
  for (std::uint64_t page = 1; made < kRegions && e == 0;) {
    std::string batch;
    for (int i = 0; i < 256; ++i, page += 2) {
      batch += "protect " + Hex(page * kPage) + " 4K r--\n";
    }
    e = WriteFile(mount_ / "r/ctl", batch);
    if (e == 0) made += 2 * 256;
    if (made % (64 * 1024) < 512 && !WithinBound("regions")) return;
  }
  if (!WithinBound("regions")) return;
  EXPECT_EQ(e, ENOSPC) << made << " regions";
  std::cout << "[ BOUND    ] " << made << " regions before ENOSPC\n";
  ExpectUsedWithinLimit();
  // Their maps text and its list of regions are as large as the map: at
  // the limit a read of maps is refused too, rather than held uncharged.
  {
    const int fd = ::open((mount_ / "r/maps").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    std::vector<char> buf(1 << 16);
    EXPECT_EQ(Err(::read(fd, buf.data(), buf.size())), ENOSPC);
    ::close(fd);
    if (!WithinBound("maps")) return;
  }
  ExpectOtherServed();
  // Freeing whole regions splits nothing, so it works at the limit.
  EXPECT_EQ(WriteFile(mount_ / "r/ctl", "deallocate 0 8G\n"), 0);
  ExpectRemovedAndRoomAgain("r");
}

TEST_F(MemoryBoundTest, RefusedWritesLeaveNothingBehind) {
  constexpr int kRefused = 100000;
  ASSERT_EQ(::mkdir((mount_ / "f").c_str(), 0700), 0);
  ASSERT_EQ(WriteFile(mount_ / "f/ctl", "allocate 0x10000000 64M\n"), 0);
  ASSERT_EQ(WriteFile(mount_ / "f/ctl", "allocate 0x80000000 60M\n"), 0);
  // Fill the limit with pages.
  const int fd = ::open((mount_ / "f/mem").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  AlignedBuffer b(kMiB);
  std::memset(b.data, 'f', b.size);
  int e = 0;
  for (long long off = 0; off < 64 * kMiB && e == 0; off += kMiB) {
    e = WriteAll(fd, b.data, kMiB, 0x10000000 + off);
  }
  ASSERT_TRUE(e == ENOSPC || e == kShortTransfer) << std::strerror(e);
  // Then page by page, to the last page that fits.
  for (long long off = 0; off < 64 * kMiB; off += kPage) {
    if (::pwrite(fd, b.data, kPage, 0x10000000 + off) < 0) {
      ASSERT_EQ(errno, ENOSPC);
      break;
    }
  }
  if (!WithinBound("filled")) return;
  const long long used = StatfsUsedBytes(mount_.path());
  const long long rss = DaemonRss(daemon_);
  // Writes into unwritten memory spread over 60 MiB, each needing page-table
  // room in a place that has none: every one refused, none leaving a byte.
  for (int i = 0; i < kRefused; ++i) {
    const std::uint64_t at = 0x80000000 + (static_cast<std::uint64_t>(i) * 37 %
                                           (60 * kMiB / (2 * kPage))) *
                                              2 * kPage;
    ASSERT_EQ(Err(::pwrite(fd, b.data, 2 * kPage, static_cast<off_t>(at))),
              ENOSPC)
        << "write " << i;
    if (i % 10000 == 0 && !WithinBound("refused writes")) return;
  }
  ::close(fd);
  // Nothing stays but the errors file's last 256 lines, which are charged
  // too (from the reserve, at the limit).
  const std::string errors = ReadFile(mount_ / "f/errors");
  EXPECT_EQ(std::count(errors.begin(), errors.end(), '\n'), 256);
  EXPECT_LE(StatfsUsedBytes(mount_.path()),
            used + 2 * static_cast<long long>(errors.size()) +
                static_cast<long long>(kPage));
#ifndef TASKFS_SANITIZED
  EXPECT_LE(DaemonRss(daemon_), rss + 2 * kMiB);
#else
  (void)rss;
#endif
  ExpectOtherServed();
  ExpectRemovedAndRoomAgain("f");
}

TEST_F(MemoryBoundTest, TenThousandTasksEndInEnospc) {
  constexpr int kTasks = 10000;
  int made = 0;
  int e = 0;
  for (; made < kTasks; ++made) {
    if (::mkdir((mount_ / Named("t", made)).c_str(), 0700) != 0) {
      e = errno;
      break;
    }
    if (made % 1000 == 0 && !WithinBound("tasks")) return;
  }
  if (!WithinBound("tasks")) return;
  EXPECT_EQ(e, ENOSPC) << made << " tasks";
  std::cout << "[ BOUND    ] " << made << " tasks before ENOSPC\n";
  ExpectUsedWithinLimit();
  ExpectOtherServed();
  for (int i = 0; i < made; ++i) {
    ASSERT_EQ(::rmdir((mount_ / Named("t", i)).c_str()), 0);
  }
  ASSERT_EQ(::mkdir((mount_ / "again").c_str(), 0700), 0);
}

TEST_F(MemoryBoundTest, OpenFilesAreChargedAndEndInEnospc) {
  constexpr int kFiles = 10000;
  rlimit nofile{};
  ASSERT_NO_FATAL_FAILURE(RaiseFileLimit(2 * kFiles, &nofile));
  ASSERT_EQ(::mkdir((mount_ / "o").c_str(), 0700), 0);
  std::vector<int> fds;
  const long long before = StatfsUsedBytes(mount_.path());
  // A ctl file holds room for the longest line it may keep (4 KiB).
  for (int i = 0; i < kFiles; ++i) {
    const int fd = ::open((mount_ / "o/ctl").c_str(), O_RDWR);
    ASSERT_GE(fd, 0) << i << ": " << std::strerror(errno);
    fds.push_back(fd);
    if (i % 1000 == 0 && !WithinBound("open files")) break;
  }
  const long long with_files = StatfsUsedBytes(mount_.path());
  EXPECT_GE(with_files - before, kFiles * 4096LL);
  // More, until the limit and then the reserve are used up.
  int e = 0;
  while (fds.size() + 16 < nofile.rlim_cur) {
    const int fd = ::open((mount_ / "o/ctl").c_str(), O_RDWR);
    if (fd < 0) {
      e = errno;
      break;
    }
    fds.push_back(fd);
    if (fds.size() % 1000 == 0 && !WithinBound("open files")) break;
  }
  EXPECT_EQ(e, ENOSPC) << fds.size() << " files";
  std::cout << "[ BOUND    ] " << fds.size()
            << " open ctl files before ENOSPC\n";
  ExpectUsedWithinLimit();
  for (int fd : fds) ::close(fd);
  ASSERT_TRUE(
      PollUntil([&] { return StatfsUsedBytes(mount_.path()) <= before; },
                std::chrono::seconds(10)));
  ExpectOtherServed();
}

// The attack on ctl's line reassembly: each open ctl file keeps a cut line,
// and a write of 512 KiB of lines (comments, which all succeed, so the
// assembler is kept) continues it and ends in another cut line. What a file
// keeps is bounded by its line limit and charged at open, so 3,000 such
// files stay within the bound, which they passed twentyfold when a file
// kept each write whole.
TEST_F(MemoryBoundTest, CutLinesContinuedByLargeWritesStayCharged) {
  constexpr int kFiles = 3000;
  rlimit nofile{};
  ASSERT_NO_FATAL_FAILURE(RaiseFileLimit(2 * kFiles, &nofile));
  ASSERT_EQ(::mkdir((mount_ / "c").c_str(), 0700), 0);
  std::string big;
  while (big.size() < (512 << 10) - 64) big += std::string(63, '#') + "\n";
  big += "# cut";
  const long long before = StatfsUsedBytes(mount_.path());
  std::vector<int> fds;
  int e = 0;
  for (int i = 0; i < kFiles; ++i) {
    const int fd = ::open((mount_ / "c/ctl").c_str(), O_WRONLY);
    if (fd < 0) {
      e = errno;  // the limit, reached by the files' charges
      break;
    }
    fds.push_back(fd);
    ASSERT_EQ(::write(fd, "\n# kept", 7), 7);
    ASSERT_EQ(::write(fd, big.data(), big.size()),
              static_cast<ssize_t>(big.size()))
        << "file " << i << ": " << std::strerror(errno);
    if (i % 100 == 0 && !WithinBound("cut lines")) break;
  }
  if (!WithinBound("cut lines")) return;
  std::cout << "[ BOUND    ] " << fds.size() << " ctl files keeping cut lines"
            << (e != 0 ? " before ENOSPC" : "") << "\n";
  EXPECT_TRUE(e == 0 || e == ENOSPC) << std::strerror(e);
  ExpectUsedWithinLimit();
  // Each kept line runs at close: all comments, all fine.
  for (int fd : fds) EXPECT_EQ(Err(::close(fd)), 0);
  ASSERT_TRUE(
      PollUntil([&] { return StatfsUsedBytes(mount_.path()) <= before; },
                std::chrono::seconds(10)));
  ExpectOtherServed();
}

// The memory limit after frees (the README's memory section): what the daemon
// holds on top of its idle level is what is charged plus the fixed base,
// whatever was freed before. With memory_limit=256M, memory that held one kind
// of thing (map entries, errors lines) and was freed is filled again with
// another (written pages), and the daemon's VmRSS never passes idle + 256 MiB +
// reserve + base. The test process holds a few MiB; the daemon at most that
// bound plus one step (16 MiB) before the test stops it.
class MemoryGivenBackTest : public ::testing::Test {
 protected:
  static constexpr long long kLimit = 256 * kMiB;

  void SetUp() override {
    ASSERT_TRUE(mount_.ok()) << mount_.error();
    daemon_ = mount_.daemon_pid();
    baseline_ = DaemonRss(daemon_);
    ASSERT_GT(baseline_, 0);
  }

  void TearDown() override {
    std::cout << "[ BOUND    ] daemon VmRSS peak " << peak_ << ", idle "
              << baseline_ << ": " << (peak_ - baseline_) / kMiB
              << " MiB above idle, bound " << (kLimit + kReserve + kBase) / kMiB
              << " MiB\n";
  }

  bool WithinBound(const std::string& where) {
#ifdef TASKFS_SANITIZED
    (void)where;
    return true;
#else
    const long long rss = DaemonRss(daemon_);
    peak_ = std::max(peak_, rss);
    if (rss < 0 || rss > baseline_ + kLimit + kReserve + kBase) {
      ADD_FAILURE() << where << ": daemon VmRSS " << rss << " passes idle "
                    << baseline_ << " + limit " << kLimit << " + reserve "
                    << kReserve << " + base " << kBase << " (statfs used "
                    << StatfsUsedBytes(mount_.path()) << ")";
      return false;
    }
    return true;
#endif
  }

  // Removes name and waits until nothing is charged.
  void RemoveAndWaitEmpty(const std::string& name) {
    ASSERT_EQ(::rmdir((mount_ / name).c_str()), 0) << std::strerror(errno);
    ASSERT_TRUE(
        PollUntil([&] { return StatfsUsedBytes(mount_.path()) < 4 * kMiB; },
                  std::chrono::seconds(10)))
        << StatfsUsedBytes(mount_.path()) << " bytes still used";
  }

  // Fills a new task with written pages up to the limit, 1 MiB a write,
  // checking the bound every 16 MiB and that at least at_least bytes were
  // written. False once the bound is passed.
  bool FillWithPages(const std::string& name,
                     long long at_least = kLimit - 32 * kMiB) {
    EXPECT_EQ(::mkdir((mount_ / name).c_str(), 0700), 0);
    EXPECT_EQ(WriteFile(mount_ / (name + "/ctl"), "allocate 0x10000000 512M\n"),
              0);
    const int fd = ::open((mount_ / (name + "/mem")).c_str(), O_RDWR);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    if (fd < 0) return false;
    AlignedBuffer b(kMiB);
    std::memset(b.data, 'p', b.size);
    int e = 0;
    long long off = 0;
    bool within = true;
    for (; off < 512 * kMiB && e == 0 && within; off += kMiB) {
      e = WriteAll(fd, b.data, kMiB, 0x10000000 + off);
      if (off % (16 * kMiB) == 0) within = WithinBound(name + " pages");
    }
    ::close(fd);
    if (!within || !WithinBound(name + " full")) return false;
    EXPECT_TRUE(e == ENOSPC || e == kShortTransfer) << std::strerror(e);
    EXPECT_GE(off, at_least) << "pages written";
    std::cout << "[ BOUND    ] " << name << ": " << off / kMiB
              << " MiB of pages written\n";
    return true;
  }

  Mount mount_{{"-o", "tasks=none,memory_limit=256M,max_tasks=1000"}};
  pid_t daemon_ = -1;
  long long baseline_ = 0;
  long long peak_ = 0;
};

// Map entries to the limit (vm_protect of every other page), rmdir, then
// written pages to the limit: the heap the entries took must serve, or go
// back before, the pages.
TEST_F(MemoryGivenBackTest, RegionsThenPagesStayWithinTheLimit) {
  ASSERT_EQ(::mkdir((mount_ / "r").c_str(), 0700), 0);
  ASSERT_EQ(WriteFile(mount_ / "r/ctl", "allocate 0 64G\n"), 0);
  int e = 0;
  std::uint64_t made = 1;
  for (std::uint64_t page = 1; e == 0;) {
    std::string batch;
    for (int i = 0; i < 1024; ++i, page += 2) {
      batch += "protect " + Hex(page * kPage) + " 4K r--\n";
    }
    e = WriteFile(mount_ / "r/ctl", batch);
    if (e == 0) made += 2 * 1024;
    if (made % (128 * 1024) < 2048 && !WithinBound("regions")) return;
  }
  ASSERT_EQ(e, ENOSPC);
  std::cout << "[ BOUND    ] " << made << " regions before ENOSPC\n";
  if (!WithinBound("regions")) return;
  RemoveAndWaitEmpty("r");
  if (!WithinBound("regions removed")) return;
  if (!FillWithPages("p")) return;
  RemoveAndWaitEmpty("p");
  WithinBound("pages removed");
}

// Map entries to the limit, then every region but one in every kKeep
// freed, then written pages to the limit. Each region takes about 180 bytes
// of heap (its entry and its coverage marks, made one after another), so
// the kKeep regions between two survivors take under 4 KiB and every heap
// page keeps a survivor: the trim gives back none of it, while the budget
// charges only the survivors (a kKeep-th of the entries). The heap the
// survivors keep resident must be charged, or the pages would take the
// daemon to about twice the limit. Once the task is removed, the pages
// fill the limit again: that charge goes when the heap does.
TEST_F(MemoryGivenBackTest, FragmentedRegionsThenPagesStayWithinTheLimit) {
  constexpr std::uint64_t kKeep = 16;
  ASSERT_EQ(::mkdir((mount_ / "f").c_str(), 0700), 0);
  ASSERT_EQ(WriteFile(mount_ / "f/ctl", "allocate 0 64G\n"), 0);
  int e = 0;
  std::uint64_t page = 1;
  std::uint64_t made = 1;
  while (e == 0) {
    std::string batch;
    for (int i = 0; i < 1024; ++i, page += 2) {
      batch += "protect " + Hex(page * kPage) + " 4K r--\n";
    }
    e = WriteFile(mount_ / "f/ctl", batch);
    if (e == 0) made += 2 * 1024;
    if (made % (128 * 1024) < 2048 && !WithinBound("regions")) return;
  }
  ASSERT_EQ(e, ENOSPC);
  if (!WithinBound("regions")) return;
  // Pages [0, made - 1) are one region each, whatever the refused batch did.
  std::uint64_t kept = 0;
  std::string batch;
  for (std::uint64_t first = 0; first + kKeep < made - 1; first += kKeep) {
    batch += "deallocate " + Hex((first + 1) * kPage) + " " +
             Hex((kKeep - 1) * kPage) + "\n";
    ++kept;
    if (kept % 1024 == 0) {
      ASSERT_EQ(WriteFile(mount_ / "f/ctl", batch), 0);
      batch.clear();
      if (kept % (16 * 1024) == 0 && !WithinBound("regions freed")) return;
    }
  }
  ASSERT_EQ(WriteFile(mount_ / "f/ctl", batch), 0);
  if (!WithinBound("regions freed")) return;
  std::cout << "[ BOUND    ] " << made << " regions, all but " << kept
            << " freed: statfs used " << StatfsUsedBytes(mount_.path())
            << ", VmRSS " << DaemonRss(daemon_) - baseline_ << " above idle\n";
  if (!FillWithPages("p", 0)) return;
  ASSERT_EQ(::rmdir((mount_ / "f").c_str()), 0) << std::strerror(errno);
  RemoveAndWaitEmpty("p");
  if (!WithinBound("all removed")) return;
  if (!FillWithPages("p2")) return;
  RemoveAndWaitEmpty("p2");
  WithinBound("pages removed");
}

// The errors files of 200 tasks filled with the longest lines (each
// failure's operation escaped to 4 bytes a byte), every task removed, then
// written pages to the limit.
TEST_F(MemoryGivenBackTest, ErrorsFloodThenPagesStayWithinTheLimit) {
  constexpr int kTasks = 200;
  // An unknown command, 240 bytes that each escape to \xNN.
  const std::string bad = std::string(240, '\x80') + "\n";
  for (int t = 0; t < kTasks; ++t) {
    const std::string dir = Named("e", t);
    ASSERT_EQ(::mkdir((mount_ / dir).c_str(), 0700), 0);
    const int fd = ::open((mount_ / (dir + "/ctl")).c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    for (int i = 0; i < 256; ++i) {
      ASSERT_LT(::write(fd, bad.data(), bad.size()), 0) << "line " << i;
    }
    ::close(fd);
    if (t % 20 == 0 && !WithinBound("errors")) return;
  }
  const std::string errors = ReadFile(mount_ / "e0/errors");
  std::cout << "[ BOUND    ] " << kTasks << " errors files of " << errors.size()
            << " bytes; statfs used " << StatfsUsedBytes(mount_.path())
            << ", VmRSS " << DaemonRss(daemon_) - baseline_ << " above idle\n";
  EXPECT_GT(errors.size(), 256u * 900);
  if (!WithinBound("errors")) return;
  for (int t = 0; t < kTasks; ++t) {
    ASSERT_EQ(::rmdir((mount_ / Named("e", t)).c_str()), 0);
  }
  ASSERT_TRUE(
      PollUntil([&] { return StatfsUsedBytes(mount_.path()) < 4 * kMiB; },
                std::chrono::seconds(10)));
  if (!WithinBound("errors removed")) return;
  if (!FillWithPages("p")) return;
  RemoveAndWaitEmpty("p");
  WithinBound("pages removed");
}

// status of a task and of its fork, which share every page, read by ten
// threads at once, over and over: the figures are exact, and the daemon
// holds no more while they run than before, nor after. 192 MiB of pages
// (49,152, each one counted as shared); the daemon holds them and the test
// process nothing more than the status texts.
TEST_F(MemoryGivenBackTest, ConcurrentStatusOfAForkNeedsNoMemoryPerPage) {
  constexpr long long kBytes = 192 * kMiB;
  ASSERT_EQ(::mkdir((mount_ / "s").c_str(), 0700), 0);
  ASSERT_EQ(WriteFile(mount_ / "s/ctl", "allocate 0x10000000 192M\n"), 0);
  {
    const int fd = ::open((mount_ / "s/mem").c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    AlignedBuffer b(kMiB);
    std::memset(b.data, 's', b.size);
    for (long long off = 0; off < kBytes; off += kMiB) {
      ASSERT_EQ(WriteAll(fd, b.data, kMiB, 0x10000000 + off), 0);
    }
    ::close(fd);
  }
  ASSERT_EQ(WriteFile(mount_ / "s/ctl", "fork s2\n"), 0);
  // Once each before measuring, so that whatever a first read sets up once
  // (its thread's buffers) is in the level.
  const std::string expect = std::to_string(kBytes);
  for (const char* t : {"s/status", "s2/status"}) {
    const std::string status = ReadFile(mount_ / t);
    ASSERT_EQ(StatusValue(status, "resident_bytes"), expect) << status;
    ASSERT_EQ(StatusValue(status, "shared_bytes"), expect) << status;
  }
  const long long before = DaemonRss(daemon_);
  long long peak = before;
  std::atomic<bool> wrong{false};
  std::atomic<int> running{10};
  std::vector<std::thread> readers;
  for (int r = 0; r < 10; ++r) {
    readers.emplace_back([&, r] {
      const std::string path = mount_ / (r % 2 == 0 ? "s/status" : "s2/status");
      for (int i = 0; i < 20; ++i) {
        const std::string status = ReadFile(path);
        if (StatusValue(status, "resident_bytes") != expect ||
            StatusValue(status, "shared_bytes") != expect) {
          wrong = true;
        }
      }
      --running;
    });
  }
  while (running.load() != 0) {
    peak = std::max(peak, DaemonRss(daemon_));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (auto& t : readers) t.join();
  EXPECT_FALSE(wrong.load());
  const long long after = DaemonRss(daemon_);
  std::cout << "[ BOUND    ] 10 status readers of 2 x " << kBytes / kMiB
            << " MiB: VmRSS +" << (peak - before) / 1024 << " KiB at peak, +"
            << (after - before) / 1024 << " KiB after\n";
#ifndef TASKFS_SANITIZED
  // The readers' request buffers and their texts: no more than a few
  // hundred KiB whatever the pages.
  EXPECT_LE(peak - before, 4 * kMiB);
  EXPECT_LE(after - before, 1 * kMiB);
#endif
  WithinBound("status");
  ASSERT_EQ(::rmdir((mount_ / "s2").c_str()), 0);
  RemoveAndWaitEmpty("s");
}

}  // namespace
}  // namespace taskfs::testing
