// The visible tasks: owner, modes and creation time of each task's paths.
#ifndef TASKFS_FS_NODE_TABLE_H_
#define TASKFS_FS_NODE_TABLE_H_

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "fs/inode.h"
#include "vmcore/task.h"

namespace taskfs::fs {

// SPEC §4's modes, by NodeKind.
inline constexpr std::array<mode_t, kNodeKinds> kDefaultModes = {
    0700, 0600, 0600, 0400, 0444};

// A task as the file system shows it. A copy is a snapshot: it holds the task
// alive, but a later chmod or chown does not change it.
struct TaskNode {
  std::shared_ptr<vm::Task> task;
  uid_t uid = 0;
  gid_t gid = 0;
  std::array<mode_t, kNodeKinds> modes{};  // permission bits per file
  timespec created{};
};

// Thread-safety: every method may be called from any thread. mu_ is a leaf
// lock: it is held only inside these methods, never while calling the VM
// core or sending a reply, and no other lock is taken while it is held
// (vmcore/lock_order.h orders the core's own locks; mu_ is outside them).
class NodeTable {
 public:
  NodeTable() = default;
  NodeTable(const NodeTable&) = delete;
  NodeTable& operator=(const NodeTable&) = delete;

  // Makes task visible with owner uid:gid, kDefaultModes and the current
  // time; replaces a node of the same id.
  void Add(const std::shared_ptr<vm::Task>& task, uid_t uid, gid_t gid);

  // A copy of the node of task id in *out; false if the task is gone.
  bool Find(std::uint64_t id, TaskNode* out) const;

  // Nodes with id > after_id, ascending by id, at most max of them.
  std::vector<TaskNode> NodesAfter(std::uint64_t after_id,
                                   std::size_t max) const;

  std::size_t Count() const;

  // Applies f to the node of id under mu_; false if it is gone. f must not
  // call back into the table, the core or libfuse.
  template <typename F>
  bool Update(std::uint64_t id, F&& f) {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(id);
    if (it == nodes_.end()) return false;
    f(it->second);
    return true;
  }

  // Forgets the node of id, if there is one.
  void Remove(std::uint64_t id);

 private:
  mutable std::mutex mu_;
  std::map<std::uint64_t, TaskNode> nodes_;  // by task id; guarded by mu_
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_NODE_TABLE_H_
