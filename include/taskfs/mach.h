/*
 * <taskfs/mach.h>: Mach's virtual memory calls on the tasks of a taskfs
 * mount (libtaskfs, docs/reference.md §9).
 *
 * A program written to Mach's VM interface runs against taskfs tasks
 * unchanged but for how it gets a task: taskfs_task_open() on a task
 * directory (MOUNT/NAME) or taskfs_task_create() of a new one, instead of a
 * task port. Every call works through the task's files only (pread/pwrite/
 * ioctl on mem, writes to ctl, mkdir/rmdir): libtaskfs is a user of the
 * mount, with the permissions of the calling process, and turns each errno
 * back into its kern_return_t by docs/reference.md §2's table:
 *
 *   EINVAL KERN_INVALID_ARGUMENT   EFAULT KERN_INVALID_ADDRESS
 *   EACCES KERN_PROTECTION_FAILURE ENOMEM KERN_NO_SPACE
 *   ENOSPC KERN_RESOURCE_SHORTAGE  ESRCH  KERN_INVALID_TASK
 *   EEXIST KERN_NAME_EXISTS        EIO and any other errno: KERN_FAILURE
 *
 * A task directory that does not exist is KERN_INVALID_TASK, and so is a
 * task_t that is not an open handle (TASK_NULL, or one already closed).
 *
 * Threads: every call is safe from several threads at once, on the same task
 * or on different ones. Handles live in a mutex-protected table; a call holds
 * a reference to its handle, so taskfs_task_close() racing with a call on the
 * same handle makes that call either finish normally or fail with
 * KERN_INVALID_TASK, never touch a closed descriptor. I/O uses pread/pwrite at
 * explicit offsets (no shared file offset) and errno is read right after each
 * system call on the calling thread.
 *
 * Link with `pkg-config --cflags --libs taskfs` (libtaskfs.so), or name
 * libtaskfs.a and add `pkg-config --static --libs-only-other taskfs`
 * (-pthread) for the static library.
 */
#ifndef TASKFS_MACH_H_
#define TASKFS_MACH_H_

#include <stddef.h>
#include <stdint.h>

#include "taskfs/vm_attributes.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- Mach's types ---------------------------------------------------------
 * As on a 64-bit Mach: addresses and sizes are pointer-sized; a message count
 * is 32 bits (so vm_read and vm_write move at most 4 GiB - 1 bytes a call). */
typedef int kern_return_t;
typedef uintptr_t vm_address_t;
typedef uintptr_t vm_offset_t;
typedef uintptr_t vm_size_t;
typedef int vm_prot_t;
typedef unsigned int vm_inherit_t;
typedef int boolean_t;
typedef unsigned int mach_msg_type_number_t;
typedef unsigned int mach_port_t;
/* A task: a handle of libtaskfs's table (1, 2, 3 ...), TASK_NULL (0), or
 * mach_task_self(). */
typedef mach_port_t task_t;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

#define MACH_PORT_NULL ((mach_port_t)0)
#define TASK_NULL ((task_t)0)

/* --- Result codes: Mach's numbers (XNU's osfmk/mach/kern_return.h) ----- */
#define KERN_SUCCESS 0
#define KERN_INVALID_ADDRESS 1
#define KERN_PROTECTION_FAILURE 2
#define KERN_NO_SPACE 3
#define KERN_INVALID_ARGUMENT 4
#define KERN_FAILURE 5
#define KERN_RESOURCE_SHORTAGE 6
#define KERN_NAME_EXISTS 13
#define KERN_INVALID_TASK 16

/* --- Protections and inheritance: Mach's numbers (docs/reference.md §1)
 * ----------------- Their values are <taskfs/vm_attributes.h>'s, the daemon's.
 */
#define VM_PROT_NONE ((vm_prot_t)TASKFS_VM_PROT_NONE)
#define VM_PROT_READ ((vm_prot_t)TASKFS_VM_PROT_READ)
#define VM_PROT_WRITE ((vm_prot_t)TASKFS_VM_PROT_WRITE)
#define VM_PROT_EXECUTE ((vm_prot_t)TASKFS_VM_PROT_EXECUTE)
#define VM_PROT_DEFAULT (VM_PROT_READ | VM_PROT_WRITE)
#define VM_PROT_ALL (VM_PROT_READ | VM_PROT_WRITE | VM_PROT_EXECUTE)

#define VM_INHERIT_SHARE ((vm_inherit_t)TASKFS_VM_INHERIT_SHARE)
#define VM_INHERIT_COPY ((vm_inherit_t)TASKFS_VM_INHERIT_COPY)
#define VM_INHERIT_NONE ((vm_inherit_t)TASKFS_VM_INHERIT_NONE)
#define VM_INHERIT_DEFAULT VM_INHERIT_COPY

