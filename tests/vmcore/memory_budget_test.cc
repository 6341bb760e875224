// The budget: charges, the reserve, and giving freed metadata back.
#include "vmcore/memory_budget.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace taskfs::vm {
namespace {

constexpr std::uint64_t kMiB = 1 << 20;

std::atomic<int> trims{0};
void CountTrim() { ++trims; }

TEST(MemoryBudgetTest, ChargesWithinTheLimitThenTheReserve) {
  MemoryBudget budget(10 * kMiB, kMiB);
  MemoryAccount account(budget);
  EXPECT_TRUE(account.TryCharge(10 * kMiB));
  EXPECT_FALSE(account.TryCharge(1));
  EXPECT_TRUE(account.TryCharge(kMiB, /*use_reserve=*/true));
  EXPECT_EQ(budget.reserve_used(), kMiB);
  account.Release(kMiB);
  EXPECT_EQ(budget.reserve_used(), 0u);
  EXPECT_EQ(budget.used(), 10 * kMiB);
}

TEST(MemoryBudgetTest, NoTrimmerUnlessAThresholdIsSet) {
  MemoryBudget budget(0);
  EXPECT_EQ(budget.heap_trimmer(), nullptr);
  budget.SetHeapTrim(0);
  EXPECT_EQ(budget.heap_trimmer(), nullptr);
  MemoryAccount account(budget);
  account.Charge(64 * kMiB);
  account.Release(64 * kMiB);
  EXPECT_EQ(budget.heap_freed(), 0u);
}

// Releasing the threshold's worth asks for one trim, and the count starts
// again.
TEST(MemoryBudgetTest, ReleasingTheThresholdAsksForATrim) {
  trims = 0;
  MemoryBudget budget(0);
  budget.SetHeapTrim(4 * kMiB, &CountTrim);
  {
    MemoryAccount account(budget);
    account.Charge(16 * kMiB);
    account.Release(3 * kMiB);
    budget.heap_trimmer()->Wait();
    EXPECT_EQ(trims.load(), 0);
    EXPECT_EQ(budget.heap_freed(), 3 * kMiB);
    account.Release(kMiB);
    budget.heap_trimmer()->Wait();
    EXPECT_EQ(trims.load(), 1);
    EXPECT_EQ(budget.heap_freed(), 0u);
  }  // the account releases its last 12 MiB at once: one more trim
  budget.heap_trimmer()->Wait();
  EXPECT_EQ(trims.load(), 2);
  EXPECT_EQ(budget.heap_freed(), 0u);
}

// What is charged again reuses what was freed: allocating and freeing over
// and over (a write's scratch account) asks for nothing.
TEST(MemoryBudgetTest, ChurnAsksForNoTrim) {
  trims = 0;
  MemoryBudget budget(0);
  budget.SetHeapTrim(kMiB, &CountTrim);
  MemoryAccount account(budget);
  account.Charge(8 * kMiB);
  for (int i = 0; i < 10000; ++i) {
    account.Release(64 * 1024);
    account.Charge(64 * 1024);
  }
  EXPECT_EQ(budget.heap_freed(), 0u);
  // Half freed, then a quarter charged again: a quarter is still free.
  account.Release(512 * 1024);
  account.Charge(256 * 1024);
  EXPECT_EQ(budget.heap_freed(), 256 * 1024u);
  budget.heap_trimmer()->Wait();
  EXPECT_EQ(trims.load(), 0);
}

// Accounts on many threads releasing at once ask for trims, about one per
// threshold released, and never lose one for good.
TEST(MemoryBudgetTest, ConcurrentReleasesAskForTrims) {
  trims = 0;
  MemoryBudget budget(0);
  budget.SetHeapTrim(kMiB, &CountTrim);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      MemoryAccount account(budget);
      account.Charge(16 * kMiB);
      for (int i = 0; i < 256; ++i) account.Release(64 * 1024);
    });
  }
  for (auto& t : threads) t.join();
  budget.heap_trimmer()->Wait();
  EXPECT_GE(trims.load(), 1);
  EXPECT_LT(budget.heap_freed(), kMiB);
}

}  // namespace
}  // namespace taskfs::vm
