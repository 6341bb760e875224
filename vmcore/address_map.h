// A task's map: page-aligned entries with attributes, each backed by a range
// of a VmObject.
#ifndef TASKFS_VMCORE_ADDRESS_MAP_H_
#define TASKFS_VMCORE_ADDRESS_MAP_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "vmcore/charged_allocator.h"
#include "vmcore/deferred_freer.h"
#include "vmcore/kern_result.h"
#include "vmcore/memory_account.h"
#include "vmcore/memory_budget.h"
#include "vmcore/page_range.h"
#include "vmcore/vm_object.h"
#include "vmcore/vm_types.h"

namespace taskfs::vm {

// Every entry's object range [offset, offset + pages) ends at or below this.
// Only an allocation that extends an entry (AllocateRange) moves an end past
// what an address space spans: a `copy` remap keeps its source's offset, so
// a region may sit high in its object and then grow. Clips, copies, remaps
// and forks take ranges within existing ones. So offsets stay far from
// wrapping, and a saved map (saved_state.h) is checked against this bound.
inline constexpr std::uint64_t kObjectIndexLimit = std::uint64_t{1} << 62;

struct MapEntry {
  vm_address_t start = 0;
  vm_address_t end = 0;
  vm_prot_t protection = VM_PROT_DEFAULT;
  vm_prot_t max_protection = VM_PROT_ALL;
  vm_inherit_t inheritance = VM_INHERIT_DEFAULT;
  std::shared_ptr<VmObject> object;
  std::uint64_t offset = 0;  // object page index backing `start`

  bool SameAttributes(const MapEntry& other) const {
    return protection == other.protection &&
           max_protection == other.max_protection &&
           inheritance == other.inheritance;
  }
};

// The engine below the facade: it assumes valid input (ranges built by
// PageRange, values checked) and states its preconditions instead of checking.
//
// Memory: the entries are charged to the map's account and new objects to
// the budget. A method that makes something (AllocateRange, Insert, Remove,
// ForEachClipped and what calls it) may throw std::bad_alloc (LimitReached
// at the memory limit) and then has changed nothing; what only takes away
// cannot fail.
//
// Thread-safety: none of its own; guarded by the owning Task's mu_ (shared to
// read, exclusive to change). Methods that change entries or coverage lock
// the objects involved one at a time, so the caller must hold no object lock.
class AddressMap {
 public:
  using Entries =
      std::map<vm_address_t, MapEntry, std::less<>,
               ChargedAllocator<std::pair<const vm_address_t, MapEntry>>>;

  // budget and freer: the system's (VmSystem::budget(), freer()); the map's
  // objects use them too.
  AddressMap(const Geometry& geometry, MemoryBudget& budget,
             DeferredFreer& freer)
      : geometry_(geometry),
        budget_(budget),
        freer_(freer),
        account_(budget),
        entries_(Entries::allocator_type(account_)) {}
  ~AddressMap();
  AddressMap(const AddressMap&) = delete;
  AddressMap& operator=(const AddressMap&) = delete;

  const Geometry& geometry() const { return geometry_; }
  const Entries& entries() const { return entries_; }
  MemoryBudget& budget() const { return budget_; }
  // What frees the large subtrees its objects' page tables drop.
  DeferredFreer& freer() const { return freer_; }
  // Bytes the map's entries hold (their objects have their own accounts).
  std::uint64_t metadata_bytes() const { return account_.held(); }

  // The first entry whose end is above address: the one holding it, or else
  // the next one up.
  Entries::const_iterator EntryFrom(vm_address_t address) const;
  Entries::iterator EntryFrom(vm_address_t address);

  // Walks range ascending and returns the verdict of the lowest offending
  // page: KERN_INVALID_ADDRESS for a page no entry holds, else what
  // check(entry) returns for the first entry it does not accept.
  template <typename Check>
  KernReturn CheckRange(const PageRange& range, Check&& check) const;
  // Calls fn(entry, lo, hi) for each piece of an allocated range, ascending,
  // where [lo, hi) are the piece's object page indexes.
  template <typename Fn>
  void ForEachPiece(const PageRange& range, Fn&& fn) const;
  // CheckRange requiring `needed` in the current protection.
  KernReturn CheckAccess(const PageRange& range, vm_prot_t needed) const;
  // True if no page of range is allocated.
  bool IsFree(const PageRange& range) const;

