// A thread's leave to charge the reserve.
#include "vmcore/reserve_scope.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <thread>

#include "vmcore/memory_account.h"
#include "vmcore/memory_budget.h"

namespace taskfs::vm {
namespace {

TEST(ReserveScopeTest, ActiveWhileOneIsAliveNestingIncluded) {
  EXPECT_FALSE(ReserveScope::active());
  {
    ReserveScope outer;
    EXPECT_TRUE(ReserveScope::active());
    {
      ReserveScope inner;
      EXPECT_TRUE(ReserveScope::active());
    }
    EXPECT_TRUE(ReserveScope::active());
  }
  EXPECT_FALSE(ReserveScope::active());
}

TEST(ReserveScopeTest, IsTheThreadsOwn) {
  ReserveScope scope;
  bool elsewhere = true;
  std::thread([&] { elsewhere = ReserveScope::active(); }).join();
  EXPECT_FALSE(elsewhere);
  EXPECT_TRUE(ReserveScope::active());
}

// At the limit, a charge that may not use the reserve is refused, unless a
// scope is alive on its thread; the reserve's size still bounds it.
TEST(ReserveScopeTest, LetsTheThreadsChargesUseTheReserve) {
  MemoryBudget budget(1000, 100);
  MemoryAccount account(budget);
  ASSERT_TRUE(account.TryCharge(1000));
  EXPECT_FALSE(account.TryCharge(10));
  {
    ReserveScope scope;
    EXPECT_TRUE(account.TryCharge(60));
    EXPECT_EQ(budget.reserve_used(), 60u);
    EXPECT_FALSE(account.TryCharge(60));
  }
  EXPECT_FALSE(account.TryCharge(10));
  account.Release(account.held());
  EXPECT_EQ(budget.reserve_used(), 0u);
  EXPECT_EQ(budget.used(), 0u);
}

}  // namespace
}  // namespace taskfs::vm
