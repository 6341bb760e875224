// Decodes and runs the mem file's ioctls (SPEC §5, fs/taskfs_ioctl.h).
#ifndef TASKFS_FS_IOCTL_HANDLER_H_
#define TASKFS_FS_IOCTL_HANDLER_H_

#include <cstddef>
#include <string>

#include "fs/ctl_command.h"
#include "vmcore/kern_return.h"
#include "vmcore/task.h"

namespace taskfs::fs {

// Outcome of an ioctl: errno 0 and out_size bytes of out to return, or a
// positive errno (ENOTTY for an unknown command, else ErrnoFromKern).
struct IoctlResult {
  int error = 0;
  std::size_t out_size = 0;
};

// The operation of a failed ioctl as the errors file names it ("ioctl
// vm_copy SRC SIZE DST", ...), decoded from its argument.
std::string IoctlOperation(unsigned int cmd, const void* in,
                           std::size_t in_size);

// True for the commands that change memory (all but VM_REGION): the file
// must be open for writing, as for pwrite.
bool IoctlChangesMemory(unsigned int cmd);

// cmd: the ioctl number; in/in_size: the argument the kernel copied in;
// out: room for out_capacity bytes to copy back. Runs the Mach call on task.
IoctlResult HandleIoctl(unsigned int cmd, const void* in, std::size_t in_size,
                        void* out, std::size_t out_capacity, vm::Task& task,
                        ExecContext& context);

}  // namespace taskfs::fs

#endif  // TASKFS_FS_IOCTL_HANDLER_H_
