/*
 * <mach/mach_traps.h> of libtaskfs's macOS interface. A pid is a task's id
 * (its status file's "id") on the mount named by the environment variable
 * TASKFS_MOUNT (default /mnt/taskfs). Every failure is KERN_FAILURE, as on
 * macOS. docs/reference.md §9.
 */
#ifndef TASKFS_MACH_MACH_TRAPS_H_
#define TASKFS_MACH_MACH_TRAPS_H_

#include <mach/mach_types.h>

#ifdef __cplusplus
extern "C" {
#endif

kern_return_t task_for_pid(mach_port_name_t target_tport, int pid,
                           mach_port_name_t *t);
kern_return_t pid_for_task(mach_port_name_t t, int *x);

#ifdef __cplusplus
}
#endif

#endif /* TASKFS_MACH_MACH_TRAPS_H_ */
