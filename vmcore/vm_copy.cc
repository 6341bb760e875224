#include "vmcore/vm_copy.h"

#include <algorithm>
#include <iterator>
#include <memory>
#include <utility>
#include <vector>

#include "vmcore/locks.h"
#include "vmcore/memory_account.h"
#include "vmcore/page.h"
#include "vmcore/page_table.h"
#include "vmcore/vm_object.h"

namespace taskfs::vm {

namespace {

// One entry's part of a range: its object's indexes [lo, hi).
struct Piece {
  VmObject* object;
  std::uint64_t lo, hi;
};

std::vector<Piece> PiecesOf(const AddressMap& map, const PageRange& range) {
  std::vector<Piece> pieces;
  map.ForEachPiece(
      range, [&](const MapEntry& entry, std::uint64_t lo, std::uint64_t hi) {
        pieces.push_back({entry.object.get(), lo, hi});
      });
  return pieces;
}

}  // namespace

void CopyOverwrite(const AddressMap& src_map, const PageRange& src_range,
                   const AddressMap& dst_map, const PageRange& dst_range) {
  ObjectLocks locks;
  locks.Add(src_map, src_range, /*exclusive=*/false);
  locks.Add(dst_map, dst_range, /*exclusive=*/true);
  locks.LockAll();

  const std::vector<Piece> sources = PiecesOf(src_map, src_range);
  const std::vector<Piece> targets = PiecesOf(dst_map, dst_range);
  // The copy is as if the source were read whole before the destination
  // changes: a source piece whose indexes a destination piece of the same
  // object overlaps is read through a snapshot (a table sharing its nodes,
  // at its indexes). Disjoint ranges of one table may be read while the
  // other changes (PageTable::Assign).
  std::vector<std::unique_ptr<PageTable>> snapshots;
  std::vector<const PageTable*> tables;
  MemoryAccount scratch(dst_map.budget());
  // Rolls back unless committed.
  PageTable::Undo undo(scratch, dst_map.freer());
  for (const Piece& source : sources) {
    const bool also_target =
        std::any_of(targets.begin(), targets.end(), [&](const Piece& target) {
          return target.object == source.object && target.lo < source.hi &&
                 source.lo < target.hi;
        });
    if (!also_target) {
      tables.push_back(&source.object->pages());
      continue;
    }
    auto snapshot =
        std::make_unique<PageTable>(dst_map.budget().shared(), dst_map.freer());
    PageTable::Undo made(scratch, dst_map.freer());
    snapshot->Assign(source.lo, source.hi, source.object->pages(), source.lo,
                     made);
    made.Commit();
    tables.push_back(snapshot.get());
    snapshots.push_back(std::move(snapshot));
  }

  // Source and destination pieces, walked together over the range.
  std::size_t s = 0, t = 0;
  std::uint64_t s_done = 0, t_done = 0;  // pages of the current pieces used
  while (s < sources.size() && t < targets.size()) {
    const Piece& source = sources[s];
    const Piece& target = targets[t];
    const std::uint64_t n = std::min(source.hi - source.lo - s_done,
                                     target.hi - target.lo - t_done);
    target.object->pages().Assign(target.lo + t_done, target.lo + t_done + n,
                                  *tables[s], source.lo + s_done, undo);
    s_done += n;
    t_done += n;
    if (s_done == source.hi - source.lo) ++s, s_done = 0;
    if (t_done == target.hi - target.lo) ++t, t_done = 0;
  }
  undo.Commit();
}

void CopyOut(const AddressMap& src_map, const PageRange& src_range,
             AddressMap& dst_map, const PageRange& dst_range,
             std::optional<vm_inherit_t> inheritance) {
  // New regions with the source's attributes, over new objects at the
  // source objects' indexes, so that the copy shares the source's
  // page-table subtrees: one for each source object, unless two pieces of
  // one overlap in indexes (then the second gets an object of its own).
  std::vector<MapEntry> pieces;
  struct Made {
    const VmObject* source;
    std::shared_ptr<VmObject> object;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> used;  // indexes
  };
  std::vector<Made> made;
  const unsigned shift = src_map.geometry().page_shift;
  for (auto it = src_map.EntryFrom(src_range.start());
       it != src_map.entries().end() && it->second.start < src_range.end();
       ++it) {
    const MapEntry& entry = it->second;
    const vm_address_t lo = std::max(entry.start, src_range.start());
    const vm_address_t hi = std::min(entry.end, src_range.end());
    MapEntry piece = entry;
    piece.start = dst_range.start() + (lo - src_range.start());
    piece.end = dst_range.start() + (hi - src_range.start());
    piece.offset = entry.offset + ((lo - entry.start) >> shift);
    if (inheritance) piece.inheritance = *inheritance;
    const std::uint64_t index_end =
        piece.offset + ((piece.end - piece.start) >> shift);
    auto found = std::find_if(made.begin(), made.end(), [&](const Made& m) {
      return m.source == entry.object.get() &&
             std::none_of(m.used.begin(), m.used.end(), [&](const auto& r) {
               return piece.offset < r.second && r.first < index_end;
             });
    });
    if (found == made.end()) {
      made.push_back(
          {entry.object.get(),
           std::make_shared<VmObject>(dst_map.budget(), dst_map.freer()),
           {}});
      found = std::prev(made.end());
    }
    found->used.emplace_back(piece.offset, index_end);
    piece.object = found->object;
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
