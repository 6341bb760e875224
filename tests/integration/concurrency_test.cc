// docs/reference.md §2's atomicity and §3's memory limit under concurrency,
// through a real mount: processes sharing one task's mem, a reader racing a
// writer of whole 256 KiB requests, cross-task copy-from in both directions at
// once with forks, and many writers against a small memory limit. Every child
// runs under a deadline: a hang kills it and fails the test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/child_processes.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/tagged_pages.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kPoll = std::chrono::milliseconds(5);

// A child's exit codes of this file's own, beside child_processes.h's.
constexpr int kTornRequest = kFirstOwnChildCode;

std::string DescribeExit(int code) {
  if (code == kTornRequest) return "torn request";
  return DescribeChildExit(code);
}

using Children = ChildProcesses<DescribeExit>;

std::uint64_t TagWriter(std::uint64_t tag) { return (tag >> 40) - 1; }
std::uint64_t TagPage(std::uint64_t tag) { return (tag >> 20) & 0xFFFFF; }
std::uint64_t TagRound(std::uint64_t tag) { return tag & 0xFFFFF; }

class ConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(mount_.ok()) << mount_.error(); }

  void MakeTask(const std::string& name, const std::string& commands) {
    ASSERT_EQ(::mkdir((mount_ / name).c_str(), 0700), 0)
        << std::strerror(errno);
    ASSERT_EQ(WriteFile(mount_ / (name + "/ctl"), commands), 0) << commands;
  }

  Mount mount_{{"-o", "tasks=none,address_bits=32,memory_limit=256M"}};
};

