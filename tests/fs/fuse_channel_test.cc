#include "fs/fuse_channel.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace taskfs::fs {
namespace {

constexpr std::uint32_t kKiB = 1024;

TEST(RequestLimitsTest, DefaultKernelLimitGivesHalfMegabyteRequests) {
  for (std::uint64_t page : {4096u, 16384u, 65536u}) {
    const RequestLimits l = ChooseRequestLimits(page, 4096, 256);
    EXPECT_EQ(l.max_bytes, 512 * kKiB) << page;
    EXPECT_EQ(l.max_pages, 256) << page;
  }
}

TEST(RequestLimitsTest, RaisedKernelLimitGivesWholeMegabyteRequests) {
  for (unsigned limit : {512u, 1024u, 65535u}) {
    const RequestLimits l = ChooseRequestLimits(4096, 4096, limit);
    EXPECT_EQ(l.max_bytes, 1024 * kKiB) << limit;
    EXPECT_EQ(l.max_pages, 512) << limit;
  }
}

TEST(RequestLimitsTest, RequestsAreWholeTaskPages) {
  // 300 pages: 150 to fill, 600 KiB, cut to whole 16 KiB pages.
  const RequestLimits l = ChooseRequestLimits(16384, 4096, 300);
  EXPECT_EQ(l.max_pages, 300);
  EXPECT_EQ(l.max_bytes, 592 * kKiB);
}

TEST(RequestLimitsTest, LargeHostPages) {
  // A 64 KiB-page host: 1 MiB is 16 of its pages.
  const RequestLimits l = ChooseRequestLimits(4096, 65536, 256);
  EXPECT_EQ(l.max_pages, 32);
  EXPECT_EQ(l.max_bytes, 1024 * kKiB);
}

TEST(RequestLimitsTest, EveryRequestLeavesRoomForMisalignment) {
  for (std::uint64_t page = 4096; page <= 65536; page *= 2) {
    for (unsigned limit : {256u, 257u, 300u, 511u, 512u, 4096u}) {
      const RequestLimits l = ChooseRequestLimits(page, 4096, limit);
      SCOPED_TRACE(testing::Message() << "page " << page << " limit " << limit);
      EXPECT_EQ(l.max_bytes % page, 0u);
      EXPECT_LE(l.max_bytes, 1024 * kKiB);
      EXPECT_LE(l.max_pages, limit);
      // A vector of 64 segments, each spanning up to two pages more than
      // its bytes, fits in one request's pages.
      EXPECT_LE(l.max_bytes / 4096 + 2 * 64, l.max_pages);
    }
  }
}

}  // namespace
}  // namespace taskfs::fs
