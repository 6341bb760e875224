#include "vmcore/vm_copy.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "vmcore/locks.h"
#include "vmcore/page.h"
#include "vmcore/vm_object.h"

namespace taskfs::vm {

void CopyOverwrite(const AddressMap& src_map, const PageRange& src_range,
                   const AddressMap& dst_map, const PageRange& dst_range) {
  ObjectLocks locks;
  locks.Add(src_map, src_range, /*exclusive=*/false);
  locks.Add(dst_map, dst_range, /*exclusive=*/true);
  locks.LockAll();

  // Take the written source pages first: the copy is as if the source were
  // read whole before the destination changes. Each reference taken here
  // becomes a destination mapping.
  struct Written {
    std::uint64_t page;  // page number from the start of the range
    Page* data;
  };
  // As large as the source's written pages: charged, while the copy runs.
  MemoryAccount scratch(dst_map.budget());
  std::vector<Written, ChargedAllocator<Written>> written{
      ChargedAllocator<Written>(scratch)};
  // Drops the empty chunks of the destination's pieces: after a refusal they
  // are the ones Reserve made (nothing is left behind), after the copy the
  // ones it emptied. Only once every piece is done, since two pieces of the
  // destination can share an object.
  auto trim_destination = [&] {
    dst_map.ForEachPiece(dst_range, [&](const MapEntry& entry,
                                        std::uint64_t lo, std::uint64_t hi) {
      entry.object->pages().Trim(lo, hi);
    });
  };
  std::uint64_t seen = 0;
  try {
    src_map.ForEachPiece(src_range, [&](const MapEntry& entry, std::uint64_t lo,
                                        std::uint64_t hi) {
      const std::uint64_t base = seen;
      entry.object->pages().ForEach(
          lo, hi, [&](std::uint64_t index, Page* page) {
            written.push_back({base + (index - lo), page});
            page->AddMapping();
          });
      seen += hi - lo;
    });
    // Make room for them in the destination before anything changes.
    auto next = written.begin();
    std::uint64_t dst_seen = 0;
    dst_map.ForEachPiece(dst_range, [&](const MapEntry& entry, std::uint64_t lo,
                                        std::uint64_t hi) {
      for (; next != written.end() && next->page < dst_seen + (hi - lo);
           ++next) {
        const std::uint64_t index = lo + (next->page - dst_seen);
        entry.object->pages().Reserve(index, index + 1);
      }
      dst_seen += hi - lo;
    });
  } catch (...) {
    for (const Written& w : written) w.data->DropMapping();
    trim_destination();
    throw;
  }

  auto next = written.begin();
  std::uint64_t dst_seen = 0;
  dst_map.ForEachPiece(dst_range, [&](const MapEntry& entry, std::uint64_t lo,
                                      std::uint64_t hi) {
    PageTable& pages = entry.object->pages();
    pages.Clear(lo, hi, [](Page* page) { page->DropMapping(); });
    for (; next != written.end() && next->page < dst_seen + (hi - lo); ++next) {
      pages.Slot(lo + (next->page - dst_seen)) = next->data;
    }
    dst_seen += hi - lo;
  });
  trim_destination();
}

void CopyOut(const AddressMap& src_map, const PageRange& src_range,
             AddressMap& dst_map, const PageRange& dst_range) {
  const unsigned shift = src_map.geometry().page_shift;
  // New regions with the source's attributes over one new object.
  std::vector<MapEntry> pieces;
  auto object = std::make_shared<VmObject>(dst_map.budget());
  for (auto it = src_map.EntryFrom(src_range.start());
       it != src_map.entries().end() && it->second.start < src_range.end();
       ++it) {
    const vm_address_t lo = std::max(it->second.start, src_range.start());
    const vm_address_t hi = std::min(it->second.end, src_range.end());
    MapEntry piece = it->second;
    piece.start = dst_range.start() + (lo - src_range.start());
    piece.end = dst_range.start() + (hi - src_range.start());
    piece.object = object;
    piece.offset = (lo - src_range.start()) >> shift;
    pieces.push_back(std::move(piece));
  }
  try {
    for (MapEntry& piece : pieces) dst_map.Insert(std::move(piece));
    CopyOverwrite(src_map, src_range, dst_map, dst_range);
  } catch (...) {
    dst_map.Remove(dst_range);
    throw;
  }
}

namespace {

// Deallocates the parts of range below and above keep.
void RemoveOutside(AddressMap& map, const PageRange& range,
                   const PageRange& keep) {
  const vm_address_t below_end = std::min(range.end(), keep.start());
  const vm_address_t above_start = std::max(range.start(), keep.end());
  if (range.start() < below_end) {
    map.Remove(PageRange::Exact(map.geometry(), range.start(),
                                below_end - range.start())
                   .value());
  }
  if (above_start < range.end()) {
    map.Remove(
        PageRange::Exact(map.geometry(), above_start, range.end() - above_start)
            .value());
  }
}

}  // namespace

void MapCopy(AddressMap& src_map, const PageRange& src_range,
             AddressMap& dst_map, const PageRange& dst_range, bool dst_alloc,
             bool src_destroy) {
  // All or nothing: the source is split where it will be removed before the
  // copy (at its ends, and within one map at the destination's ends too), so
  // that removing it cannot fail once the copy is made.
  const bool move = src_destroy && &src_map == &dst_map && !dst_alloc;
  if (src_destroy) src_map.ClipEnds(src_range);
  if (move) {
    try {
      src_map.ClipEnds(dst_range);
    } catch (...) {
      src_map.MergeAround(src_range);
      throw;
    }
  }
  try {
    if (dst_alloc) {
      CopyOut(src_map, src_range, dst_map, dst_range);
    } else {
      CopyOverwrite(src_map, src_range, dst_map, dst_range);
    }
  } catch (...) {
    if (move) src_map.MergeAround(dst_range);
    if (src_destroy) src_map.MergeAround(src_range);
    throw;
  }
  if (!src_destroy) return;
  if (&src_map == &dst_map) {
    // A move within one map: the destination holds the source's contents
    // now, so only the source outside it goes.
    RemoveOutside(src_map, src_range, dst_range);
  } else {
    src_map.Remove(src_range);
  }
}

}  // namespace taskfs::vm
