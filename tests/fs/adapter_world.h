// What the tests of the FUSE adapter's parts share: a VM system with a node
// table over it, as TaskFs keeps them, a log written to a string, and open
// files made as an open(2) of the adapter makes them.
#ifndef TASKFS_TESTS_FS_ADAPTER_WORLD_H_
#define TASKFS_TESTS_FS_ADAPTER_WORLD_H_

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/types.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "fs/access.h"
#include "fs/inode.h"
#include "fs/node_table.h"
#include "fs/open_file.h"
#include "tests/vmcore/take_result.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs::testing {

inline constexpr std::uint64_t kPage = 4096;
inline constexpr uid_t kOwner = 1000;
inline constexpr gid_t kGroup = 100;

inline vm::VmConfig WorldConfig() {
  vm::VmConfig config;
  config.page_size = kPage;
  config.address_bits = 32;
  config.memory_limit = 1024 * kPage;
  config.max_tasks = 8;
  return config;
}

// An opener whose credentials were read: owner of what kOwner made.
inline Credentials Opener(uid_t uid = kOwner, gid_t gid = kGroup) {
  return Credentials{uid, gid, {}, false, false, /*known=*/true};
}

class World {
 public:
  World()
      : system(WorldConfig()),
        log(std::make_shared<spdlog::logger>(
            "adapter_test",
            std::make_shared<spdlog::sinks::ostream_sink_st>(log_text_))) {
    log->set_pattern("%l: %v");
    log->set_level(spdlog::level::debug);
  }

  // A visible task owned by uid:gid.
  std::shared_ptr<vm::Task> AddTask(const std::string& name, uid_t uid = kOwner,
                                    gid_t gid = kGroup) {
    std::shared_ptr<vm::Task> task;
    EXPECT_EQ(vm::Take(vm::task_create(system, name), &task), vm::KERN_SUCCESS);
    nodes.Add(task, uid, gid);
    return task;
  }

  // A file of task, opened with flags by opener.
  std::unique_ptr<OpenFile> Open(const std::shared_ptr<vm::Task>& task,
                                 NodeKind kind, int flags,
                                 Credentials opener = Opener()) {
    TaskNode node;
    EXPECT_TRUE(nodes.Find(task->id(), &node));
    return std::make_unique<OpenFile>(node.task, node.errors, kind, flags,
                                      std::move(opener));
  }

  // The text of task's errors file.
  std::string Errors(const vm::Task& task) const {
    TaskNode node;
    if (!nodes.FindLast(task.id(), &node)) return "(no node)";
    return node.errors->Text();
  }

  std::string Logged() {
    log->flush();
    return log_text_.str();
  }

  void Allocate(vm::Task& task, vm::vm_address_t address, vm::vm_size_t size) {
    ASSERT_EQ(vm::vm_allocate(task, &address, size, false), vm::KERN_SUCCESS);
  }

  std::vector<vm::RegionInfo> Regions(vm::Task& task) {
    std::vector<vm::RegionInfo> regions;
    EXPECT_EQ(vm::Take(vm::vm_region_list(task), &regions), vm::KERN_SUCCESS);
    return regions;
  }

 private:
  std::ostringstream log_text_;  // before log, which writes to it

 public:
  vm::VmSystem system;
  NodeTable nodes;
  std::shared_ptr<spdlog::logger> log;
};

}  // namespace taskfs::fs::testing

#endif  // TASKFS_TESTS_FS_ADAPTER_WORLD_H_
