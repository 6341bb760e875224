#include "vmcore/page_allocator.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace taskfs::vm {
namespace {

constexpr std::size_t kPage = 4096;

TEST(PageAllocatorTest, AllocatesAdjacentPagesWithOneMapping) {
  PageAllocator pages(kPage, 0);
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
  PageAllocator pages(kPage, 4 * kPage);
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
  PageAllocator pages(kPage, 0);
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
  PageAllocator pages(kPage, 0);
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
  PageAllocator pages(16384, 0);
  const std::byte* zero = pages.zero_page();
  for (std::size_t i = 0; i < 16384; ++i) ASSERT_EQ(zero[i], std::byte{0});
}

}  // namespace
}  // namespace taskfs::vm
