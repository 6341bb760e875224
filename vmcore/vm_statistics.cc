#include "vmcore/vm_statistics.h"

#include <unordered_set>

#include "vmcore/locks.h"
#include "vmcore/page.h"
#include "vmcore/vm_object.h"

namespace taskfs::vm {

TaskStatistics MapStatistics(const AddressMap& map) {
  ObjectLocks locks;
  locks.Add(map, PageRange::All(map.geometry()), /*exclusive=*/false);
  locks.LockAll();

  TaskStatistics s;
  map.ForEachRegion([&s](const RegionInfo&) { ++s.regions; });
  s.virtual_bytes = map.virtual_bytes();
  const std::uint64_t page_size = map.geometry().page_size();
  std::unordered_set<const Page*> counted;
  std::unordered_set<const VmObject*> objects;
  s.metadata_bytes = map.metadata_bytes();
  for (const auto& [start, entry] : map.entries()) {
    const VmObject& object = *entry.object;
    if (objects.insert(&object).second) {
      s.metadata_bytes += object.metadata_bytes();
    }
    const std::uint64_t lo = entry.offset;
    const std::uint64_t hi =
        lo + ((entry.end - entry.start) >> map.geometry().page_shift);
    object.pages().ForEach(lo, hi, [&](std::uint64_t index, Page* page) {
      if (!counted.insert(page).second) return;
      s.resident_bytes += page_size;
      if (page->mappings() > 1 || object.CoverageAt(index) > 1) {
        s.shared_bytes += page_size;
      }
    });
  }
  return s;
}

}  // namespace taskfs::vm