/* --- Mach's calls -----------------------------------------------------------
 * Arguments are judged by the daemon exactly as docs/reference.md §2 says
 * (alignment, then bounds, then the source and destination ranges page by
 * page); an operation that fails changes nothing, with the one exception noted
 * at vm_write. */

/* vm_allocate: zero-filled memory, rw-/rwx copy. The address is rounded down
 * and the size up to the task's page size; with anywhere, the lowest hole
 * that fits, returned in *address. Size 0 succeeds and allocates nothing. */
kern_return_t vm_allocate(task_t target_task, vm_address_t *address,
                          vm_size_t size, boolean_t anywhere);

/* vm_deallocate: rounded to pages; unallocated parts are fine.
 * On mach_task_self() it frees memory that vm_read returned: the pages
 * [trunc_page(address), round_page(address + size)) of the calling process
 * become inaccessible (the one use of mach_task_self() that libtaskfs
 * defines). They are unmapped, except that a whole buffer of at most 4 MiB
 * that vm_read handed out may be kept, PROT_NONE, for the next vm_read of the
 * same size (at most 4 such buffers): new memory costs a page fault and a
 * zeroed page per page, which halves the speed of a read loop. */
kern_return_t vm_deallocate(task_t target_task, vm_address_t address,
                            vm_size_t size);

/* vm_protect: with set_maximum, maximum := new_protection and current :=
 * current & new_protection; raising a maximum or a current above it is
 * KERN_PROTECTION_FAILURE, a hole KERN_INVALID_ADDRESS. */
kern_return_t vm_protect(task_t target_task, vm_address_t address,
                         vm_size_t size, boolean_t set_maximum,
                         vm_prot_t new_protection);

/* vm_inherit: VM_INHERIT_SHARE, _COPY or _NONE for fork (task_create with
 * inherit_memory). */
kern_return_t vm_inherit(task_t target_task, vm_address_t address,
                         vm_size_t size, vm_inherit_t new_inheritance);

/* vm_read: address and size page-aligned (else KERN_INVALID_ARGUMENT, as is a
 * size above 4 GiB - 1; on an XNU mount, -o flavor=xnu, any address and size);
 * the bytes come back in newly mapped, page-aligned memory of the calling
 * process: *data, *data_count == size. Free it with
 * vm_deallocate(mach_task_self(), *data, *data_count). KERN_NO_SPACE if the
 * calling process has no room for it. Size 0: *data = 0, *data_count = 0. */
kern_return_t vm_read(task_t target_task, vm_address_t address, vm_size_t size,
                      vm_offset_t *data, mach_msg_type_number_t *data_count);

/* vm_write: data must be page-aligned in the calling process (its page size,
 * sysconf(_SC_PAGESIZE)) as Mach's out-of-line data is, else
 * KERN_INVALID_ARGUMENT before any I/O; address and data_count page-aligned
 * for the task. On an XNU mount (-o flavor=xnu) any data, address and size. The
 * daemon takes a write in requests of 512 KiB (docs/reference.md §5.1), each
 * atomic: a write of one request that fails changes nothing, but when a later
 * request of a larger write fails, the requests before it stay written and the
 * call returns the failing request's code. */
kern_return_t vm_write(task_t target_task, vm_address_t address,
                       vm_offset_t data, mach_msg_type_number_t data_count);

/* vm_copy: a virtual (copy-on-write) copy within the task; overlap allowed. */
kern_return_t vm_copy(task_t target_task, vm_address_t source_address,
                      vm_size_t count, vm_address_t dest_address);

/* vm_region: the region holding *address, else the first one above it
 * (KERN_NO_SPACE if none): its start and size, protections and inheritance.
 * A region is a maximal run of pages with equal attributes, as in maps.
 * *shared is TRUE for a VM_INHERIT_SHARE region; *object_name and *offset
 * are 0. Every pointer must be non-NULL (else KERN_INVALID_ARGUMENT). */
kern_return_t vm_region(task_t target_task, vm_address_t *address,
                        vm_size_t *size, vm_prot_t *protection,
                        vm_prot_t *max_protection, vm_inherit_t *inheritance,
                        boolean_t *shared, mach_port_t *object_name,
                        vm_offset_t *offset);

/* vm_map_copy: copy [src_addr, src_addr + len) of src_task to dst_addr of
 * dst_task (OSF vm_map_copy(9)). dst_alloc: the destination must be wholly
 * unallocated and becomes a region with the source's attributes; without it
 * it must be allocated and writable. src_destroy: the source range is
 * deallocated afterwards. Needs read access to src_task's mem (write access
 * with src_destroy). Both tasks must be on the same mount (their mem files
 * on the same device): the ioctl names the source by its id, which means
 * something on dst_task's mount only, so a src_task on another mount is
 * KERN_INVALID_TASK, before any I/O. */
