#include "vmcore/vm_remap.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "vmcore/vm_copy.h"

namespace taskfs::vm {

RemapProtections ProtectionsOf(const AddressMap& map, const PageRange& range) {
  RemapProtections out;
  map.ForEachPiece(range,
                   [&](const MapEntry& entry, std::uint64_t, std::uint64_t) {
                     out.current &= entry.protection;
                     out.maximum &= entry.max_protection;
                   });
  return out;
}

void RemapShare(const AddressMap& src_map, const PageRange& src_range,
                AddressMap& dst_map, const PageRange& dst_range,
                vm_inherit_t inheritance) {
  // The pieces first: within one map, inserting would move the entries
  // being read.
  std::vector<MapEntry> pieces;
  const unsigned shift = src_map.geometry().page_shift;
  for (auto it = src_map.EntryFrom(src_range.start());
       it != src_map.entries().end() && it->second.start < src_range.end();
       ++it) {
    const MapEntry& entry = it->second;
    const vm_address_t lo = std::max(entry.start, src_range.start());
    const vm_address_t hi = std::min(entry.end, src_range.end());
    MapEntry piece = entry;  // the same object
    piece.start = dst_range.start() + (lo - src_range.start());
    piece.end = dst_range.start() + (hi - src_range.start());
    piece.offset = entry.offset + ((lo - entry.start) >> shift);
    piece.inheritance = inheritance;
    pieces.push_back(std::move(piece));
  }
  try {
    // Insert covers each piece's indexes once more, so that their pages
    // live as long as either mapping does.
    for (MapEntry& piece : pieces) dst_map.Insert(std::move(piece));
  } catch (...) {
    dst_map.Remove(dst_range);
    throw;
  }
}

void RemapCopy(const AddressMap& src_map, const PageRange& src_range,
               AddressMap& dst_map, const PageRange& dst_range,
               vm_inherit_t inheritance) {
  CopyOut(src_map, src_range, dst_map, dst_range, inheritance);
}

}  // namespace taskfs::vm
