#include "vmcore/page_range.h"

#include <gtest/gtest.h>

namespace taskfs::vm {
namespace {

constexpr Geometry kGeometry{12, std::uint64_t{1} << 32};
constexpr std::uint64_t kMax = ~std::uint64_t{0};

TEST(PageRangeTest, ExactAcceptsRangesInsideTheSpace) {
  KernResult<PageRange> r = PageRange::Exact(kGeometry, 0x1000, 0x2000);
  ASSERT_EQ(r.code(), KERN_SUCCESS);
  EXPECT_EQ(r.value().start(), 0x1000u);
  EXPECT_EQ(r.value().end(), 0x3000u);
  EXPECT_EQ(r.value().size(), 0x2000u);
  r = PageRange::Exact(kGeometry, kGeometry.limit, 0);
  ASSERT_EQ(r.code(), KERN_SUCCESS);
  EXPECT_TRUE(r.value().empty());
  EXPECT_EQ(PageRange::Exact(kGeometry, 0, kGeometry.limit).code(),
            KERN_SUCCESS);
}

TEST(PageRangeTest, ExactRejectsWrapAndOutside) {
  EXPECT_EQ(PageRange::Exact(kGeometry, kMax - 0xfff, 0x2000).code(),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(PageRange::Exact(kGeometry, kGeometry.limit, 0x1000).code(),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(
      PageRange::Exact(kGeometry, kGeometry.limit - 0x1000, 0x2000).code(),
      KERN_INVALID_ADDRESS);
}

TEST(PageRangeTest, RoundedTruncatesStartAndRoundsEnd) {
  KernResult<PageRange> r = PageRange::Rounded(kGeometry, 0x1fff, 2);
  ASSERT_EQ(r.code(), KERN_SUCCESS);
  EXPECT_EQ(r.value().start(), 0x1000u);
  EXPECT_EQ(r.value().end(), 0x3000u);
  r = PageRange::Rounded(kGeometry, 0x1000, 1);
  ASSERT_EQ(r.code(), KERN_SUCCESS);
  EXPECT_EQ(r.value().size(), 0x1000u);
}

TEST(PageRangeTest, RoundedRejectsWrapIncludingByRounding) {
  EXPECT_EQ(PageRange::Rounded(kGeometry, kMax, 1).code(),
            KERN_INVALID_ADDRESS);
  // address + size fits, but rounding it up passes 2^64.
  EXPECT_EQ(PageRange::Rounded(kGeometry, kMax - 10, 5).code(),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(PageRange::Rounded(kGeometry, kGeometry.limit - 1, 2).code(),
            KERN_INVALID_ADDRESS);
}

// vm_allocate's rounding: (0x20fff, 2) is one page, where Rounded makes two.
TEST(PageRangeTest, RoundedApartRoundsAddressAndSizeEachOnItsOwn) {
  KernResult<PageRange> r = PageRange::RoundedApart(kGeometry, 0x20fff, 2);
  ASSERT_EQ(r.code(), KERN_SUCCESS);
  EXPECT_EQ(r.value().start(), 0x20000u);
  EXPECT_EQ(r.value().end(), 0x21000u);
  EXPECT_EQ(PageRange::Rounded(kGeometry, 0x20fff, 2).value().size(), 0x2000u);
  EXPECT_EQ(PageRange::RoundedApart(kGeometry, 0, kMax).code(),
            KERN_INVALID_ADDRESS);
  // The last page, from an address inside it; one byte more is outside.
  EXPECT_EQ(
      PageRange::RoundedApart(kGeometry, kGeometry.limit - 1, 1).value().end(),
      kGeometry.limit);
  EXPECT_EQ(
      PageRange::RoundedApart(kGeometry, kGeometry.limit - 1, 0x1001).code(),
      KERN_INVALID_ADDRESS);
}

TEST(PageRangeTest, AllIsTheWholeSpace) {
  const PageRange all = PageRange::All(kGeometry);
  EXPECT_EQ(all.start(), 0u);
  EXPECT_EQ(all.end(), kGeometry.limit);
}

TEST(GeometryTest, Alignment) {
  EXPECT_TRUE(kGeometry.Aligned(0));
  EXPECT_TRUE(kGeometry.Aligned(0x5000));
  EXPECT_FALSE(kGeometry.Aligned(0x5001));
  EXPECT_EQ(kGeometry.page_size(), 4096u);
}

}  // namespace
}  // namespace taskfs::vm
