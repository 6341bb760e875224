/*
 * <mach/mach_init.h> of libtaskfs's macOS interface: mach_task_self()
 * (<taskfs/mach.h>'s: the calling process) and current_task().
 */
#ifndef TASKFS_MACH_MACH_INIT_H_
#define TASKFS_MACH_MACH_INIT_H_

#include <mach/mach_types.h>

#define current_task() mach_task_self()

#endif /* TASKFS_MACH_MACH_INIT_H_ */
