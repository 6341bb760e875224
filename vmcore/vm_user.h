// The Mach VM interface of the core: the one place where arguments are checked.
//
// Each call, through the one path of the gate (gate.h), opens its task (lock,
// liveness, exception guard), validates its arguments in Mach's order
// (docs/reference.md §2) and then makes one call into the engine below
// (AddressMap and its operations in vm_fault.h, vm_copy.h, vm_fork.h,
// vm_statistics.h), which assumes valid input. Order of checks:
//   1. arguments: alignment, flags, protection and inheritance values
//      -> KERN_INVALID_ARGUMENT;
//   2. bounds: address + size wrapping past 2^64, or a range not inside
//      [0, 2^address_bits) -> KERN_INVALID_ADDRESS;
//   3. the source range, ascending: the lowest offending page decides between
//      KERN_INVALID_ADDRESS (not allocated) and KERN_PROTECTION_FAILURE;
//   4. the destination range, the same way.
// The flavor (VmConfig::flavor, Geometry::flavor) changes step 1 and 2 for
// vm_read, vm_write and vm_copy: in the classic flavor their addresses and
// sizes must be page multiples; in the XNU flavor they take any byte range
// and steps 2 to 4 check the pages it touches, [trunc_page(address),
// round_page(address + size)); vm_read's size must then fit a 32-bit message
// count. vm_map_copy keeps the classic rule in both flavors.
// A zero-size call that passes step 1 succeeds and changes nothing. A call that
// fails changes nothing. A call that changes a byte or a region notes the
// time in its task (Task::changed): allocate, deallocate, protect, inherit,
// write, copy, load, fill, and vm_map_copy in its destination (and in its
// source with src_destroy). Every call is atomic with respect to every other
// call on the same task. Calls on a terminated task return KERN_INVALID_TASK.
// bad_alloc never escapes: it becomes KERN_RESOURCE_SHORTAGE.
//
// Thread-safety: every function may be called from any number of threads.
#ifndef TASKFS_VMCORE_VM_USER_H_
#define TASKFS_VMCORE_VM_USER_H_

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "vmcore/kern_result.h"
#include "vmcore/kern_return.h"
#include "vmcore/memory_account.h"
#include "vmcore/pinned_pages.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_types.h"

