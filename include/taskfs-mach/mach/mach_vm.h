/*
 * <mach/mach_vm.h> of libtaskfs's macOS interface: XNU's mach_vm_* calls
 * with XNU's signatures, on the tasks of a taskfs mount (a task_t from
 * task_for_pid). On a mount of the classic flavor the daemon judges them by
 * classic Mach's rules (page-aligned reads and writes), on one of the XNU
 * flavor by XNU's; the library refuses no argument the daemon would take.
 * What each call does here: docs/reference.md §9.
 */
#ifndef TASKFS_MACH_MACH_VM_H_
#define TASKFS_MACH_MACH_VM_H_

#include <mach/mach_types.h>
#include <mach/vm_region.h>

#ifdef __cplusplus
extern "C" {
#endif

kern_return_t mach_vm_allocate(vm_map_t target, mach_vm_address_t *address,
                               mach_vm_size_t size, int flags);
kern_return_t mach_vm_deallocate(vm_map_t target, mach_vm_address_t address,
                                 mach_vm_size_t size);
kern_return_t mach_vm_protect(vm_map_t target_task, mach_vm_address_t address,
                              mach_vm_size_t size, boolean_t set_maximum,
                              vm_prot_t new_protection);
kern_return_t mach_vm_inherit(vm_map_t target_task, mach_vm_address_t address,
                              mach_vm_size_t size,
                              vm_inherit_t new_inheritance);
kern_return_t mach_vm_read(vm_map_read_t target_task, mach_vm_address_t address,
                           mach_vm_size_t size, vm_offset_t *data,
                           mach_msg_type_number_t *dataCnt);
kern_return_t mach_vm_read_overwrite(vm_map_read_t target_task,
                                     mach_vm_address_t address,
                                     mach_vm_size_t size,
                                     mach_vm_address_t data,
                                     mach_vm_size_t *outsize);
/* Each entry with a size is read into new memory of this process, whose
 * address replaces the entry's address (free it with
 * mach_vm_deallocate(mach_task_self(), address, size)); an entry that
 * fails, or is empty, becomes address 0 and size 0 and the others go on.
 * Returns, as XNU, the result of the last entry with a size. count at most
 * VM_MAP_ENTRY_MAX. One round trip to the daemon when the entries' bytes
 * add up to at most 14 KiB (docs/reference.md §9). */
kern_return_t mach_vm_read_list(vm_map_read_t target_task,
                                mach_vm_read_entry_t data_list,
                                natural_t count);
kern_return_t mach_vm_write(vm_map_t target_task, mach_vm_address_t address,
                            vm_offset_t data, mach_msg_type_number_t dataCnt);
kern_return_t mach_vm_copy(vm_map_t target_task,
                           mach_vm_address_t source_address,
                           mach_vm_size_t size, mach_vm_address_t dest_address);
kern_return_t mach_vm_region(vm_map_read_t target_task,
                             mach_vm_address_t *address, mach_vm_size_t *size,
                             vm_region_flavor_t flavor, vm_region_info_t info,
                             mach_msg_type_number_t *infoCnt,
                             mach_port_t *object_name);
kern_return_t mach_vm_region_recurse(vm_map_read_t target_task,
                                     mach_vm_address_t *address,
                                     mach_vm_size_t *size,
                                     natural_t *nesting_depth,
                                     vm_region_recurse_info_t info,
                                     mach_msg_type_number_t *infoCnt);
kern_return_t mach_vm_remap(vm_map_t target_task,
                            mach_vm_address_t *target_address,
                            mach_vm_size_t size, mach_vm_offset_t mask,
                            int flags, vm_map_read_t src_task,
                            mach_vm_address_t src_address, boolean_t copy,
                            vm_prot_t *cur_protection,
                            vm_prot_t *max_protection,
                            vm_inherit_t inheritance);
kern_return_t mach_vm_page_query(vm_map_read_t target_map,
                                 mach_vm_offset_t offset,
                                 integer_t *disposition, integer_t *ref_count);
kern_return_t mach_vm_page_range_query(vm_map_read_t target_map,
                                       mach_vm_offset_t address,
                                       mach_vm_size_t size,
                                       mach_vm_address_t dispositions,
                                       mach_vm_size_t *dispositions_count);
kern_return_t mach_vm_behavior_set(vm_map_t target_task,
                                   mach_vm_address_t address,
                                   mach_vm_size_t size,
                                   vm_behavior_t new_behavior);
kern_return_t mach_vm_msync(vm_map_t target_task, mach_vm_address_t address,
                            mach_vm_size_t size, vm_sync_t sync_flags);

#ifdef __cplusplus
}
#endif

#endif /* TASKFS_MACH_MACH_VM_H_ */
