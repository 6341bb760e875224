// The visible tasks: owner, modes and creation time of each task's paths,
// and each task's error log.
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

#include "fs/error_log.h"
#include "fs/inode.h"
#include "vmcore/task.h"

namespace taskfs::fs {

// docs/reference.md §4's modes, by NodeKind. core's is never read: its
// mode is mem's read bits (CoreMode).
inline constexpr std::array<mode_t, kNodeKinds> kDefaultModes = {
    0700, 0600, 0600, 0400, 0444, 0400, 0400};

// The mode of a task's core file: its read bits follow mem's
// (docs/reference.md §4).
inline constexpr mode_t CoreMode(mode_t mem_mode) { return mem_mode & 0444; }

// A task as the file system shows it. A copy is a snapshot: it holds the task
// and its error log alive, but a later chmod or chown does not change it.
struct TaskNode {
  std::shared_ptr<vm::Task> task;
  // The task's errors file (docs/reference.md §7).
  std::shared_ptr<ErrorLog> errors;
  uid_t uid = 0;
  gid_t gid = 0;
  std::array<mode_t, kNodeKinds> modes{};  // permission bits per file
  timespec created{};  // the task's making (vm::Task::created)
};

// A node lives from Add until Remove, and a removed node whose task still has
// open files lives on, invisible, until the last of them is closed (Unpin):
// fstat of such a file still gets the attributes it last had (docs/reference.md
// §5).
//
// Thread-safety: every method may be called from any thread. mu_ is a leaf
// lock: it is held only inside these methods, never while calling the VM
// core or sending a reply, and no other lock is taken while it is held
// (vmcore/lock_order.h orders the core's own locks; mu_ is outside them).
class NodeTable {
 public:
  NodeTable() = default;
  NodeTable(const NodeTable&) = delete;
  NodeTable& operator=(const NodeTable&) = delete;

  // Makes task visible with owner uid:gid, kDefaultModes, an empty error log
  // and the current time; replaces a node of the same id. May throw
  // std::bad_alloc (the log charges the memory limit) and then changes
  // nothing.
  void Add(const std::shared_ptr<vm::Task>& task, uid_t uid, gid_t gid);
  // A copy of the visible node of task id in *out; false if there is none.
  bool Find(std::uint64_t id, TaskNode* out) const;
  // As Find, and also for a removed node whose task has files open.
  bool FindLast(std::uint64_t id, TaskNode* out) const;
  // Visible nodes with id > after_id, ascending by id, at most max of them.
  std::vector<TaskNode> NodesAfter(std::uint64_t after_id,
                                   std::size_t max) const;
  // How many nodes are visible.
  std::size_t Count() const;
  // Applies f to the visible node of id under mu_; false if there is none. f
  // must not call back into the table, the core or libfuse.
  template <typename F>
  bool Update(std::uint64_t id, F&& f) {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(id);
    if (it == nodes_.end() || it->second.removed) return false;
    f(it->second.node);
    return true;
  }
  // Hides the node of id (it is gone once no file of it is open).
  void Remove(std::uint64_t id);

  // A file of task id was opened: a copy of its visible node in *out, kept
  // until the matching Unpin even if the task is removed meanwhile. False,
  // and nothing kept, if there is no visible node.
  bool Pin(std::uint64_t id, TaskNode* out);
  void Unpin(std::uint64_t id);

 private:
  struct Entry {
    TaskNode node;
    std::uint64_t open_files = 0;  // Pins not yet Unpinned
    bool removed = false;
  };
  // The visible entry of id, or nullptr.
  const Entry* Visible(std::uint64_t id) const;

  mutable std::mutex mu_;
  std::map<std::uint64_t, Entry> nodes_;  // by task id; guarded by mu_
  std::size_t visible_ = 0;               // entries not removed; guarded
};

// Holds one Pin of a node until it is destroyed; empty when default-made.
class NodePin {
 public:
  NodePin() = default;
  // Requires a successful table.Pin(id) that this object now owns.
  NodePin(NodeTable& table, std::uint64_t id) : table_(&table), id_(id) {}
  ~NodePin() {
    if (table_ != nullptr) table_->Unpin(id_);
  }
  NodePin(NodePin&& other) noexcept : table_(other.table_), id_(other.id_) {
    other.table_ = nullptr;
  }
  NodePin& operator=(NodePin&&) = delete;
  NodePin(const NodePin&) = delete;
  NodePin& operator=(const NodePin&) = delete;

 private:
  NodeTable* table_ = nullptr;
  std::uint64_t id_ = 0;
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_NODE_TABLE_H_
