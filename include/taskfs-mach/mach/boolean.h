/* <mach/boolean.h> of libtaskfs's macOS interface: its names are declared by
 * <mach/mach_types.h>. */
#ifndef TASKFS_MACH_BOOLEAN_H_
#define TASKFS_MACH_BOOLEAN_H_
#include <mach/mach_types.h>
#endif
