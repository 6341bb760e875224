#include "vmcore/page_allocator.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <vector>

#include "vmcore/limit_reached.h"
#include "vmcore/memory_account.h"

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

// Whether the page holding p is resident (mincore).
bool Resident(const std::byte* p) {
  unsigned char v = 0;
  EXPECT_EQ(mincore(const_cast<std::byte*>(p), kPage, &v), 0);
  return (v & 1) != 0;
}

TEST(PageAllocatorTest, PopulateMakesRunsResidentAtOnce) {
  PageAllocator pages(kPage, Unlimited());
  std::vector<Page*> got(64);
  ASSERT_TRUE(pages.Allocate(got.size(), got.data()));
  for (Page* p : got) ASSERT_FALSE(Resident(p->data()));
  // Two runs and a page on its own, in any order.
  std::vector<Page*> some = {got[10], got[11], got[12],
                             got[40], got[30], got[31]};
  PageAllocator::Populate(some.data(), some.size(), kPage);
  for (Page* p : some) EXPECT_TRUE(Resident(p->data()));
  EXPECT_FALSE(Resident(got[13]->data()));
  EXPECT_FALSE(Resident(got[0]->data()));
  PageAllocator::Populate(got.data(), 0, kPage);  // nothing
  for (Page* p : got) p->DropMapping();
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

// At the limit, copies of doomed pages are charged to the pin reserve, and
// the free that follows pays it back: the page goes cold, the figure within
// the limit never moves, and nothing is left kept for reuse.
TEST(PageAllocatorTest, PinnedCopiesDrawOnThePinReserveUntilTheNextFree) {
  const std::uint64_t slab = PageAllocator::SlabCharge();
  MemoryBudget budget(4 * kPage + slab, 0, 2 * kPage);
  PageAllocator pages(kPage, budget);
  std::vector<Page*> got(7);
  ASSERT_TRUE(pages.Allocate(4, got.data()));
  EXPECT_FALSE(pages.Allocate(1, &got[4]));
  EXPECT_FALSE(pages.Allocate(2, &got[4], /*pinned_copies=*/1));  // one new
  ASSERT_TRUE(pages.Allocate(1, &got[4], /*pinned_copies=*/1));
  EXPECT_EQ(budget.used(), 4 * kPage + slab);
  EXPECT_EQ(budget.pin_reserve_used(), kPage);
  EXPECT_EQ(pages.live_pages(), 5u);
  ASSERT_TRUE(pages.Allocate(1, &got[5], /*pinned_copies=*/1));
  // Past the reserve: refused, all or nothing.
  EXPECT_FALSE(pages.Allocate(1, &got[6], /*pinned_copies=*/1));
  EXPECT_EQ(budget.pin_reserve_used(), 2 * kPage);
  EXPECT_EQ(pages.live_pages(), 6u);

  got[0]->DropMapping();  // a doomed page goes
  EXPECT_EQ(budget.used(), 4 * kPage + slab);
  EXPECT_EQ(budget.pin_reserve_used(), kPage);
  EXPECT_EQ(pages.own_bytes(), slab);  // cold, not kept warm
  got[1]->DropMapping();
  EXPECT_EQ(budget.pin_reserve_used(), 0u);
  EXPECT_EQ(budget.used(), 4 * kPage + slab);
  EXPECT_EQ(pages.live_pages(), 4u);
  // Out of debt: a free keeps its page warm, for reuse at no new charge.
  got[2]->DropMapping();
  EXPECT_EQ(pages.own_bytes(), kPage + slab);
  ASSERT_TRUE(pages.Allocate(1, &got[2]));
  for (int i = 2; i < 6; ++i) got[i]->DropMapping();
  EXPECT_EQ(pages.live_pages(), 0u);
  EXPECT_EQ(budget.pin_reserve_used(), 0u);
}

// A copy that finds every slab full draws the new slab's records from the
// pin reserve too; what the allocator gives back after pays it all.
TEST(PageAllocatorTest, PinnedCopyIntoANewSlabDrawsItsRecordsToo) {
  const std::uint64_t slab = PageAllocator::SlabCharge();
  const std::size_t n = PageAllocator::kSlabPages;
  MemoryBudget budget(n * kPage + slab, 0,
                      PageAllocator::PinReserveFor(kPage, kPage));
  EXPECT_EQ(budget.pin_reserve(), kPage + slab);
  PageAllocator pages(kPage, budget);
  std::vector<Page*> got(n + 1);
  ASSERT_TRUE(pages.Allocate(n, got.data()));
  ASSERT_TRUE(pages.Allocate(1, &got[n], /*pinned_copies=*/1));
  EXPECT_EQ(budget.used(), n * kPage + slab);
  EXPECT_EQ(budget.pin_reserve_used(), kPage + slab);
  std::size_t freed = 0;
  while (budget.pin_reserve_used() != 0) got[freed++]->DropMapping();
  EXPECT_EQ(freed, (kPage + slab + kPage - 1) / kPage);
  // All within the limit now: the live pages and both slabs' records.
  EXPECT_EQ(pages.own_bytes(), 2 * slab);
  EXPECT_EQ(budget.used(), (n + 1 - freed) * kPage + 2 * slab);
  for (std::size_t i = freed; i <= n; ++i) got[i]->DropMapping();
  EXPECT_EQ(pages.live_pages(), 0u);
}

}  // namespace
}  // namespace taskfs::vm
