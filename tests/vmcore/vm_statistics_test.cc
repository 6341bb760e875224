// task_statistics' walk.
#include "vmcore/vm_statistics.h"

#include <gtest/gtest.h>

#include "tests/vmcore/engine_test_util.h"
#include "vmcore/vm_copy.h"

namespace taskfs::vm {
namespace {

using engine_test::Fill;
using engine_test::kPage;
using engine_test::MakeSystem;
using engine_test::MakeTask;
using engine_test::R;

TEST(VmStatisticsTest, EmptyMap) {
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  const TaskStatistics s = MapStatistics(task->map());
  EXPECT_EQ(s.regions, 0u);
  EXPECT_EQ(s.virtual_bytes, 0u);
  EXPECT_EQ(s.resident_bytes, 0u);
  EXPECT_EQ(s.shared_bytes, 0u);
}

TEST(VmStatisticsTest, CountsRegionsResidentAndSharedPages) {
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  AddressMap& map = task->map();
  map.AllocateRange(R(map, 0, 4 * kPage));
  map.AllocateRange(R(map, 8 * kPage, kPage));
  map.SetProtection(R(map, 8 * kPage, kPage), VM_PROT_READ, false);
  ASSERT_EQ(Fill(*system, map, 0, 2 * kPage, 'a'), KERN_SUCCESS);
  TaskStatistics s = MapStatistics(map);
  EXPECT_EQ(s.regions, 2u);
  EXPECT_EQ(s.virtual_bytes, 5 * kPage);
  EXPECT_EQ(s.resident_bytes, 2 * kPage);
  EXPECT_EQ(s.shared_bytes, 0u);
  // A copy within the task: the page is mapped twice, counted once, shared.
  CopyOverwrite(map, R(map, 0, kPage), map, R(map, 3 * kPage, kPage));
  s = MapStatistics(map);
  EXPECT_EQ(s.resident_bytes, 2 * kPage);
  EXPECT_EQ(s.shared_bytes, kPage);
}

// A page shared with another task is resident here and shared.
TEST(VmStatisticsTest, PageOfAnotherTaskIsShared) {
  auto system = MakeSystem();
  auto a = MakeTask(*system, "a");
  auto b = MakeTask(*system, "b");
  a->map().AllocateRange(R(a->map(), 0, kPage));
  b->map().AllocateRange(R(b->map(), 0, kPage));
  ASSERT_EQ(Fill(*system, a->map(), 0, kPage, 'a'), KERN_SUCCESS);
  CopyOverwrite(a->map(), R(a->map(), 0, kPage), b->map(),
                R(b->map(), 0, kPage));
  EXPECT_EQ(MapStatistics(b->map()).shared_bytes, kPage);
  EXPECT_EQ(MapStatistics(a->map()).shared_bytes, kPage);
}

}  // namespace
}  // namespace taskfs::vm
