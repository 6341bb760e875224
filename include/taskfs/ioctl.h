/*
 * <taskfs/ioctl.h>: the ioctls of a taskfs task's mem file (taskfs(1)), the
 * wire format that the daemon (fs/ioctl_handler.cc), libtaskfs and the
 * Python package (whose struct formats and numbers python/gen_table.c
 * generates from this header) share. <taskfs_ioctl.h> includes it.
 *
 * Usable from C and C++; Python can use the numbers below with fcntl.ioctl
 * and struct.pack("=QQQ", ...). Every struct has only fixed-width fields,
 * naturally aligned with explicit padding, so 32- and 64-bit callers agree;
 * like every ioctl struct they are in the machine's own byte order (the
 * daemon and its callers run on one machine). On failure an ioctl
 * returns -1 with errno set from the Mach result (EINVAL, EFAULT, EACCES,
 * ENOMEM, ENOSPC, ESRCH, EIO; see taskfs(1)); an unknown command gives ENOTTY.
 * Calls that change memory need the file open for writing, the page query
 * and vm_read_list need it open for reading (else EBADF).
 */
#ifndef TASKFS_IOCTL_H_
#define TASKFS_IOCTL_H_

#include <linux/ioctl.h>
#include <stdint.h>

/* The values of the prot, max_prot and inheritance fields:
 * TASKFS_VM_PROT_* and TASKFS_VM_INHERIT_*. */
#include "taskfs/vm_attributes.h"

