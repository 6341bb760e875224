/*
 * <mach/vm_map.h> of libtaskfs's macOS interface: XNU's vm_* calls. Those
 * with the classic signatures (vm_allocate, vm_read, vm_write ...) are
 * <taskfs/mach.h>'s. XNU's vm_region (a flavor and an info buffer) shares
 * its name with classic Mach's (nine out parameters, <taskfs/mach.h>): here
 * the name is a macro for taskfs_xnu_vm_region, so a program built with
 * these headers calls XNU's.
 */
#ifndef TASKFS_MACH_VM_MAP_H_
#define TASKFS_MACH_VM_MAP_H_

#include <mach/mach_types.h>
#include <mach/vm_region.h>

#ifdef __cplusplus
extern "C" {
#endif

kern_return_t taskfs_xnu_vm_region(vm_map_read_t target_task,
                                   vm_address_t *address, vm_size_t *size,
                                   vm_region_flavor_t flavor,
                                   vm_region_info_t info,
                                   mach_msg_type_number_t *infoCnt,
                                   mach_port_t *object_name);
#define vm_region taskfs_xnu_vm_region

kern_return_t vm_region_64(vm_map_read_t target_task, vm_address_t *address,
                           vm_size_t *size, vm_region_flavor_t flavor,
                           vm_region_info_t info,
                           mach_msg_type_number_t *infoCnt,
                           mach_port_t *object_name);
kern_return_t vm_region_recurse_64(vm_map_read_t target_task,
                                   vm_address_t *address, vm_size_t *size,
                                   natural_t *nesting_depth,
                                   vm_region_recurse_info_t info,
                                   mach_msg_type_number_t *infoCnt);
kern_return_t vm_read_overwrite(vm_map_read_t target_task, vm_address_t address,
                                vm_size_t size, vm_address_t data,
                                vm_size_t *outsize);
/* mach_vm_read_list (<mach/mach_vm.h>) with vm_read_entry_t. */
kern_return_t vm_read_list(vm_map_read_t target_task, vm_read_entry_t data_list,
                           natural_t count);

#ifdef __cplusplus
}
#endif

#endif /* TASKFS_MACH_VM_MAP_H_ */
