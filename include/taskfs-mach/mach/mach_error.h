/*
 * <mach/mach_error.h> of libtaskfs's macOS interface: mach_error_string
 * (<taskfs/mach.h>'s, with XNU's text for every KERN_* code) and
 * mach_error.
 */
#ifndef TASKFS_MACH_MACH_ERROR_H_
#define TASKFS_MACH_MACH_ERROR_H_

#include <mach/mach_types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Prints "STR TEXT (0xCODE)" and a newline on stderr. */
void mach_error(const char *str, mach_error_t error_value);

#ifdef __cplusplus
}
#endif

#endif /* TASKFS_MACH_MACH_ERROR_H_ */
