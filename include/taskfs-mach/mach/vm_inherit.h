/* <mach/vm_inherit.h> of libtaskfs's macOS interface: its names are declared by
 * <mach/mach_types.h>. */
#ifndef TASKFS_MACH_VM_INHERIT_H_
#define TASKFS_MACH_VM_INHERIT_H_
#include <mach/mach_types.h>
#endif
