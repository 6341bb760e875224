#include "vmcore/page_range.h"

#include <gtest/gtest.h>

namespace taskfs::vm {
namespace {

constexpr Geometry kGeometry{12, std::uint64_t{1} << 32};
constexpr std::uint64_t kMax = ~std::uint64_t{0};

TEST(PageRangeTest, ExactAcceptsRangesInsideTheSpace) {
  PageRange r;
  ASSERT_EQ(PageRange::Exact(kGeometry, 0x1000, 0x2000, &r), KERN_SUCCESS);
  EXPECT_EQ(r.start(), 0x1000u);
  EXPECT_EQ(r.end(), 0x3000u);
  EXPECT_EQ(r.size(), 0x2000u);
  ASSERT_EQ(PageRange::Exact(kGeometry, kGeometry.limit, 0, &r), KERN_SUCCESS);
  EXPECT_TRUE(r.empty());
  ASSERT_EQ(PageRange::Exact(kGeometry, 0, kGeometry.limit, &r), KERN_SUCCESS);
}

TEST(PageRangeTest, ExactRejectsWrapAndOutside) {
  PageRange r;
  EXPECT_EQ(PageRange::Exact(kGeometry, kMax - 0xfff, 0x2000, &r),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(PageRange::Exact(kGeometry, kGeometry.limit, 0x1000, &r),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(PageRange::Exact(kGeometry, kGeometry.limit - 0x1000, 0x2000, &r),
            KERN_INVALID_ADDRESS);
}

TEST(PageRangeTest, RoundedTruncatesStartAndRoundsEnd) {
  PageRange r;
  ASSERT_EQ(PageRange::Rounded(kGeometry, 0x1fff, 2, &r), KERN_SUCCESS);
  EXPECT_EQ(r.start(), 0x1000u);
  EXPECT_EQ(r.end(), 0x3000u);
  ASSERT_EQ(PageRange::Rounded(kGeometry, 0x1000, 1, &r), KERN_SUCCESS);
  EXPECT_EQ(r.size(), 0x1000u);
}

TEST(PageRangeTest, RoundedRejectsWrapIncludingByRounding) {
  PageRange r;
  EXPECT_EQ(PageRange::Rounded(kGeometry, kMax, 1, &r), KERN_INVALID_ADDRESS);
  // address + size fits, but rounding it up passes 2^64.
  EXPECT_EQ(PageRange::Rounded(kGeometry, kMax - 10, 5, &r),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(PageRange::Rounded(kGeometry, kGeometry.limit - 1, 2, &r),
            KERN_INVALID_ADDRESS);
}

TEST(GeometryTest, Alignment) {
  EXPECT_TRUE(kGeometry.Aligned(0));
  EXPECT_TRUE(kGeometry.Aligned(0x5000));
  EXPECT_FALSE(kGeometry.Aligned(0x5001));
  EXPECT_EQ(kGeometry.page_size(), 4096u);
}

}  // namespace
}  // namespace taskfs::vm
