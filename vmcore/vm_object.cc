#include "vmcore/vm_object.h"

#include <atomic>
#include <iterator>
#include <new>

#include "vmcore/page.h"

namespace taskfs::vm {
namespace {

std::atomic<std::uint64_t> next_object_id{1};

// The record of an object made by std::make_shared: the object and its
// control block in one heap block.
constexpr std::uint64_t kObjectCharge =
    sizeof(VmObject) + 2 * sizeof(void*) + kHeapOverhead;

}  // namespace

VmObject::VmObject(MemoryBudget& budget, DeferredFreer& freer)
    : id_(next_object_id.fetch_add(1)),
      account_(budget),
      pages_(budget.shared(), freer),
      coverage_(Coverage::allocator_type(account_)) {
  account_.Charge(kObjectCharge);
}

VmObject::~VmObject() = default;

VmObject::Coverage::iterator VmObject::MarkAt(std::uint64_t key, bool* made) {
  auto it = coverage_.lower_bound(key);
  *made = it == coverage_.end() || it->first != key;
  if (!*made) return it;
  const std::uint32_t count =
      it == coverage_.begin() ? 0 : std::prev(it)->second.count;
  return coverage_.emplace_hint(it, key, Mark{count, 0});
}

void VmObject::DropIfIdle(Coverage::iterator it) noexcept {
  if (it->second.ends != 0) return;
  const std::uint32_t before =
      it == coverage_.begin() ? 0 : std::prev(it)->second.count;
  if (it->second.count == before) coverage_.erase(it);
}

void VmObject::Cover(std::uint64_t lo, std::uint64_t hi) {
  if (lo >= hi) return;
  bool hi_made = false, lo_made = false;
  auto hi_it = MarkAt(hi, &hi_made);
  Coverage::iterator lo_it;
  try {
    lo_it = MarkAt(lo, &lo_made);
  } catch (...) {
    if (hi_made) coverage_.erase(hi_it);
    throw;
  }
  ++lo_it->second.ends;
  ++hi_it->second.ends;
  for (auto it = lo_it; it != hi_it; ++it) ++it->second.count;
}

void VmObject::Uncover(std::uint64_t lo, std::uint64_t hi) noexcept {
  if (lo >= hi) return;
  auto lo_it = coverage_.find(lo);
  auto hi_it = coverage_.find(hi);
  for (auto it = lo_it; it != hi_it; ++it) {
    if (--it->second.count == 0) {
      const std::uint64_t a = it->first, b = std::next(it)->first;
      // If even the reserve refuses the clone of a shared node this needs,
      // the pages stay, out of every entry's reach, until Extend covers the
      // range again (it clears it first) or the object goes.
      pages_.Clear(a, b);
    }
  }
  --lo_it->second.ends;
  --hi_it->second.ends;
  DropIfIdle(lo_it);
  DropIfIdle(hi_it);
}

void VmObject::Split(std::uint64_t at) {
  bool made = false;
  MarkAt(at, &made)->second.ends += 2;
}

void VmObject::Join(std::uint64_t at) noexcept {
  auto it = coverage_.find(at);
  it->second.ends -= 2;
  DropIfIdle(it);
}

void VmObject::Extend(std::uint64_t at, std::uint64_t hi) {
  if (at >= hi) return;
  if (!pages_.Clear(at, hi)) throw std::bad_alloc();
  bool made = false;
  auto hi_it = MarkAt(hi, &made);
  auto at_it = coverage_.find(at);
  for (auto it = at_it; it != hi_it; ++it) ++it->second.count;
  ++hi_it->second.ends;
  --at_it->second.ends;
  DropIfIdle(at_it);
}

std::uint32_t VmObject::CoverageAt(std::uint64_t index) const {
  auto it = coverage_.upper_bound(index);
  return it == coverage_.begin() ? 0 : std::prev(it)->second.count;
}

bool VmObject::OnlyCovers(std::uint64_t lo, std::uint64_t hi) const {
  if (coverage_.size() != 2) return false;
  auto first = coverage_.begin();
  auto last = std::next(first);
  return first->first == lo && first->second.count == 1 &&
         first->second.ends == 1 && last->first == hi &&
         last->second.count == 0 && last->second.ends == 1;
}

}  // namespace taskfs::vm
