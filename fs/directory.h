// The names of the layout (docs/reference.md §4): the root holds host_page_size
// and a directory per task, named as the task; a task's directory holds its
// five files. What a name is (lookup) and what a directory lists (readdir).
#ifndef TASKFS_FS_DIRECTORY_H_
#define TASKFS_FS_DIRECTORY_H_

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <string_view>

#include "fs/inode.h"
#include "fs/node_table.h"
#include "vmcore/vm_system.h"

namespace taskfs::fs {

// The offsets of a listing of the root: ".", ".." and host_page_size are 1
// to 3; task id comes at id + kRootFixedEntries. Of a task directory: ".",
// ".." and then its files, kind k at k + 2.
inline constexpr off_t kRootFixedEntries = 3;

// One entry of a listing, and the offset a listing continues from after it.
struct DirEntry {
  const char* name;
  Ino ino;
  mode_t type;  // S_IFDIR or S_IFREG
  off_t next;
};

// Holds references only: make one where it is needed. Thread-safe as the
// node table and the system are.
class Directory {
 public:
  Directory(const vm::VmSystem& system, const NodeTable& nodes)
      : system_(system), nodes_(nodes) {}

  // The visible node of the task named name in *out; false if there is none.
  bool FindTask(std::string_view name, TaskNode* out) const;

  // The inode of name in directory parent in *ino: 0 or ENOENT.
  int Lookup(Ino parent, std::string_view name, Ino* ino) const;

  // Lists directory ino from offset off: each entry, in order, goes to add
  // until add returns false (the reply is full). room is the reply's size
  // in bytes, which bounds how many tasks are worth looking at. 0, or
  // ENOENT (a task that is gone) or ENOTDIR.
  int List(Ino ino, off_t off, std::size_t room,
           const std::function<bool(const DirEntry&)>& add) const;

 private:
  const vm::VmSystem& system_;
  const NodeTable& nodes_;
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_DIRECTORY_H_
