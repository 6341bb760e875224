// The reason channel's memory of each thread's last failure on a file
// (fs/last_failures.h).
#include "fs/last_failures.h"

#include <gtest/gtest.h>

#include <string>

#include "vmcore/memory_account.h"
#include "vmcore/memory_budget.h"

namespace taskfs::fs {
namespace {

TEST(LastFailuresTest, NothingBeforeAFailureAndNothingHeld) {
  vm::MemoryBudget budget(0);
  vm::MemoryAccount account(budget);
  LastFailures last(account);
  const LastFailure none = last.Take(7);
  EXPECT_EQ(none.seq, 0u);
  EXPECT_EQ(none.line, "");
  EXPECT_EQ(account.held(), 0u);
}

TEST(LastFailuresTest, EachThreadGetsItsOwnAndTakingForgetsIt) {
  vm::MemoryBudget budget(0);
  vm::MemoryAccount account(budget);
  {
    LastFailures last(account);
    last.Note(10, 3, "3 uid 1 pread 0 0x1000: KERN_INVALID_ADDRESS: page 0\n");
    last.Note(11, 4, "4 uid 1 ctl x: KERN_INVALID_ARGUMENT: unknown 'x'\n");
    last.Note(10, 5, "5 uid 1 pwrite 0 0x1000: KERN_PROTECTION_FAILURE: w");
    const LastFailure ten = last.Take(10);
    EXPECT_EQ(ten.seq, 5u);
    EXPECT_EQ(ten.line, "5 uid 1 pwrite 0 0x1000: KERN_PROTECTION_FAILURE: w");
    EXPECT_EQ(last.Take(10).seq, 0u);
    const LastFailure eleven = last.Take(11);
    EXPECT_EQ(eleven.seq, 4u);
    EXPECT_EQ(eleven.line, "4 uid 1 ctl x: KERN_INVALID_ARGUMENT: unknown 'x'");
    EXPECT_GT(account.held(), 0u);
  }
  EXPECT_EQ(account.held(), 0u);
}

TEST(LastFailuresTest, TheThreadThatFailedLongestAgoMakesRoom) {
  vm::MemoryBudget budget(0);
  vm::MemoryAccount account(budget);
  LastFailures last(account);
  for (pid_t tid = 1; tid <= static_cast<pid_t>(LastFailures::kThreads) + 1;
       ++tid) {
    last.Note(tid, static_cast<std::uint64_t>(tid), "line");
  }
  EXPECT_EQ(last.Take(1).seq, 0u);  // the oldest went
  EXPECT_EQ(last.Take(2).seq, 2u);
  EXPECT_EQ(last.Take(LastFailures::kThreads + 1).seq,
            LastFailures::kThreads + 1);
}

TEST(LastFailuresTest, ALongLineIsCut) {
  vm::MemoryBudget budget(0);
  vm::MemoryAccount account(budget);
  LastFailures last(account);
  last.Note(1, 9, std::string(3000, 'a'));
  EXPECT_EQ(last.Take(1).line, std::string(LastFailures::kMaxLine, 'a'));
}

TEST(LastFailuresTest, AtTheLimitNothingIsKeptAndNothingIsHeld) {
  vm::MemoryBudget budget(1);
  vm::MemoryAccount account(budget);
  LastFailures last(account);
  last.Note(1, 9, std::string(100, 'a'));
  EXPECT_EQ(last.Take(1).seq, 0u);
  EXPECT_EQ(account.held(), 0u);
}

}  // namespace
}  // namespace taskfs::fs
