// What /proc/self/mountinfo says about a directory (docs/reference.md §3: a
// mountpoint that is already a mount is refused).
#ifndef TASKFS_FS_MOUNT_TABLE_H_
#define TASKFS_FS_MOUNT_TABLE_H_

#include <optional>
#include <string>
#include <string_view>

namespace taskfs::fs {

// The file system type of the mount whose mount point is exactly path
// (absolute, without symlinks, as realpath(3) gives it) in the text of a
// mountinfo file (proc(5)), e.g. "fuse.taskfs"; nullopt if path is no mount
// point. The last such mount wins: it is the one on top. Malformed lines are
// passed over.
std::optional<std::string> MountTypeAt(std::string_view mountinfo,
                                       std::string_view path);

// MountTypeAt of the calling process's /proc/self/mountinfo; nullopt when it
// cannot be read.
std::optional<std::string> CurrentMountTypeAt(std::string_view path);

}  // namespace taskfs::fs

#endif  // TASKFS_FS_MOUNT_TABLE_H_
