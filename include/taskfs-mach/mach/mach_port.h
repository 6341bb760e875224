/*
 * <mach/mach_port.h> of libtaskfs's macOS interface: mach_port_deallocate
 * closes a task handle from task_for_pid (the task lives on).
 */
#ifndef TASKFS_MACH_MACH_PORT_H_
#define TASKFS_MACH_MACH_PORT_H_

#include <mach/mach_types.h>

#ifdef __cplusplus
extern "C" {
#endif

kern_return_t mach_port_deallocate(ipc_space_t task, mach_port_name_t name);

#ifdef __cplusplus
}
#endif

#endif /* TASKFS_MACH_MACH_PORT_H_ */
