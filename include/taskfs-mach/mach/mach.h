/*
 * <mach/mach.h> of libtaskfs's macOS interface (`pkg-config taskfs-mach`,
 * docs/reference.md §9): everything the headers of this directory declare,
 * so that a program written for macOS's Mach VM calls builds unchanged and
 * runs on the tasks of a taskfs mount.
 */
#ifndef TASKFS_MACH_MACH_H_
#define TASKFS_MACH_MACH_H_

#include <mach/kern_return.h>
#include <mach/mach_error.h>
#include <mach/mach_init.h>
#include <mach/mach_port.h>
#include <mach/mach_traps.h>
#include <mach/mach_types.h>
#include <mach/mach_vm.h>
#include <mach/task.h>
#include <mach/vm_map.h>
#include <mach/vm_region.h>

#endif /* TASKFS_MACH_MACH_H_ */
