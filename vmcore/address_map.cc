#include "vmcore/address_map.h"

#include <algorithm>
#include <iterator>
#include <mutex>
#include <utility>

namespace taskfs::vm {

AddressMap::~AddressMap() {
  for (auto& [start, entry] : entries_) {
    std::unique_lock lock(entry.object->mu());
    entry.object->Uncover(entry.offset,
                          entry.offset + Pages(entry.end - entry.start));
  }
}

AddressMap::Entries::const_iterator AddressMap::EntryFrom(
    vm_address_t address) const {
  auto it = entries_.upper_bound(address);
  if (it != entries_.begin() && std::prev(it)->second.end > address) --it;
  return it;
}

AddressMap::Entries::iterator AddressMap::EntryFrom(vm_address_t address) {
  auto it = entries_.upper_bound(address);
  if (it != entries_.begin() && std::prev(it)->second.end > address) --it;
  return it;
}

KernReturn AddressMap::CheckAccess(const PageRange& range,
                                   vm_prot_t needed) const {
  return CheckRange(range, [needed](const MapEntry& entry) {
    return (entry.protection & needed) == needed ? KERN_SUCCESS
                                                 : KERN_PROTECTION_FAILURE;
  });
}

bool AddressMap::IsFree(const PageRange& range) const {
  auto it = EntryFrom(range.start());
  return it == entries_.end() || it->second.start >= range.end();
}

void AddressMap::AllocateRange(const PageRange& range) {
  auto next = entries_.lower_bound(range.start());
  if (next != entries_.begin()) {
    MapEntry& below = std::prev(next)->second;
    const MapEntry fresh;
    if (below.end == range.start() && below.SameAttributes(fresh)) {
      VmObject& object = *below.object;
      std::unique_lock lock(object.mu());
      const std::uint64_t end_index =
          below.offset + Pages(below.end - below.start);
      if (Pages(range.size()) <= kObjectIndexLimit - end_index &&
          object.OnlyCovers(below.offset, end_index)) {
        object.Extend(end_index, end_index + Pages(range.size()));
        below.end = range.end();
        return;
      }
    }
  }
  MapEntry entry;
  entry.start = range.start();
  entry.end = range.end();
  entry.object = std::make_shared<VmObject>(budget_, freer_);
  Insert(std::move(entry));
}

void AddressMap::Insert(MapEntry entry) {
  const vm_address_t start = entry.start;
  const std::uint64_t lo = entry.offset;
  const std::uint64_t hi = lo + Pages(entry.end - entry.start);
  auto [it, inserted] = entries_.emplace(start, std::move(entry));
  try {
    std::unique_lock lock(it->second.object->mu());
    it->second.object->Cover(lo, hi);
  } catch (...) {
    entries_.erase(it);
    throw;
  }
  if (it != entries_.begin()) MergeWithNext(std::prev(it));
}

void AddressMap::Clip(vm_address_t address) {
  auto it = EntryFrom(address);
  if (it == entries_.end() || it->second.start >= address) return;
  MapEntry upper = it->second;
  upper.offset += Pages(address - upper.start);
  upper.start = address;
  VmObject& object = *upper.object;
  const std::uint64_t at = upper.offset;
  {
    std::unique_lock lock(object.mu());
    object.Split(at);
  }
  try {
    entries_.emplace_hint(std::next(it), address, std::move(upper));
  } catch (...) {
    std::unique_lock lock(object.mu());
    object.Join(at);
    throw;
  }
  it->second.end = address;
}

void AddressMap::ClipEnds(const PageRange& range) {
  Clip(range.start());
  try {
    Clip(range.end());
  } catch (...) {
    MergeAround(range);  // undoes the first clip
    throw;
  }
}

void AddressMap::Remove(const PageRange& range) {
  if (range.empty()) return;
  ClipEnds(range);
  auto it = entries_.lower_bound(range.start());
  while (it != entries_.end() && it->second.start < range.end()) {
    MapEntry& entry = it->second;
    {
      std::unique_lock lock(entry.object->mu());
      entry.object->Uncover(entry.offset,
                            entry.offset + Pages(entry.end - entry.start));
    }
    it = entries_.erase(it);
  }
  if (range.start() < free_hint_) free_hint_ = range.start();
}

bool AddressMap::MergeWithNext(Entries::iterator it) noexcept {
  auto next = std::next(it);
  if (next == entries_.end()) return false;
  MapEntry& low = it->second;
  const MapEntry& high = next->second;
  if (low.end != high.start || low.object != high.object ||
      low.offset + Pages(low.end - low.start) != high.offset ||
      !low.SameAttributes(high)) {
    return false;
  }
  {
    std::unique_lock lock(low.object->mu());
    low.object->Join(high.offset);
  }
  low.end = high.end;
  entries_.erase(next);
  return true;
}

void AddressMap::MergeAround(const PageRange& range) noexcept {
  auto it = entries_.lower_bound(range.start());
  if (it != entries_.begin()) --it;
  while (it != entries_.end() && it->second.start <= range.end()) {
    if (!MergeWithNext(it)) ++it;
  }
}

void AddressMap::ForEachClipped(const PageRange& range,
                                const std::function<void(MapEntry&)>& fn) {
  if (range.empty()) return;
  ClipEnds(range);
  for (auto it = entries_.lower_bound(range.start());
       it != entries_.end() && it->second.start < range.end(); ++it) {
    fn(it->second);
  }
  MergeAround(range);
}

void AddressMap::SetProtection(const PageRange& range, vm_prot_t new_prot,
                               bool set_maximum) {
  ForEachClipped(range, [&](MapEntry& entry) {
    if (set_maximum) {
      entry.max_protection = new_prot;
      entry.protection &= new_prot;
    } else {
      entry.protection = new_prot;
    }
  });
}

void AddressMap::SetInheritance(const PageRange& range,
                                vm_inherit_t inheritance) {
  ForEachClipped(range,
                 [&](MapEntry& entry) { entry.inheritance = inheritance; });
}

KernResult<vm_address_t> AddressMap::FindSpace(vm_size_t size) {
  vm_address_t candidate = free_hint_;
  bool contiguous = true;  // no hole seen between free_hint_ and candidate
  for (auto it = EntryFrom(candidate);; ++it) {
    const vm_address_t hole_end =
        it == entries_.end() ? geometry_.limit : it->second.start;
    if (hole_end > candidate && hole_end - candidate >= size) return candidate;
    if (it == entries_.end()) return KERN_NO_SPACE;
    if (hole_end > candidate) contiguous = false;
    candidate = it->second.end;
    if (contiguous) free_hint_ = candidate;
  }
}

KernResult<vm_address_t> AddressMap::AllocateAnywhere(vm_size_t size) {
  if (size > geometry_.limit) return KERN_NO_SPACE;
  const std::uint64_t mask = geometry_.page_size() - 1;
  const vm_size_t rounded = (size + mask) & ~mask;
  KernResult<vm_address_t> start = FindSpace(rounded);
  if (!start.ok()) return start;
  AllocateRange(PageRange::Exact(geometry_, start.value(), rounded).value());
  return start;
}

KernResult<vm_address_t> AddressMap::FindData(vm_address_t from) const {
  auto it = EntryFrom(from);
  if (it == entries_.end()) return KERN_NO_SPACE;
  return std::max(from, it->second.start);
}

vm_address_t AddressMap::FindHole(vm_address_t from) const {
  vm_address_t address = from;
  for (auto it = EntryFrom(from);
       it != entries_.end() && it->second.start <= address; ++it) {
    address = it->second.end;
  }
  return std::min(address, geometry_.limit);
}

std::optional<RegionInfo> AddressMap::RegionFrom(vm_address_t address) const {
  auto it = EntryFrom(address);
  if (it == entries_.end()) return std::nullopt;
  auto first = it;
  while (first != entries_.begin()) {
    auto prev = std::prev(first);
    if (prev->second.end != first->second.start ||
        !prev->second.SameAttributes(first->second)) {
      break;
    }
    first = prev;
  }
  auto last = it;
  for (auto next = std::next(last);
       next != entries_.end() && next->second.start == last->second.end &&
       next->second.SameAttributes(last->second);
       ++next) {
    last = next;
  }
  RegionInfo info;
  info.start = first->second.start;
  info.size = last->second.end - first->second.start;
  info.protection = it->second.protection;
  info.max_protection = it->second.max_protection;
  info.inheritance = it->second.inheritance;
  return info;
}

void AddressMap::ForEachRegion(
    const std::function<void(const RegionInfo&)>& fn) const {
  auto it = entries_.begin();
  while (it != entries_.end()) {
    const RegionInfo info = *RegionFrom(it->second.start);
    fn(info);
    it = entries_.lower_bound(info.start + info.size);
  }
}

vm_size_t AddressMap::virtual_bytes() const {
  vm_size_t total = 0;
  for (const auto& [start, entry] : entries_) total += entry.end - entry.start;
  return total;
}

}  // namespace taskfs::vm
