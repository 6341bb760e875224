// Plain Mach VM value types shared by the whole core.
#ifndef TASKFS_VMCORE_VM_TYPES_H_
#define TASKFS_VMCORE_VM_TYPES_H_

#include <cstdint>
#include <string>

#include "taskfs/vm_attributes.h"

namespace taskfs::vm {

using vm_address_t = std::uint64_t;
using vm_size_t = std::uint64_t;
// Raw integers, not enums: the facade receives whatever a caller passed and
// rejects values outside the defined sets with KERN_INVALID_ARGUMENT.
using vm_prot_t = std::uint32_t;
using vm_inherit_t = std::uint32_t;

// Mach's values, as <taskfs/vm_attributes.h> defines them for every user.
inline constexpr vm_prot_t VM_PROT_NONE = TASKFS_VM_PROT_NONE;
inline constexpr vm_prot_t VM_PROT_READ = TASKFS_VM_PROT_READ;
inline constexpr vm_prot_t VM_PROT_WRITE = TASKFS_VM_PROT_WRITE;
inline constexpr vm_prot_t VM_PROT_EXECUTE = TASKFS_VM_PROT_EXECUTE;
inline constexpr vm_prot_t VM_PROT_ALL = TASKFS_VM_PROT_ALL;
inline constexpr vm_prot_t VM_PROT_DEFAULT = TASKFS_VM_PROT_DEFAULT;

// Whose rules the Mach calls follow (docs/reference.md §3, §5). kClassic:
// the manual pages', where vm_read, vm_write and vm_copy take page-aligned
// addresses and sizes. kXnu: XNU's, where they take any byte range; the
// pages it touches are checked.
enum class Flavor { kClassic, kXnu };

inline const char* FlavorName(Flavor flavor) {
  return flavor == Flavor::kXnu ? "xnu" : "classic";
}

// "rw-", "r-x", "---": a protection as maps and the failure reasons show it.
inline std::string ProtectionText(vm_prot_t prot) {
  std::string s = "---";
  if (prot & VM_PROT_READ) s[0] = 'r';
  if (prot & VM_PROT_WRITE) s[1] = 'w';
  if (prot & VM_PROT_EXECUTE) s[2] = 'x';
  return s;
}

inline constexpr vm_inherit_t VM_INHERIT_SHARE = TASKFS_VM_INHERIT_SHARE;
inline constexpr vm_inherit_t VM_INHERIT_COPY = TASKFS_VM_INHERIT_COPY;
inline constexpr vm_inherit_t VM_INHERIT_NONE = TASKFS_VM_INHERIT_NONE;
inline constexpr vm_inherit_t VM_INHERIT_DEFAULT = TASKFS_VM_INHERIT_DEFAULT;

// Attributes of one region: a maximal run of pages with equal attributes, as
// vm_region returns it and as the maps file lists it.
struct RegionInfo {
  vm_address_t start = 0;
  vm_size_t size = 0;
  vm_prot_t protection = VM_PROT_NONE;
  vm_prot_t max_protection = VM_PROT_NONE;
  vm_inherit_t inheritance = VM_INHERIT_DEFAULT;

  friend bool operator==(const RegionInfo&, const RegionInfo&) = default;
};

// Per-task figures as the status file shows them.
struct TaskStatistics {
  std::uint64_t regions = 0;         // maximal runs, as in RegionInfo
  std::uint64_t virtual_bytes = 0;   // allocated bytes
  std::uint64_t resident_bytes = 0;  // bytes of distinct written pages
  std::uint64_t shared_bytes = 0;    // part of resident also mapped elsewhere
  // Memory held for the task's map and page tables (docs/reference.md §7): its
  // record, its map's entries, and its objects' records, page tables and
  // coverage (an object mapped by several tasks counts in each, as a shared
  // page counts in each task's resident_bytes). What the file system keeps for
  // the task (its errors file) and for open files is charged to the limit
  // too, but not here: a refused call, which adds an errors line, leaves
  // this figure as it was.
  std::uint64_t metadata_bytes = 0;
};

// One page as vm_page_query reports it (docs/reference.md §5).
struct PageState {
  static constexpr std::uint32_t kAllocated = 1;  // a region holds the page
  static constexpr std::uint32_t kResident = 2;   // written: it holds memory
  // Its memory is also mapped at another address or by another task
  // (copy-on-write or share).
  static constexpr std::uint32_t kShared = 4;

  std::uint32_t flags = 0;
  // How many mappings of its memory the core counts along this task's way
  // to it (page-table nodes shared by copies and forks, the entries
  // covering its index, the other slots holding the page): 1 for memory of
  // its own, more exactly when kShared; 0 unless resident. Exact while
  // what was copied is unwritten on every side; after partial writes it is
  // an estimate, which two mappings of one page may give differently.
  std::uint32_t mappings = 0;
  // Equal for two resident pages exactly when they are the same memory
  // (for the daemon's life; a token, not an address); 0 unless resident.
  std::uint64_t identity = 0;

  friend bool operator==(const PageState&, const PageState&) = default;
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_VM_TYPES_H_
