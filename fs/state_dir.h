// -o state=DIR (docs/reference.md §10): the directory that keeps every task
// across unmount and restart, its checks, and the save file in it, written
// so that the one on disk is always a complete save.
#ifndef TASKFS_FS_STATE_DIR_H_
#define TASKFS_FS_STATE_DIR_H_

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "fs/inode.h"
#include "fs/node_table.h"
#include "vmcore/vm_system.h"

namespace taskfs::fs {

class TaskFs;

// The save's name in DIR, and the name it is written under first.
inline constexpr char kStateFile[] = "tasks.state";
inline constexpr char kStateTempFile[] = "tasks.state.tmp";

// "" if dir is a directory of the daemon's user (euid) with mode exactly
// 0700, else one line saying what is wrong: it holds every user's memory.
std::string CheckStateDir(const std::string& dir);

// What a save keeps of a task's node beyond the core's: its owner, group
// and the mode of each of its paths, as bytes, and back (false: not such
// bytes).
std::string EncodeNode(const TaskNode& node);
bool DecodeNode(std::string_view bytes, uid_t* uid, gid_t* gid,
                std::array<mode_t, kNodeKinds>* modes);

// Saves and restores the tasks of one TaskFs in one directory.
//
// Thread-safety: Save may be called from any thread (the timer's and the
// main one); one save runs at a time (mu_). Load runs before the mount.
class StateDir {
 public:
  explicit StateDir(std::string dir) : dir_(std::move(dir)) {}

  const std::string& dir() const { return dir_; }
  std::string path() const { return dir_ + "/" + kStateFile; }

  // Whether DIR holds a save.
  bool HasSave() const;

  // Restores DIR's save into fs, whose system must have no tasks: "" or
  // one line naming the file and the problem. *tasks: how many it made.
  std::string Load(TaskFs& fs, std::size_t* tasks);

  // Writes every visible task of fs to a temporary file in DIR, syncs it,
  // renames it over the save and syncs DIR: a crash at any moment leaves
  // the previous save or this one. "" or one line naming the problem.
  // *bytes: the save's size.
  std::string Save(TaskFs& fs, std::uint64_t* bytes = nullptr);

 private:
  const std::string dir_;
  std::mutex mu_;  // one save at a time; a leaf of fs/
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_STATE_DIR_H_
