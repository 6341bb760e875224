// The FUSE adapter: turns low-level FUSE requests on the layout of
// docs/reference.md §4 into calls on the VM core. Each handler runs in
// fs/dispatch.h's wrapper: it decodes the request, makes one call and sends
// exactly one reply. What the calls do lives beside it, each part on its own:
// fs/attributes.h (stat, setattr, statfs), fs/directory.h (lookup, readdir),
// fs/ctl_stream.h (ctl writes, close and reads), fs/generated_files.h (maps,
// status, errors), fs/ioctl_handler.h (the ioctl table) and fs/failure_report.h
// (the log and errors-file lines of every failure).
#ifndef TASKFS_FS_TASKFS_FS_H_
#define TASKFS_FS_TASKFS_FS_H_

#include <fuse_lowlevel.h>
#include <spdlog/spdlog.h>
#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <vector>

#include "fs/node_table.h"
#include "fs/open_file.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"

namespace taskfs::fs {

// Thread-safety: the FUSE handlers run on any number of session threads;
// every public method may be called from any thread.
//
// Lock order of fs/ (each header says what its lock guards): OpenFile::mu
// comes before the core's locks (vmcore/lock_order.h) and before
// NodeTable::mu_; no core lock is held when an fs lock is taken.
// NodeTable::mu_ and OpenFileTable::mu_ are leaves: nothing is called while
// they are held. OpenFile::mu is held across a core call only to take a
// maps/status snapshot. No fs lock is held across a reply (fs/dispatch.h)
// or a ctl command.
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

  // Makes task visible with owner uid:gid and the default modes. May throw
  // std::bad_alloc (LimitReached at the memory limit: the node's records
  // are charged); then the task is terminated and its name free again.
  void AddTask(const std::shared_ptr<vm::Task>& task, uid_t uid, gid_t gid);
  std::size_t TaskCount() const { return nodes_.Count(); }
  // Every visible task's node, ascending by id: what a save keeps.
  std::vector<TaskNode> Nodes() const { return nodes_.NodesAfter(0, SIZE_MAX); }
  // Gives a visible task's paths these modes (a restored save's); false if
  // there is no such task.
  bool SetModes(std::uint64_t id, const std::array<mode_t, kNodeKinds>& modes) {
    return nodes_.Update(id, [&](TaskNode& node) { node.modes = modes; });
  }

  vm::VmSystem& system() { return system_; }
  spdlog::logger& log() { return *log_; }
  uid_t daemon_uid() const { return daemon_uid_; }
  gid_t daemon_gid() const { return daemon_gid_; }
  std::uint32_t max_request() const { return max_request_; }

 private:
  friend struct Handlers;  // taskfs_fs.cc

  // Constant after construction.
  vm::VmSystem& system_;
  const std::shared_ptr<spdlog::logger> log_;
  const uid_t daemon_uid_;
  const gid_t daemon_gid_;
  const std::uint32_t max_request_;
  timespec mounted_at_{};

  NodeTable nodes_;
  OpenFileTable files_;  // destroyed first: its files hold tasks
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_TASKFS_FS_H_
