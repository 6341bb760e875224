// PinnedPages: a snapshot held by pins, released once.
#include "vmcore/pinned_pages.h"

#include <gtest/gtest.h>

#include <vector>

#include "tests/vmcore/engine_test_util.h"
#include "vmcore/page.h"

namespace taskfs::vm {
namespace {

// The engine tests' helpers (engine_test_util.h).
using namespace engine_test;  // NOLINT(build/namespaces)

TEST(PinnedPagesTest, EmptyByDefault) {
  PinnedPages pinned;
  EXPECT_EQ(pinned.size(), 0u);
  EXPECT_TRUE(pinned.iov().empty());
  pinned.Release();  // harmless
}

TEST(PinnedPagesTest, PinsHoldPagesUntilReleasedOrDestroyed) {
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  AddressMap& map = task->map();
  map.AllocateRange(R(map, 0, 3 * kPage));
  ASSERT_EQ(Fill(*system, map, 0, kPage, 'a'), KERN_SUCCESS);
  ASSERT_EQ(Fill(*system, map, 2 * kPage, kPage, 'c'), KERN_SUCCESS);
  const PageRange range = R(map, 0, 3 * kPage);
  {
    PinnedPages pinned;
    ReadPinned(*system, Entries(map, range), range, &pinned);
    EXPECT_EQ(pinned.size(), 3 * kPage);
    map.Remove(range);  // the pins keep the written pages alive
    EXPECT_EQ(system->pages().live_pages(), 2u);
    std::vector<char> bytes(pinned.size());
    pinned.CopyTo(bytes.data());
    EXPECT_EQ(bytes[0], 'a');
    EXPECT_EQ(bytes[kPage], 0);
    EXPECT_EQ(bytes[2 * kPage], 'c');
    pinned.Release();
    EXPECT_EQ(pinned.size(), 0u);
    EXPECT_TRUE(pinned.iov().empty());
    EXPECT_EQ(system->pages().live_pages(), 0u);
  }
  map.AllocateRange(range);
  ASSERT_EQ(Fill(*system, map, 0, kPage, 'b'), KERN_SUCCESS);
  {
    PinnedPages pinned;
    ReadPinned(*system, Entries(map, range), range, &pinned);
    map.Remove(range);
    EXPECT_EQ(system->pages().live_pages(), 1u);
  }  // destruction releases
  EXPECT_EQ(system->pages().live_pages(), 0u);
}

}  // namespace
}  // namespace taskfs::vm
