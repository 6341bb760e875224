#include "vmcore/vm_fault.h"

#include <algorithm>
#include <cstring>
#include <tuple>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <fmt/format.h>

#include "vmcore/failure_reason.h"
#include "vmcore/locks.h"
#include "vmcore/memory_account.h"
#include "vmcore/page.h"
#include "vmcore/page_allocator.h"
#include "vmcore/vm_object.h"

namespace taskfs::vm {

// Fills a PinnedPages; the only code that touches its insides.
class PinnedPagesBuilder {
 public:
  explicit PinnedPagesBuilder(PinnedPages* out, std::size_t page_size)
      : out_(out), page_size_(page_size) {}

  // Appends one page: a written page (pinned) or the zero page.
  void Add(Page* page, const std::byte* zero_page) {
    const std::byte* data = zero_page;
    if (page != nullptr) {
      out_->pinned_.push_back(page);  // first: it may throw
      page->Pin();
      data = page->data();
    }
    std::vector<iovec>& iov = out_->iov_;
    if (!iov.empty() && static_cast<const std::byte*>(iov.back().iov_base) +
                                iov.back().iov_len ==
                            data) {
      iov.back().iov_len += page_size_;
    } else {
      iov.push_back({const_cast<std::byte*>(data), page_size_});
    }
    out_->bytes_ += page_size_;
  }

  // Leaves out the first front and the last back bytes, each less than a
  // page, of what was added (at least a page more than front + back).
  void Trim(std::size_t front, std::size_t back) {
    std::vector<iovec>& iov = out_->iov_;
    iov.front().iov_base =
        static_cast<std::byte*>(iov.front().iov_base) + front;
    iov.front().iov_len -= front;
    iov.back().iov_len -= back;
    out_->bytes_ -= front + back;
  }

