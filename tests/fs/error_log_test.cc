#include "fs/error_log.h"

#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace taskfs::fs {
namespace {

vm::MemoryBudget& Unlimited() {
  static vm::MemoryBudget budget(0);
  return budget;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(ErrorLogTest, EmptyBeforeTheFirstFailure) {
  ErrorLog log(Unlimited());
  EXPECT_EQ(log.Text(), "");
  EXPECT_EQ(log.last_seq(), 0u);
}

TEST(ErrorLogTest, LinesInTheSpecsForm) {
  ErrorLog log(Unlimited());
  EXPECT_EQ(
      log.Record(1000, "pread 0x610000 0x1000", vm::KERN_PROTECTION_FAILURE,
                 "page 0x610000 is ---/rwx, read needs r"),
      1u);
  EXPECT_EQ(log.Record(0, "ctl allocate 0x600000 4K", vm::KERN_NO_SPACE,
                       "overlaps region 0x600000-0x610000"),
            2u);
  EXPECT_EQ(log.Text(),
            "1 uid 1000 pread 0x610000 0x1000: KERN_PROTECTION_FAILURE: page "
            "0x610000 is ---/rwx, read needs r\n"
            "2 uid 0 ctl allocate 0x600000 4K: KERN_NO_SPACE: overlaps region "
            "0x600000-0x610000\n");
  EXPECT_EQ(log.last_seq(), 2u);
}

TEST(ErrorLogTest, KeepsTheLast256OldestFirst) {
  ErrorLog log(Unlimited());
  for (int i = 1; i <= 300; ++i) {
    log.Record(1, "op " + std::to_string(i), vm::KERN_FAILURE, "r");
  }
  const std::vector<std::string> lines = Lines(log.Text());
  ASSERT_EQ(lines.size(), ErrorLog::kCapacity);
  EXPECT_EQ(lines.front(), "45 uid 1 op 45: KERN_FAILURE: r");
  EXPECT_EQ(lines.back(), "300 uid 1 op 300: KERN_FAILURE: r");
  EXPECT_EQ(log.last_seq(), 300u);
}

TEST(ErrorLogTest, EscapesWhatWouldBreakTheLine) {
  ErrorLog log(Unlimited());
  log.Record(5, std::string("ctl a\nb\\c\x01\xff", 11),
             vm::KERN_INVALID_ARGUMENT, "bad\tthing");
  EXPECT_EQ(log.Text(),
            "1 uid 5 ctl a\\x0ab\\x5cc\\x01\\xff: KERN_INVALID_ARGUMENT: "
            "bad\\x09thing\n");
}

TEST(ErrorLogTest, CutsLongFields) {
  ErrorLog log(Unlimited());
  log.Record(5, std::string(10000, 'o'), vm::KERN_INVALID_ARGUMENT,
             std::string(10000, '\n'));
  const std::string text = log.Text();
  EXPECT_LE(text.size(), ErrorLog::kMaxLine);
  EXPECT_EQ(
      text, "1 uid 5 " + std::string(ErrorLog::kMaxField, 'o') +
                "...: KERN_INVALID_ARGUMENT: " +
                [] {
                  std::string s;
                  for (std::size_t i = 0; i < ErrorLog::kMaxField; ++i) {
                    s += "\\x0a";
                  }
                  return s;
                }() +
                "...\n");
}

TEST(ErrorLogTest, ConcurrentRecordsGetDistinctSeqs) {
  ErrorLog log(Unlimited());
  constexpr int kThreads = 4;
  constexpr int kEach = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&log, t] {
      for (int i = 0; i < kEach; ++i) {
        log.Record(static_cast<uid_t>(t), "op", vm::KERN_FAILURE, "r");
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(log.last_seq(), std::uint64_t{kThreads * kEach});
  std::set<std::uint64_t> seqs;
  for (const std::string& line : Lines(log.Text())) {
    seqs.insert(std::stoull(line));
  }
  EXPECT_EQ(seqs.size(), ErrorLog::kCapacity);
  EXPECT_EQ(*seqs.begin(), kThreads * kEach - ErrorLog::kCapacity + 1);
}

// Under the memory limit the log charges its record and each line it
// keeps; when the limit leaves no room, the oldest lines make room, and
// with none left a line is counted but not kept. Nothing passes the limit.
TEST(ErrorLogTest, AtTheMemoryLimitTheOldestLinesMakeRoom) {
  const std::string reason(200, 'r');
  vm::MemoryBudget budget(sizeof(ErrorLog) + ErrorLog::kNodeBytes + 4096);
  {
    ErrorLog log(budget);
    const std::uint64_t fixed = log.metadata_bytes();
    for (int i = 0; i < 100; ++i) {
      log.Record(0, "op " + std::to_string(i), vm::KERN_NO_SPACE, reason);
      ASSERT_LE(budget.used(), budget.limit());
    }
    EXPECT_EQ(log.last_seq(), 100u);
    const std::vector<std::string> lines = Lines(log.Text());
    ASSERT_GT(lines.size(), 1u);
    ASSERT_LT(lines.size(), 100u);
    EXPECT_EQ(lines.back().substr(0, 11), "100 uid 0 o");  // the newest kept
    EXPECT_GT(log.metadata_bytes(), fixed);
  }
  // Room for the record but not for one line: counted, not kept.
  vm::MemoryBudget tight(sizeof(ErrorLog) + ErrorLog::kNodeBytes +
                         vm::kHeapOverhead + 100);
  ErrorLog log(tight);
  const std::uint64_t fixed = log.metadata_bytes();
  log.Record(0, "lost", vm::KERN_NO_SPACE, reason);
  EXPECT_EQ(log.last_seq(), 1u);
  EXPECT_EQ(log.Text(), "");
  EXPECT_EQ(log.metadata_bytes(), fixed);
  EXPECT_LE(tight.used(), tight.limit());
}

// --- the log as a file (docs/reference.md §7.3) ------------------------------

TEST(ErrorLogTest, SizeCountsEveryLineEverRecordedAndOnlyGrows) {
  ErrorLog log(Unlimited());
  EXPECT_EQ(log.size(), 0u);
  std::uint64_t total = 0;
  std::uint64_t last = 0;
  for (int i = 1; i <= 300; ++i) {
    log.Record(0, "op " + std::to_string(i), vm::KERN_NO_SPACE, "why");
    total += (std::to_string(i) + " uid 0 op " + std::to_string(i) +
              ": KERN_NO_SPACE: why\n")
                 .size();
    ASSERT_EQ(log.size(), total);
    ASSERT_GT(log.size(), last);
    last = log.size();
  }
  // The kept lines are the file's last bytes.
  const std::string text = log.Text();
  std::string part;
  EXPECT_EQ(log.Read(total - text.size(), 1 << 20, &part), total - text.size());
  EXPECT_EQ(part, text);
}

TEST(ErrorLogTest, ReadIsAtCumulativeOffsets) {
  ErrorLog log(Unlimited());
  std::string part = "left";
  EXPECT_EQ(log.Read(0, 100, &part), 0u);
  EXPECT_EQ(part, "");
  log.Record(0, "a", vm::KERN_NO_SPACE,
             "x");  // "1 uid 0 a: KERN_NO_SPACE: x\n"
  log.Record(0, "b", vm::KERN_NO_SPACE, "y");
  const std::string all = log.Text();
  EXPECT_EQ(log.Read(5, 7, &part), 5u);
  EXPECT_EQ(part, all.substr(5, 7));
  // A read across two lines, and one that runs past the end.
  EXPECT_EQ(log.Read(20, 1000, &part), 20u);
  EXPECT_EQ(part, all.substr(20));
  EXPECT_EQ(log.Read(all.size(), 10, &part), all.size());
  EXPECT_EQ(part, "");
  EXPECT_EQ(log.Read(all.size() + 50, 10, &part), all.size() + 50);
  EXPECT_EQ(part, "");
}

TEST(ErrorLogTest, AReadOfForgottenBytesMovesToTheOldestKeptLine) {
  ErrorLog log(Unlimited());
  for (int i = 1; i <= 260; ++i) {
    log.Record(0, "op", vm::KERN_NO_SPACE, "why");
  }
  const std::string text = log.Text();
  const std::uint64_t oldest = log.size() - text.size();
  ASSERT_GT(oldest, 0u);
  ASSERT_EQ(text.substr(0, 4), "5 ui");
  std::string part;
  EXPECT_EQ(log.Read(0, 10, &part), oldest);
  EXPECT_EQ(part, text.substr(0, 10));
  EXPECT_EQ(log.Read(oldest - 1, 1 << 20, &part), oldest);
  EXPECT_EQ(part, text);
}

TEST(ErrorLogTest, ChangedIsTheTimeOfTheLastLine) {
  ErrorLog log(Unlimited());
  EXPECT_EQ(log.changed().tv_sec, 0);
  timespec before{};
  timespec_get(&before, TIME_UTC);
  log.Record(0, "op", vm::KERN_NO_SPACE, "why");
  const timespec at = log.changed();
  EXPECT_TRUE(at.tv_sec > before.tv_sec ||
              (at.tv_sec == before.tv_sec && at.tv_nsec >= before.tv_nsec));
}

}  // namespace
}  // namespace taskfs::fs
