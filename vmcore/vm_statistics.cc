#include "vmcore/vm_statistics.h"

#include <cstdint>
#include <exception>
#include <mutex>

#include "vmcore/locks.h"
#include "vmcore/page.h"
#include "vmcore/page_table.h"
#include "vmcore/vm_object.h"

namespace taskfs::vm {
namespace {

// One walk at a time marks what it has counted with a number no walk used
// before, in the words that pages, nodes and objects keep for it: so a walk
// needs no memory for what it has seen, however much that is. Walks of all
// systems share the lock (a leaf, lock_order.h); a walk holds it only while
// it walks, never while it waits for another lock.
std::mutex walk_mu;
std::uint64_t last_walk = 0;  // guarded by walk_mu

// Under walk_mu: n marks past last_walk, of which the first is returned. A
// counter that would wrap is a bug nothing can recover from.
std::uint64_t TakeMarks(std::uint64_t n) {
  if (n > UINT64_MAX - last_walk) std::terminate();
  const std::uint64_t first = last_walk + 1;
  last_walk += n;
  return first;
}

}  // namespace

ReservedMarks::ReservedMarks() : lock_(walk_mu) { first_ = TakeMarks(kSpan); }

void ReservedMarks::Keep(std::uint64_t n) {
  if (n < kSpan) last_walk = first_ - 1 + n;
}

std::uint64_t LastWalkMark() {
  std::lock_guard lock(walk_mu);
  return last_walk;
}

TaskStatistics MapStatistics(const AddressMap& map) {
  // A subtree still being freed in the background holds references that
  // would count its pages as shared: let it go first.
  map.freer().Drain();
  ObjectLocks locks;
  locks.Add(map, PageRange::All(map.geometry()), /*exclusive=*/false);
  locks.LockAll();
  std::lock_guard walk_lock(walk_mu);
  const std::uint64_t walk = TakeMarks(1);

  TaskStatistics s;
  map.ForEachRegion([&s](const RegionInfo&) { ++s.regions; });
  s.virtual_bytes = map.virtual_bytes();
  const std::uint64_t page_size = map.geometry().page_size();
  // A page can be reached twice only if it is shared (a node above it held
  // twice, several mappings, or an index covered twice): only those are
  // marked. Each node and object counts once towards metadata; a node's
  // mark says too whether it was walked whole (bit 0), and then every page
  // below it is counted.
  s.metadata_bytes = map.metadata_bytes();
  for (const auto& [start, entry] : map.entries()) {
    const VmObject& object = *entry.object;
    if (object.walk_mark() != walk) {
      object.set_walk_mark(walk);
      s.metadata_bytes += object.metadata_bytes();
    }
    const std::uint64_t lo = entry.offset;
    const std::uint64_t hi =
        lo + ((entry.end - entry.start) >> map.geometry().page_shift);
    object.pages().Walk(
        lo, hi,
        [&](const PageTable::NodeSeen& node) {
          if (node.mark >> 1 != walk) {
            s.metadata_bytes += PageTable::kNodeCharge;
            node.mark = walk << 1 | (node.whole ? 1 : 0);
            return true;
          }
          // Below a node walked whole before, every page is counted.
          if (!node.whole) return true;
          if ((node.mark & 1) != 0) return false;
          node.mark |= 1;
          return true;
        },
        [&](std::uint64_t index, Page* page, bool shared_path) {
          const bool shared = shared_path || page->mappings() > 1 ||
                              object.CoverageAt(index) > 1;
          if (shared) {
            if (page->walk_mark() == walk) return;
            page->set_walk_mark(walk);
          }
          s.resident_bytes += page_size;
          if (shared) s.shared_bytes += page_size;
        });
  }
  return s;
}

}  // namespace taskfs::vm
