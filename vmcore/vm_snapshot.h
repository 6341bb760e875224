// The engine of a task's core file (docs/reference.md §10): a hidden
// copy-on-write snapshot of a task, and where a map's written pages lie.
//
// The facade (vm_user.h: task_snapshot, vm_find_resident, vm_count_resident)
// checks first; these assume page-aligned bounds inside the address space.
#ifndef TASKFS_VMCORE_VM_SNAPSHOT_H_
#define TASKFS_VMCORE_VM_SNAPSHOT_H_

#include <cstdint>
#include <vector>

#include "vmcore/address_map.h"
#include "vmcore/vm_types.h"

namespace taskfs::vm {

// Makes snapshot, an empty map, hold a copy-on-write copy of every readable
// region of source at the same address (CopyOut), and returns every region
// of source, as ForEachRegion lists them. Regions without read are listed but
// not copied: a core shows no more than vm_read. Requires snapshot's task
// lock exclusive and source's (at least shared). May throw std::bad_alloc
// (LimitReached at the memory limit); snapshot then holds part of the copy,
// and the caller drops it.
std::vector<RegionInfo> SnapshotInto(const AddressMap& source,
                                     AddressMap& snapshot);

// The lowest page address in [from, limit) whose page is resident (written:
// holds memory) when resident is true, or not resident (never written, or not
// allocated) when it is false; limit if there is none. Skips unwritten
// subtrees of the page tables whole, so a hole of a TiB costs no walk per
// page. Requires map's task lock (shared is enough); takes the object locks
// one at a time.
vm_address_t FindResidency(const AddressMap& map, vm_address_t from,
                           vm_address_t limit, bool resident);

// How many pages of [from, limit) are resident. Locks as FindResidency.
std::uint64_t CountResident(const AddressMap& map, vm_address_t from,
                            vm_address_t limit);

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_VM_SNAPSHOT_H_
