// The attributes of the layout's paths (docs/reference.md §4, §5): what stat(2)
// shows of the root, host_page_size and each task's paths, how long the kernel
// may cache it, who may change it (chmod, chown, truncate), and what statfs(2)
// shows of the whole file system.
#ifndef TASKFS_FS_ATTRIBUTES_H_
#define TASKFS_FS_ATTRIBUTES_H_

#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <ctime>

#include "fs/inode.h"
#include "fs/node_table.h"
#include "vmcore/vm_system.h"

namespace taskfs::fs {

// How long the kernel may keep names and the fixed paths' attributes.
inline constexpr double kCacheSeconds = 1.0;
// A chown changes the owner of all five paths of a task at once, and the
// kernel checks permissions against cached attributes: so task attributes
// are not cached, and every check sees the owner and modes of now.
inline constexpr double kTaskAttrSeconds = 0.0;

// Holds references only: make one where it is needed. Thread-safe as the
// node table and the system are.
class Attributes {
 public:
  // The root and host_page_size belong to the daemon, uid:gid, and carry
  // the time of the mount.
  Attributes(vm::VmSystem& system, NodeTable& nodes, uid_t uid, gid_t gid,
             const timespec& mounted_at)
      : system_(system),
        nodes_(nodes),
        uid_(uid),
        gid_(gid),
        mounted_at_(mounted_at) {}

  // The attributes of ino in *st: 0, or ENOENT for a task that is gone (or
  // a number that names nothing). With last, a removed task whose files are
  // still open has the attributes it last had (fstat of such a file,
  // docs/reference.md §5); a path walk (lookup) does not find it.
  int Get(Ino ino, struct stat* st, bool last = false) const;

  // The reply to a lookup or mkdir that found ino: 0 or Get's error.
  int Entry(Ino ino, fuse_entry_param* e) const;

  // How long the kernel may keep ino's attributes.
  static double Seconds(Ino ino);

  // setattr by caller: to_set is FUSE_SET_ATTR_* bits, attr the values.
  // Only the owner (or root) changes modes, only root the owner; times are
  // accepted and stay as they are, and a truncate of mem or ctl changes
  // nothing (mem's size is the address space). 0 or the errno: EPERM,
  // EISDIR (truncate of a directory), ENOENT.
  int Set(Ino ino, uid_t caller, const struct stat& attr, int to_set);

  // statfs(2): blocks of the memory limit and those in use, tasks as
  // inodes.
  void FileSystem(struct statvfs* st) const;

 private:
  void FillRoot(struct stat* st) const;
  void FillHostPageSize(struct stat* st) const;
  void FillTask(const TaskNode& node, NodeKind kind, struct stat* st) const;

  vm::VmSystem& system_;
  NodeTable& nodes_;
  const uid_t uid_;
  const gid_t gid_;
  const timespec mounted_at_;
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_ATTRIBUTES_H_
