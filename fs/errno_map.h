// The one table from Mach result codes to errno values (docs/reference.md §2).
#ifndef TASKFS_FS_ERRNO_MAP_H_
#define TASKFS_FS_ERRNO_MAP_H_

#include "vmcore/kern_return.h"

namespace taskfs::fs {

// 0 for KERN_SUCCESS, else the positive errno of kr. One-to-one: every
// KernReturn has its own errno; EIO for a value outside the enum.
int ErrnoFromKern(vm::KernReturn kr);

// The inverse, for tools and tests that print the Mach name back;
// KERN_FAILURE for an errno not in the table.
vm::KernReturn KernFromErrno(int error);

}  // namespace taskfs::fs

#endif  // TASKFS_FS_ERRNO_MAP_H_
