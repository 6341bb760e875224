#include "vmcore/vm_object.h"

#include <atomic>
#include <iterator>
#include <vector>

#include "vmcore/page.h"

namespace taskfs::vm {
namespace {

std::atomic<std::uint64_t> next_object_id{1};

}  // namespace

VmObject::VmObject() : id_(next_object_id.fetch_add(1)) {}

VmObject::~VmObject() {
  pages_.Clear(0, ~std::uint64_t{0}, [](Page* page) { page->DropMapping(); });
}

template <typename Fn>
void VmObject::AddCoverage(std::uint64_t lo, std::uint64_t hi, int delta,
                           Fn&& on_zero) {
  if (lo >= hi) return;
  // Count holding at x, looked up before any key at x is made.
  auto count_at = [this](std::uint64_t x) -> std::uint32_t {
    auto it = coverage_.upper_bound(x);
    return it == coverage_.begin() ? 0 : std::prev(it)->second;
  };
  // Split so that keys exist at lo and hi.
  const std::uint32_t at_hi = count_at(hi);
  coverage_.try_emplace(hi, at_hi);
  const std::uint32_t at_lo = count_at(lo);
  coverage_.try_emplace(lo, at_lo);

  for (auto it = coverage_.find(lo); it->first < hi; ++it) {
    it->second = static_cast<std::uint32_t>(static_cast<int>(it->second) + delta);
    if (it->second == 0) on_zero(it->first, std::next(it)->first);
  }
  // Drop keys that no longer mark a change of count, around [lo, hi].
  auto it = coverage_.find(lo);
  if (it != coverage_.begin()) --it;
  while (it != coverage_.end() && it->first <= hi) {
    const std::uint32_t before =
        it == coverage_.begin() ? 0 : std::prev(it)->second;
    it = it->second == before ? coverage_.erase(it) : std::next(it);
  }
}

void VmObject::Cover(std::uint64_t lo, std::uint64_t hi) {
  AddCoverage(lo, hi, +1, [](std::uint64_t, std::uint64_t) {});
}

void VmObject::Uncover(std::uint64_t lo, std::uint64_t hi) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> freed;
  AddCoverage(lo, hi, -1, [&freed](std::uint64_t a, std::uint64_t b) {
    freed.emplace_back(a, b);
  });
  for (auto [a, b] : freed) {
    pages_.Clear(a, b, [](Page* page) { page->DropMapping(); });
    pages_.Trim(a, b);
  }
}

std::uint32_t VmObject::CoverageAt(std::uint64_t index) const {
  auto it = coverage_.upper_bound(index);
  return it == coverage_.begin() ? 0 : std::prev(it)->second;
}

bool VmObject::OnlyCovers(std::uint64_t lo, std::uint64_t hi) const {
  if (coverage_.size() != 2) return false;
  auto first = coverage_.begin();
  auto last = std::next(first);
  return first->first == lo && first->second == 1 && last->first == hi &&
         last->second == 0;
}

}  // namespace taskfs::vm
