// The node table (fs/node_table.h): snapshots, ordering, updates, removal.
#include "fs/node_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "tests/vmcore/take_result.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {
namespace {

class NodeTableTest : public ::testing::Test {
 protected:
  NodeTableTest() : system_(Config()) {}

  static vm::VmConfig Config() {
    vm::VmConfig config;
    config.page_size = 4096;
    config.address_bits = 24;
    config.memory_limit = 64 * 4096;
    config.max_tasks = 64;
    return config;
  }

  std::shared_ptr<vm::Task> NewTask(const std::string& name) {
    std::shared_ptr<vm::Task> task;
    EXPECT_EQ(vm::Take(vm::task_create(system_, name), &task),
              vm::KERN_SUCCESS);
    return task;
  }

  vm::VmSystem system_;
  NodeTable table_;
};

TEST_F(NodeTableTest, AddGivesOwnerDefaultModesAndTime) {
  const auto task = NewTask("a");
  table_.Add(task, 1000, 100);
  TaskNode node;
  ASSERT_TRUE(table_.Find(task->id(), &node));
  EXPECT_EQ(node.task, task);
  EXPECT_EQ(node.uid, 1000u);
  EXPECT_EQ(node.gid, 100u);
  EXPECT_EQ(node.modes, kDefaultModes);
  EXPECT_EQ(node.modes[static_cast<unsigned>(NodeKind::kDir)], 0700u);
  EXPECT_EQ(node.modes[static_cast<unsigned>(NodeKind::kStatus)], 0444u);
  EXPECT_EQ(node.modes[static_cast<unsigned>(NodeKind::kErrors)], 0400u);
  ASSERT_NE(node.errors, nullptr);
  EXPECT_EQ(node.errors->last_seq(), 0u);
  EXPECT_NE(node.created.tv_sec, 0);
  EXPECT_EQ(table_.Count(), 1u);
}

TEST_F(NodeTableTest, FindOfAbsentIdFailsAndLeavesOut) {
  TaskNode node;
  node.uid = 7;
  EXPECT_FALSE(table_.Find(42, &node));
  EXPECT_EQ(node.uid, 7u);
}

TEST_F(NodeTableTest, FindGivesASnapshot) {
  const auto task = NewTask("a");
  table_.Add(task, 1, 1);
  TaskNode before;
  ASSERT_TRUE(table_.Find(task->id(), &before));
  ASSERT_TRUE(table_.Update(task->id(), [](TaskNode& n) {
    n.uid = 2;
    n.modes[1] = 0644;
  }));
  EXPECT_EQ(before.uid, 1u);
  EXPECT_EQ(before.modes[1], 0600u);
  TaskNode after;
  ASSERT_TRUE(table_.Find(task->id(), &after));
  EXPECT_EQ(after.uid, 2u);
  EXPECT_EQ(after.modes[1], 0644u);
}

TEST_F(NodeTableTest, UpdateAndRemoveOfAbsentId) {
  bool called = false;
  EXPECT_FALSE(table_.Update(9, [&](TaskNode&) { called = true; }));
  EXPECT_FALSE(called);
  table_.Remove(9);  // no effect
  EXPECT_EQ(table_.Count(), 0u);
}

TEST_F(NodeTableTest, NodesAfterIsAscendingAndBounded) {
  std::vector<std::uint64_t> ids;
  for (const char* name : {"a", "b", "c", "d", "e"}) {
    const auto task = NewTask(name);
    table_.Add(task, 0, 0);
    ids.push_back(task->id());
  }
  const std::vector<TaskNode> all = table_.NodesAfter(0, 100);
  ASSERT_EQ(all.size(), 5u);
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].task->id(), ids[i]);
  }
  const std::vector<TaskNode> some = table_.NodesAfter(ids[1], 2);
  ASSERT_EQ(some.size(), 2u);
  EXPECT_EQ(some[0].task->id(), ids[2]);
  EXPECT_EQ(some[1].task->id(), ids[3]);
  EXPECT_TRUE(table_.NodesAfter(ids[4], 10).empty());
  EXPECT_TRUE(table_.NodesAfter(0, 0).empty());
}

