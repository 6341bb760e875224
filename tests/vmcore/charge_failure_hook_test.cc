// The failure-injection tests' hook.
#include "vmcore/charge_failure_hook.h"

#include <gtest/gtest.h>

#include "vmcore/memory_account.h"
#include "vmcore/memory_budget.h"

namespace taskfs::vm {
namespace {

// The nth charge from now fails as if the limit were reached, once; the
// ones before and after it go through.
TEST(ChargeFailureHookTest, FailsTheNthChargeOnce) {
  MemoryBudget budget(0);
  MemoryAccount account(budget);
  FailChargeAfter(3);
  EXPECT_EQ(ChargesBeforeFailure(), 3u);
  EXPECT_TRUE(account.TryCharge(1));
  EXPECT_TRUE(budget.TryCharge(1));  // the budget's own charges count too
  EXPECT_EQ(ChargesBeforeFailure(), 1u);
  EXPECT_FALSE(budget.TryCharge(1));
  EXPECT_EQ(ChargesBeforeFailure(), 0u);
  EXPECT_TRUE(account.TryCharge(1));
  budget.Release(1);
  EXPECT_EQ(budget.used(), 2u);
}

TEST(ChargeFailureHookTest, ZeroDisarmsIt) {
  MemoryBudget budget(0);
  FailChargeAfter(1);
  FailChargeAfter(0);
  EXPECT_TRUE(budget.TryCharge(1));
  EXPECT_EQ(ChargesBeforeFailure(), 0u);
  budget.Release(1);
}

}  // namespace
}  // namespace taskfs::vm