// (1) Four processes, one task: each owns every fourth block of 8 pages,
// writes its blocks round after round (whole blocks or page by page), reads
// them back, and reads the whole 1 MiB range, where every page must be some
// round of its owner's. At the end each page holds its owner's last round.
TEST_F(ConcurrencyTest, ProcessesSharingOneTaskKeepTheirPages) {
  constexpr int kProcs = 4;
  constexpr std::size_t kBlockPages = 8;
  constexpr std::size_t kBlocks = 32;
  constexpr std::size_t kPages = kBlockPages * kBlocks;
  constexpr std::uint64_t kBase = 0x100000;
  constexpr int kRounds = 100;
  MakeTask("t", "allocate 0x100000 1M\n");
  const std::string mem = mount_ / "t/mem";
  auto owner = [](std::size_t page) { return (page / kBlockPages) % kProcs; };

  Children children;
  for (int me = 0; me < kProcs; ++me) {
    children.Spawn("writer " + std::to_string(me), [&, me]() -> int {
      const int fd = ::open(mem.c_str(), O_RDWR);
      if (fd < 0) return errno;
      AlignedBuffer block(kBlockPages * kPage);
      AlignedBuffer all(kPages * kPage);
      for (int round = 1; round <= kRounds; ++round) {
        for (std::size_t b = me; b < kBlocks; b += kProcs) {
          const std::size_t first = b * kBlockPages;
          for (std::size_t i = 0; i < kBlockPages; ++i) {
            FillPage(block.page(i), MakeTag(me, first + i, round));
          }
          const std::uint64_t addr = kBase + first * kPage;
          if (round % 2 == 0) {
            if (int e = WriteAll(fd, block.data, block.size, addr)) return e;
          } else {
            for (std::size_t i = 0; i < kBlockPages; ++i) {
              if (int e =
                      WriteAll(fd, block.page(i), kPage, addr + i * kPage)) {
                return e;
              }
            }
          }
          if (int e = ReadAll(fd, block.data, block.size, addr)) return e;
          for (std::size_t i = 0; i < kBlockPages; ++i) {
            if (PageTag(block.page(i)) != MakeTag(me, first + i, round)) {
              return kWrongContent;
            }
          }
        }
        if (int e = ReadAll(fd, all.data, all.size, kBase)) return e;
        for (std::size_t p = 0; p < kPages; ++p) {
          const std::uint64_t tag = PageTag(all.page(p));
          if (tag == 0) continue;  // its owner has not written it yet
          if (tag == kBadPage) return kTornRequest;
          if (TagWriter(tag) != owner(p) || TagPage(tag) != p) {
            return kWrongContent;
          }
          if (owner(p) == static_cast<std::size_t>(me) &&
              TagRound(tag) != static_cast<std::uint64_t>(round)) {
            return kWrongContent;
          }
        }
      }
      ::close(fd);
      return 0;
    });
  }
  ASSERT_TRUE(children.WaitAll(Clock::now() + std::chrono::seconds(40)))
      << "writers hung";
  children.ExpectAllSucceeded();

  const int fd = ::open(mem.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  AlignedBuffer all(kPages * kPage);
  ASSERT_EQ(ReadAll(fd, all.data, all.size, kBase), 0);
  ::close(fd);
  for (std::size_t p = 0; p < kPages; ++p) {
    EXPECT_EQ(PageTag(all.page(p)), MakeTag(owner(p), p, kRounds))
        << "page " << p;
  }
}

// (2) One pwrite of 256 KiB is one vm_write, atomic: a reader of the same
// 256 KiB in single preads sees every page of a read from one generation,
// and generations never go back.
TEST_F(ConcurrencyTest, ReaderNeverSeesATornRequest) {
  constexpr std::size_t kPages = 64;
  constexpr std::uint64_t kBase = 0x100000;
  constexpr int kReads = 2000;
  MakeTask("t", "allocate 0x100000 256K\n");
  const std::string mem = mount_ / "t/mem";
  auto fill = [](AlignedBuffer& b, std::uint64_t generation) {
    for (std::size_t p = 0; p < kPages; ++p) {
      FillPage(b.page(p), MakeTag(0, p, generation));
    }
  };
  {
    const int fd = ::open(mem.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    AlignedBuffer b(kPages * kPage);
    fill(b, 1);
    ASSERT_EQ(WriteAll(fd, b.data, b.size, kBase), 0);
    ::close(fd);
  }
  struct State {
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> written{1};
    std::atomic<std::uint64_t> generations_seen{0};
  };
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
  Shared<State> state;

  Children writer;
  writer.Spawn("writer", [&]() -> int {
    const int fd = ::open(mem.c_str(), O_WRONLY);
    if (fd < 0) return errno;
    AlignedBuffer b(kPages * kPage);
    for (std::uint64_t g = 2; !state->stop.load(); ++g) {
      fill(b, g);
      if (int e = WriteAll(fd, b.data, b.size, kBase)) return e;
      state->written.store(g);
    }
    ::close(fd);
    return 0;
  });
  Children reader;
  reader.Spawn("reader", [&]() -> int {
    const int fd = ::open(mem.c_str(), O_RDONLY);
    if (fd < 0) return errno;
    AlignedBuffer b(kPages * kPage);
    std::uint64_t last = 0;
    std::uint64_t seen = 0;
    for (int i = 0; i < kReads; ++i) {
      if (int e = ReadAll(fd, b.data, b.size, kBase)) return e;
      const std::uint64_t tag = PageTag(b.page(0));
      if (tag == 0 || tag == kBadPage) return kTornRequest;
      const std::uint64_t generation = TagRound(tag);
      for (std::size_t p = 0; p < kPages; ++p) {
        if (PageTag(b.page(p)) != MakeTag(0, p, generation))
          return kTornRequest;
      }
      if (generation < last) return kWrongContent;
      if (generation != last) ++seen;
      last = generation;
    }
    state->generations_seen.store(seen);
    ::close(fd);
    return 0;
  });
  const bool reader_done =
      reader.WaitAll(Clock::now() + std::chrono::seconds(40));
  state->stop.store(true);
  const bool writer_done =
      writer.WaitAll(Clock::now() + std::chrono::seconds(10));
  ASSERT_TRUE(reader_done) << "reader hung";
  ASSERT_TRUE(writer_done) << "writer hung";
  reader.ExpectAllSucceeded();
  writer.ExpectAllSucceeded();
  // The reads overlapped the writes, or the test proved nothing.
  EXPECT_GT(state->generations_seen.load(), 1u);
  EXPECT_GT(state->written.load(), 2u);
}

// A range of n pages holding one task's data (every page page-tagged, one
// writer for all): the writer, or -1 if the pages disagree.
long long UniformWriter(AlignedBuffer& b, std::size_t n) {
  const std::uint64_t first = PageTag(b.page(0));
  if (first == 0 || first == kBadPage) return -1;
  for (std::size_t p = 0; p < n; ++p) {
    const std::uint64_t tag = PageTag(b.page(p));
    if (tag == kBadPage || TagPage(tag) != p ||
        TagWriter(tag) != TagWriter(first) || TagRound(tag) != 1) {
      return -1;
    }
  }
  return static_cast<long long>(TagWriter(first));
}

// (3) copy-from a←b and b←a at the same time, forks of both, and vm_copy
// within each: nothing deadlocks, and every range is one whole snapshot.
TEST_F(ConcurrencyTest, CrossCopyFromAndForksDoNotDeadlock) {
  constexpr std::size_t kPages = 64;
  constexpr std::uint64_t kBase = 0x100000;
  constexpr std::uint64_t kScratch = 0x300000;
  constexpr int kCopies = 2000;
  constexpr int kForks = 300;
  const std::string setup = "allocate 0x100000 256K\nallocate 0x300000 256K\n";
  MakeTask("a", setup);
  MakeTask("b", setup);
  for (int which = 0; which < 2; ++which) {
    const int fd =
        ::open((mount_ / (which == 0 ? "a/mem" : "b/mem")).c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    AlignedBuffer b(kPages * kPage);
    for (std::size_t p = 0; p < kPages; ++p) {
      FillPage(b.page(p), MakeTag(which, p, 1));
    }
    ASSERT_EQ(WriteAll(fd, b.data, b.size, kBase), 0);
    ::close(fd);
  }
  const std::string range = " 0x100000 256K 0x100000\n";
  // Copies task `from` into task `to`, kCopies times.
  auto copier = [&](const std::string& to, const std::string& from) {
    return [&, to, from]() -> int {
      const int ctl = ::open((mount_ / (to + "/ctl")).c_str(), O_RDWR);
      if (ctl < 0) return errno;
      for (int i = 0; i < kCopies; ++i) {
        if (int e = Command(ctl, "copy-from " + from + range)) return e;
      }
      ::close(ctl);
      return 0;
    };
  };
  // Reads n pages at addr of mem and checks they are one snapshot.
  auto check_uniform = [&](const std::string& path, std::uint64_t addr) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return errno;
    AlignedBuffer b(kPages * kPage);
    const int e = ReadAll(fd, b.data, b.size, addr);
    ::close(fd);
    if (e != 0) return e;
    return UniformWriter(b, kPages) < 0 ? kTornRequest : 0;
  };

  Children children;
  children.Spawn("copy b into a", copier("a", "b"));
  children.Spawn("copy a into b", copier("b", "a"));
  children.Spawn("forker", [&]() -> int {
    for (int i = 0; i < kForks; ++i) {
      const std::string parent = i % 2 == 0 ? "a" : "b";
      const std::string child = std::string("f").append(std::to_string(i));
      if (int e =
              WriteFile(mount_ / (parent + "/ctl"), "fork " + child + "\n")) {
        return e;
      }
      if (int e = check_uniform(mount_ / (child + "/mem"), kBase)) return e;
      if (::rmdir((mount_ / child).c_str()) != 0) return errno;
    }
    return 0;
  });
  children.Spawn("local copier", [&]() -> int {
    for (int i = 0; i < kCopies / 3; ++i) {
      const std::string task = i % 2 == 0 ? "a" : "b";
      if (int e = WriteFile(mount_ / (task + "/ctl"),
                            "copy 0x100000 256K 0x300000\n")) {
        return e;
      }
      if (int e = check_uniform(mount_ / (task + "/mem"), kScratch)) return e;
    }
    return 0;
  });
  ASSERT_TRUE(children.WaitAll(Clock::now() + std::chrono::seconds(40)))
      << "copies or forks deadlocked";
  children.ExpectAllSucceeded();

  for (const char* task : {"a", "b"}) {
    EXPECT_EQ(check_uniform(mount_ / (std::string(task) + "/mem"), kBase), 0)
        << task;
  }
  // Every forked task was removed again.
  struct stat st;
  for (int i = 0; i < kForks; ++i) {
    const std::string child = std::string("f").append(std::to_string(i));
    EXPECT_NE(::stat((mount_ / child).c_str(), &st), 0) << child;
  }
}

// (4) Writers in four tasks against an 8 MiB limit for 16 MiB of
// allocations: the resident total never passes the limit, every write that
// succeeded reads back, and every refused write (ENOSPC) changed nothing.
TEST(ConcurrencyMemoryLimitTest, LimitHoldsUnderManyWriters) {
  constexpr std::uint64_t kLimit = 8 << 20;
  constexpr int kWriters = 4;
  constexpr std::size_t kPages = 1024;  // 4 MiB per task
  constexpr std::uint64_t kBase = 0x100000;
  constexpr std::size_t kMaxChunk = 16;
  constexpr int kRewrites = 2000;
  Mount mount({"-o", "tasks=none,address_bits=32,memory_limit=8M"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  auto task = [](int i) { return std::string("w").append(std::to_string(i)); };
  for (int i = 0; i < kWriters; ++i) {
    ASSERT_EQ(::mkdir((mount / task(i)).c_str(), 0700), 0);
    ASSERT_EQ(WriteFile(mount / (task(i) + "/ctl"), "allocate 0x100000 4M\n"),
              0);
  }
  struct State {
    // What each page must hold: the tag of its last successful write, or 0.
    std::atomic<std::uint64_t> expected[kWriters][kPages];
    std::atomic<std::uint64_t> succeeded{0};
    std::atomic<std::uint64_t> refused{0};
  };
  Shared<State> state;

  Children children;
  for (int me = 0; me < kWriters; ++me) {
    children.Spawn("writer " + std::to_string(me), [&, me]() -> int {
      const int fd = ::open((mount / (task(me) + "/mem")).c_str(), O_RDWR);
      if (fd < 0) return errno;
      std::mt19937 random(static_cast<unsigned>(me) + 1);
      AlignedBuffer buf(2 * kMaxChunk * kPage);
      auto* expected = state->expected[me];
      // Writes [first, first + n) with round's tags; on ENOSPC checks that
      // the range still holds what it held.
      auto attempt = [&](std::size_t first, std::size_t n,
                         std::uint64_t round) -> int {
        for (std::size_t i = 0; i < n; ++i) {
          FillPage(buf.page(i), MakeTag(me, first + i, round));
        }
        const std::uint64_t addr = kBase + first * kPage;
        const int e = WriteAll(fd, buf.data, n * kPage, addr);
        if (e == 0) {
          for (std::size_t i = 0; i < n; ++i) {
            expected[first + i].store(MakeTag(me, first + i, round));
          }
          state->succeeded.fetch_add(1);
          return 0;
        }
        if (e != ENOSPC) return e;
        state->refused.fetch_add(1);
        if (int r = ReadAll(fd, buf.data, n * kPage, addr)) return r;
        for (std::size_t i = 0; i < n; ++i) {
          if (PageTag(buf.page(i)) != expected[first + i].load()) {
            return kWrongContent;
          }
        }
        return 0;
      };
      // Pass 1: every page once, in chunks of 1..16 pages in random order.
      std::vector<std::pair<std::size_t, std::size_t>> chunks;
      for (std::size_t p = 0; p < kPages;) {
        const std::size_t n =
            std::min(kPages - p, std::size_t{1} + random() % kMaxChunk);
        chunks.emplace_back(p, n);
        p += n;
      }
      std::shuffle(chunks.begin(), chunks.end(), random);
      for (const auto& [first, n] : chunks) {
        if (int e = attempt(first, n, 1)) return e;
      }
      // Pass 2: ranges of up to 32 pages over written and refused pages.
      for (int i = 0; i < kRewrites; ++i) {
        const std::size_t n = 1 + random() % (2 * kMaxChunk);
        const std::size_t first = random() % (kPages - n + 1);
        if (int e = attempt(first, n, 2 + i)) return e;
      }
      ::close(fd);
      return 0;
    });
  }

  // Watch the total while they run: each task's resident_bytes only grows
  // here, so a sum of samples taken one after another is at most the total
  // at the last sample.
  long long max_sum = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(40);
  bool all_done = false;
  while (!(all_done = children.Poll()) && Clock::now() < deadline) {
    long long sum = 0;
    for (int i = 0; i < kWriters; ++i) {
      sum += std::max(0LL, ResidentBytes(mount / (task(i) + "/status")));
    }
    max_sum = std::max(max_sum, sum);
    struct statvfs vfs;
    if (::statvfs(mount.path().c_str(), &vfs) == 0) {
      EXPECT_LE((vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize, kLimit);
    }
    std::this_thread::sleep_for(kPoll);
  }
  if (!all_done) all_done = children.WaitAll(Clock::now());
  ASSERT_TRUE(all_done) << "writers hung";
  children.ExpectAllSucceeded();
  EXPECT_LE(max_sum, static_cast<long long>(kLimit));
  EXPECT_GT(state->succeeded.load(), 0u);
  EXPECT_GT(state->refused.load(), 0u);

  // Every successful write is there; every other page is still zero.
  long long resident = 0;
  std::size_t written_pages = 0;
  AlignedBuffer all(kPages * kPage);
  for (int i = 0; i < kWriters; ++i) {
    const long long r = ResidentBytes(mount / (task(i) + "/status"));
    ASSERT_GE(r, 0);
    resident += r;
    const int fd = ::open((mount / (task(i) + "/mem")).c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ReadAll(fd, all.data, all.size, kBase), 0);
    ::close(fd);
    int wrong = 0;
    for (std::size_t p = 0; p < kPages; ++p) {
      const std::uint64_t want = state->expected[i][p].load();
      if (want != 0) ++written_pages;
      if (PageTag(all.page(p)) != want && ++wrong <= 5) {
        ADD_FAILURE() << task(i) << " page " << p << " holds 0x" << std::hex
                      << PageTag(all.page(p)) << ", want 0x" << want;
      }
    }
    EXPECT_EQ(wrong, 0) << task(i);
  }
  EXPECT_LE(resident, static_cast<long long>(kLimit));
  EXPECT_EQ(resident, static_cast<long long>(written_pages * kPage));
  // The last refusal left less than one request's new pages free; free
  // memory only shrank after it. The limit holds the pages and the tasks'
  // metadata.
  long long meta = 0;
  for (int i = 0; i < kWriters; ++i) {
    meta += std::stoll(
        StatusValue(ReadFile(mount / (task(i) + "/status")), "metadata_bytes"));
  }
  EXPECT_GT(resident + meta,
            static_cast<long long>(kLimit - 2 * kMaxChunk * kPage));
}

// (5) A read's reply holds its pages only until the reply is sent: a write
// right after a read of the same page, at the memory limit, overwrites the
// page in place and must not be refused for memory it does not need.
TEST(ConcurrencyMemoryLimitTest, RewriteAfterReadAtTheLimitSucceeds) {
  constexpr std::size_t kMaxPages = 256;  // the whole 1 MiB limit
  constexpr std::uint64_t kBase = 0x100000;
  constexpr int kRounds = 5000;
  Mount mount({"-o", "tasks=none,address_bits=32,memory_limit=1M"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(::mkdir((mount / "t").c_str(), 0700), 0);
  ASSERT_EQ(WriteFile(mount / "t/ctl", "allocate 0x100000 2M\n"), 0);
  const int fd = ::open((mount / "t/mem").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  // Pages up to the limit, which the task's records share with them: the
  // first refused page is where it is reached.
  AlignedBuffer all(kMaxPages * kPage);
  std::size_t kPages = 0;
  for (; kPages < kMaxPages; ++kPages) {
    FillPage(all.page(kPages), MakeTag(0, kPages, 1));
    const int e = WriteAll(fd, all.page(kPages), kPage, kBase + kPages * kPage);
    if (e == ENOSPC) break;
    ASSERT_EQ(e, 0) << std::strerror(e);
  }
  ASSERT_GT(kPages, kMaxPages / 2);
  ASSERT_LT(kPages, kMaxPages);
  std::memset(all.page(kPages), 0, kPage);
  AlignedBuffer one(kPage);
  // The limit is reached: a new page is refused.
  ASSERT_EQ(WriteAll(fd, one.data, kPage, kBase + kPages * kPage), ENOSPC);
  int refused = 0;
  std::string reasons;  // the errors lines of refused rewrites
  for (int i = 0; i < kRounds; ++i) {
    const std::size_t p = static_cast<std::size_t>(i) % kPages;
    const std::uint64_t addr = kBase + p * kPage;
    const std::uint64_t tag =
        MakeTag(0, p, 2 + static_cast<std::uint64_t>(i) / kPages);
    ASSERT_EQ(ReadAll(fd, one.data, kPage, addr), 0);
    ASSERT_EQ(PageTag(one.data), PageTag(all.page(p))) << "page " << p;
    FillPage(one.data, tag);
    const int e = WriteAll(fd, one.data, kPage, addr);
    ASSERT_TRUE(e == 0 || e == ENOSPC) << std::strerror(e);
    if (e == ENOSPC) {
      ++refused;  // and the page still holds what it held
      const std::string errors = ReadFile(mount / "t/errors");
      const std::size_t last = errors.rfind('\n', errors.size() - 2);
      reasons += errors.substr(last == std::string::npos ? 0 : last + 1);
    } else {
      FillPage(all.page(p), tag);
    }
  }
  EXPECT_EQ(refused, 0) << "of " << kRounds << " rewrites after a read:\n"
                        << reasons;
  AlignedBuffer check(kPages * kPage);
  ASSERT_EQ(ReadAll(fd, check.data, check.size, kBase), 0);
  EXPECT_EQ(std::memcmp(check.data, all.data, check.size), 0);
  ::close(fd);
  EXPECT_EQ(ResidentBytes(mount / "t/status"),
            static_cast<long long>(kPages * kPage));
}

// (6) Map changes through ctl complete while eight processes read 1 MiB of
// the same task's mem in a loop: the task's lock lets a writer in however
// many reads overlap (vmcore/phase_fair_mutex.h; VmStressTest's fairness
// tests show it in the core, where reads hold the lock longer: a read
// request here only pins). The readers stop at the deadline either way, so a
// starved change fails instead of hanging.
TEST_F(ConcurrencyTest, CtlMapChangesCompleteWhileReadersHammerMem) {
  constexpr int kReaders = 8;
  constexpr int kRounds = 20;
  constexpr std::uint64_t kBase = 0x100000;
  constexpr std::size_t kBytes = 1 << 20;
  constexpr std::uint64_t kChanged = 0x400000;
  MakeTask("t", "allocate 0x100000 1M\n");
  const std::string mem = mount_ / "t/mem";
  {
    const int fd = ::open(mem.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    AlignedBuffer b(kBytes);
    for (std::size_t p = 0; p < kBytes / kPage; ++p) {
      FillPage(b.page(p), MakeTag(0, p, 1));
    }
    ASSERT_EQ(WriteAll(fd, b.data, b.size, kBase), 0);
    ::close(fd);
  }
  struct State {
    std::atomic<bool> stop{false};
    std::atomic<int> reading{0};
    std::atomic<int> rounds_done{0};
  };
  static_assert(std::atomic<int>::is_always_lock_free);
  Shared<State> state;

  Children readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.Spawn("reader " + std::to_string(r), [&]() -> int {
      const int fd = ::open(mem.c_str(), O_RDONLY);
      if (fd < 0) return errno;
      AlignedBuffer b(kBytes);
      for (bool first = true; !state->stop.load(); first = false) {
        if (int e = ReadAll(fd, b.data, b.size, kBase)) return e;
        if (PageTag(b.page(0)) != MakeTag(0, 0, 1)) return kWrongContent;
        if (first) state->reading.fetch_add(1);
      }
      ::close(fd);
      return 0;
    });
  }
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (state->reading.load() < kReaders && Clock::now() < deadline &&
         !readers.Poll()) {
    std::this_thread::sleep_for(kPoll);
  }
  ASSERT_EQ(state->reading.load(), kReaders) << "the readers did not start";

  Children changer;
  changer.Spawn("ctl", [&]() -> int {
    const int ctl = ::open((mount_ / "t/ctl").c_str(), O_WRONLY);
    if (ctl < 0) return errno;
    for (int i = 0; i < kRounds; ++i) {
      const std::string at = std::to_string(kChanged + i * kPage);
      for (const std::string& command :
           {"allocate " + at + " 4K\n", "protect " + at + " 4K r--\n",
            "deallocate " + at + " 4K\n"}) {
        if (int e = Command(ctl, command)) return e;
      }
      state->rounds_done.fetch_add(1);
    }
    ::close(ctl);
    return 0;
  });
  // Killed at the deadline if it is not through.
  const bool in_time = changer.WaitAll(Clock::now() + std::chrono::seconds(10));
  state->stop.store(true);
  ASSERT_TRUE(readers.WaitAll(Clock::now() + std::chrono::seconds(10)))
      << "a reader hung";
  readers.ExpectAllSucceeded();
  ASSERT_TRUE(in_time) << state->rounds_done.load() << " of " << kRounds
                       << " rounds of allocate, protect and deallocate "
                       << "through ctl within 10 s under " << kReaders
                       << " 1 MiB pread loops";
  changer.ExpectAllSucceeded();
}

}  // namespace
}  // namespace taskfs::testing
