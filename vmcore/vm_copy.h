// Virtual copy between map ranges (GNU Mach's vm_map_copyin with
// vm_map_copy_overwrite or vm_map_copyout): pages are shared copy-on-write,
// never copied byte by byte.
//
// The facade checks first; these assume ranges built by PageRange, of equal
// size, a readable allocated source and, for CopyOverwrite, a writable
// allocated destination; for CopyOut a wholly free one.
#ifndef TASKFS_VMCORE_VM_COPY_H_
#define TASKFS_VMCORE_VM_COPY_H_

#include <optional>

#include "vmcore/address_map.h"
#include "vmcore/page_range.h"

namespace taskfs::vm {

// Makes dst_range of dst_map a copy-on-write copy of src_range of src_map;
// the maps may be the same and the ranges may overlap (the result is as if
// the source were read whole first). Requires the task locks of both maps
// (shared is enough); takes the object locks, all at once. May throw
// std::bad_alloc before anything changes.
void CopyOverwrite(const AddressMap& src_map, const PageRange& src_range,
                   const AddressMap& dst_map, const PageRange& dst_range);

// vm_map_copy with dst_alloc: maps dst_range, which must be free, as new
// regions with the source's protections and inheritance (or, given,
// inheritance) over one new object, holding a copy-on-write copy of
// src_range. Requires dst_map's task lock exclusive and src_map's (at least
// shared). All or nothing: on an exception dst_map is as it was.
void CopyOut(const AddressMap& src_map, const PageRange& src_range,
             AddressMap& dst_map, const PageRange& dst_range,
             std::optional<vm_inherit_t> inheritance = std::nullopt);

// The whole of vm_map_copy after its checks: CopyOut with dst_alloc, else
// CopyOverwrite; then with src_destroy the source range is deallocated
// (src_map's task lock exclusive), but for the part the destination overlaps
// when both are in one map: that part holds the moved contents.
void MapCopy(AddressMap& src_map, const PageRange& src_range,
             AddressMap& dst_map, const PageRange& dst_range, bool dst_alloc,
             bool src_destroy);

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_VM_COPY_H_