TEST_F(NodeTableTest, RemoveForgetsTheNodeButNotACopy) {
  const auto task = NewTask("a");
  table_.Add(task, 0, 0);
  TaskNode copy;
  ASSERT_TRUE(table_.Find(task->id(), &copy));
  table_.Remove(task->id());
  TaskNode gone;
  EXPECT_FALSE(table_.Find(task->id(), &gone));
  EXPECT_EQ(table_.Count(), 0u);
  EXPECT_EQ(copy.task, task);
}

TEST_F(NodeTableTest, ConcurrentUpdatesAndReadsAgree) {
  const auto task = NewTask("a");
  table_.Add(task, 0, 0);
  const std::uint64_t id = task->id();
  std::atomic<bool> torn{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        if (t % 2 == 0) {
          table_.Update(id, [&](TaskNode& n) {
            n.uid = static_cast<uid_t>(i);
            n.gid = static_cast<gid_t>(i);
          });
        } else {
          TaskNode n;
          if (table_.Find(id, &n) && n.uid != n.gid) torn = true;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_FALSE(torn);
}

TEST_F(NodeTableTest, RemovedNodeWithOpenFilesLivesOnInvisibly) {
  const auto task = NewTask("a");
  table_.Add(task, 1000, 100);
  ASSERT_TRUE(table_.Update(task->id(), [](TaskNode& n) { n.uid = 1001; }));
  TaskNode pinned;
  ASSERT_TRUE(table_.Pin(task->id(), &pinned));
  EXPECT_EQ(pinned.uid, 1001u);
  {
    NodePin pin(table_, task->id());
    table_.Remove(task->id());
    TaskNode node;
    EXPECT_FALSE(table_.Find(task->id(), &node));
    EXPECT_EQ(table_.Count(), 0u);
    EXPECT_TRUE(table_.NodesAfter(0, 10).empty());
    EXPECT_FALSE(table_.Update(task->id(), [](TaskNode&) {}));
    EXPECT_FALSE(table_.Pin(task->id(), &node));
    // fstat's view: the attributes it last had.
    ASSERT_TRUE(table_.FindLast(task->id(), &node));
    EXPECT_EQ(node.uid, 1001u);
    table_.Remove(task->id());  // a second rmdir changes nothing
    EXPECT_TRUE(table_.FindLast(task->id(), &node));
  }
  // The last file closed: the node is gone.
  TaskNode node;
  EXPECT_FALSE(table_.FindLast(task->id(), &node));
}

TEST_F(NodeTableTest, RemoveWithoutOpenFilesForgetsAtOnce) {
  const auto task = NewTask("a");
  table_.Add(task, 1000, 100);
  TaskNode node;
  ASSERT_TRUE(table_.Pin(task->id(), &node));
  table_.Unpin(task->id());
  table_.Remove(task->id());
  EXPECT_FALSE(table_.FindLast(task->id(), &node));
  table_.Unpin(task->id());  // an unmatched Unpin is ignored
  EXPECT_EQ(table_.Count(), 0u);
}

TEST_F(NodeTableTest, TwoPinsKeepTheNodeUntilBothGo) {
  const auto task = NewTask("a");
  table_.Add(task, 1, 1);
  TaskNode node;
  ASSERT_TRUE(table_.Pin(task->id(), &node));
  ASSERT_TRUE(table_.Pin(task->id(), &node));
  table_.Remove(task->id());
  table_.Unpin(task->id());
  EXPECT_TRUE(table_.FindLast(task->id(), &node));
  table_.Unpin(task->id());
  EXPECT_FALSE(table_.FindLast(task->id(), &node));
}

}  // namespace
}  // namespace taskfs::fs
