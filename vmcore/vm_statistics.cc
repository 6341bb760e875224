#include "vmcore/vm_statistics.h"

#include <unordered_set>

#include "vmcore/locks.h"
#include "vmcore/page.h"
#include "vmcore/page_table.h"
#include "vmcore/vm_object.h"

namespace taskfs::vm {

TaskStatistics MapStatistics(const AddressMap& map) {
  // A subtree still being freed in the background holds references that
  // would count its pages as shared: let it go first.
  PageTable::FinishDeferredFrees();
  ObjectLocks locks;
  locks.Add(map, PageRange::All(map.geometry()), /*exclusive=*/false);
  locks.LockAll();

  TaskStatistics s;
  map.ForEachRegion([&s](const RegionInfo&) { ++s.regions; });
  s.virtual_bytes = map.virtual_bytes();
  const std::uint64_t page_size = map.geometry().page_size();
  // A page can be reached twice only if it is shared (a node above it held
  // twice, several mappings, or an index covered twice): only those are
  // remembered. Each node counts once towards metadata.
  std::unordered_set<const Page*> counted;
  std::unordered_set<const void*> nodes;
  std::unordered_set<const void*> walked_whole;
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
    object.pages().Walk(
        lo, hi,
        [&](const void* node, bool whole) {
          if (nodes.insert(node).second) {
            s.metadata_bytes += PageTable::kNodeCharge;
          }
          // Below a node walked whole before, every page is counted.
          return !whole || walked_whole.insert(node).second;
        },
        [&](std::uint64_t index, const Page* page, bool shared_path) {
          const bool shared = shared_path || page->mappings() > 1 ||
                              object.CoverageAt(index) > 1;
          if (shared && !counted.insert(page).second) return;
          s.resident_bytes += page_size;
          if (shared) s.shared_bytes += page_size;
        });
  }
  return s;
}

}  // namespace taskfs::vm
