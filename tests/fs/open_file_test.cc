// Open files and their table (fs/open_file.h).
#include "fs/open_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

#include "tests/vmcore/take_result.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {
namespace {

std::shared_ptr<vm::Task> NewTask(vm::VmSystem& system) {
  std::shared_ptr<vm::Task> task;
  EXPECT_EQ(vm::Take(vm::task_create(system, "t"), &task), vm::KERN_SUCCESS);
  return task;
}

vm::VmConfig Config() {
  vm::VmConfig config;
  config.page_size = 4096;
  config.address_bits = 24;
  config.memory_limit = 64 * 4096;
  config.max_tasks = 8;
  return config;
}

TEST(OpenFileTest, HoldsItsTaskAndStartsEmpty) {
  vm::VmSystem system(Config());
  const auto task = NewTask(system);
  OpenFile file(task, std::make_shared<ErrorLog>(task->system().budget()),
                NodeKind::kCtl, O_RDWR, Credentials{});
  EXPECT_EQ(file.task, task);
  EXPECT_EQ(file.kind, NodeKind::kCtl);
  EXPECT_EQ(file.flags, O_RDWR);
  EXPECT_TRUE(file.text.empty());
  EXPECT_EQ(file.ctl_cursor, 0u);
  EXPECT_TRUE(file.ctl_lines.pending().empty());
  EXPECT_EQ(file.ctl_lines.max_line(), kMaxCtlLine);
}

TEST(OpenFileTableTest, AdoptReturnsTheFileAndForgetFreesIt) {
  vm::VmSystem system(Config());
  const auto task = NewTask(system);
  const long base = task.use_count();
  OpenFileTable table;
  auto owned = std::make_unique<OpenFile>(
      task, std::make_shared<ErrorLog>(task->system().budget()), NodeKind::kMem,
      O_RDONLY, Credentials{});
  OpenFile* const expected = owned.get();
  OpenFile* const file = table.Adopt(std::move(owned));
  EXPECT_EQ(file, expected);
  EXPECT_EQ(table.Count(), 1u);
  EXPECT_EQ(task.use_count(), base + 1);  // the file holds its task
  table.Forget(file);
  EXPECT_EQ(table.Count(), 0u);
  EXPECT_EQ(task.use_count(), base);
}

TEST(OpenFileTableTest, ForgetOfAnUnknownFileIsIgnored) {
  vm::VmSystem system(Config());
  const auto task = NewTask(system);
  OpenFileTable table;
  OpenFile* const file = table.Adopt(std::make_unique<OpenFile>(
      task, std::make_shared<ErrorLog>(task->system().budget()), NodeKind::kMem,
      0, Credentials{}));
  OpenFile other(task, std::make_shared<ErrorLog>(task->system().budget()),
                 NodeKind::kMem, 0, Credentials{});
  table.Forget(&other);
  table.Forget(nullptr);
  EXPECT_EQ(table.Count(), 1u);
  table.Forget(file);
  table.Forget(file);  // a second release
  EXPECT_EQ(table.Count(), 0u);
}

TEST(OpenFileTableTest, DestructionFreesTheFilesStillOpen) {
  vm::VmSystem system(Config());
  const auto task = NewTask(system);
  const long base = task.use_count();
  {
    OpenFileTable table;
    for (int i = 0; i < 3; ++i) {
      table.Adopt(std::make_unique<OpenFile>(
          task, std::make_shared<ErrorLog>(task->system().budget()),
          NodeKind::kMaps, 0, Credentials{}));
    }
    EXPECT_EQ(task.use_count(), base + 3);
  }
  EXPECT_EQ(task.use_count(), base);
}

TEST(OpenFileTableTest, ConcurrentAdoptAndForget) {
  vm::VmSystem system(Config());
  const auto task = NewTask(system);
  OpenFileTable table;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        OpenFile* file = table.Adopt(std::make_unique<OpenFile>(
            task, std::make_shared<ErrorLog>(task->system().budget()),
            NodeKind::kMem, 0, Credentials{}));
        table.Forget(file);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(table.Count(), 0u);
}

}  // namespace
}  // namespace taskfs::fs