#ifdef __cplusplus
extern "C" {
#endif

/* vm_copy(task, src, size, dst). */
struct taskfs_vm_copy {
  uint64_t src;
  uint64_t size;
  uint64_t dst;
};

#define TASKFS_VM_ALLOCATE_ANYWHERE 1u

/* vm_allocate(task, &address, size, flags & ANYWHERE); address comes back. */
struct taskfs_vm_allocate {
  uint64_t address;
  uint64_t size;
  uint32_t flags;
  uint32_t pad;
};

/* vm_deallocate(task, address, size). */
struct taskfs_vm_deallocate {
  uint64_t address;
  uint64_t size;
};

/* vm_protect(task, address, size, set_maximum, prot). */
struct taskfs_vm_protect {
  uint64_t address;
  uint64_t size;
  uint32_t set_maximum;
  uint32_t prot;
};

/* vm_inherit(task, address, size, inheritance). */
struct taskfs_vm_inherit {
  uint64_t address;
  uint64_t size;
  uint32_t inheritance;
  uint32_t pad;
};

/* vm_region: in, address; out, the region holding it or else the first one
 * above it (ENOMEM if none), as a maximal run of equal attributes. */
struct taskfs_vm_region {
  uint64_t address;
  uint64_t size;
  uint32_t prot;
  uint32_t max_prot;
  uint32_t inheritance;
  uint32_t pad;
};

#define TASKFS_VM_MAP_COPY_DST_ALLOC 1u
#define TASKFS_VM_MAP_COPY_SRC_DESTROY 2u

/* vm_map_copy from task src_task_id (its "id" in status) into this task. */
struct taskfs_vm_map_copy {
  uint64_t src_task_id;
  uint64_t src;
  uint64_t size;
  uint64_t dst;
  uint32_t flags;
  uint32_t pad;
};

/* The state of one page (TASKFS_IOC_VM_PAGE_QUERY). flags: ALLOCATED, a
 * region holds the page; RESIDENT, the page has been written and holds
 * memory (a never-written page reads as zeros and holds none); SHARED, its
 * memory is also mapped at another address or by another task. mappings:
 * how many mappings of its memory there are, 1 for memory of its own, more
 * exactly when SHARED, 0 if not resident (an estimate once a copy is
 * partly written: compare identities, not counts; taskfs(1)).
 * identity: equal for two resident pages exactly when they are the same
 * memory, within one daemon's life; opaque, 0 if not resident. */
#define TASKFS_PAGE_ALLOCATED 1u
#define TASKFS_PAGE_RESIDENT 2u
#define TASKFS_PAGE_SHARED 4u

struct taskfs_page_state {
  uint32_t flags;
  uint32_t mappings;
  uint64_t identity;
};

#define TASKFS_PAGE_QUERY_MAX 1000u

/* The page-state query: in, address (rounded down to a page) and count
 * (pages, at most TASKFS_PAGE_QUERY_MAX); out, pages[0, count) are the
 * states of the count pages from there. Any protection; needs the file
 * open for reading (else EBADF). */
struct taskfs_vm_page_query {
  uint64_t address;
  uint64_t count;
  struct taskfs_page_state pages[TASKFS_PAGE_QUERY_MAX];
};

/* The reason channel: the errors line of the calling thread's last failed
 * request on this open file (mem or ctl), with its SEQ; seq 0 and "" if
 * there is none. Asking forgets it, so ask right after the failure, on the
 * same descriptor and thread. line is NUL-terminated, cut at 1015 bytes. */
struct taskfs_last_reason {
  uint64_t seq;
  char line[1016];
};

/* vm_remap (XNU's mach_vm_remap) of [src_address, +size) of the task of
 * this mount whose id is src_task_id into this one: at target_address
 * (rounded down to a page; must be free), or with TASKFS_VM_REMAP_ANYWHERE
 * at the lowest hole that fits; with TASKFS_VM_REMAP_COPY a copy-on-write
 * copy, else the same memory (share). Out: target_address, and the
 * protections common to every source page. */
#define TASKFS_VM_REMAP_ANYWHERE 1u
#define TASKFS_VM_REMAP_COPY 2u

struct taskfs_vm_remap {
  uint64_t src_task_id;
  uint64_t src_address;
  uint64_t size;
  uint64_t target_address;
  uint32_t flags;
  uint32_t inheritance;
  uint32_t cur_protection;
  uint32_t max_protection;
};

/* vm_read_list: up to TASKFS_READ_LIST_MAX ranges of this task read in one
 * call. In: count, and entries[0, count) with address and size, whose sizes
 * add up to at most TASKFS_READ_LIST_DATA (else EINVAL before anything is
 * read). Each entry is one vm_read, by the flavor's rules (classic:
 * page-aligned; xnu: any byte range), atomic on its own; one that fails
 * does not stop the others. Out: every entry's kern_return (KERN_SUCCESS
 * or why it failed; each failure is a line of its own in errors), and the
 * bytes of entry i at data[sum of the sizes of the entries before i],
 * zeros where an entry failed. The ioctl itself fails only for a bad count
 * or total, or a file not open for reading (EBADF). */
#define TASKFS_READ_LIST_MAX 64u
#define TASKFS_READ_LIST_DATA 14336u

struct taskfs_vm_read_entry {
  uint64_t address;
  uint64_t size;
  int32_t kern_return;
  uint32_t pad;
};

struct taskfs_vm_read_list {
  uint32_t count;
  uint32_t pad;
  struct taskfs_vm_read_entry entries[TASKFS_READ_LIST_MAX];
  uint8_t data[TASKFS_READ_LIST_DATA];
};

#define TASKFS_IOC_VM_COPY _IOW('M', 1, struct taskfs_vm_copy)
#define TASKFS_IOC_VM_ALLOCATE _IOWR('M', 2, struct taskfs_vm_allocate)
#define TASKFS_IOC_VM_DEALLOCATE _IOW('M', 3, struct taskfs_vm_deallocate)
#define TASKFS_IOC_VM_PROTECT _IOW('M', 4, struct taskfs_vm_protect)
#define TASKFS_IOC_VM_INHERIT _IOW('M', 5, struct taskfs_vm_inherit)
#define TASKFS_IOC_VM_REGION _IOWR('M', 6, struct taskfs_vm_region)
#define TASKFS_IOC_VM_MAP_COPY _IOWR('M', 7, struct taskfs_vm_map_copy)
#define TASKFS_IOC_VM_PAGE_QUERY _IOWR('M', 8, struct taskfs_vm_page_query)
#define TASKFS_IOC_LAST_REASON _IOR('M', 9, struct taskfs_last_reason)
#define TASKFS_IOC_VM_REMAP _IOWR('M', 10, struct taskfs_vm_remap)
#define TASKFS_IOC_VM_READ_LIST _IOWR('M', 11, struct taskfs_vm_read_list)

#ifdef __cplusplus
}
#endif

#endif /* TASKFS_IOCTL_H_ */
