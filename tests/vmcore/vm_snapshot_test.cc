// task_snapshot, vm_find_resident and vm_count_resident: the core file's
// engine, through the Mach facade.
#include "vmcore/vm_snapshot.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "vmcore/vm_user.h"

namespace taskfs::vm {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kBase = 0x100000;

class VmSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(0); }
  void Make(std::uint64_t memory_limit) {
    task_.reset();
    VmConfig config;
    config.page_size = kPage;
    config.address_bits = 44;
    config.max_tasks = 8;
    config.memory_limit = memory_limit;
    system_ = std::make_unique<VmSystem>(config);
    KernResult<std::shared_ptr<Task>> made = task_create(*system_, "t");
    ASSERT_TRUE(made.ok());
    task_ = std::move(made).value();
  }
  void Alloc(vm_address_t address, vm_size_t size) {
    ASSERT_EQ(vm_allocate(*task_, &address, size, false), KERN_SUCCESS);
  }
  void Write(vm_address_t address, char byte, vm_size_t size = kPage) {
    std::vector<char> data(size, byte);
    ASSERT_EQ(vm_write(*task_, address, data.data(), size), KERN_SUCCESS);
  }
  static std::vector<char> Read(Task& task, vm_address_t address,
                                vm_size_t size) {
    std::vector<char> out(size);
    EXPECT_EQ(vm_read(task, address, std::as_writable_bytes(std::span(out))),
              KERN_SUCCESS);
    return out;
  }

  std::unique_ptr<VmSystem> system_;
  std::shared_ptr<Task> task_;
};

TEST_F(VmSnapshotTest, HoldsTheTaskAsItWasAndListsEveryRegion) {
  Alloc(kBase, 4 * kPage);
  Alloc(kBase + 8 * kPage, 2 * kPage);
  ASSERT_EQ(
      vm_protect(*task_, kBase + 8 * kPage, 2 * kPage, false, VM_PROT_NONE),
      KERN_SUCCESS);
  Write(kBase, 'a', 2 * kPage);
  std::vector<RegionInfo> regions;
  KernResult<std::shared_ptr<Task>> snap = task_snapshot(*task_, &regions);
  ASSERT_TRUE(snap.ok());
  Task& snapshot = *snap.value();
  Write(kBase, 'b', kPage);  // after the snapshot: not in it

  KernResult<std::vector<RegionInfo>> now = vm_region_list(*task_);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(regions, now.value());
  EXPECT_EQ(Read(snapshot, kBase, kPage), std::vector<char>(kPage, 'a'));
  EXPECT_EQ(Read(*task_, kBase, kPage), std::vector<char>(kPage, 'b'));
  EXPECT_EQ(Read(snapshot, kBase + 2 * kPage, kPage),
            std::vector<char>(kPage, 0));
  // The region without read is listed, not copied.
  KernResult<std::vector<RegionInfo>> held = vm_region_list(snapshot);
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held.value().size(), 1u);
  EXPECT_EQ(held.value()[0].start, kBase);
  // Hidden: no task of the system has its id.
  EXPECT_EQ(snapshot.id(), 0u);
}

TEST_F(VmSnapshotTest, FindsWrittenPagesAndHolesWithoutWalkingATebibyte) {
  const std::uint64_t tib = std::uint64_t{1} << 40;
  Alloc(kBase, tib);
  Write(kBase + (tib / 2), 'x', 2 * kPage);
  const vm_address_t end = kBase + tib;
  EXPECT_EQ(vm_find_resident(*task_, kBase, end, true).value(),
            kBase + tib / 2);
  EXPECT_EQ(vm_find_resident(*task_, kBase + tib / 2, end, false).value(),
            kBase + tib / 2 + 2 * kPage);
  EXPECT_EQ(vm_find_resident(*task_, kBase, end, false).value(), kBase);
  EXPECT_EQ(
      vm_find_resident(*task_, kBase + tib / 2 + 2 * kPage, end, true).value(),
      end);
  // A from inside a page stands for that page.
  EXPECT_EQ(vm_find_resident(*task_, kBase + tib / 2 + 5, end, true).value(),
            kBase + tib / 2);
  EXPECT_EQ(vm_count_resident(*task_, kBase, end).value(), 2u);
  EXPECT_EQ(vm_find_resident(*task_, std::uint64_t{1} << 44, end, true).code(),
            KERN_INVALID_ADDRESS);
}

TEST_F(VmSnapshotTest, AnUnallocatedGapIsNotResident) {
  Alloc(kBase, kPage);
  Alloc(kBase + 2 * kPage, kPage);
  Write(kBase, 'a');
  Write(kBase + 2 * kPage, 'b');
  EXPECT_EQ(vm_find_resident(*task_, kBase, kBase + 3 * kPage, false).value(),
            kBase + kPage);
  EXPECT_EQ(vm_count_resident(*task_, kBase, kBase + 3 * kPage).value(), 2u);
}

TEST_F(VmSnapshotTest, AtTheMemoryLimitFailsAndHoldsNothing) {
  Make(256 * 1024);
  // Regions until the limit refuses one more: a copy of their records
  // cannot fit.
  std::uint64_t regions_made = 0;
  for (vm_address_t at = kBase;; at += 2 * kPage) {
    vm_address_t address = at;
    if (vm_allocate(*task_, &address, kPage, false) != KERN_SUCCESS) break;
    ++regions_made;
  }
  ASSERT_GT(regions_made, 10u);
  const std::uint64_t used = system_->budget().used();
  std::vector<RegionInfo> regions;
  KernResult<std::shared_ptr<Task>> snap = task_snapshot(*task_, &regions);
  EXPECT_EQ(snap.code(), KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(system_->budget().used(), used);
}

}  // namespace
}  // namespace taskfs::vm
