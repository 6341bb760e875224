// Virtual copy: CopyOverwrite, CopyOut and MapCopy below the facade.
#include "vmcore/vm_copy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/vmcore/engine_test_util.h"

namespace taskfs::vm {
namespace {

// The engine tests' helpers (engine_test_util.h).
using namespace engine_test;  // NOLINT(build/namespaces)

std::vector<RegionInfo> Regions(const AddressMap& map) {
  std::vector<RegionInfo> out;
  map.ForEachRegion([&](const RegionInfo& r) { out.push_back(r); });
  return out;
}

TEST(VmCopyTest, CopyOverwriteSharesPagesAndIsolatesWrites) {
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  AddressMap& map = task->map();
  map.AllocateRange(R(map, 0, 4 * kPage));
  ASSERT_EQ(Fill(*system, map, 0, kPage, 'a'), KERN_SUCCESS);
  ASSERT_EQ(Fill(*system, map, 2 * kPage, kPage, 'x'), KERN_SUCCESS);
  // [0, 2) over [2, 4): the written page is shared, the unwritten one
  // replaces 'x' with zeros.
  CopyOverwrite(map, R(map, 0, 2 * kPage), map, R(map, 2 * kPage, 2 * kPage));
  EXPECT_EQ(Pages(*system, map, 0, 4), "a0a0");
  EXPECT_EQ(system->pages().live_pages(), 1u);
  ASSERT_EQ(Fill(*system, map, 2 * kPage, kPage, 'b'), KERN_SUCCESS);
  EXPECT_EQ(Pages(*system, map, 0, 4), "a0b0");
  ASSERT_EQ(Fill(*system, map, 0, kPage, 'c'), KERN_SUCCESS);
  EXPECT_EQ(Pages(*system, map, 0, 4), "c0b0");
}

// A leaf shared by two slots of one table, then written through both in one
// call: the first slot's clone is this write's, and the second writes the
// leaf in place, so the write needs one fresh page per page, as the
// reference model says, and fits a page limit of exactly that.
TEST(VmCopyTest, WritingBothSidesOfASharedLeafNeedsOnePagePerPage) {
  constexpr std::uint64_t kLeaf = 512;
  auto system = MakeSystem(/*limit_pages=*/2 * kLeaf);
  auto task = MakeTask(*system, "t");
  AddressMap& map = task->map();
  map.AllocateRange(R(map, 0, 2 * kLeaf * kPage));
  ASSERT_EQ(Fill(*system, map, 0, kLeaf * kPage, 'a'), KERN_SUCCESS);
  CopyOverwrite(map, R(map, 0, kLeaf * kPage), map,
                R(map, kLeaf * kPage, kLeaf * kPage));
  EXPECT_EQ(system->pages().live_pages(), kLeaf);
  ASSERT_EQ(Fill(*system, map, 0, 2 * kLeaf * kPage, 'b'), KERN_SUCCESS);
  EXPECT_EQ(system->pages().live_pages(), 2 * kLeaf);
  EXPECT_EQ(Pages(*system, map, (kLeaf - 1) * kPage, 2), "bb");
}

// A write that raises the page table's height: the pages below the old root
// stay the table's own and are written in place, needing nothing.
TEST(VmCopyTest, AWriteThatGrowsTheTableWritesItsOwnPagesInPlace) {
  constexpr std::uint64_t kGiBPages = 512 * 512;
  auto system = MakeSystem(/*limit_pages=*/300);
  auto task = MakeTask(*system, "t");
  AddressMap& map = task->map();
  map.AllocateRange(R(map, 0, 2 * kGiBPages * kPage));
  const vm_address_t at = (kGiBPages - 256) * kPage;  // 256 pages below 1 GiB
  ASSERT_EQ(Fill(*system, map, at, 256 * kPage, 'a'), KERN_SUCCESS);
  // 256 written pages and 40 fresh ones: within the limit of 300 only if
  // the first 256 are written in place.
  ASSERT_EQ(Fill(*system, map, at, 296 * kPage, 'b'), KERN_SUCCESS);
  EXPECT_EQ(system->pages().live_pages(), 296u);
  EXPECT_EQ(Pages(*system, map, (kGiBPages - 1) * kPage, 2), "bb");
}

// Overlap: as if the source were read whole first.
TEST(VmCopyTest, OverlappingCopyReadsTheSourceFirst) {
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  AddressMap& map = task->map();
  map.AllocateRange(R(map, 0, 4 * kPage));
  ASSERT_EQ(Fill(*system, map, 0, kPage, 'a'), KERN_SUCCESS);
  ASSERT_EQ(Fill(*system, map, kPage, kPage, 'b'), KERN_SUCCESS);
  ASSERT_EQ(Fill(*system, map, 2 * kPage, kPage, 'c'), KERN_SUCCESS);
  CopyOverwrite(map, R(map, 0, 3 * kPage), map, R(map, kPage, 3 * kPage));
  EXPECT_EQ(Pages(*system, map, 0, 4), "aabc");
}

TEST(VmCopyTest, CopyOutMapsRegionsWithTheSourceAttributes) {
  auto system = MakeSystem();
  auto src = MakeTask(*system, "src");
  auto dst = MakeTask(*system, "dst");
  AddressMap& from = src->map();
  AddressMap& to = dst->map();
  from.AllocateRange(R(from, 0, 2 * kPage));
  from.SetProtection(R(from, kPage, kPage), VM_PROT_READ, false);
  ASSERT_EQ(Fill(*system, from, 0, 2 * kPage, 's'), KERN_SUCCESS);
  CopyOut(from, R(from, 0, 2 * kPage), to, R(to, 8 * kPage, 2 * kPage));
  const std::vector<RegionInfo> regions = Regions(to);
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0].start, 8 * kPage);
  EXPECT_EQ(regions[0].protection, VM_PROT_DEFAULT);
  EXPECT_EQ(regions[1].start, 9 * kPage);
  EXPECT_EQ(regions[1].protection, VM_PROT_READ);
  EXPECT_EQ(Pages(*system, to, 8 * kPage, 2), "ss");
  EXPECT_EQ(system->pages().live_pages(), 2u);  // shared, not copied
  // One new object behind both pieces.
  EXPECT_EQ(to.entries().at(8 * kPage).object,
            to.entries().at(9 * kPage).object);
}

