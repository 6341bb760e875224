// The FUSE adapter: turns low-level FUSE requests on the layout of SPEC §4
// into calls on the VM core. Each handler decodes the request, makes one
// core call and sends exactly one reply.
#ifndef TASKFS_FS_TASKFS_FS_H_
#define TASKFS_FS_TASKFS_FS_H_

#include <fuse_lowlevel.h>
#include <spdlog/spdlog.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "vmcore/task.h"
#include "vmcore/vm_system.h"

namespace taskfs::fs {

// The files of a task directory; a task's inode numbers are id * 8 + kind.
enum class NodeKind : unsigned { kDir = 0, kMem, kCtl, kMaps, kStatus };
inline constexpr unsigned kNodeKinds = 5;

// Thread-safety: the FUSE handlers run on any number of session threads.
// nodes_mu_ guards the task table (owners, modes); it is never held across
// a core call that takes task locks for long, nor across a reply. See
// vmcore/lock_order.h for the core's own order; nodes_mu_ is taken before
// no core lock and after none (it is released before calling the core).
struct OpenFile;  // taskfs_fs.cc

class TaskFs {
 public:
  // max_request: the largest mem read or write request the kernel may send
  // (fs/fuse_channel.h), which Init gives it as max_write.
  TaskFs(vm::VmSystem& system, std::shared_ptr<spdlog::logger> log,
         std::uint32_t max_request);
  // Frees the files still open: after an unmount the kernel sends no
  // release for them.
  ~TaskFs();
  TaskFs(const TaskFs&) = delete;
  TaskFs& operator=(const TaskFs&) = delete;

  // The operations table; userdata must be a TaskFs.
  static const fuse_lowlevel_ops& Operations();

  // Makes task visible with owner uid:gid and the default modes.
  void AddTask(const std::shared_ptr<vm::Task>& task, uid_t uid, gid_t gid);

  vm::VmSystem& system() { return system_; }
  spdlog::logger& log() { return *log_; }

  // Internal to the handlers (taskfs_fs.cc), public for them.
  struct TaskNode {
    std::shared_ptr<vm::Task> task;
    uid_t uid = 0;
    gid_t gid = 0;
    std::array<mode_t, kNodeKinds> modes{};  // permission bits per file
    timespec created{};
  };
  // A copy of the node of task id; false if the task is gone.
  bool FindNode(std::uint64_t id, TaskNode* out) const;
  bool FindNodeByName(const std::string& name, TaskNode* out) const;
  // Task nodes with id > after_id, ascending, at most max of them.
  std::vector<TaskNode> NodesAfter(std::uint64_t after_id,
                                   std::size_t max) const;
  std::size_t TaskCount() const;
  // Applies f to the node of id under nodes_mu_; false if it is gone.
  template <typename F>
  bool UpdateNode(std::uint64_t id, F&& f) {
    std::lock_guard lock(nodes_mu_);
    auto it = nodes_.find(id);
    if (it == nodes_.end()) return false;
    f(it->second);
    return true;
  }
  void RemoveNode(std::uint64_t id);
  // Takes ownership of an open file until ForgetFile or destruction.
  void AdoptFile(std::unique_ptr<OpenFile> file);
  // Frees an adopted file (release).
  void ForgetFile(OpenFile* file);

  uid_t daemon_uid() const { return daemon_uid_; }
  gid_t daemon_gid() const { return daemon_gid_; }
  const timespec& mounted_at() const { return mounted_at_; }
  std::uint32_t max_request() const { return max_request_; }

 private:
  // Constant after construction.
  vm::VmSystem& system_;
  const std::shared_ptr<spdlog::logger> log_;
  const uid_t daemon_uid_;
  const gid_t daemon_gid_;
  const std::uint32_t max_request_;
  timespec mounted_at_{};

  mutable std::mutex nodes_mu_;
  std::map<std::uint64_t, TaskNode> nodes_;  // by task id; guarded

  std::mutex files_mu_;
  // Every open file, by its address (the fh of its requests).
  std::unordered_map<const OpenFile*, std::unique_ptr<OpenFile>>
      files_;  // guarded by files_mu_
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_TASKFS_FS_H_