namespace taskfs::vm {

// --- tasks -----------------------------------------------------------------

// Creates and returns an empty task. KERN_INVALID_ARGUMENT for a bad name
// (see VmSystem::ValidTaskName), KERN_NAME_EXISTS if the name is taken,
// KERN_RESOURCE_SHORTAGE when max_tasks tasks are alive.
KernResult<std::shared_ptr<Task>> task_create(VmSystem& system,
                                              std::string_view name);

// task_create(inherit_memory=TRUE): returns a new task whose map is built
// from parent's by each region's inheritance: share regions are the same
// memory in both, copy regions are copy-on-write copies, none regions are
// absent. Errors as task_create (the name is checked first), plus
// KERN_INVALID_TASK if parent is terminated.
KernResult<std::shared_ptr<Task>> task_fork(VmSystem& system, Task& parent,
                                            std::string_view name);

// Removes the task from the system and frees its memory. Holders of the
// Task object get KERN_INVALID_TASK from then on.
KernReturn task_terminate(VmSystem& system, Task& task);

// The task's figures (TaskStatistics), as one snapshot.
KernResult<TaskStatistics> task_statistics(Task& task);

// --- memory ----------------------------------------------------------------

// vm_allocate. Fixed (anywhere == false): [trunc(*address),
// trunc(*address) + round(size)) -- Mach rounds the address and the size
// each on its own -- must be free (else KERN_NO_SPACE) and inside the
// address space (else KERN_INVALID_ADDRESS). Anywhere: *address is ignored and
// set to the lowest address with a free hole of round(size) bytes
// (KERN_NO_SPACE if none). Size 0: success, nothing allocated, and with
// anywhere *address is set to 0. New regions are rw-/rwx, inheritance copy.
KernReturn vm_allocate(Task& task, vm_address_t* address, vm_size_t size,
                       bool anywhere);

// vm_deallocate of [trunc(address), round(address + size)); unallocated parts
// are fine.
KernReturn vm_deallocate(Task& task, vm_address_t address, vm_size_t size);

// vm_protect of the rounded range. Every page must be allocated
// (KERN_INVALID_ADDRESS). Without set_maximum, new_prot must lie within each
// page's maximum (KERN_PROTECTION_FAILURE). With set_maximum, new_prot must not
// raise any page's maximum (KERN_PROTECTION_FAILURE); the maximum becomes
// new_prot and the current protection current & new_prot.
KernReturn vm_protect(Task& task, vm_address_t address, vm_size_t size,
                      bool set_maximum, vm_prot_t new_prot);

// vm_inherit of the rounded range; every page must be allocated.
KernReturn vm_inherit(Task& task, vm_address_t address, vm_size_t size,
                      vm_inherit_t inheritance);

// vm_region: the region holding *address or else the first one above it, as a
// maximal run of pages with equal attributes. Sets *address to its start.
// KERN_NO_SPACE if there is none.
KernReturn vm_region(Task& task, vm_address_t* address, RegionInfo* info);

// Every region of the task, as vm_region would return them, ascending. With
// an account, each region listed is first charged per_region bytes to it (it
// may use the reserve; at the limit the call fails with
// KERN_RESOURCE_SHORTAGE), so that a list as large as the map is memory
// too; the caller releases size() * per_region when done with it.
KernResult<std::vector<RegionInfo>> vm_region_list(
    Task& task, MemoryAccount* account = nullptr, std::uint64_t per_region = 0);

// vm_read without a copy: pins the pages of the range so that
// *out describes a snapshot of it (later writes to the task do not change the
// pinned bytes) until out->Release() or its destruction. *out is cleared first.
KernReturn vm_read_pinned(Task& task, vm_address_t address, vm_size_t size,
                          PinnedPages* out);

// vm_read into a caller's buffer: the range is [address, address +
// buffer.size()). A span, not a pointer, so no object converts to a buffer.
KernReturn vm_read(Task& task, vm_address_t address,
                   std::span<std::byte> buffer);

// vm_write: every page of the range (page-aligned in the classic flavor)
// must be allocated and writable; a partial page keeps its other bytes.
// KERN_RESOURCE_SHORTAGE if the memory limit would be passed; the copies of
// pages that only readers' pins keep draw on the pin reserve instead
// (VmConfig::pin_reserve), as in vm_load and vm_fill.
KernReturn vm_write(Task& task, vm_address_t address, const void* data,
                    vm_size_t size);

// vm_copy within one task: page-aligned (any byte range in the XNU flavor),
// source readable, destination allocated and writable, overlap allowed (as
// if the source were read whole first). Whole pages are a virtual copy:
// pages are shared copy-on-write. Any other range (the XNU flavor) is a byte
// copy through a buffer of size bytes, charged to the memory limit while the
// call runs (KERN_RESOURCE_SHORTAGE if it does not fit).
KernReturn vm_copy(Task& task, vm_address_t source, vm_size_t size,
                   vm_address_t dest);

// vm_map_copy from src_task into dst_task (they may be the same task).
// Without dst_alloc the destination must be allocated and writable; with it
// the destination must be wholly unallocated (KERN_NO_SPACE at its lowest
// allocated page) and becomes regions with the source's protections and
// inheritance. With src_destroy the source range is deallocated afterwards,
// except where the destination overlaps it within one task (the copy is a
// move: [0,2P) to [P,3P) leaves [P,3P) holding the former [0,2P)).
KernReturn vm_map_copy(Task& dst_task, vm_address_t dest, Task& src_task,
                       vm_address_t source, vm_size_t size, bool dst_alloc,
                       bool src_destroy);

// vm_remap (XNU's mach_vm_remap): maps [trunc(src_address),
// trunc(src_address) + round(size)) of src_task (every page allocated, else
// KERN_INVALID_ADDRESS at the lowest hole; any protection, as XNU remaps
// regardless of it and reports it) into target: fixed at
// trunc(*target_address), which must be free (KERN_NO_SPACE) and inside the
// space (KERN_INVALID_ADDRESS), or anywhere at the lowest free hole
// (KERN_NO_SPACE if none); *target_address is set to where. With copy, a
// copy-on-write copy (as vm_map_copy with dst_alloc); without, the same
// memory at both places, so a write through either is seen through both.
// The new entries keep their source entries' protections and take
// inheritance (share, copy or none, else KERN_INVALID_ARGUMENT); a size of 0
// is KERN_INVALID_ARGUMENT, as in XNU. *cur_protection and *max_protection
// (either may be null) are set to the protections common to every source
// page. The tasks may be one. All or nothing; the entries are charged.
// With source_readable, every source page must also allow reading
// (KERN_PROTECTION_FAILURE at the lowest that does not), as for vm_read: what
// a caller that may read a task but not change it must meet (fs/).
KernReturn vm_remap(Task& target, vm_address_t* target_address, vm_size_t size,
                    bool anywhere, Task& src_task, vm_address_t src_address,
                    bool copy, vm_prot_t* cur_protection,
                    vm_prot_t* max_protection, vm_inherit_t inheritance,
                    bool source_readable = false);

// Initial contents, as a manifest sets them: writes bytes at any alignment
// regardless of protection. Every page touched must be allocated
// (KERN_INVALID_ADDRESS). The fill variant writes size copies of byte.
KernReturn vm_load(Task& task, vm_address_t address, const void* data,
                   vm_size_t size);
KernReturn vm_fill(Task& task, vm_address_t address, vm_size_t size,
                   unsigned char byte);

// The state of each page of [trunc(address), round(address + size)) into
// out[0, pages) (PageState): allocated or not, written (resident) or never
// written, shared and by how many mappings, and its identity. Unallocated
// pages report flags 0; this is a query, not an access, so no page needs
// any protection. out must hold at least the range's pages
// (KERN_INVALID_ARGUMENT); a range not inside the address space is
// KERN_INVALID_ADDRESS; size 0 succeeds. Takes time per page of the range.
KernReturn vm_page_query(Task& task, vm_address_t address, vm_size_t size,
                         std::span<PageState> out);

// SEEK_DATA / SEEK_HOLE: the lowest allocated (resp. unallocated) address at
// or above `from`. vm_find_data returns KERN_NO_SPACE if there is none;
// vm_find_hole returns 2^address_bits if the rest of the space is allocated.
KernResult<vm_address_t> vm_find_data(Task& task, vm_address_t from);
KernResult<vm_address_t> vm_find_hole(Task& task, vm_address_t from);

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_VM_USER_H_