TEST(VmCopyTest, MapCopyWithSourceDestroyMovesTheRange) {
  auto system = MakeSystem();
  auto src = MakeTask(*system, "src");
  auto dst = MakeTask(*system, "dst");
  AddressMap& from = src->map();
  AddressMap& to = dst->map();
  from.AllocateRange(R(from, 0, kPage));
  to.AllocateRange(R(to, 0, kPage));
  ASSERT_EQ(Fill(*system, from, 0, kPage, 'm'), KERN_SUCCESS);
  MapCopy(from, R(from, 0, kPage), to, R(to, 0, kPage), /*dst_alloc=*/false,
          /*src_destroy=*/true);
  EXPECT_TRUE(from.entries().empty());
  EXPECT_EQ(Pages(*system, to, 0, 1), "m");
  EXPECT_EQ(system->pages().live_pages(), 1u);
}

// Within one map, a destroying copy onto an overlapping range is a move: the
// destination holds the former source, and only the source outside it goes.
TEST(VmCopyTest, MapCopyWithSourceDestroyWithinOneMapKeepsTheDestination) {
  struct Case {
    vm_address_t source, dest;
    const char* pages;  // pages 0-3 after the move, '-' where unallocated
  };
  for (const Case& c : {Case{0, kPage, "-ab-"}, Case{kPage, 0, "ab--"},
                        Case{0, 0, "ab--"}, Case{0, 2 * kPage, "--ab"}}) {
    SCOPED_TRACE(testing::Message() << "from page " << c.source / kPage
                                    << " to page " << c.dest / kPage);
    auto system = MakeSystem();
    auto task = MakeTask(*system, "t");
    AddressMap& map = task->map();
    map.AllocateRange(R(map, 0, 4 * kPage));
    ASSERT_EQ(Fill(*system, map, c.source, kPage, 'a'), KERN_SUCCESS);
    ASSERT_EQ(Fill(*system, map, c.source + kPage, kPage, 'b'), KERN_SUCCESS);
    // The pages outside both ranges are not part of it.
    for (std::uint64_t p = 0; p < 4; ++p) {
      const vm_address_t at = p * kPage;
      const bool in_source = at >= c.source && at < c.source + 2 * kPage;
      const bool in_dest = at >= c.dest && at < c.dest + 2 * kPage;
      if (!in_source && !in_dest) map.Remove(R(map, at, kPage));
    }
    MapCopy(map, R(map, c.source, 2 * kPage), map, R(map, c.dest, 2 * kPage),
            /*dst_alloc=*/false, /*src_destroy=*/true);
    std::string got;
    for (std::uint64_t p = 0; p < 4; ++p) {
      got += map.IsFree(R(map, p * kPage, kPage))
                 ? "-"
                 : Pages(*system, map, p * kPage, 1);
    }
    EXPECT_EQ(got, c.pages);
    EXPECT_EQ(system->pages().live_pages(), 2u);
  }
}

}  // namespace
}  // namespace taskfs::vm
