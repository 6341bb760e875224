// Containers charged to an account.
#include "vmcore/charged_allocator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "vmcore/limit_reached.h"
#include "vmcore/memory_account.h"
#include "vmcore/memory_budget.h"

namespace taskfs::vm {
namespace {

// Each block costs its bytes and the heap's overhead, until it is freed.
TEST(ChargedAllocatorTest, ChargesEachBlockWhileItLives) {
  MemoryBudget budget(0);
  MemoryAccount account(budget);
  {
    std::vector<std::uint64_t, ChargedAllocator<std::uint64_t>> v(
        (ChargedAllocator<std::uint64_t>(account)));
    v.reserve(100);
    EXPECT_EQ(account.held(), 100 * sizeof(std::uint64_t) + kHeapOverhead);
    EXPECT_EQ(budget.used(), account.held());
  }
  EXPECT_EQ(account.held(), 0u);
  EXPECT_EQ(budget.used(), 0u);
}

// A refused charge throws LimitReached before anything is allocated, and
// leaves the container and the account as they were.
TEST(ChargedAllocatorTest, ARefusalThrowsAndChangesNothing) {
  MemoryBudget budget(1000);
  MemoryAccount account(budget);
  std::vector<char, ChargedAllocator<char>> v(
      (ChargedAllocator<char>(account)));
  v.reserve(500);
  const std::uint64_t held = account.held();
  EXPECT_THROW(v.reserve(2000), LimitReached);
  EXPECT_EQ(v.capacity(), 500u);
  EXPECT_EQ(account.held(), held);
}

// A node container rebinds the allocator to its nodes: they are charged to
// the same account, and allocators of one account compare equal.
TEST(ChargedAllocatorTest, RebindsToTheSameAccount) {
  MemoryBudget budget(0);
  MemoryAccount account(budget), other(budget);
  using Alloc = ChargedAllocator<std::pair<const int, int>>;
  {
    std::map<int, int, std::less<>, Alloc> m((Alloc(account)));
    for (int i = 0; i < 10; ++i) m.emplace(i, i);
    EXPECT_GT(account.held(),
              10 * (sizeof(std::pair<const int, int>) + kHeapOverhead));
    EXPECT_EQ(other.held(), 0u);
  }
  EXPECT_EQ(account.held(), 0u);
  EXPECT_TRUE(Alloc(account) == ChargedAllocator<int>(account));
  EXPECT_FALSE(Alloc(account) == ChargedAllocator<int>(other));
}

}  // namespace
}  // namespace taskfs::vm
