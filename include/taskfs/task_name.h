/*
 * <taskfs/task_name.h>: the rule for a task's name (docs/reference.md §4),
 * defined once for every user: the VM core (vm::VmSystem::ValidTaskName, which
 * judges the names of mkdir, `fork NAME` in ctl and `task NAME` in a manifest),
 * libtaskfs (taskfs_task_create, taskfs_task_fork) and the Python package
 * (taskfs.valid_task_name, from the TASK_NAME_* values of its generated
 * _table.py).
 *
 * A name is 1 to TASKFS_TASK_NAME_MAX bytes, each one of
 * TASKFS_TASK_NAME_CHARS; it does not start with '.' (so it is never "." or
 * "..", nor hidden), and it is not TASKFS_TASK_NAME_RESERVED, the file at
 * the mount's root. TASKFS_TASK_NAME_RULE says so in the words of the error
 * lines. C99 or C++.
 */
#ifndef TASKFS_TASK_NAME_H_
#define TASKFS_TASK_NAME_H_

#include <stddef.h>
#include <string.h>

#define TASKFS_TASK_NAME_MAX 64
#define TASKFS_TASK_NAME_CHARS \
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
#define TASKFS_TASK_NAME_RESERVED "host_page_size"

#define TASKFS_TASK_NAME_STRING_(x) #x
#define TASKFS_TASK_NAME_STRING(x) TASKFS_TASK_NAME_STRING_(x)
/* "1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.', not host_page_size" */
#define TASKFS_TASK_NAME_RULE \
  "1 to " TASKFS_TASK_NAME_STRING(TASKFS_TASK_NAME_MAX)               \
  " of A-Z a-z 0-9 . _ -, not starting with '.', not " TASKFS_TASK_NAME_RESERVED

/* Nonzero if the len bytes at name are a valid task name. */
static inline int taskfs_valid_task_name(const char *name, size_t len) {
  size_t i;
  if (len == 0 || len > TASKFS_TASK_NAME_MAX || name[0] == '.') return 0;
  for (i = 0; i < len; ++i) {
    if (name[i] == '\0' || strchr(TASKFS_TASK_NAME_CHARS, name[i]) == NULL) {
      return 0;
    }
  }
  return !(len == sizeof(TASKFS_TASK_NAME_RESERVED) - 1 &&
           memcmp(name, TASKFS_TASK_NAME_RESERVED, len) == 0);
}

#endif /* TASKFS_TASK_NAME_H_ */
