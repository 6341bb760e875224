#include "vmcore/page_table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "vmcore/deferred_freer.h"
#include "vmcore/memory_account.h"
#include "vmcore/memory_budget.h"
#include "vmcore/page.h"
#include "vmcore/page_allocator.h"

namespace taskfs::vm {
namespace {

constexpr std::uint64_t k = PageTable::kFanout;

// Real pages from an allocator, since a table drops the mappings it holds.
class PageTableTest : public ::testing::Test {
 protected:
  PageTableTest() : budget_(0), pages_(4096, budget_, 0), scratch_(budget_) {}
  ~PageTableTest() override { freer_.Drain(); }

  // A fresh page (one mapping: the caller's, which Put hands to a table).
  Page* NewPage() {
    Page* page = nullptr;
    EXPECT_TRUE(pages_.Allocate(1, &page));
    return page;
  }
  // Puts a fresh page at index; returns it.
  Page* Put(PageTable& t, std::uint64_t index) {
    PageTable::Undo undo(scratch_, freer_);
    t.Prepare(index, index + 1, undo);
    undo.Commit();
    Page*& slot = t.Slot(index);
    if (slot != nullptr) slot->DropMapping();
    slot = NewPage();
    return slot;
  }
  void Assign(PageTable& dst, std::uint64_t lo, std::uint64_t hi,
              const PageTable& src, std::uint64_t src_lo) {
    PageTable::Undo undo(scratch_, freer_);
    dst.Assign(lo, hi, src, src_lo, undo);
    undo.Commit();
  }
  std::uint64_t NodeBytes() { return budget_.shared().held(); }

