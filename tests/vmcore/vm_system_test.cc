#include "vmcore/vm_system.h"

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "taskfs/task_name.h"
#include "vmcore/failure_reason.h"
#include "vmcore/task.h"
#include "vmcore/vm_user.h"

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

// The rule is <taskfs/task_name.h>'s, which libtaskfs and the Python package
// use too, and a refused name's reason states it in the header's words.
TEST(VmSystemTest, ValidTaskNameIsTheSharedRule) {
  const std::string chars = TASKFS_TASK_NAME_CHARS;
  for (const std::string& name :
       {std::string("a"), chars.substr(0, TASKFS_TASK_NAME_MAX),
        std::string(TASKFS_TASK_NAME_MAX + 1, 'n'),
        std::string(TASKFS_TASK_NAME_RESERVED), std::string(".a"),
        std::string("a."), std::string("a/b"), std::string("a\0b", 3),
        std::string("\xc3\xa9")}) {
    EXPECT_EQ(VmSystem::ValidTaskName(name),
              taskfs_valid_task_name(name.data(), name.size()) != 0)
        << name;
  }
  for (int c = 0; c < 256; ++c) {
    std::string name = "x";
    name.push_back(static_cast<char>(c));
    EXPECT_EQ(VmSystem::ValidTaskName(name),
              c != 0 && chars.find(static_cast<char>(c)) != std::string::npos)
        << c;
  }
  VmSystem system(Config());
  EXPECT_EQ(task_create(system, ".x").code(), KERN_INVALID_ARGUMENT);
  EXPECT_NE(
      std::string(LastFailureReason()).find("(" TASKFS_TASK_NAME_RULE ")"),
      std::string::npos)
      << LastFailureReason();
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
