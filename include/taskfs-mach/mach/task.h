/*
 * <mach/task.h> of libtaskfs's macOS interface. A taskfs task has no
 * threads: task_suspend and task_resume keep the task's suspend count (per
 * task, in the calling process) and change nothing else.
 */
#ifndef TASKFS_MACH_TASK_H_
#define TASKFS_MACH_TASK_H_

#include <mach/mach_types.h>

#ifdef __cplusplus
extern "C" {
#endif

kern_return_t task_suspend(task_read_t target_task);
kern_return_t task_resume(task_read_t target_task);

#ifdef __cplusplus
}
#endif

#endif /* TASKFS_MACH_TASK_H_ */