  MemoryBudget budget_;
  PageAllocator pages_;
  DeferredFreer freer_{PageTable::kDeadNodes};  // stopped before pages_ go
  MemoryAccount scratch_;
};

TEST_F(PageTableTest, EmptyTableHasNothing) {
  PageTable t(budget_.shared(), freer_);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.Get(12345), nullptr);
  int visited = 0;
  t.Visit(0, 1000, [&](Page* p) {
    EXPECT_EQ(p, nullptr);
    ++visited;
  });
  EXPECT_EQ(visited, 1000);
  EXPECT_TRUE(t.Clear(0, ~std::uint64_t{0}));
}

TEST_F(PageTableTest, SlotsAcrossLeaves) {
  PageTable t(budget_.shared(), freer_);
  Page* a = Put(t, k - 1);
  Page* b = Put(t, k);
  EXPECT_EQ(t.Get(k - 1), a);
  EXPECT_EQ(t.Get(k), b);
  std::vector<Page*> seen;
  t.Visit(k - 3, k + 3, [&](Page* p) { seen.push_back(p); });
  EXPECT_EQ(seen,
            (std::vector<Page*>{nullptr, nullptr, a, b, nullptr, nullptr}));
  std::vector<std::uint64_t> indexes;
  t.ForEach(0, 10 * k, [&](std::uint64_t i, Page*) { indexes.push_back(i); });
  EXPECT_EQ(indexes, (std::vector<std::uint64_t>{k - 1, k}));
}

TEST_F(PageTableTest, ClearDropsPagesAndEmptyNodes) {
  PageTable t(budget_.shared(), freer_);
  for (std::uint64_t i = 0; i < 4; ++i) Put(t, i);
  EXPECT_EQ(pages_.live_pages(), 4u);
  EXPECT_TRUE(t.Clear(1, 3));
  EXPECT_EQ(pages_.live_pages(), 2u);
  EXPECT_EQ(t.Get(1), nullptr);
  EXPECT_NE(t.Get(3), nullptr);
  EXPECT_TRUE(t.Clear(0, 4));
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(NodeBytes(), 0u);
  EXPECT_EQ(pages_.live_pages(), 0u);
}

TEST_F(PageTableTest, RollbackPutsEverySlotBack) {
  PageTable t(budget_.shared(), freer_);
  Page* a = Put(t, 5);
  const std::uint64_t nodes = NodeBytes();
  {
    PageTable::Undo undo(scratch_, freer_);
    t.Prepare(3 * k * k, 3 * k * k + 10, undo);  // grows the tree
    EXPECT_GT(NodeBytes(), nodes);
  }  // not committed
  EXPECT_EQ(NodeBytes(), nodes);
  EXPECT_EQ(t.Get(5), a);
  EXPECT_EQ(scratch_.held(), 0u);
}

// Lookups agree with a map for pages spread over many leaves and levels.
TEST_F(PageTableTest, LookupsAgreeWithAMap) {
  PageTable t(budget_.shared(), freer_);
  std::map<std::uint64_t, Page*> want;
  std::mt19937_64 rng(5);
  std::vector<std::uint64_t> indexes;
  for (std::uint64_t i = 3 * k; i < 40 * k; i += 1 + rng() % 300) {
    indexes.push_back(i);
  }
  for (std::uint64_t i : {k * k - 1, k * k, 5 * k * k * k + 7}) {
    indexes.push_back(i);
  }
  std::shuffle(indexes.begin(), indexes.end(), rng);
  for (std::uint64_t i : indexes) want[i] = Put(t, i);
  for (std::uint64_t probe = 0; probe < 41 * k; ++probe) {
    const auto it = want.find(probe);
    ASSERT_EQ(t.Get(probe), it == want.end() ? nullptr : it->second) << probe;
  }
  EXPECT_TRUE(t.Clear(10 * k, 20 * k));
  for (auto it = want.begin(); it != want.end();) {
    it = it->first >= 10 * k && it->first < 20 * k ? want.erase(it)
                                                   : std::next(it);
  }
  std::vector<std::uint64_t> seen;
  t.ForEach(0, ~std::uint64_t{0} >> 12, [&](std::uint64_t i, Page* p) {
    EXPECT_EQ(p, want[i]);
    seen.push_back(i);
  });
  std::vector<std::uint64_t> expected;
  for (const auto& [index, page] : want) expected.push_back(index);
  EXPECT_EQ(seen, expected);
}

// An aligned copy shares the source's subtree: one reference, no new leaf;
// a write to either side then clones only the path to the page written.
TEST_F(PageTableTest, AlignedAssignSharesSubtreesUntilAWrite) {
  PageTable src(budget_.shared(), freer_);
  for (std::uint64_t i = 0; i < 4 * k; i += 3) Put(src, i);
  const std::uint64_t live = pages_.live_pages();
  const std::uint64_t nodes = NodeBytes();
  PageTable dst(budget_.shared(), freer_);
  Assign(dst, 0, k * k, src, 0);
  EXPECT_EQ(NodeBytes(), nodes);  // the root itself is shared
  EXPECT_EQ(pages_.live_pages(), live);
  EXPECT_EQ(dst.Get(3), src.Get(3));

  Page* fresh = Put(dst, 3);
  EXPECT_NE(src.Get(3), fresh);
  EXPECT_EQ(dst.Get(3), fresh);
  EXPECT_EQ(dst.Get(6), src.Get(6));
  // The write cloned the root and one leaf.
  EXPECT_EQ(NodeBytes(), nodes + 2 * PageTable::kNodeCharge);
  // A page of a cloned leaf has a mapping from each leaf.
  EXPECT_EQ(src.Get(6)->mappings(), 2u);
  EXPECT_EQ(src.Get(513)->mappings(), 1u);  // its leaf is still shared
}

TEST_F(PageTableTest, UnalignedAssignCopiesSlots) {
  PageTable src(budget_.shared(), freer_);
  for (std::uint64_t i = 0; i < 2 * k; i += 5) Put(src, i);
  PageTable dst(budget_.shared(), freer_);
  Assign(dst, 7, 7 + 2 * k, src, 0);
  for (std::uint64_t i = 0; i < 2 * k; ++i) {
    ASSERT_EQ(dst.Get(7 + i), src.Get(i)) << i;
  }
  EXPECT_EQ(src.Get(0)->mappings(), 2u);
}

TEST_F(PageTableTest, AssignWithinOneTableAndOntoWrittenPages) {
  PageTable t(budget_.shared(), freer_);
  for (std::uint64_t i = 0; i < k * k; i += 97) Put(t, i);
  for (std::uint64_t i = k * k; i < 2 * k * k; i += 101) Put(t, i);
  std::map<std::uint64_t, Page*> low;
  t.ForEach(0, k * k, [&](std::uint64_t i, Page* p) { low[i] = p; });
  Assign(t, k * k, 2 * k * k, t, 0);  // replaces the written upper half
  std::uint64_t n = 0;
  t.ForEach(k * k, 2 * k * k, [&](std::uint64_t i, Page* p) {
    EXPECT_EQ(p, low[i - k * k]);
    ++n;
  });
  EXPECT_EQ(n, low.size());
  freer_.Drain();
  EXPECT_EQ(pages_.live_pages(), low.size());
}

TEST_F(PageTableTest, LargeSubtreesAreFreedWhenTheyGo) {
  {
    PageTable t(budget_.shared(), freer_);
    for (std::uint64_t i = 0; i < 64 * k; i += 7) Put(t, i);
  }
  freer_.Drain();
  EXPECT_EQ(pages_.live_pages(), 0u);
  EXPECT_EQ(NodeBytes(), 0u);
}

}  // namespace
}  // namespace taskfs::vm