  // Maps fresh zero-fill memory at range, which must be free, with Mach's
  // default attributes. Extends the entry just below when that entry is the
  // sole user of its object and the object's range stays within
  // kObjectIndexLimit, so allocating page after page makes one entry.
  void AllocateRange(const PageRange& range);
  // Inserts entry, whose range must be free and whose object range
  // [offset, offset + pages) the caller has not covered yet.
  void Insert(MapEntry entry);
  // Removes every entry part inside range. Cannot fail when no entry
  // straddles an end of range (range is all of the space, or ends where
  // entries end), since nothing is then split.
  void Remove(const PageRange& range);
  // Splits entries so that range's ends fall on entry boundaries, all or
  // nothing (may throw), so that a Remove of range can no longer fail; and
  // MergeAround, which merges every mergeable pair from the entry below
  // range to the one at its end, undoes it.
  void ClipEnds(const PageRange& range);
  void MergeAround(const PageRange& range) noexcept;
  // Splits entries so that range's ends fall on entry boundaries, then calls
  // fn(entry) for each entry inside it, then merges equal neighbors again.
  void ForEachClipped(const PageRange& range,
                      const std::function<void(MapEntry&)>& fn);
  // vm_protect's change of an allocated range whose every page allows it:
  // with set_maximum the maximum becomes new_prot and the current protection
  // current & new_prot, else the current protection becomes new_prot.
  void SetProtection(const PageRange& range, vm_prot_t new_prot,
                     bool set_maximum);
  // vm_inherit's change of an allocated range.
  void SetInheritance(const PageRange& range, vm_inherit_t inheritance);

  // The hole search. FindSpace: the lowest address of a free hole of size
  // bytes (page multiple, > 0), else KERN_NO_SPACE. AllocateAnywhere:
  // AllocateRange of round_page(size) bytes (size > 0) at FindSpace's
  // answer, which it returns; KERN_NO_SPACE if no hole is large enough.
  KernResult<vm_address_t> FindSpace(vm_size_t size);
  KernResult<vm_address_t> AllocateAnywhere(vm_size_t size);
  // SEEK_DATA: the lowest allocated address at or above from, else
  // KERN_NO_SPACE. SEEK_HOLE: the lowest unallocated one, or 2^address_bits
  // if the rest of the space is allocated.
  KernResult<vm_address_t> FindData(vm_address_t from) const;
  vm_address_t FindHole(vm_address_t from) const;

  // The maximal run of equal attributes holding address or else the first
  // above it; nullopt if none. Walks both ways from the entry found.
  std::optional<RegionInfo> RegionFrom(vm_address_t address) const;
  // Calls fn for each maximal run, ascending.
  void ForEachRegion(const std::function<void(const RegionInfo&)>& fn) const;

  vm_size_t virtual_bytes() const;

 private:
  // Splits the entry holding address so that one starts there (may throw;
  // then nothing changed).
  void Clip(vm_address_t address);
  // Merges the entry after it into it when the two are contiguous in both
  // address and object and have equal attributes.
  bool MergeWithNext(Entries::iterator it) noexcept;
  std::uint64_t Pages(vm_size_t bytes) const {
    return bytes >> geometry_.page_shift;
  }

  const Geometry geometry_;
  MemoryBudget& budget_;
  DeferredFreer& freer_;
  MemoryAccount account_;  // before entries_, so it goes after them
  Entries entries_;        // keyed by start; entries never overlap
  // No hole starts below free_hint_: FindSpace starts its search there.
  vm_address_t free_hint_ = 0;
};

template <typename Check>
KernReturn AddressMap::CheckRange(const PageRange& range, Check&& check) const {
  if (range.empty()) return KERN_SUCCESS;
  vm_address_t address = range.start();
  // Returns at the last entry, never stepping past it: a step is a tree walk.
  for (auto it = EntryFrom(address);; ++it) {
    if (it == entries_.end() || it->second.start > address) {
      return KERN_INVALID_ADDRESS;
    }
    if (KernReturn kr = check(it->second); kr != KERN_SUCCESS) return kr;
    address = it->second.end;
    if (address >= range.end()) return KERN_SUCCESS;
  }
}

template <typename Fn>
void AddressMap::ForEachPiece(const PageRange& range, Fn&& fn) const {
  const unsigned shift = geometry_.page_shift;
  vm_address_t address = range.start();
  for (auto it = EntryFrom(address); address < range.end(); ++it) {
    const MapEntry& entry = it->second;
    const vm_address_t end = std::min(entry.end, range.end());
    const std::uint64_t lo = entry.offset + ((address - entry.start) >> shift);
    fn(entry, lo, lo + ((end - address) >> shift));
    address = end;
  }
}

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_ADDRESS_MAP_H_
