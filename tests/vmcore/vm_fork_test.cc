// task_fork's map building.
#include "vmcore/vm_fork.h"

#include <gtest/gtest.h>

#include <shared_mutex>

#include "tests/vmcore/engine_test_util.h"

namespace taskfs::vm {
namespace {

// The engine tests' helpers (engine_test_util.h).
using namespace engine_test;  // NOLINT(build/namespaces)

TEST(VmForkTest, EntriesFollowTheirInheritance) {
  auto system = MakeSystem();
  auto parent = MakeTask(*system, "parent");
  AddressMap& map = parent->map();
  map.AllocateRange(R(map, 0, 3 * kPage));
  ASSERT_EQ(Fill(*system, map, 0, 3 * kPage, 'p'), KERN_SUCCESS);
  map.SetInheritance(R(map, 0, kPage), VM_INHERIT_SHARE);
  map.SetInheritance(R(map, 2 * kPage, kPage), VM_INHERIT_NONE);

  KernResult<std::shared_ptr<Task>> child = [&] {
    std::shared_lock lock(parent->mu());
    return ForkTask(*system, *parent, "child");
  }();
  ASSERT_EQ(child.code(), KERN_SUCCESS);
  AddressMap& child_map = child.value()->map();
  ASSERT_EQ(child_map.entries().size(), 2u);
  // share: the same object; copy: a new object over the same pages.
  EXPECT_EQ(child_map.entries().at(0).object, map.entries().at(0).object);
  EXPECT_NE(child_map.entries().at(kPage).object,
            map.entries().at(kPage).object);
  EXPECT_EQ(Pages(*system, child_map, 0, 2), "pp");
  EXPECT_EQ(system->pages().live_pages(), 3u);  // nothing copied yet
  ASSERT_EQ(Fill(*system, child_map, kPage, kPage, 'c'), KERN_SUCCESS);
  EXPECT_EQ(Pages(*system, map, kPage, 1), "p");
  ASSERT_EQ(Fill(*system, child_map, 0, kPage, 's'), KERN_SUCCESS);
  EXPECT_EQ(Pages(*system, map, 0, 1), "s");
  EXPECT_EQ(system->FindTask("child"), child.value());
}

TEST(VmForkTest, ATakenNameLeavesNothingBehind) {
  auto system = MakeSystem();
  auto parent = MakeTask(*system, "parent");
  AddressMap& map = parent->map();
  map.AllocateRange(R(map, 0, kPage));
  ASSERT_EQ(Fill(*system, map, 0, kPage, 'p'), KERN_SUCCESS);
  std::shared_lock lock(parent->mu());
  EXPECT_EQ(ForkTask(*system, *parent, "parent").code(), KERN_NAME_EXISTS);
  EXPECT_EQ(system->Tasks().size(), 1u);
  EXPECT_EQ(system->pages().live_pages(), 1u);
  EXPECT_EQ(map.entries().at(0).object->CoverageAt(0), 1u);
}

}  // namespace
}  // namespace taskfs::vm
