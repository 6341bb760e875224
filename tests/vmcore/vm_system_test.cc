#include "vmcore/vm_system.h"

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "vmcore/task.h"

namespace taskfs::vm {
namespace {

VmConfig Config(std::uint64_t max_tasks = 4) {
  VmConfig config;
  config.address_bits = 32;
  config.max_tasks = max_tasks;
  return config;
}

TEST(VmSystemTest, ValidateConfig) {
  EXPECT_EQ(VmSystem::ValidateConfig(Config()), "");
  VmConfig c = Config();
  c.page_size = 8192 + 4096;
  EXPECT_NE(VmSystem::ValidateConfig(c), "");
  c = Config();
  c.page_size = 2048;
  EXPECT_NE(VmSystem::ValidateConfig(c), "");
  c = Config();
  c.address_bits = 63;
  EXPECT_NE(VmSystem::ValidateConfig(c), "");
  c = Config();
  c.max_tasks = 0;
  EXPECT_NE(VmSystem::ValidateConfig(c), "");
}

TEST(VmSystemTest, ValidTaskName) {
  EXPECT_TRUE(VmSystem::ValidTaskName("a.b_c-9"));
  EXPECT_TRUE(VmSystem::ValidTaskName(std::string(64, 'n')));
  EXPECT_FALSE(VmSystem::ValidTaskName(""));
  EXPECT_FALSE(VmSystem::ValidTaskName(".a"));
  EXPECT_FALSE(VmSystem::ValidTaskName("host_page_size"));
  EXPECT_FALSE(VmSystem::ValidTaskName("a b"));
  EXPECT_FALSE(VmSystem::ValidTaskName(std::string(65, 'n')));
}

TEST(VmSystemTest, AddFindAndRemoveTasks) {
  VmSystem system(Config());
  KernResult<std::shared_ptr<Task>> a = system.AddTask("a");
  KernResult<std::shared_ptr<Task>> b = system.AddTask("b");
  ASSERT_EQ(a.code(), KERN_SUCCESS);
  ASSERT_EQ(b.code(), KERN_SUCCESS);
  EXPECT_LT(a.value()->id(), b.value()->id());
  EXPECT_EQ(system.FindTask("a"), a.value());
  EXPECT_EQ(system.FindTask(b.value()->id()), b.value());
  EXPECT_EQ(system.AddTask("a").code(), KERN_NAME_EXISTS);
  ASSERT_EQ(system.Tasks().size(), 2u);
  EXPECT_EQ(system.Tasks()[0], a.value());  // creation order
  system.RemoveTask(*a.value());
  EXPECT_EQ(system.FindTask("a"), nullptr);
  EXPECT_EQ(system.FindTask(a.value()->id()), nullptr);
  // The name is free again; the id is not reused.
  KernResult<std::shared_ptr<Task>> again = system.AddTask("a");
  ASSERT_EQ(again.code(), KERN_SUCCESS);
  EXPECT_GT(again.value()->id(), b.value()->id());
}

TEST(VmSystemTest, MaxTasksIsResourceShortage) {
  VmSystem system(Config(/*max_tasks=*/2));
  ASSERT_EQ(system.AddTask("a").code(), KERN_SUCCESS);
  ASSERT_EQ(system.AddTask("b").code(), KERN_SUCCESS);
  EXPECT_EQ(system.AddTask("c").code(), KERN_RESOURCE_SHORTAGE);
}

// With lock_out, the new task comes back locked exclusive.
TEST(VmSystemTest, AddTaskCanReturnTheTaskLocked) {
  VmSystem system(Config());
  std::unique_lock<PhaseFairMutex> lock;
  KernResult<std::shared_ptr<Task>> t = system.AddTask("t", &lock);
  ASSERT_EQ(t.code(), KERN_SUCCESS);
  ASSERT_TRUE(lock.owns_lock());
  EXPECT_EQ(lock.mutex(), &t.value()->mu());
  bool other_got_it = true;
  std::thread other([&] {
    other_got_it = t.value()->mu().try_lock_shared();
    if (other_got_it) t.value()->mu().unlock_shared();
  });
  other.join();
  EXPECT_FALSE(other_got_it);
}

}  // namespace
}  // namespace taskfs::vm