kern_return_t vm_map_copy(task_t dst_task, task_t src_task,
                          vm_address_t dst_addr, vm_size_t len,
                          vm_address_t src_addr, boolean_t dst_alloc,
                          boolean_t src_destroy);

/* taskfs_vm_remap (XNU's mach_vm_remap): maps [trunc(src_address),
 * + round(size)) of src_task, every page allocated (else
 * KERN_INVALID_ADDRESS; any protection), into target at
 * trunc(*target_address), which must be free (KERN_NO_SPACE), or with
 * anywhere at the lowest hole that fits; *target_address is set to where.
 * copy: a copy-on-write copy; else the same memory at both places (a write
 * through either is seen through both). The new regions keep the source's
 * protections and take inheritance; *cur_protection and *max_protection are
 * the protections common to every source page. A size of 0 and an
 * inheritance other than share, copy and none are KERN_INVALID_ARGUMENT.
 * Needs read access to src_task's mem, and for a share write access too.
 * Both tasks on one mount (else KERN_INVALID_TASK, before any I/O); they may
 * be the same task. */
kern_return_t taskfs_vm_remap(task_t target, vm_address_t *target_address,
                              vm_size_t size, boolean_t anywhere,
                              task_t src_task, vm_address_t src_address,
                              boolean_t copy, vm_prot_t *cur_protection,
                              vm_prot_t *max_protection,
                              vm_inherit_t inheritance);

/* task_create: a new task named PARENT.N (the lowest free N of 1, 2, 3 ...)
 * on parent's mount, owned by the caller; with inherit_memory it is a fork of
 * parent (share regions shared, copy regions copied, none regions absent),
 * otherwise empty. *child is a new handle. */
kern_return_t task_create(task_t parent_task, boolean_t inherit_memory,
                          task_t *child_task);

/* task_terminate: rmdir of the task's directory. The handle stays open (its
 * calls then fail with KERN_INVALID_TASK) until taskfs_task_close(). */
kern_return_t task_terminate(task_t target_task);

/* The calling process, for vm_deallocate of vm_read's data only; any other
 * call given it returns KERN_INVALID_ARGUMENT. */
task_t mach_task_self(void);

/* Mach's text for every code above: "(os/kern) successful",
 * "(os/kern) protection failure" ...; "(os/kern) unknown error code" for any
 * other value. Never NULL; the strings are static. */
const char *mach_error_string(kern_return_t error_value);

/* --- taskfs's entry points, what Mach gets from its ports ------------------
 */

/* Opens MOUNT/NAME (a task directory): its mem read-write, or read-only when
 * only that is allowed (then the calls that change memory fail with
 * KERN_PROTECTION_FAILURE). KERN_INVALID_TASK if no such task directory. */
kern_return_t taskfs_task_open(const char *task_dir, task_t *task);

/* mkdir MOUNTPOINT/NAME (task_create of an empty task) and open it.
 * KERN_NAME_EXISTS if taken, KERN_INVALID_ARGUMENT for a bad name (the rule
 * of <taskfs/task_name.h>, checked before anything is made) or a mountpoint
 * that does not exist, KERN_RESOURCE_SHORTAGE at max_tasks. */
kern_return_t taskfs_task_create(const char *mountpoint, const char *name,
                                 task_t *task);

/* `fork NAME` in parent's ctl (task_create with inherit_memory) and open the
 * child. */
kern_return_t taskfs_task_fork(task_t parent, const char *name, task_t *child);

/* The reason of this thread's last failed call: the REASON the daemon
 * recorded in the task's errors file for that very call (docs/reference.md
 * §7; the text after "KERN_NAME: "), or libtaskfs's own words for a failure
 * found before any request (an argument Mach checks first, a handle that is
 * not open); "" after a call that succeeded. Thread-local: another thread's
 * or process's failures, on the same task or not, never change it. Valid
 * until this thread's next libtaskfs call. A failure whose reason cannot be
 * known has "": the close of ctl that ends a command (its line is then only
 * in the errors file), a failure the daemon could not record for want of
 * memory. */
const char *taskfs_last_reason(void);

/* The whole errors line (SEQ uid UID OPERATION: KERN_NAME: REASON, without
 * the newline) of this thread's last failed call, into buf (NUL-terminated);
 * "" if the failure has none (see taskfs_last_reason). KERN_NO_SPACE if it
 * was cut to size - 1 bytes, KERN_INVALID_ARGUMENT for a NULL buf or a size
 * of 0. Changes neither. */
kern_return_t taskfs_last_error_line(char *buf, size_t size);

/* Closes the handle only; the task lives on. KERN_INVALID_TASK if task is not
 * an open handle. */
kern_return_t taskfs_task_close(task_t task);

#ifdef __cplusplus
}
#endif

#endif /* TASKFS_MACH_H_ */
