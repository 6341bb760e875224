#include "vmcore/task.h"

#include <gtest/gtest.h>

#include <mutex>

#include "tests/vmcore/engine_test_util.h"

namespace taskfs::vm {
namespace {

// The engine tests' helpers (engine_test_util.h).
using namespace engine_test;  // NOLINT(build/namespaces)

TEST(TaskTest, HoldsItsNameIdAndGeometry) {
  auto system = MakeSystem();
  Task task(*system, 7, "seven");
  EXPECT_EQ(task.id(), 7u);
  EXPECT_EQ(task.name(), "seven");
  EXPECT_EQ(&task.system(), system.get());
  EXPECT_EQ(task.geometry().page_size(), kPage);
  EXPECT_EQ(task.geometry().limit, std::uint64_t{1} << 32);
  EXPECT_FALSE(task.terminated());
  EXPECT_TRUE(task.map().entries().empty());
}

TEST(TaskTest, TerminateEmptiesTheMapAndFreesItsPages) {
  auto system = MakeSystem();
  Task task(*system, 1, "t");
  AddressMap& map = task.map();
  map.AllocateRange(R(map, 0, 2 * kPage));
  ASSERT_EQ(Fill(*system, map, 0, 2 * kPage, 'x'), KERN_SUCCESS);
  EXPECT_EQ(system->pages().live_pages(), 2u);
  std::unique_lock lock(task.mu());
  task.Terminate();
  EXPECT_TRUE(task.terminated());
  EXPECT_TRUE(task.map().entries().empty());
  EXPECT_EQ(system->pages().live_pages(), 0u);
}

}  // namespace
}  // namespace taskfs::vm
