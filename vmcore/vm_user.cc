// The Mach calls: for each, open the task (gate::Open), check the arguments
// in Mach's order (gate::Checks), and make one call into the engine. The
// gate's machinery is gate.h; see vm_user.h for the contracts and
// lock_order.h for the locks.
#include "vmcore/vm_user.h"

#include <fmt/format.h>

#include <optional>
#include <string>
#include <vector>

#include "vmcore/address_map.h"
#include "vmcore/failure_reason.h"
#include "vmcore/gate.h"
#include "vmcore/memory_account.h"
#include "vmcore/page_range.h"
#include "vmcore/reserve_scope.h"
#include "vmcore/vm_copy.h"
#include "vmcore/vm_fault.h"
#include "vmcore/vm_fork.h"
#include "vmcore/vm_page_query.h"
#include "vmcore/vm_remap.h"
#include "vmcore/vm_statistics.h"

namespace taskfs::vm {

using gate::BadTaskName;
using gate::Checks;
using gate::Lock;
using gate::NeedsExplained;
using gate::Open;
using gate::Protectable;
using gate::Readable;
using gate::ReadEntries;
using gate::WithReason;

namespace {

// kr, after noting a change of task's memory when kr is success.
KernReturn Changed(Task& task, KernReturn kr) {
  if (kr == KERN_SUCCESS) task.NoteChange();
  return kr;
}

}  // namespace

// --- tasks -----------------------------------------------------------------

KernResult<std::shared_ptr<Task>> task_create(VmSystem& system,
                                              std::string_view name) {
  return WithReason([&]() -> KernResult<std::shared_ptr<Task>> {
    if (!VmSystem::ValidTaskName(name)) return BadTaskName(name);
    return system.AddTask(name);
  });
}

KernResult<std::shared_ptr<Task>> task_fork(VmSystem& system, Task& parent,
                                            std::string_view name) {
  // The name is an argument of the call, checked before the parent is
  // (guarded too: formatting the reason allocates).
  if (!VmSystem::ValidTaskName(name)) {
    return WithReason([&]() -> KernResult<std::shared_ptr<Task>> {
      return BadTaskName(name);
    });
  }
  return Open(parent, Lock::kShared,
              [&] { return ForkTask(system, parent, name); });
}

KernReturn task_terminate(VmSystem& system, Task& task) {
  return Open(task, Lock::kExclusive, [&] {
    task.Terminate();
    system.RemoveTask(task);
    return KERN_SUCCESS;
  });
}

KernResult<TaskStatistics> task_statistics(Task& task) {
  return Open(task, Lock::kShared, [&]() -> KernResult<TaskStatistics> {
    TaskStatistics stats = MapStatistics(task.map());
    stats.metadata_bytes += task.account().held();
    return stats;
  });
}

// --- memory ----------------------------------------------------------------

KernReturn vm_allocate(Task& task, vm_address_t* address, vm_size_t size,
                       bool anywhere) {
  return Open(task, Lock::kExclusive, [&] {
    AddressMap& map = task.map();
    PageRange range;
    Checks check(task.geometry());
    check.NonEmpty(size);
    if (anywhere) {
      check.Hole(map, size, &range);
    } else {
      check.RoundedApart(*address, size, &range).Free(map, range);
    }
    if (!check.passed()) {
      // Anywhere, a zero size is placed at 0.
      if (anywhere && check.code() == KERN_SUCCESS) *address = 0;
      return check.code();
    }
    map.AllocateRange(range);
    *address = range.start();
    task.NoteChange();
    return KERN_SUCCESS;
  });
}

KernReturn vm_deallocate(Task& task, vm_address_t address, vm_size_t size) {
  return Open(task, Lock::kExclusive, [&] {
    PageRange range;
    Checks check(task.geometry());
    check.NonEmpty(size).Rounded(address, size, &range);
    if (!check.passed()) return check.code();
    // At the limit, the split of a region may use the reserve: freeing
    // memory must not need free memory.
    ReserveScope reserve;
    task.map().Remove(range);
    task.NoteChange();
    return KERN_SUCCESS;
  });
}

KernReturn vm_protect(Task& task, vm_address_t address, vm_size_t size,
                      bool set_maximum, vm_prot_t new_prot) {
  return Open(task, Lock::kExclusive, [&] {
    AddressMap& map = task.map();
    PageRange range;
    Checks check(task.geometry());
    check
        .Valid((new_prot & ~VM_PROT_ALL) == 0,
               [new_prot] {
                 return fmt::format("protection {:#x} has bits beyond rwx",
                                    new_prot);
               })
        .NonEmpty(size)
        .Rounded(address, size, &range)
        .Range(
            map, range,
            [new_prot](const MapEntry& entry) {
              return Protectable(entry, new_prot);
            },
            [new_prot](const MapEntry& entry, vm_address_t page) {
              return fmt::format("page {:#x} has maximum {}, {} goes beyond it",
                                 page, ProtectionText(entry.max_protection),
                                 ProtectionText(new_prot));
            });
    if (!check.passed()) return check.code();
    map.SetProtection(range, new_prot, set_maximum);
    task.NoteChange();
    return KERN_SUCCESS;
  });
}

KernReturn vm_inherit(Task& task, vm_address_t address, vm_size_t size,
                      vm_inherit_t inheritance) {
  return Open(task, Lock::kExclusive, [&] {
    AddressMap& map = task.map();
    PageRange range;
    Checks check(task.geometry());
    check
        .Valid(inheritance <= VM_INHERIT_NONE,
               [inheritance] {
                 return fmt::format(
                     "inheritance {} is not share (0), copy (1) or none (2)",
                     inheritance);
               })
        .NonEmpty(size)
        .Rounded(address, size, &range)
        .Allocated(map, range);
    if (!check.passed()) return check.code();
    map.SetInheritance(range, inheritance);
    task.NoteChange();
    return KERN_SUCCESS;
  });
}

KernReturn vm_region(Task& task, vm_address_t* address, RegionInfo* info) {
  return Open(task, Lock::kShared, [&] {
    const std::optional<RegionInfo> region = task.map().RegionFrom(*address);
    if (!region) {
      SetFailureReason(fmt::format("no region at or above {:#x}", *address));
      return KERN_NO_SPACE;
    }
    *info = *region;
    *address = region->start;
    return KERN_SUCCESS;
  });
}

KernResult<std::vector<RegionInfo>> vm_region_list(Task& task,
                                                   MemoryAccount* account,
                                                   std::uint64_t per_region) {
  return Open(task, Lock::kShared,
              [&]() -> KernResult<std::vector<RegionInfo>> {
                std::vector<RegionInfo> regions;
                try {
                  task.map().ForEachRegion([&](const RegionInfo& info) {
                    if (account != nullptr) account->Charge(per_region, true);
                    try {
                      regions.push_back(info);
                    } catch (...) {
                      if (account != nullptr) account->Release(per_region);
                      throw;
                    }
                  });
                } catch (...) {
                  if (account != nullptr)
                    account->Release(regions.size() * per_region);
                  throw;
                }
                return regions;
              });
}

KernReturn vm_read_pinned(Task& task, vm_address_t address, vm_size_t size,
                          PinnedPages* out) {
  out->Release();
  return Open(task, Lock::kShared, [&] {
    std::vector<const MapEntry*>& entries = ReadEntries();
    PageRange range;
    Checks check(task.geometry());
    check.TransferAligned({{"address", address}, {"size", size}})
        .MessageSize(size)
        .NonEmpty(size)
        .Bytes(address, size, &range)
        .Range(task.map(), range, Readable(&entries),
               NeedsExplained(VM_PROT_READ));
    if (!check.passed()) return check.code();
    ReadPinned(task.system(), entries, range, address, size, out);
    return KERN_SUCCESS;
  });
}

KernReturn vm_read(Task& task, vm_address_t address,
                   std::span<std::byte> buffer) {
  return Open(task, Lock::kShared, [&] {
    std::vector<const MapEntry*>& entries = ReadEntries();
    PageRange range;
    Checks check(task.geometry());
    check.TransferAligned({{"address", address}, {"size", buffer.size()}})
        .MessageSize(buffer.size())
        .NonEmpty(buffer.size())
        .Bytes(address, buffer.size(), &range)
        .Range(task.map(), range, Readable(&entries),
               NeedsExplained(VM_PROT_READ));
    if (!check.passed()) return check.code();
    ReadInto(task.system(), entries, range, address, buffer);
    return KERN_SUCCESS;
  });
}

KernReturn vm_write(Task& task, vm_address_t address, const void* data,
                    vm_size_t size) {
  return Open(task, Lock::kShared, [&] {
    PageRange range;
    Checks check(task.geometry());
    check.TransferAligned({{"address", address}, {"size", size}})
        .NonEmpty(size)
        .Bytes(address, size, &range)
        .Access(task.map(), range, VM_PROT_WRITE);
    if (!check.passed()) return check.code();
    return Changed(task, WriteBytes(task.system(), task.map(), range, address,
                                    size, WriteSource::StreamedBytes(data)));
  });
}

namespace {

// vm_copy of a byte range that is not whole pages (the XNU flavor): the
// source's bytes are read whole into a buffer, charged to the memory limit
// while it lives, and written to the destination as vm_write writes them.
// Requires the task lock exclusive, so that nothing runs between the two.
KernReturn CopyBytes(Task& task, std::span<const MapEntry* const> entries,
                     const PageRange& src_range, vm_address_t source,
                     const PageRange& dst_range, vm_address_t dest,
                     vm_size_t size) {
  MemoryAccount charge(task.map().budget());
  charge.Charge(size + kHeapOverhead);
  std::vector<std::byte> bytes(size);
  ReadInto(task.system(), entries, src_range, source, bytes);
  return WriteBytes(task.system(), task.map(), dst_range, dest, size,
                    WriteSource::StreamedBytes(bytes.data()));
}

}  // namespace

KernReturn vm_copy(Task& task, vm_address_t source, vm_size_t size,
                   vm_address_t dest) {
  // Whole pages are a virtual copy in both flavors; any other range (the
  // XNU flavor) is copied byte by byte, under the exclusive lock.
  const Geometry& geometry = task.geometry();
  const bool whole_pages = geometry.Aligned(source) && geometry.Aligned(size) &&
                           geometry.Aligned(dest);
  return Open(task, whole_pages ? Lock::kShared : Lock::kExclusive, [&] {
    const AddressMap& map = task.map();
    std::vector<const MapEntry*>& entries = ReadEntries();
    PageRange src_range, dst_range;
    Checks check(geometry);
    check
        .TransferAligned(
            {{"source", source}, {"size", size}, {"destination", dest}})
        .NonEmpty(size)
        .Bytes(source, size, &src_range)
        .Bytes(dest, size, &dst_range)
        .Range(map, src_range, Readable(&entries), NeedsExplained(VM_PROT_READ))
        .Access(map, dst_range, VM_PROT_WRITE);
    if (!check.passed()) return check.code();
    if (!whole_pages) {
      return Changed(task, CopyBytes(task, entries, src_range, source,
                                     dst_range, dest, size));
    }
    CopyOverwrite(map, src_range, map, dst_range);
    task.NoteChange();
    return KERN_SUCCESS;
  });
}

KernReturn vm_map_copy(Task& dst_task, vm_address_t dest, Task& src_task,
                       vm_address_t source, vm_size_t size, bool dst_alloc,
                       bool src_destroy) {
  const Lock dst_lock = dst_alloc ? Lock::kExclusive : Lock::kShared;
  const Lock src_lock = src_destroy ? Lock::kExclusive : Lock::kShared;
  return Open(dst_task, dst_lock, src_task, src_lock, [&] {
    AddressMap& src_map = src_task.map();
    AddressMap& dst_map = dst_task.map();
    PageRange src_range, dst_range;
    Checks check(dst_task.geometry());
    check.Aligned({{"source", source}, {"size", size}, {"destination", dest}})
        .NonEmpty(size)
        .Exact(source, size, &src_range)
        .Exact(dest, size, &dst_range)
        .Access(src_map, src_range, VM_PROT_READ);
    if (dst_alloc) {
      check.Free(dst_map, dst_range);
    } else {
      check.Access(dst_map, dst_range, VM_PROT_WRITE);
    }
    if (!check.passed()) return check.code();
    MapCopy(src_map, src_range, dst_map, dst_range, dst_alloc, src_destroy);
    dst_task.NoteChange();
    if (src_destroy) src_task.NoteChange();
    return KERN_SUCCESS;
  });
}

KernReturn vm_remap(Task& target, vm_address_t* target_address, vm_size_t size,
                    bool anywhere, Task& src_task, vm_address_t src_address,
                    bool copy, vm_prot_t* cur_protection,
                    vm_prot_t* max_protection, vm_inherit_t inheritance,
                    bool source_readable) {
  return Open(target, Lock::kExclusive, src_task, Lock::kShared, [&] {
    AddressMap& src_map = src_task.map();
    AddressMap& dst_map = target.map();
    PageRange src_range, dst_range;
    Checks check(target.geometry());
    check
        .Valid(inheritance <= VM_INHERIT_NONE,
               [inheritance] {
                 return fmt::format(
                     "inheritance {} is not share (0), copy (1) or none (2)",
                     inheritance);
               })
        .Valid(size != 0, [] { return std::string("size is 0"); })
        .RoundedApart(src_address, size, &src_range);
    if (!anywhere) check.RoundedApart(*target_address, size, &dst_range);
    if (source_readable) {
      check.Access(src_map, src_range, VM_PROT_READ);
    } else {
      check.Allocated(src_map, src_range);
    }
    if (anywhere) {
      check.Hole(dst_map, src_range.size(), &dst_range);
    } else {
      check.Free(dst_map, dst_range);
    }
    if (!check.passed()) return check.code();
    const RemapProtections prot = ProtectionsOf(src_map, src_range);
    if (copy) {
      RemapCopy(src_map, src_range, dst_map, dst_range, inheritance);
    } else {
      RemapShare(src_map, src_range, dst_map, dst_range, inheritance);
    }
    *target_address = dst_range.start();
    if (cur_protection != nullptr) *cur_protection = prot.current;
    if (max_protection != nullptr) *max_protection = prot.maximum;
    target.NoteChange();
    return KERN_SUCCESS;
  });
}

namespace {

// vm_load and vm_fill: any alignment, any protection, every page touched
// allocated.
KernReturn Load(Task& task, vm_address_t address, vm_size_t size,
                const WriteSource& source) {
  return Open(task, Lock::kShared, [&] {
    PageRange range;
    Checks check(task.geometry());
    check.NonEmpty(size)
        .Rounded(address, size, &range)
        .Allocated(task.map(), range);
    if (!check.passed()) return check.code();
    return Changed(task, WriteBytes(task.system(), task.map(), range, address,
                                    size, source));
  });
}

}  // namespace

KernReturn vm_load(Task& task, vm_address_t address, const void* data,
                   vm_size_t size) {
  return Load(task, address, size, WriteSource::Bytes(data));
}

KernReturn vm_fill(Task& task, vm_address_t address, vm_size_t size,
                   unsigned char byte) {
  return Load(task, address, size, WriteSource::Fill(byte));
}

KernReturn vm_page_query(Task& task, vm_address_t address, vm_size_t size,
                         std::span<PageState> out) {
  return Open(task, Lock::kShared, [&] {
    // The pages the range touches; a range that wraps is left to the bounds
    // check.
    const unsigned shift = task.geometry().page_shift;
    std::uint64_t pages = 0;
    if (size != 0 && address + size > address) {
      pages = ((address + size - 1) >> shift) - (address >> shift) + 1;
    }
    PageRange range;
    Checks check(task.geometry());
    check
        .Valid(out.size() >= pages,
               [&] {
                 return fmt::format("room for {} pages, the range has {}",
                                    out.size(), pages);
               })
        .Rounded(address, size, &range);
    if (!check.passed()) return check.code();
    QueryPages(task.map(), range, out.first(pages));
    return KERN_SUCCESS;
  });
}

KernResult<vm_address_t> vm_find_data(Task& task, vm_address_t from) {
  return Open(task, Lock::kShared, [&] { return task.map().FindData(from); });
}

KernResult<vm_address_t> vm_find_hole(Task& task, vm_address_t from) {
  return Open(task, Lock::kShared, [&]() -> KernResult<vm_address_t> {
    return task.map().FindHole(from);
  });
}

}  // namespace taskfs::vm
