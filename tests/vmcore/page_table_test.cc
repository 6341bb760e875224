#include "vmcore/page_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <random>
#include <vector>

#include "vmcore/page.h"

namespace taskfs::vm {
namespace {

MemoryAccount& Account() {
  static MemoryBudget budget(0);
  static MemoryAccount account(budget);
  return account;
}

// Fake page addresses: the table never dereferences what it stores.
Page* P(std::uintptr_t n) { return reinterpret_cast<Page*>(n * 64); }

TEST(PageTableTest, EmptyTableHasNothing) {
  PageTable t(Account());
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
  PageTable t(Account());
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
  PageTable t(Account());
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
  PageTable t(Account());
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

// Chunks in runs with gaps, made in a shuffled order, then trimmed in part:
// every lookup (the dense guess or the binary search) agrees with a map.
TEST(PageTableTest, LookupsAgreeWithAMapForDenseAndSparseChunks) {
  PageTable t(Account());
  const std::uint64_t k = PageTable::kChunkPages;
  std::map<std::uint64_t, Page*> want;
  std::vector<std::uint64_t> keys;
  for (std::uint64_t c = 3; c < 40; ++c) keys.push_back(c);  // dense run
  for (std::uint64_t c : {41, 45, 46, 100, 1000, 1001, 5000}) keys.push_back(c);
  std::mt19937_64 rng(5);
  std::shuffle(keys.begin(), keys.end(), rng);
  for (std::uint64_t c : keys) {
    t.Reserve(c * k, c * k + k);
    const std::uint64_t index = c * k + rng() % k;
    t.Slot(index) = P(index + 1);
    want[index] = P(index + 1);
    for (std::uint64_t probe : {std::uint64_t{0}, c * k, index, index + 1,
                                (c + 1) * k, 6000 * k}) {
      const auto it = want.find(probe);
      ASSERT_EQ(t.Get(probe), it == want.end() ? nullptr : it->second)
          << probe;
    }
  }
  // Emptying and trimming chunks 10..19 opens a gap in the dense run.
  t.Clear(10 * k, 20 * k, [](Page*) {});
  t.Trim(10 * k, 20 * k);
  for (auto it = want.begin(); it != want.end();) {
    it = it->first >= 10 * k && it->first < 20 * k ? want.erase(it)
                                                    : std::next(it);
  }
  for (std::uint64_t c = 0; c < 6000; c += (c < 120 ? 1 : 37)) {
    for (std::uint64_t i = c * k; i < c * k + k; i += 7) {
      const auto it = want.find(i);
      ASSERT_EQ(t.Get(i), it == want.end() ? nullptr : it->second) << i;
    }
  }
  std::vector<std::uint64_t> seen;
  t.ForEach(0, 6000 * k, [&](std::uint64_t i, Page* p) {
    EXPECT_EQ(p, P(i + 1));
    seen.push_back(i);
  });
  std::vector<std::uint64_t> expected;
  for (const auto& [index, page] : want) expected.push_back(index);
  EXPECT_EQ(seen, expected);
}

}  // namespace
}  // namespace taskfs::vm
