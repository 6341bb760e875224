#include "vmcore/address_map.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace taskfs::vm {
namespace {

// No limit: these tests are about the map, not the memory it holds.
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

constexpr std::uint64_t kPage = 4096;
constexpr Geometry kGeometry{12, std::uint64_t{1} << 32};

PageRange R(vm_address_t start, vm_size_t size) {
  KernResult<PageRange> r = PageRange::Exact(kGeometry, start, size);
  EXPECT_EQ(r.code(), KERN_SUCCESS);
  return r.ok() ? r.value() : PageRange();
}

std::vector<RegionInfo> Regions(const AddressMap& map) {
  std::vector<RegionInfo> out;
  map.ForEachRegion([&](const RegionInfo& r) { out.push_back(r); });
  return out;
}

TEST(AddressMapTest, ConsecutiveAllocationsExtendOneEntry) {
  AddressMap map(kGeometry, Unlimited(), Freer());
  for (int i = 0; i < 100; ++i) map.AllocateRange(R(i * kPage, kPage));
  EXPECT_EQ(map.entries().size(), 1u);
  EXPECT_EQ(map.virtual_bytes(), 100 * kPage);
}

TEST(AddressMapTest, ClipAndMergeBack) {
  AddressMap map(kGeometry, Unlimited(), Freer());
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
  AddressMap map(kGeometry, Unlimited(), Freer());
  map.AllocateRange(R(0, kPage));
  map.ForEachClipped(R(0, kPage), [](MapEntry& e) { e.inheritance = 0; });
  map.AllocateRange(R(kPage, kPage));  // no extension: attributes differ
  map.ForEachClipped(R(kPage, kPage), [](MapEntry& e) { e.inheritance = 0; });
  EXPECT_EQ(map.entries().size(), 2u);
  EXPECT_EQ(Regions(map).size(), 1u);
}

TEST(AddressMapTest, CheckRangeReportsTheLowestOffender) {
  AddressMap map(kGeometry, Unlimited(), Freer());
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
  AddressMap map(kGeometry, Unlimited(), Freer());
  for (int i = 0; i < 10; ++i) {
    KernResult<vm_address_t> a = map.FindSpace(kPage);
    ASSERT_EQ(a.code(), KERN_SUCCESS);
    EXPECT_EQ(a.value(), i * kPage);
    map.AllocateRange(R(a.value(), kPage));
  }
  map.Remove(R(3 * kPage, 2 * kPage));
  EXPECT_EQ(map.FindSpace(3 * kPage).value(), 10 * kPage);
  EXPECT_EQ(map.FindSpace(2 * kPage).value(), 3 * kPage);
  EXPECT_EQ(map.FindSpace(kGeometry.limit).code(), KERN_NO_SPACE);
}

TEST(AddressMapTest, AllocateAnywhereRoundsAndTakesTheLowestHole) {
  AddressMap map(kGeometry, Unlimited(), Freer());
  map.AllocateRange(R(0, kPage));
  map.AllocateRange(R(3 * kPage, kPage));
  KernResult<vm_address_t> a = map.AllocateAnywhere(kPage + 1);
  ASSERT_EQ(a.code(), KERN_SUCCESS);
  EXPECT_EQ(a.value(), kPage);
  EXPECT_FALSE(map.IsFree(R(2 * kPage, kPage)));
  EXPECT_EQ(map.AllocateAnywhere(kGeometry.limit).code(), KERN_NO_SPACE);
  EXPECT_EQ(map.AllocateAnywhere(kGeometry.limit + 1).code(), KERN_NO_SPACE);
  EXPECT_EQ(map.virtual_bytes(), 4 * kPage);
}

TEST(AddressMapTest, FindDataAndFindHole) {
  AddressMap map(kGeometry, Unlimited(), Freer());
  map.AllocateRange(R(2 * kPage, 2 * kPage));
  map.ForEachClipped(R(3 * kPage, kPage),
                     [](MapEntry& e) { e.protection = VM_PROT_READ; });
  EXPECT_EQ(map.FindData(0).value(), 2 * kPage);
  EXPECT_EQ(map.FindData(3 * kPage + 5).value(), 3 * kPage + 5);
  EXPECT_EQ(map.FindData(4 * kPage).code(), KERN_NO_SPACE);
  EXPECT_EQ(map.FindHole(kPage), kPage);
  EXPECT_EQ(map.FindHole(2 * kPage), 4 * kPage);  // across both entries
  map.AllocateRange(R(kGeometry.limit - kPage, kPage));
  EXPECT_EQ(map.FindHole(kGeometry.limit - kPage), kGeometry.limit);
}

TEST(AddressMapTest, SetProtectionAndInheritanceClipAndMerge) {
  AddressMap map(kGeometry, Unlimited(), Freer());
  map.AllocateRange(R(0, 3 * kPage));
  map.SetProtection(R(kPage, kPage), VM_PROT_READ, /*set_maximum=*/true);
  EXPECT_EQ(map.entries().size(), 3u);
  const MapEntry& middle = map.entries().at(kPage);
  EXPECT_EQ(middle.protection, VM_PROT_READ);
  EXPECT_EQ(middle.max_protection, VM_PROT_READ);
  map.SetProtection(R(0, kPage), VM_PROT_NONE, /*set_maximum=*/false);
  EXPECT_EQ(map.entries().at(0).protection, VM_PROT_NONE);
  EXPECT_EQ(map.entries().at(0).max_protection, VM_PROT_ALL);
  map.SetInheritance(R(2 * kPage, kPage), VM_INHERIT_SHARE);
  EXPECT_EQ(map.entries().at(2 * kPage).inheritance, VM_INHERIT_SHARE);
  // Back to equal attributes: the entries merge again.
  map.SetProtection(R(0, 3 * kPage), VM_PROT_ALL, /*set_maximum=*/true);
  map.SetProtection(R(0, 3 * kPage), VM_PROT_DEFAULT, /*set_maximum=*/false);
  map.SetInheritance(R(0, 3 * kPage), VM_INHERIT_COPY);
  EXPECT_EQ(Regions(map).size(), 1u);
}

TEST(AddressMapTest, RemoveSplitsAndUncovers) {
  AddressMap map(kGeometry, Unlimited(), Freer());
  map.AllocateRange(R(0, 4 * kPage));
  auto object = map.entries().at(0).object;
  map.Remove(R(kPage, 2 * kPage));
  EXPECT_EQ(map.entries().size(), 2u);
  EXPECT_EQ(object->CoverageAt(0), 1u);
  EXPECT_EQ(object->CoverageAt(1), 0u);
  EXPECT_EQ(object->CoverageAt(3), 1u);
}

// Three contiguous entries with equal attributes that do not merge (each
// over its own object), so the region of a page in the last one is found
// only by walking back to the first, and of the first only by walking
// forward to the last.
TEST(AddressMapTest, RegionFromWalksBothWays) {
  AddressMap map(kGeometry, Unlimited(), Freer());
  for (int i = 0; i < 3; ++i) {
    MapEntry entry;
    entry.start = (1 + i) * kPage;
    entry.end = (2 + i) * kPage;
    entry.object = std::make_shared<VmObject>(Unlimited(), Freer());
    map.Insert(std::move(entry));
  }
  map.AllocateRange(R(5 * kPage, kPage));
  map.SetInheritance(R(5 * kPage, kPage), VM_INHERIT_NONE);
  ASSERT_EQ(map.entries().size(), 4u);  // no merge: the walk is needed

  std::optional<RegionInfo> info = map.RegionFrom(3 * kPage);  // the last
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->start, kPage);
  EXPECT_EQ(info->size, 3 * kPage);
  info = map.RegionFrom(kPage);  // the first
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->start, kPage);
  EXPECT_EQ(info->size, 3 * kPage);
  info = map.RegionFrom(2 * kPage + 7);  // the middle, both ways
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->start, kPage);
  EXPECT_EQ(info->size, 3 * kPage);
  // Below everything: the first region above. A hole, then a region of
  // other attributes: a region of its own.
  EXPECT_EQ(map.RegionFrom(0)->start, kPage);
  info = map.RegionFrom(4 * kPage);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->start, 5 * kPage);
  EXPECT_EQ(info->size, kPage);
  EXPECT_EQ(info->inheritance, VM_INHERIT_NONE);
  EXPECT_FALSE(map.RegionFrom(6 * kPage).has_value());
}

}  // namespace
}  // namespace taskfs::vm
