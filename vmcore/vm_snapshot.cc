#include "vmcore/vm_snapshot.h"

#include <algorithm>
#include <shared_mutex>

#include "vmcore/vm_copy.h"

namespace taskfs::vm {
namespace {

// Calls fn(entry, lo, hi, start) for each entry piece inside [from, limit),
// ascending, where [lo, hi) are the piece's object page indexes and start its
// first address; stops when fn returns false.
template <typename Fn>
void ForEachPieceIn(const AddressMap& map, vm_address_t from,
                    vm_address_t limit, Fn&& fn) {
  const unsigned shift = map.geometry().page_shift;
  for (auto it = map.EntryFrom(from);
       it != map.entries().end() && it->second.start < limit; ++it) {
    const MapEntry& entry = it->second;
    const vm_address_t start = std::max(entry.start, from);
    const vm_address_t end = std::min(entry.end, limit);
    const std::uint64_t lo = entry.offset + ((start - entry.start) >> shift);
    const std::uint64_t hi = entry.offset + ((end - entry.start) >> shift);
    if (!fn(entry, lo, hi, start)) return;
  }
}

}  // namespace

std::vector<RegionInfo> SnapshotInto(const AddressMap& source,
                                     AddressMap& snapshot) {
  std::vector<RegionInfo> regions;
  source.ForEachRegion(
      [&](const RegionInfo& info) { regions.push_back(info); });
  for (const RegionInfo& info : regions) {
    if ((info.protection & VM_PROT_READ) == 0) continue;
    const PageRange range =
        PageRange::Exact(source.geometry(), info.start, info.size).value();
    CopyOut(source, range, snapshot, range);
  }
  return regions;
}

vm_address_t FindResidency(const AddressMap& map, vm_address_t from,
                           vm_address_t limit, bool resident) {
  const unsigned shift = map.geometry().page_shift;
  vm_address_t found = limit;
  vm_address_t next = from;  // the lowest address not yet looked at
  ForEachPieceIn(
      map, from, limit,
      [&](const MapEntry& entry, std::uint64_t lo, std::uint64_t hi,
          vm_address_t start) {
        if (!resident && next < start) {  // an unallocated gap
          found = next;
          return false;
        }
        std::shared_lock lock(entry.object->mu());
        std::uint64_t expect = lo;  // the next index, while all are resident
        bool done = false;
        std::uint64_t index_found = hi;
        entry.object->pages().Walk(
            lo, hi, [&](const PageTable::NodeSeen&) { return !done; },
            [&](std::uint64_t index, const Page*, bool) {
              if (done) return;
              if (resident) {
                index_found = index;
                done = true;
              } else if (index != expect) {
                index_found = expect;
                done = true;
              } else {
                ++expect;
              }
            });
        if (!resident && !done) index_found = expect;
        if (index_found < hi) {
          found = start + ((index_found - lo) << shift);
          return false;
        }
        next = start + ((hi - lo) << shift);
        return true;
      });
  if (found == limit && !resident && next < limit) found = next;
  return found;
}

std::uint64_t CountResident(const AddressMap& map, vm_address_t from,
                            vm_address_t limit) {
  std::uint64_t count = 0;
  ForEachPieceIn(map, from, limit,
                 [&](const MapEntry& entry, std::uint64_t lo, std::uint64_t hi,
                     vm_address_t) {
                   std::shared_lock lock(entry.object->mu());
                   entry.object->pages().ForEach(
                       lo, hi, [&](std::uint64_t, const Page*) { ++count; });
                   return true;
                 });
  return count;
}

}  // namespace taskfs::vm
