#include "vmcore/vm_page_query.h"

#include <algorithm>
#include <random>

#include "vmcore/locks.h"
#include "vmcore/page.h"
#include "vmcore/page_table.h"
#include "vmcore/vm_object.h"

namespace taskfs::vm {
namespace {

// Drawn once per process: identities mean nothing from one daemon to the
// next, nor outside it.
std::uint64_t IdentityKey() {
  static const std::uint64_t key = [] {
    std::random_device device;
    return (std::uint64_t{device()} << 32) ^ device();
  }();
  return key;
}

// A bijection of 64-bit words (the finalizer of MurmurHash3): distinct pages
// keep distinct identities.
std::uint64_t Mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

}  // namespace

std::uint64_t PageIdentity(const Page* page) {
  return Mix(reinterpret_cast<std::uintptr_t>(page) ^ IdentityKey());
}

void QueryPages(const AddressMap& map, const PageRange& range,
                std::span<PageState> out) {
  std::fill(out.begin(), out.end(), PageState{});
  if (range.empty()) return;
  // A subtree still being freed in the background holds references that
  // would count as mappings: let it go first, as the statistics do.
  map.freer().Drain();
  ObjectLocks locks;
  locks.Add(map, range, /*exclusive=*/false);
  locks.LockAll();

  const unsigned shift = map.geometry().page_shift;
  const auto& entries = map.entries();
  for (auto it = map.EntryFrom(range.start());
       it != entries.end() && it->second.start < range.end(); ++it) {
    const MapEntry& entry = it->second;
    const vm_address_t start = std::max(entry.start, range.start());
    const vm_address_t end = std::min(entry.end, range.end());
    // Slot of the piece's first page in out, and its object index.
    const std::uint64_t first = (start - range.start()) >> shift;
    const std::uint64_t lo = entry.offset + ((start - entry.start) >> shift);
    const std::uint64_t hi = lo + ((end - start) >> shift);
    for (std::uint64_t i = first; i < first + (hi - lo); ++i) {
      out[i].flags = PageState::kAllocated;
    }
    const VmObject& object = *entry.object;
    object.pages().ForEachWithPaths(
        lo, hi,
        [&](std::uint64_t index, const Page* page, std::uint64_t paths) {
          // Every holder of a node above the slot reaches it, every entry
          // covering the index maps it, and every other slot holding the
          // page (a copy at another offset) is one more mapping at least.
          std::uint64_t mappings =
              paths * object.CoverageAt(index) + (page->mappings() - 1);
          mappings = std::min<std::uint64_t>(mappings, UINT32_MAX);
          PageState& state = out[first + (index - lo)];
          state.flags |= PageState::kResident;
          if (mappings > 1) state.flags |= PageState::kShared;
          state.mappings = static_cast<std::uint32_t>(mappings);
          state.identity = PageIdentity(page);
        });
  }
}

}  // namespace taskfs::vm
