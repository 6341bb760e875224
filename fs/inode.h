// Inode numbering of the layout of docs/reference.md §4. Numbers are computed,
// not allocated: the root is FUSE_ROOT_ID (1), host_page_size is 2, and the
// files of task id are id * 8 + kind. So no lookup count is kept and forget has
// nothing to free. Pure functions; safe from any thread.
#ifndef TASKFS_FS_INODE_H_
#define TASKFS_FS_INODE_H_

#include <cstdint>
#include <string_view>

namespace taskfs::fs {

// The files of a task directory.
enum class NodeKind : unsigned {
  kDir = 0,
  kMem,
  kCtl,
  kMaps,
  kStatus,
  kErrors,
  kCore
};
inline constexpr unsigned kNodeKinds = 7;

// fuse_ino_t is a 64-bit number; this header does without libfuse.
using Ino = std::uint64_t;
inline constexpr Ino kRootIno = 1;  // FUSE_ROOT_ID
inline constexpr Ino kHostPageSizeIno = 2;

// What an inode number names.
struct Where {
  bool root = false;
  bool host_page_size = false;
  std::uint64_t id = 0;  // task id, for task paths
  NodeKind kind = NodeKind::kDir;
};

// Any number decodes; ValidTaskPath says whether a task path is well formed.
Where Decode(Ino ino);

// True if w names a task path: a nonzero id and a kind below kNodeKinds.
bool ValidTaskPath(const Where& w);

// The inode number of file kind of task id.
Ino TaskIno(std::uint64_t id, NodeKind kind);

// The name of a task file in its directory ("mem", ...); "" for kDir.
std::string_view FileName(NodeKind kind);

}  // namespace taskfs::fs

#endif  // TASKFS_FS_INODE_H_
