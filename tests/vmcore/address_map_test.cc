#include "vmcore/address_map.h"

#include <gtest/gtest.h>

#include <vector>

namespace taskfs::vm {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr Geometry kGeometry{12, std::uint64_t{1} << 32};

PageRange R(vm_address_t start, vm_size_t size) {
  PageRange r;
  EXPECT_EQ(PageRange::Exact(kGeometry, start, size, &r), KERN_SUCCESS);
  return r;
}

std::vector<RegionInfo> Regions(const AddressMap& map) {
  std::vector<RegionInfo> out;
  map.ForEachRegion([&](const RegionInfo& r) { out.push_back(r); });
  return out;
}

TEST(AddressMapTest, ConsecutiveAllocationsExtendOneEntry) {
  AddressMap map(kGeometry);
  for (int i = 0; i < 100; ++i) map.AllocateRange(R(i * kPage, kPage));
  EXPECT_EQ(map.entries().size(), 1u);
  EXPECT_EQ(map.virtual_bytes(), 100 * kPage);
}

TEST(AddressMapTest, ClipAndMergeBack) {
  AddressMap map(kGeometry);
  map.AllocateRange(R(0, 4 * kPage));
  map.ForEachClipped(R(kPage, kPage),
                     [](MapEntry& e) { e.protection = VM_PROT_READ; });
  EXPECT_EQ(map.entries().size(), 3u);
  const MapEntry& middle = map.entries().at(kPage);
  EXPECT_EQ(middle.offset, 1u);  // same object, offset follows the address
  EXPECT_EQ(middle.object, map.entries().at(0).object);
  map.ForEachClipped(R(kPage, kPage),
                     [](MapEntry& e) { e.protection = VM_PROT_DEFAULT; });
  EXPECT_EQ(map.entries().size(), 1u);
}

TEST(AddressMapTest, EntriesOfDifferentObjectsDoNotMergeButRegionsDo) {
  AddressMap map(kGeometry);
  map.AllocateRange(R(0, kPage));
  map.ForEachClipped(R(0, kPage), [](MapEntry& e) { e.inheritance = 0; });
  map.AllocateRange(R(kPage, kPage));  // no extension: attributes differ
  map.ForEachClipped(R(kPage, kPage), [](MapEntry& e) { e.inheritance = 0; });
  EXPECT_EQ(map.entries().size(), 2u);
  EXPECT_EQ(Regions(map).size(), 1u);
}

TEST(AddressMapTest, CheckRangeReportsTheLowestOffender) {
  AddressMap map(kGeometry);
  map.AllocateRange(R(0, kPage));
  map.AllocateRange(R(2 * kPage, kPage));
  map.ForEachClipped(R(2 * kPage, kPage),
                     [](MapEntry& e) { e.protection = VM_PROT_NONE; });
  EXPECT_EQ(map.CheckAccess(R(0, kPage), VM_PROT_READ), KERN_SUCCESS);
  EXPECT_EQ(map.CheckAccess(R(0, 3 * kPage), VM_PROT_READ),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(map.CheckAccess(R(2 * kPage, kPage), VM_PROT_READ),
            KERN_PROTECTION_FAILURE);
  EXPECT_TRUE(map.IsFree(R(kPage, kPage)));
  EXPECT_FALSE(map.IsFree(R(kPage, 2 * kPage)));
}

TEST(AddressMapTest, FindSpaceUsesHolesAndTheHint) {
  AddressMap map(kGeometry);
  vm_address_t a;
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(map.FindSpace(kPage, &a), KERN_SUCCESS);
    EXPECT_EQ(a, i * kPage);
    map.AllocateRange(R(a, kPage));
  }
  map.Remove(R(3 * kPage, 2 * kPage));
  ASSERT_EQ(map.FindSpace(3 * kPage, &a), KERN_SUCCESS);
  EXPECT_EQ(a, 10 * kPage);
  ASSERT_EQ(map.FindSpace(2 * kPage, &a), KERN_SUCCESS);
  EXPECT_EQ(a, 3 * kPage);
  EXPECT_EQ(map.FindSpace(kGeometry.limit, &a), KERN_NO_SPACE);
}

TEST(AddressMapTest, RemoveSplitsAndUncovers) {
  AddressMap map(kGeometry);
  map.AllocateRange(R(0, 4 * kPage));
  auto object = map.entries().at(0).object;
  map.Remove(R(kPage, 2 * kPage));
  EXPECT_EQ(map.entries().size(), 2u);
  EXPECT_EQ(object->CoverageAt(0), 1u);
  EXPECT_EQ(object->CoverageAt(1), 0u);
  EXPECT_EQ(object->CoverageAt(3), 1u);
}

TEST(AddressMapTest, RegionFromWalksBothWays) {
  AddressMap map(kGeometry);
  map.AllocateRange(R(0, 3 * kPage));
  map.ForEachClipped(R(kPage, kPage), [](MapEntry& e) { e.inheritance = 2; });
  map.ForEachClipped(R(kPage, kPage), [](MapEntry& e) { e.inheritance = 1; });
  RegionInfo info;
  ASSERT_TRUE(map.RegionFrom(2 * kPage, &info));
  EXPECT_EQ(info.start, 0u);
  EXPECT_EQ(info.size, 3 * kPage);
  EXPECT_FALSE(map.RegionFrom(3 * kPage, &info));
}

}  // namespace
}  // namespace taskfs::vm
