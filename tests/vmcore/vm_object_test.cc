#include "vmcore/vm_object.h"

#include <gtest/gtest.h>

#include "vmcore/page_allocator.h"

namespace taskfs::vm {
namespace {

MemoryBudget& Unlimited() {
  static MemoryBudget budget(0);
  return budget;
}

// The page tables' freer; made after the budget, so that it goes first.
DeferredFreer& Freer() {
  Unlimited();
  static DeferredFreer freer(PageTable::kDeadNodes);
  return freer;
}

TEST(VmObjectTest, IdsIncrease) {
  VmObject a(Unlimited(), Freer()), b(Unlimited(), Freer());
  EXPECT_LT(a.id(), b.id());
}

TEST(VmObjectTest, CoverageCountsOverlaps) {
  VmObject o(Unlimited(), Freer());
  o.Cover(0, 10);
  o.Cover(5, 15);
  EXPECT_EQ(o.CoverageAt(0), 1u);
  EXPECT_EQ(o.CoverageAt(5), 2u);
  EXPECT_EQ(o.CoverageAt(9), 2u);
  EXPECT_EQ(o.CoverageAt(10), 1u);
  EXPECT_EQ(o.CoverageAt(15), 0u);
  EXPECT_FALSE(o.OnlyCovers(0, 15));
  o.Uncover(5, 15);
  EXPECT_TRUE(o.OnlyCovers(0, 10));
}

TEST(VmObjectTest, UncoveringFreesOnlyPagesNothingCovers) {
  PageAllocator pages(4096, Unlimited());
  VmObject o(Unlimited(), Freer());
  o.Cover(0, 4);
  o.Cover(2, 4);  // a second entry over the upper half
  Page* got[4];
  ASSERT_TRUE(pages.Allocate(4, got));
  {
    MemoryAccount scratch(Unlimited());
    PageTable::Undo undo(scratch, Freer());
    o.pages().Prepare(0, 4, undo);
    undo.Commit();
  }
  for (int i = 0; i < 4; ++i) o.pages().Slot(i) = got[i];
  o.Uncover(0, 4);
  EXPECT_EQ(pages.live_pages(), 2u);
  EXPECT_EQ(o.pages().Get(0), nullptr);
  EXPECT_EQ(o.pages().Get(2), got[2]);
  o.Uncover(2, 4);
  EXPECT_EQ(pages.live_pages(), 0u);
  EXPECT_TRUE(o.pages().empty());
}

TEST(VmObjectTest, DestructionDropsEveryPage) {
  PageAllocator pages(4096, Unlimited());
  {
    VmObject o(Unlimited(), Freer());
    Page* got[2];
    ASSERT_TRUE(pages.Allocate(2, got));
    MemoryAccount scratch(Unlimited());
    PageTable::Undo undo(scratch, Freer());
    o.pages().Prepare(0, 1000, undo);
    undo.Commit();
    o.pages().Slot(3) = got[0];
    o.pages().Slot(999) = got[1];
  }
  EXPECT_EQ(pages.live_pages(), 0u);
}

}  // namespace
}  // namespace taskfs::vm
