/*
 * <mach/mach_types.h> of libtaskfs's macOS interface (docs/reference.md §9):
 * XNU's types and constants for the calls of <mach/mach.h>, on top of
 * <taskfs/mach.h>, whose Mach types (kern_return_t, vm_address_t, task_t
 * ...) and codes are the same as XNU's on a 64-bit system. Numbers are
 * XNU's (osfmk/mach of XNU).
 */
#ifndef TASKFS_MACH_MACH_TYPES_H_
#define TASKFS_MACH_MACH_TYPES_H_

#include <stdint.h>

#include "taskfs/mach.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned int natural_t;
typedef int integer_t;
typedef natural_t mach_port_name_t;
typedef mach_port_t vm_map_t;
typedef mach_port_t vm_map_read_t;
typedef mach_port_t task_read_t;
typedef mach_port_t task_name_t;
typedef mach_port_t ipc_space_t;
typedef vm_offset_t pointer_t;
typedef uint64_t mach_vm_address_t;
typedef uint64_t mach_vm_offset_t;
typedef uint64_t mach_vm_size_t;
typedef unsigned long long memory_object_offset_t;
typedef unsigned long long vm_object_id_t;
typedef int vm_behavior_t;
typedef unsigned int vm_sync_t;
typedef kern_return_t mach_error_t;

#define VM_MAP_NULL ((vm_map_t)0)
#define MACH_PORT_DEAD ((mach_port_name_t)~0u)
#define MACH_PORT_VALID(name) \
  ((name) != MACH_PORT_NULL && (name) != MACH_PORT_DEAD)

/* Codes XNU has beyond those of <taskfs/mach.h>. */
#define KERN_NOT_RECEIVER 7
#define KERN_NO_ACCESS 8
#define KERN_MEMORY_FAILURE 9
#define KERN_MEMORY_ERROR 10
#define KERN_ALREADY_IN_SET 11
#define KERN_NOT_IN_SET 12
#define KERN_ABORTED 14
#define KERN_INVALID_NAME 15
#define KERN_INVALID_RIGHT 17
#define KERN_INVALID_VALUE 18
#define KERN_UREFS_OVERFLOW 19
#define KERN_INVALID_CAPABILITY 20
#define KERN_RIGHT_EXISTS 21
#define KERN_INVALID_HOST 22
#define KERN_MEMORY_PRESENT 23
#define KERN_TERMINATED 37
#define KERN_NOT_SUPPORTED 46
#define KERN_OPERATION_TIMED_OUT 49
#define KERN_DENIED 53
#define KERN_NOT_FOUND 56

/* mach_vm_allocate's and mach_vm_remap's flags. */
#define VM_FLAGS_FIXED 0x00000000
#define VM_FLAGS_ANYWHERE 0x00000001
#define VM_FLAGS_PURGABLE 0x00000002
#define VM_FLAGS_4GB_CHUNK 0x00000004
#define VM_FLAGS_RANDOM_ADDR 0x00000008
#define VM_FLAGS_NO_CACHE 0x00000010
#define VM_FLAGS_OVERWRITE 0x00004000
#define VM_FLAGS_SUPERPAGE_MASK 0x00070000
#define VM_FLAGS_RETURN_DATA_ADDR 0x00100000
#define VM_FLAGS_ALIAS_MASK 0xFF000000
#define VM_GET_FLAGS_ALIAS(flags, alias) \
  ((alias) = (int)(((unsigned)(flags)&VM_FLAGS_ALIAS_MASK) >> 24))
#define VM_MAKE_TAG(tag) ((unsigned)(tag) << 24)

/* mach_vm_page_query's dispositions. */
#define VM_PAGE_QUERY_PAGE_PRESENT 0x1
#define VM_PAGE_QUERY_PAGE_FICTITIOUS 0x2
#define VM_PAGE_QUERY_PAGE_REF 0x4
#define VM_PAGE_QUERY_PAGE_DIRTY 0x8
#define VM_PAGE_QUERY_PAGE_PAGED_OUT 0x10
#define VM_PAGE_QUERY_PAGE_COPIED 0x20
#define VM_PAGE_QUERY_PAGE_SPECULATIVE 0x40
#define VM_PAGE_QUERY_PAGE_EXTERNAL 0x80
#define VM_PAGE_QUERY_PAGE_CS_VALIDATED 0x100
#define VM_PAGE_QUERY_PAGE_CS_TAINTED 0x200
#define VM_PAGE_QUERY_PAGE_CS_NX 0x400
#define VM_PAGE_QUERY_PAGE_REUSABLE 0x800

/* mach_vm_behavior_set's behaviors. */
#define VM_BEHAVIOR_DEFAULT ((vm_behavior_t)0)
#define VM_BEHAVIOR_RANDOM ((vm_behavior_t)1)
#define VM_BEHAVIOR_SEQUENTIAL ((vm_behavior_t)2)
#define VM_BEHAVIOR_RSEQNTL ((vm_behavior_t)3)
#define VM_BEHAVIOR_WILLNEED ((vm_behavior_t)4)
#define VM_BEHAVIOR_DONTNEED ((vm_behavior_t)5)
#define VM_BEHAVIOR_FREE ((vm_behavior_t)6)
#define VM_BEHAVIOR_ZERO_WIRED_PAGES ((vm_behavior_t)7)
#define VM_BEHAVIOR_REUSABLE ((vm_behavior_t)8)
#define VM_BEHAVIOR_REUSE ((vm_behavior_t)9)
#define VM_BEHAVIOR_CAN_REUSE ((vm_behavior_t)10)
#define VM_BEHAVIOR_PAGEOUT ((vm_behavior_t)11)
#define VM_BEHAVIOR_ZERO ((vm_behavior_t)12)

/* mach_vm_msync's flags. */
#define VM_SYNC_ASYNCHRONOUS ((vm_sync_t)0x01)
#define VM_SYNC_INVALIDATE ((vm_sync_t)0x02)
#define VM_SYNC_SYNCHRONOUS ((vm_sync_t)0x04)
#define VM_SYNC_KILLPAGES ((vm_sync_t)0x08)
#define VM_SYNC_DEACTIVATE ((vm_sync_t)0x10)
#define VM_SYNC_CONTIGUOUS ((vm_sync_t)0x20)
#define VM_SYNC_REUSABLEPAGES ((vm_sync_t)0x40)

#ifdef __cplusplus
}
#endif

#endif /* TASKFS_MACH_MACH_TYPES_H_ */