 private:
  PinnedPages* out_;
  const std::size_t page_size_;
};

namespace {

unsigned PageShift(const VmSystem& system) {
  return static_cast<unsigned>(__builtin_ctzll(system.page_size()));
}

// visit(page) for each page of range in address order (nullptr for a page
// never written), under the shared locks of the entries' objects.
template <typename Visit>
void VisitPages(EntryList entries, const PageRange& range, unsigned shift,
                Visit&& visit) {
  ObjectLocks locks;
  for (const MapEntry* entry : entries) {
    locks.Add(entry->object.get(), /*exclusive=*/false);
  }
  locks.LockAll();
  for (const MapEntry* entry : entries) {
    const vm_address_t from = std::max(entry->start, range.start());
    const vm_address_t to = std::min(entry->end, range.end());
    const std::uint64_t lo = entry->offset + ((from - entry->start) >> shift);
    entry->object->pages().Visit(lo, lo + ((to - from) >> shift), visit);
  }
}

// Copies n bytes to dst with non-temporal stores where the CPU has them and
// dst is 16-byte aligned with n a multiple of 64; else memcpy. Callers run
// StoreFence() before other threads may look (before unlocking).
void StreamCopy(std::byte* dst, const std::byte* src, std::size_t n) {
#if defined(__SSE2__)
  if ((reinterpret_cast<std::uintptr_t>(dst) & 15) == 0 && n % 64 == 0) {
    auto* d = reinterpret_cast<__m128i*>(dst);
    const auto* s = reinterpret_cast<const __m128i*>(src);
    for (std::size_t i = 0; i < n / 16; i += 4) {
      const __m128i a = _mm_loadu_si128(s + i);
      const __m128i b = _mm_loadu_si128(s + i + 1);
      const __m128i c = _mm_loadu_si128(s + i + 2);
      const __m128i e = _mm_loadu_si128(s + i + 3);
      _mm_stream_si128(d + i, a);
      _mm_stream_si128(d + i + 1, b);
      _mm_stream_si128(d + i + 2, c);
      _mm_stream_si128(d + i + 3, e);
    }
    return;
  }
#endif
  std::memcpy(dst, src, n);
}

// Orders StreamCopy's stores before what follows (an unlock).
void StoreFence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// How many fresh pages writing range needs: one per unwritten page, and one
// per mapping of a shared page, except that the last mapping of a page whose
// every mapping lies in the range is written in place. An object mapped more
// than once in the range (a share remap within the task) has its slots
// visited once per mapping: each slot counts once, so an unwritten slot needs
// one fresh page and a shared page's slot is one of its mappings.
// *for_pins: how many of them are needed only because a reader has the page
// pinned: copies of pages the write dooms (page_allocator.h), which may use the
// pin reserve. First makes the page-table paths of the range this write's own
// (Prepare: shared subtrees are cloned, so each page's mappings count every
// slot that holds it); may throw, with every change in undo. Requires the
// object locks, exclusive.
std::size_t PagesToWrite(const AddressMap& map, const PageRange& range,
                         PageTable::Undo& undo, std::size_t* for_pins) {
  *for_pins = 0;
  std::size_t needed = 0;
  thread_local std::vector<Page*> shared;
  thread_local std::vector<const VmObject*> objects;
  thread_local std::vector<std::tuple<const VmObject*, std::uint64_t, Page*>>
      slots;
  shared.clear();
  objects.clear();
  slots.clear();
  map.ForEachPiece(
      range, [&](const MapEntry& entry, std::uint64_t lo, std::uint64_t hi) {
        entry.object->pages().Prepare(lo, hi, undo);
        objects.push_back(entry.object.get());
      });
  std::sort(objects.begin(), objects.end());
  const bool repeated =
      std::adjacent_find(objects.begin(), objects.end()) != objects.end();
  map.ForEachPiece(
      range, [&](const MapEntry& entry, std::uint64_t lo, std::uint64_t hi) {
        std::uint64_t index = lo;
        entry.object->pages().Visit(lo, hi, [&](Page* page) {
          const std::uint64_t slot_index = index++;
          if (page != nullptr && page->Exclusive()) return;  // in place
          if (repeated) {
            slots.emplace_back(entry.object.get(), slot_index, page);
          } else if (page == nullptr) {
            ++needed;
          } else {
            shared.push_back(page);
          }
        });
      });
  // A slot holds one page, so (object, index) alone tells visits apart.
  std::sort(slots.begin(), slots.end());
  slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
  for (const auto& [object, index, page] : slots) {
    if (page == nullptr) {
      ++needed;
    } else {
      shared.push_back(page);
    }
  }
  std::sort(shared.begin(), shared.end());
  for (auto it = shared.begin(); it != shared.end();) {
    auto run_end = std::upper_bound(it, shared.end(), *it);
    const std::size_t k = static_cast<std::size_t>(run_end - it);
    Page* page = *it;
    const bool all_here = page->mappings() == k;
    // Pins come and go without the object locks: read once, so that a pin
    // released between two reads cannot count a copy without its reserve.
    const bool pinned = page->pinned();
    needed += (all_here && !pinned) ? k - 1 : k;
    if (all_here && pinned) ++*for_pins;
    it = run_end;
  }
  return needed;
}

// The second half of a write: batch holds the fresh pages PagesToWrite
// counted. Requires the object locks, exclusive. Cannot fail.
template <typename Produce>
void WritePages(const AddressMap& map, const PageRange& range,
                vm_address_t address, vm_size_t size,
                const std::vector<Page*>& batch, Produce&& produce) {
  const std::uint64_t page_size = map.geometry().page_size();
  std::size_t used = 0;
  vm_address_t page_address = range.start();
  map.ForEachPiece(range, [&](const MapEntry& entry, std::uint64_t lo,
                              std::uint64_t hi) {
    PageTable& pages = entry.object->pages();
    for (std::uint64_t index = lo; index < hi;
         ++index, page_address += page_size) {
      // The part of this page the request covers.
      const vm_address_t from = std::max(page_address, address);
      const vm_address_t to =
          std::min(page_address + page_size, address + size);
      const bool whole = from == page_address && to == page_address + page_size;
      Page*& slot = pages.Slot(index);
      Page* page = slot;
      if (page == nullptr || !page->Exclusive()) {
        Page* fresh = batch[used++];
        if (!whole) {
          if (page != nullptr) {
            std::memcpy(fresh->data(), page->data(), page_size);
          } else {
            std::memset(fresh->data(), 0, page_size);
          }
        }
        if (page != nullptr) page->DropMapping();
        slot = fresh;
        page = fresh;
      }
      produce(page->data() + (from - page_address), from - address, to - from);
    }
  });
  // A page mapped twice in the range was copied once, then written in place.
  for (std::size_t i = used; i < batch.size(); ++i) batch[i]->DropMapping();
}

// The reason of a write whose new pages the allocator refused; for_pins of
// them were copies of doomed pages, which could use the pin reserve.
void RefuseAtTheLimit(const PageAllocator& pages, std::size_t needed,
                      std::size_t for_pins) {
  const std::uint64_t page = pages.page_size();
  const MemoryBudget& budget = pages.budget();
  const std::uint64_t cap = pages.page_limit();
  if (cap != 0 && (needed > cap || pages.live_pages() > cap - needed)) {
    SetFailureReason(
        fmt::format("page limit {} bytes: {} in pages, the write needs {} more",
                    cap * page, pages.live_pages() * page, needed * page));
    return;
  }
  if (budget.limit() == 0) {
    SetFailureReason(
        fmt::format("out of memory: {} bytes of new pages could not be mapped",
                    needed * page));
    return;
  }
  if (for_pins == 0) {
    SetFailureReason(
        fmt::format("memory limit {} bytes: {} in use, the write needs {} more",
                    budget.limit(), budget.used(), needed * page));
    return;
  }
  SetFailureReason(fmt::format(
      "memory limit {} bytes: {} in use, the write needs {} more ({} of "
      "them copies of pinned pages; the pin reserve has {} of {} in use)",
      budget.limit(), budget.used(), needed * page, for_pins * page,
      budget.pin_reserve_used(), budget.pin_reserve()));
}

template <typename Produce>
KernReturn WriteWith(VmSystem& system, const AddressMap& map,
                     const PageRange& range, vm_address_t address,
                     vm_size_t size, Produce&& produce) {
  PageAllocator& pages = system.pages();
  bool drained = false;
  for (;;) {
    ObjectLocks locks;
    locks.Add(map, range, /*exclusive=*/true);
    locks.LockAll();
    std::size_t for_pins = 0;
    MemoryAccount scratch(map.budget());
    PageTable::Undo undo(scratch, map.freer());  // rolls back unless committed
    const std::size_t needed = PagesToWrite(map, range, undo, &for_pins);
    thread_local std::vector<Page*> batch;
    batch.resize(needed);
    // At the limit, the copies of pages only readers' pins keep come from
    // the pin reserve: the reply that pins such a page may still be on its
    // way to the kernel, and the page is freed when it has gone.
    if (!pages.Allocate(needed, batch.data(), for_pins)) {
      undo.Rollback();
      // Subtrees freed in the background (page_table.h) may still hold
      // pages and mappings: once, wait for them and count again (their
      // pages back, and pages they shared now this write's alone). And the
      // heap's overhang may be lower than last measured (memory_budget.h).
      if (!drained) {
        const bool freed = system.freer().Drain();
        if (system.budget().LowerHeapOverhang() != 0 || freed) {
          drained = true;
          continue;
        }
      }
      RefuseAtTheLimit(pages, needed, for_pins);
      return KERN_RESOURCE_SHORTAGE;
    }
    undo.Commit();
    WritePages(map, range, address, size, batch, produce);
    StoreFence();  // before the object locks go
    return KERN_SUCCESS;
  }
}

}  // namespace

void ReadPinned(VmSystem& system, EntryList entries, const PageRange& range,
                PinnedPages* out) {
  PinnedPagesBuilder builder(out, system.page_size());
  const std::byte* zero = system.pages().zero_page();
  try {
    VisitPages(entries, range, PageShift(system),
               [&](Page* page) { builder.Add(page, zero); });
  } catch (...) {
    out->Release();
    throw;
  }
}

void ReadPinned(VmSystem& system, EntryList entries, const PageRange& range,
                vm_address_t address, vm_size_t size, PinnedPages* out) {
  ReadPinned(system, entries, range, out);
  PinnedPagesBuilder(out, system.page_size())
      .Trim(address - range.start(), range.end() - (address + size));
}

void ReadInto(VmSystem& system, EntryList entries, const PageRange& range,
              vm_address_t address, std::span<std::byte> out) {
  const std::size_t page_size = system.page_size();
  const std::byte* zero = system.pages().zero_page();
  const vm_address_t end = address + out.size();
  vm_address_t page_address = range.start();
  std::byte* next = out.data();
  VisitPages(entries, range, PageShift(system), [&](Page* page) {
    const vm_address_t from = std::max(page_address, address);
    const vm_address_t to = std::min(page_address + page_size, end);
    const std::byte* data = page != nullptr ? page->data() : zero;
    std::memcpy(next, data + (from - page_address), to - from);
    next += to - from;
    page_address += page_size;
  });
}

void ReadInto(VmSystem& system, EntryList entries, const PageRange& range,
              std::span<std::byte> out) {
  const std::size_t page_size = system.page_size();
  const std::byte* zero = system.pages().zero_page();
  std::byte* next = out.data();
  VisitPages(entries, range, PageShift(system), [&](Page* page) {
    std::memcpy(next, page != nullptr ? page->data() : zero, page_size);
    next += page_size;
  });
}

KernReturn WriteBytes(VmSystem& system, const AddressMap& map,
                      const PageRange& range, vm_address_t address,
                      vm_size_t size, const WriteSource& source) {
  const std::byte* bytes = source.data();
  switch (source.kind()) {
    case WriteSource::kStreamed:
      if (size >= WriteSource::kStreamBytes) {
        return WriteWith(
            system, map, range, address, size,
            [bytes](std::byte* dst, vm_size_t offset, vm_size_t n) {
              StreamCopy(dst, bytes + offset, n);
            });
      }
      [[fallthrough]];
    case WriteSource::kBytes:
      return WriteWith(system, map, range, address, size,
                       [bytes](std::byte* dst, vm_size_t offset, vm_size_t n) {
                         std::memcpy(dst, bytes + offset, n);
                       });
    case WriteSource::kFill:
      return WriteWith(
          system, map, range, address, size,
          [byte = source.byte()](std::byte* dst, vm_size_t, vm_size_t n) {
            std::memset(dst, byte, n);
          });
  }
  return KERN_FAILURE;
}

}  // namespace taskfs::vm
