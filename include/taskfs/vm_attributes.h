/*
 * <taskfs/vm_attributes.h>: the protections and inheritances of a region,
 * Mach's numbers (docs/reference.md §1), defined once for every user: the VM
 * core (vmcore/vm_types.h's vm::VM_PROT_* and vm::VM_INHERIT_*), the ioctl
 * structs of <taskfs/ioctl.h> (their prot, max_prot and inheritance fields),
 * libtaskfs (<taskfs/mach.h>'s VM_PROT_* and VM_INHERIT_*) and the Python
 * package (taskfs.VM_PROT_* and taskfs.VM_INHERIT_*, generated from
 * <taskfs/mach.h>).
 *
 * Plain C macros with a TASKFS_ prefix, so that a file may include this
 * header next to vmcore's C++ constants or <taskfs/mach.h>'s macros.
 */
#ifndef TASKFS_VM_ATTRIBUTES_H_
#define TASKFS_VM_ATTRIBUTES_H_

/* Protections: a set of these bits. */
#define TASKFS_VM_PROT_NONE 0u
#define TASKFS_VM_PROT_READ 1u
#define TASKFS_VM_PROT_WRITE 2u
#define TASKFS_VM_PROT_EXECUTE 4u
#define TASKFS_VM_PROT_DEFAULT (TASKFS_VM_PROT_READ | TASKFS_VM_PROT_WRITE)
#define TASKFS_VM_PROT_ALL \
  (TASKFS_VM_PROT_READ | TASKFS_VM_PROT_WRITE | TASKFS_VM_PROT_EXECUTE)

/* Inheritances: one of these, what a fork does with the region. */
#define TASKFS_VM_INHERIT_SHARE 0u
#define TASKFS_VM_INHERIT_COPY 1u
#define TASKFS_VM_INHERIT_NONE 2u
#define TASKFS_VM_INHERIT_DEFAULT TASKFS_VM_INHERIT_COPY

#endif /* TASKFS_VM_ATTRIBUTES_H_ */
