// An account's charges: within the limit, then the reserve.
#include "vmcore/memory_account.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "vmcore/memory_budget.h"

namespace taskfs::vm {
namespace {

constexpr std::uint64_t kMiB = 1 << 20;

TEST(MemoryAccountTest, ChargesWithinTheLimitThenTheReserve) {
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

}  // namespace
}  // namespace taskfs::vm
