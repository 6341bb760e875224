// The budget: giving freed metadata back, and charging what the heap
// keeps. (Its accounts' charges: memory_account_test.cc.)
#include "vmcore/memory_budget.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "vmcore/memory_account.h"

namespace taskfs::vm {
namespace {

constexpr std::uint64_t kMiB = 1 << 20;

std::atomic<int> trims{0};
void CountTrim() { ++trims; }

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

// The process's resident memory, as the overhang tests want it.
std::atomic<std::uint64_t> resident{0};
std::uint64_t FakeResident() { return resident.load(); }

// A trim that counts, and gives the heap back down to trimmed_to bytes
// resident when that is set.
std::atomic<std::uint64_t> trimmed_to{0};
void TrimTo() {
  ++trims;
  if (trimmed_to.load() != 0) resident = trimmed_to.load();
}

// A budget of 100 MiB (and reserves of 1 MiB) charging the overhang past
// 8 MiB, the process idle at 50 MiB resident, trims counted.
class HeapOverhangTest : public ::testing::Test {
 protected:
  void SetUp() override {
    trims = 0;
    trimmed_to = 0;
    resident = 50 * kMiB;
    budget_.SetHeapTrim(4 * kMiB, &TrimTo);
    budget_.ChargeHeapOverhang(8 * kMiB, &FakeResident);
  }
  void WaitForTrimmer() { budget_.heap_trimmer()->Wait(); }

