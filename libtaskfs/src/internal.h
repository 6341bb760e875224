/*
 * What libtaskfs's two interfaces share inside the library: the classic one
 * (<taskfs/mach.h>, mach.c) owns the handle table, and the macOS one
 * (<mach/mach.h> of include/taskfs-mach, xnu.c) reaches a handle's open
 * files through taskfs_with_task(). Not installed; hidden from the shared
 * library's exports.
 */
#ifndef TASKFS_LIBTASKFS_INTERNAL_H_
#define TASKFS_LIBTASKFS_INTERNAL_H_

#include <stdint.h>
#include <sys/types.h>

#include "taskfs/mach.h"

#define TASKFS_HIDDEN __attribute__((visibility("hidden")))

/* An open task as a call sees it, valid for the length of the call. */
struct taskfs_task_view {
  int fd;          /* mem: read-write if the call changes memory */
  const char *dir; /* the task directory */
  uint64_t page_size;
  uint64_t id; /* "id" of status */
  dev_t dev;   /* the mount's device */
};

/* Calls fn(view, arg) with a reference to task's handle held and returns
 * what fn returns. changes: fn writes to mem, so view->fd is open for
 * writing (or the open's refusal is returned). KERN_INVALID_ARGUMENT for
 * mach_task_self(), KERN_INVALID_TASK for a task_t that is not open. */
TASKFS_HIDDEN kern_return_t taskfs_with_task(
    task_t task, int changes,
    kern_return_t (*fn)(const struct taskfs_task_view *view, void *arg),
    void *arg);

/* Reads DIR/status, DIR relative to dir_fd (AT_FDCWD: as given), into
 * text (NUL-terminated); 0 on success, -1 if it cannot. */
TASKFS_HIDDEN int taskfs_read_status(int dir_fd, const char *dir,
                                     char text[4096]);
/* The number after key (with its ": ") at the start of a line of text; 0
 * if no line has it. */
TASKFS_HIDDEN uint64_t taskfs_status_number(const char *text, const char *key);

/* errno -> kern_return_t by the daemon's table (KERN_FAILURE outside it). */
TASKFS_HIDDEN kern_return_t taskfs_kern_from_errno(int error);

#endif /* TASKFS_LIBTASKFS_INTERNAL_H_ */
