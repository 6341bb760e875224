// task_statistics' walk of a map.
#ifndef TASKFS_VMCORE_VM_STATISTICS_H_
#define TASKFS_VMCORE_VM_STATISTICS_H_

#include "vmcore/address_map.h"
#include "vmcore/vm_types.h"

namespace taskfs::vm {

// The figures of map (TaskStatistics): its regions, its allocated bytes, the
// bytes of its distinct written pages, and of those the ones also mapped
// elsewhere (another mapping of the page, or another entry over the same
// object index -- a page at two addresses of this task counts as shared),
// and the metadata of the map and its objects (the task's own account is
// the caller's to add).
// Requires map's task lock (shared is enough) and no object lock; takes
// every object of the map shared, so the figures are one snapshot.
TaskStatistics MapStatistics(const AddressMap& map);

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_VM_STATISTICS_H_
