// What the adapter (fs/taskfs_fs.cc) makes of an ioctl on a mem file, for the
// tests and the fuzz target that drive the ioctl table without a mount:
// ENOTTY for a number that is none of ours, else the errno of the code the
// table's Run returns, and the bytes it wrote back.
#ifndef TASKFS_TESTS_FS_IOCTL_REQUEST_UTIL_H_
#define TASKFS_TESTS_FS_IOCTL_REQUEST_UTIL_H_

#include <cerrno>
#include <cstddef>

#include "fs/ctl_command.h"
#include "fs/errno_map.h"
#include "fs/ioctl_handler.h"
#include "vmcore/task.h"

namespace taskfs::fs_test {

using fs::ErrnoFromKern;
using fs::ExecContext;
using fs::FindIoctl;
using fs::IoctlCommand;
using fs::IoctlRequest;

struct IoctlResult {
  int error = 0;
  std::size_t out_size = 0;
};

inline IoctlResult HandleIoctl(unsigned int cmd, const void* in,
                               std::size_t in_size, void* out,
                               std::size_t out_capacity, vm::Task& task,
                               ExecContext& context) {
  IoctlRequest request(cmd, in, in_size);
  if (request.command() == nullptr) return {ENOTTY, 0};
  IoctlResult result;
  result.error = ErrnoFromKern(
      request.Run({task, context, {}}, out, out_capacity, &result.out_size));
  return result;
}

inline bool IoctlChangesMemory(unsigned int cmd) {
  const IoctlCommand* command = FindIoctl(cmd);
  return command != nullptr && command->changes_memory;
}

}  // namespace taskfs::fs_test

#endif  // TASKFS_TESTS_FS_IOCTL_REQUEST_UTIL_H_
