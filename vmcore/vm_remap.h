// vm_remap's engine (XNU's vm_map_remap): maps a range of one map at a free
// range of another (or the same), either as the same memory (share) or as
// a copy-on-write copy (copy).
//
// The facade checks first; these assume ranges built by PageRange, of equal
// size, a wholly allocated source and a wholly free destination.
#ifndef TASKFS_VMCORE_VM_REMAP_H_
#define TASKFS_VMCORE_VM_REMAP_H_

#include "vmcore/address_map.h"
#include "vmcore/page_range.h"
#include "vmcore/vm_types.h"

namespace taskfs::vm {

// The protections of a remapping of range: the current and maximum
// protections common to every entry of it (the lowest, as XNU reports).
struct RemapProtections {
  vm_prot_t current = VM_PROT_ALL;
  vm_prot_t maximum = VM_PROT_ALL;
};
RemapProtections ProtectionsOf(const AddressMap& map, const PageRange& range);

// Maps dst_range of dst_map as the same memory as src_range of src_map: each
// new entry points at the same object indexes as the source entry it comes
// from (as a share region is after a fork), so a write through either is
// seen through both, and copy-on-write against any other object stays as it
// was (it lives in the shared object's page table). Each new entry keeps its
// source entry's protections and takes inheritance. Requires dst_map's task
// lock exclusive and src_map's at least shared (one lock if they are one
// map). All or nothing: on an exception dst_map is as it was.
void RemapShare(const AddressMap& src_map, const PageRange& src_range,
                AddressMap& dst_map, const PageRange& dst_range,
                vm_inherit_t inheritance);

// The same with a copy-on-write copy (CopyOut), whose entries take
// inheritance.
void RemapCopy(const AddressMap& src_map, const PageRange& src_range,
               AddressMap& dst_map, const PageRange& dst_range,
               vm_inherit_t inheritance);

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_VM_REMAP_H_
