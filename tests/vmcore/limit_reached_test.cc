// What a refused charge throws.
#include "vmcore/limit_reached.h"

#include <gtest/gtest.h>

#include <new>
#include <string_view>

#include "vmcore/memory_account.h"
#include "vmcore/memory_budget.h"

namespace taskfs::vm {
namespace {

// Every path that survives running out of memory catches it as bad_alloc.
TEST(LimitReachedTest, IsABadAllocWithTheFigures) {
  try {
    throw LimitReached(4096, 4000, 9000);
  } catch (const std::bad_alloc& e) {
    EXPECT_EQ(std::string_view(e.what()), "memory limit reached");
    const auto* limit = dynamic_cast<const LimitReached*>(&e);
    ASSERT_NE(limit, nullptr);
    EXPECT_EQ(limit->limit(), 4096u);
    EXPECT_EQ(limit->used(), 4000u);
    EXPECT_EQ(limit->asked(), 9000u);
  }
}

// An account's Charge throws it with the budget's figures at the refusal.
TEST(LimitReachedTest, ARefusedChargeThrowsItWithTheBudgetsFigures) {
  MemoryBudget budget(1000);
  MemoryAccount account(budget);
  account.Charge(600);
  try {
    account.Charge(500);
    FAIL() << "the charge went through";
  } catch (const LimitReached& limit) {
    EXPECT_EQ(limit.limit(), 1000u);
    EXPECT_EQ(limit.used(), 600u);
    EXPECT_EQ(limit.asked(), 500u);
  }
  EXPECT_EQ(account.held(), 600u);  // the refusal changed nothing
}

}  // namespace
}  // namespace taskfs::vm
