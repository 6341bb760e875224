#include "vmcore/page_table.h"

#include <gtest/gtest.h>

#include <vector>

#include "vmcore/page.h"

namespace taskfs::vm {
namespace {

// Fake page addresses: the table never dereferences what it stores.
Page* P(std::uintptr_t n) { return reinterpret_cast<Page*>(n * 64); }

TEST(PageTableTest, EmptyTableHasNothing) {
  PageTable t;
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.Get(12345), nullptr);
  int visited = 0;
  t.Visit(0, 1000, [&](Page* p) {
    EXPECT_EQ(p, nullptr);
    ++visited;
  });
  EXPECT_EQ(visited, 1000);
}

TEST(PageTableTest, SlotsAcrossChunks) {
  PageTable t;
  const std::uint64_t k = PageTable::kChunkPages;
  t.Reserve(k - 2, k + 2);
  t.Slot(k - 1) = P(1);
  t.Slot(k) = P(2);
  EXPECT_EQ(t.Get(k - 1), P(1));
  EXPECT_EQ(t.Get(k), P(2));
  std::vector<Page*> seen;
  t.Visit(k - 3, k + 3, [&](Page* p) { seen.push_back(p); });
  EXPECT_EQ(seen, (std::vector<Page*>{nullptr, nullptr, P(1), P(2), nullptr,
                                      nullptr}));
  std::vector<std::uint64_t> indexes;
  t.ForEach(0, 10 * k, [&](std::uint64_t i, Page*) { indexes.push_back(i); });
  EXPECT_EQ(indexes, (std::vector<std::uint64_t>{k - 1, k}));
}

TEST(PageTableTest, VisitSkipsMissingChunksInOrder) {
  PageTable t;
  const std::uint64_t k = PageTable::kChunkPages;
  t.Reserve(5 * k, 5 * k + 1);
  t.Slot(5 * k) = P(9);
  std::uint64_t index = 2 * k;
  t.Visit(2 * k, 6 * k, [&](Page* p) {
    EXPECT_EQ(p, index == 5 * k ? P(9) : nullptr) << index;
    ++index;
  });
  EXPECT_EQ(index, 6 * k);
}

TEST(PageTableTest, ClearKeepsChunksUntilTrim) {
  PageTable t;
  t.Reserve(0, 4);
  for (int i = 0; i < 4; ++i) t.Slot(i) = P(i + 1);
  std::vector<Page*> removed;
  t.Clear(1, 3, [&](Page* p) { removed.push_back(p); });
  EXPECT_EQ(removed, (std::vector<Page*>{P(2), P(3)}));
  t.Slot(2) = P(7);  // the chunk is still there
  t.Clear(0, 4, [](Page*) {});
  EXPECT_FALSE(t.empty());
  t.Trim(0, 4);
  EXPECT_TRUE(t.empty());
}

}  // namespace
}  // namespace taskfs::vm
