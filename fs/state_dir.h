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

// Opens DIR for the daemon's life (docs/reference.md §10.3): "" and *fd,
// or one line saying what is wrong. DIR must not be a symbolic link, must
// be a directory of the daemon's user (euid) with mode exactly 0700 (it
// holds every user's memory), and each directory above it must belong to
// root or that user and be writable by no one else unless it is sticky.
// The path is resolved here, once. The caller closes *fd.
std::string OpenStateDir(const std::string& dir, int* fd);

// What a save keeps of a task's node beyond the core's: its owner, group
// and the mode of each of its paths, as bytes, and back (false: not such
// bytes).
std::string EncodeNode(const TaskNode& node);
bool DecodeNode(std::string_view bytes, uid_t* uid, gid_t* gid,
                std::array<mode_t, kNodeKinds>* modes);

// Saves and restores the tasks of one TaskFs in one directory, through a
// descriptor of it opened once: renames of DIR or of the directories above
// it later do not move the save.
//
// Thread-safety: Save may be called from any thread (the timer's and the
// main one); one save runs at a time (mu_). Load runs before the mount.
class StateDir {
 public:
  // Opens and checks DIR (OpenStateDir) and locks it (flock) against
  // another taskfs: nullptr and *error, one line, if it cannot.
  static std::unique_ptr<StateDir> Open(const std::string& dir,
                                        std::string* error);
  ~StateDir();
  StateDir(const StateDir&) = delete;
  StateDir& operator=(const StateDir&) = delete;

  const std::string& dir() const { return dir_; }
  std::string path() const { return dir_ + "/" + kStateFile; }

  // Restores DIR's save into fs, whose system must have no tasks: "" or
  // one line naming the file and the problem. *found: whether there is a
  // save (only its absence, ENOENT, is "no save"; a save file that is not
  // a regular file of the daemon's user is a problem). *tasks: how many
  // tasks it made.
  std::string Load(TaskFs& fs, std::size_t* tasks, bool* found);

  // Writes every visible task of fs to a new temporary file in DIR, syncs
  // it, renames it over the save and syncs DIR: a crash at any moment
  // leaves the previous save or this one. "" or one line naming the
  // problem. *bytes: the save's size. *warning: "" or one line, when the
  // save is in place but the sync of DIR after the rename failed.
  std::string Save(TaskFs& fs, std::uint64_t* bytes = nullptr,
                   std::string* warning = nullptr);

 private:
  StateDir(std::string dir, int fd) : dir_(std::move(dir)), fd_(fd) {}

  const std::string dir_;
  const int fd_;   // DIR, open and locked for the daemon's life
  std::mutex mu_;  // one save at a time; a leaf of fs/
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_STATE_DIR_H_
