/*
 * <taskfs/errno_table.h>: the one table from Mach result codes to errno values
 * (docs/reference.md §2), as a plain C X-macro so that the daemon
 * (fs/errno_map.cc), the C client library (libtaskfs) and the Python package
 * (its _table.py is generated from this header at build time) share a single
 * definition.
 *
 * TASKFS_ERRNO_TABLE(X) expands X(KERN_NAME, ERRNO) once per code. One row
 * per code and one code per errno, so the table can be read both ways. The
 * KERN_NAME argument is a bare name: each user gives it meaning (an enum of
 * vmcore, the macros of <taskfs/mach.h>, or a string with #).
 */
#ifndef TASKFS_ERRNO_TABLE_H_
#define TASKFS_ERRNO_TABLE_H_

#include <errno.h>

/* docs/reference.md §2, plus the two codes the registry adds (a taken task
 * name, a task that is gone). */
#define TASKFS_ERRNO_TABLE(X)        \
  X(KERN_SUCCESS, 0)                 \
  X(KERN_INVALID_ARGUMENT, EINVAL)   \
  X(KERN_INVALID_ADDRESS, EFAULT)    \
  X(KERN_PROTECTION_FAILURE, EACCES) \
  X(KERN_NO_SPACE, ENOMEM)           \
  X(KERN_RESOURCE_SHORTAGE, ENOSPC)  \
  X(KERN_INVALID_TASK, ESRCH)        \
  X(KERN_NAME_EXISTS, EEXIST)        \
  X(KERN_FAILURE, EIO)

#endif /* TASKFS_ERRNO_TABLE_H_ */
