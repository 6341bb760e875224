#include "fs/error_log.h"

#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace taskfs::fs {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(ErrorLogTest, EmptyBeforeTheFirstFailure) {
  ErrorLog log;
  EXPECT_EQ(log.Text(), "");
  EXPECT_EQ(log.last_seq(), 0u);
}

TEST(ErrorLogTest, LinesInTheSpecsForm) {
  ErrorLog log;
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
  ErrorLog log;
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
  ErrorLog log;
  log.Record(5, std::string("ctl a\nb\\c\x01\xff", 11),
             vm::KERN_INVALID_ARGUMENT, "bad\tthing");
  EXPECT_EQ(log.Text(),
            "1 uid 5 ctl a\\x0ab\\x5cc\\x01\\xff: KERN_INVALID_ARGUMENT: "
            "bad\\x09thing\n");
}

TEST(ErrorLogTest, CutsLongFields) {
  ErrorLog log;
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
  ErrorLog log;
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

}  // namespace
}  // namespace taskfs::fs