  MemoryBudget budget_{100 * kMiB, kMiB, kMiB};
};

TEST(MemoryBudgetTest, NoOverhangUnlessCharged) {
  resident = 50 * kMiB;
  MemoryBudget budget(100 * kMiB);
  budget.SetHeapTrim(4 * kMiB, &CountTrim);
  MemoryAccount account(budget);
  account.Charge(90 * kMiB);
  account.Release(80 * kMiB);
  resident = 500 * kMiB;
  budget.heap_trimmer()->Wait();
  budget.MeasureHeapOverhang();
  EXPECT_EQ(budget.heap_overhang(), 0u);
  EXPECT_EQ(budget.LowerHeapOverhang(), 0u);
  EXPECT_EQ(budget.used(), 10 * kMiB);
  EXPECT_TRUE(account.TryCharge(90 * kMiB));
}

// Freed heap that stays resident is charged once the trimmer has measured
// it, past the allowance, and given back once the heap comes back.
TEST_F(HeapOverhangTest, GoesUpAndDown) {
  MemoryAccount account(budget_);
  account.Charge(20 * kMiB);
  resident = 70 * kMiB;
  budget_.MeasureHeapOverhang();
  EXPECT_EQ(budget_.heap_overhang(), 0u);
  // 19 MiB freed, none given back: the trimmer trims, then measures.
  account.Release(19 * kMiB);
  WaitForTrimmer();
  EXPECT_GE(trims.load(), 1);
  EXPECT_EQ(budget_.heap_overhang(), (70 - 50 - 1 - 8) * kMiB);
  EXPECT_EQ(budget_.used(), (1 + 11) * kMiB);
  // Within the allowance: nothing.
  resident = 59 * kMiB;
  budget_.MeasureHeapOverhang();
  EXPECT_EQ(budget_.heap_overhang(), 0u);
  EXPECT_EQ(budget_.used(), kMiB);
  resident = 52 * kMiB;
  budget_.MeasureHeapOverhang();
  EXPECT_EQ(budget_.heap_overhang(), 0u);
  EXPECT_EQ(budget_.used(), kMiB);
}

// Once the overhang has taken the room, charges are refused; a refusal
// measures again and only lowers it, so when the heap has come back the
// charge goes through at once.
TEST_F(HeapOverhangTest, RefusesOnceItTakesTheRoomAndLetsGo) {
  MemoryAccount account(budget_);
  account.Charge(90 * kMiB);
  resident = 140 * kMiB;
  account.Release(80 * kMiB);
  WaitForTrimmer();
  EXPECT_EQ(budget_.heap_overhang(), (140 - 50 - 10 - 8) * kMiB);
  EXPECT_EQ(budget_.used(), 82 * kMiB);
  EXPECT_FALSE(account.TryCharge(20 * kMiB));
  EXPECT_EQ(budget_.heap_overhang(), 72 * kMiB);  // measured again: the same
  EXPECT_TRUE(account.TryCharge(18 * kMiB));
  EXPECT_EQ(budget_.used(), 100 * kMiB);
  // The heap comes back: the next refused charge finds the room.
  resident = 60 * kMiB;
  EXPECT_TRUE(account.TryCharge(50 * kMiB));
  EXPECT_EQ(budget_.heap_overhang(), 0u);
  EXPECT_EQ(budget_.used(), 78 * kMiB);
  // A refusal never raises it, whatever it reads.
  resident = 1000 * kMiB;
  EXPECT_FALSE(account.TryCharge(30 * kMiB));
  EXPECT_EQ(budget_.heap_overhang(), 0u);
  EXPECT_EQ(budget_.used(), 78 * kMiB);
}

// Heap freed since the last trim may be what keeps the overhang up: a
// refusal that cannot lower it asks for a trim, whose measurement does.
TEST_F(HeapOverhangTest, ARefusalAsksForTheTrimThatLowersIt) {
  MemoryAccount account(budget_);
  account.Charge(90 * kMiB);
  resident = 140 * kMiB;
  account.Release(80 * kMiB);
  WaitForTrimmer();
  EXPECT_EQ(trims.load(), 1);
  EXPECT_EQ(budget_.heap_overhang(), 72 * kMiB);
  // Under the threshold: no trim asked for.
  account.Release(2 * kMiB);
  WaitForTrimmer();
  EXPECT_EQ(trims.load(), 1);
  trimmed_to = 60 * kMiB;
  EXPECT_FALSE(account.TryCharge(30 * kMiB));
  WaitForTrimmer();
  EXPECT_EQ(trims.load(), 2);
  EXPECT_EQ(budget_.heap_overhang(), 0u);
  EXPECT_TRUE(account.TryCharge(30 * kMiB));
  // Nothing freed since: a refusal asks for no trim.
  EXPECT_FALSE(account.TryCharge(70 * kMiB));
  WaitForTrimmer();
  EXPECT_EQ(trims.load(), 2);
}

// Freeing and charging in turn asks for no trim, but still measures: heap
// freed in one place and charged in another can leave both resident.
TEST_F(HeapOverhangTest, ChurnIsMeasured) {
  MemoryAccount account(budget_);
  account.Charge(8 * kMiB);
  resident = 100 * kMiB;
  // 16 MiB released in all, never more than 64 KiB of it at once; the last
  // measurement starts after the last release.
  for (int i = 0; i < 256; ++i) {
    account.Charge(64 * 1024);
    account.Release(64 * 1024);
  }
  WaitForTrimmer();
  EXPECT_EQ(trims.load(), 0);
  EXPECT_EQ(budget_.heap_overhang(), (100 - 50 - 8 - 8) * kMiB);
  EXPECT_EQ(budget_.used(), (8 + 34) * kMiB);
}

// The reserves' charges are resident too: not overhang.
TEST_F(HeapOverhangTest, TheReservesAreCharged) {
  MemoryAccount account(budget_);
  account.Charge(100 * kMiB);
  account.Charge(kMiB, /*use_reserve=*/true);
  ASSERT_TRUE(budget_.TryChargePinReserve(kMiB));
  resident = 160 * kMiB;
  budget_.MeasureHeapOverhang();
  EXPECT_EQ(budget_.heap_overhang(), 0u);
  resident = 161 * kMiB;
  budget_.MeasureHeapOverhang();
  EXPECT_EQ(budget_.heap_overhang(), kMiB);
  budget_.ReleasePinReserve(kMiB);
}

// An unreadable figure changes nothing.
TEST_F(HeapOverhangTest, UnknownResidentChangesNothing) {
  MemoryAccount account(budget_);
  account.Charge(10 * kMiB);
  resident = 100 * kMiB;
  budget_.MeasureHeapOverhang();
  EXPECT_EQ(budget_.heap_overhang(), 32 * kMiB);
  resident = 0;
  budget_.MeasureHeapOverhang();
  EXPECT_EQ(budget_.heap_overhang(), 32 * kMiB);
  EXPECT_EQ(budget_.LowerHeapOverhang(), 0u);
}

TEST(MemoryBudgetTest, ResidentAnonymousBytesReadsTheProcess) {
  const std::uint64_t before = MemoryBudget::ResidentAnonymousBytes();
  EXPECT_GT(before, 0u);
  std::vector<char> block(32 * kMiB, 'x');
  // The block must exist: nothing reads it, and clang may elide an
  // allocation nothing reads.
  asm volatile("" : : "r"(block.data()) : "memory");
  EXPECT_GE(MemoryBudget::ResidentAnonymousBytes(), before + 30 * kMiB);
}

}  // namespace
}  // namespace taskfs::vm
