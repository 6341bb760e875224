#include "vmcore/page_allocator.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace taskfs::vm {
namespace {

MemoryBudget& Unlimited() {
  static MemoryBudget budget(0);
  return budget;
}

constexpr std::size_t kPage = 4096;

TEST(PageAllocatorTest, AllocatesAdjacentPagesWithOneMapping) {
  PageAllocator pages(kPage, Unlimited());
  std::vector<Page*> got(8);
  ASSERT_TRUE(pages.Allocate(got.size(), got.data()));
  EXPECT_EQ(pages.live_pages(), 8u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i]->mappings(), 1u);
    EXPECT_TRUE(got[i]->Exclusive());
    if (i > 0) {
      EXPECT_EQ(got[i]->data(), got[i - 1]->data() + kPage);
    }
    std::memset(got[i]->data(), static_cast<int>(i), kPage);  // writable
  }
  for (Page* p : got) p->DropMapping();
  EXPECT_EQ(pages.live_pages(), 0u);
}

TEST(PageAllocatorTest, LimitIsAllOrNothing) {
  MemoryBudget budget(4 * kPage + PageAllocator::SlabCharge());
  PageAllocator pages(kPage, budget);
  std::vector<Page*> got(5);
  EXPECT_FALSE(pages.Allocate(5, got.data()));
  EXPECT_EQ(pages.live_pages(), 0u);
  ASSERT_TRUE(pages.Allocate(4, got.data()));
  EXPECT_FALSE(pages.Allocate(1, got.data() + 4));
  got[0]->DropMapping();
  EXPECT_TRUE(pages.Allocate(1, got.data() + 4));
  for (int i = 1; i < 5; ++i) got[i]->DropMapping();
}

TEST(PageAllocatorTest, PinsAndMappingsBothKeepAPage) {
  PageAllocator pages(kPage, Unlimited());
  Page* page;
  ASSERT_TRUE(pages.Allocate(1, &page));
  page->Pin();
  EXPECT_FALSE(page->Exclusive());
  EXPECT_EQ(page->mappings(), 1u);
  page->DropMapping();
  EXPECT_EQ(pages.live_pages(), 1u);  // still pinned
  page->Unpin();
  EXPECT_EQ(pages.live_pages(), 0u);
}

TEST(PageAllocatorTest, SpansManySlabsAndReusesFreedPages) {
  PageAllocator pages(kPage, Unlimited());
  const std::size_t n = 3 * PageAllocator::kSlabPages + 7;
  std::vector<Page*> got(n);
  ASSERT_TRUE(pages.Allocate(n, got.data()));
  for (std::size_t i = 0; i < n; i += 2) got[i]->DropMapping();
  std::vector<Page*> again((n + 1) / 2);
  ASSERT_TRUE(pages.Allocate(again.size(), again.data()));
  EXPECT_EQ(pages.live_pages(), n);
  for (std::size_t i = 1; i < n; i += 2) got[i]->DropMapping();
  for (Page* p : again) p->DropMapping();
  EXPECT_EQ(pages.live_pages(), 0u);
}

TEST(PageAllocatorTest, ZeroPageIsZeros) {
  PageAllocator pages(16384, Unlimited());
  const std::byte* zero = pages.zero_page();
  for (std::size_t i = 0; i < 16384; ++i) ASSERT_EQ(zero[i], std::byte{0});
}

// The budget is charged what is resident: live pages, freed pages still in
// their slab (reused first, at no new charge) and the slab's records; a
// Reclaim gives the freed pages back, and an empty slab goes with its charge.
TEST(PageAllocatorTest, TheBudgetFollowsWhatIsResident) {
  MemoryBudget budget(0);
  {
    PageAllocator pages(kPage, budget);
    std::vector<Page*> got(8);
    ASSERT_TRUE(pages.Allocate(8, got.data()));
    const std::uint64_t slab = PageAllocator::SlabCharge();
    EXPECT_EQ(budget.used(), 8 * kPage + slab);
    for (int i = 0; i < 4; ++i) got[i]->DropMapping();
    EXPECT_EQ(budget.used(), 8 * kPage + slab);  // warm: still resident
    ASSERT_TRUE(pages.Allocate(2, got.data()));  // reused, no new charge
    EXPECT_EQ(budget.used(), 8 * kPage + slab);
    EXPECT_EQ(pages.Reclaim(), 2 * kPage);
    EXPECT_EQ(budget.used(), 6 * kPage + slab);
    ASSERT_TRUE(pages.Allocate(2, got.data() + 2));  // cold: charged again
    EXPECT_EQ(budget.used(), 8 * kPage + slab);
    for (Page* p : got) p->DropMapping();
    EXPECT_EQ(pages.live_pages(), 0u);
  }
  EXPECT_EQ(budget.used(), 0u);
}

// A charge the budget refuses asks the reclaimer once: freed pages then make
// room for metadata.
TEST(PageAllocatorTest, ARefusedChargeReclaimsFreedPages) {
  MemoryBudget budget(16 * kPage + PageAllocator::SlabCharge());
  PageAllocator pages(kPage, budget);
  budget.SetReclaimer(
      [](void* p) { return static_cast<PageAllocator*>(p)->Reclaim(); },
      &pages);
  std::vector<Page*> got(16);
  ASSERT_TRUE(pages.Allocate(16, got.data()));
  for (Page* p : got) p->DropMapping();
  MemoryAccount account(budget);
  EXPECT_NO_THROW(account.Charge(8 * kPage));
  EXPECT_THROW(account.Charge(9 * kPage), LimitReached);
  EXPECT_EQ(account.held(), 8 * kPage);
}

}  // namespace
}  // namespace taskfs::vm
