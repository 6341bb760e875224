// Physical pages for all tasks of one VmSystem, and the memory limit.
#ifndef TASKFS_VMCORE_PAGE_ALLOCATOR_H_
#define TASKFS_VMCORE_PAGE_ALLOCATOR_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "vmcore/memory_budget.h"
#include "vmcore/page.h"

namespace taskfs::vm {

// Pages come from slabs of kSlabPages pages mapped with mmap, so a page costs
// no malloc and pages allocated together are usually adjacent in memory (a
// PinnedPages then needs few iovecs). A slab whose pages are all free is
// unmapped, returning its memory to the system.
//
// What the budget is charged follows what is resident: a live page, and a
// freed page still resident in its slab ("warm", reused first, at no new
// charge), each cost page_size; each slab's records cost sizeof(Slab).
// Pages never used, or given back with Reclaim ("cold"), cost nothing. So
// freeing pages makes room for new pages at once, and for anything else
// once Reclaim has given the warm ones back.
//
// Thread-safety: all methods are thread-safe; mu_ is a leaf lock.
class PageAllocator {
 public:
  static constexpr std::size_t kSlabPages = 512;
  // What the records of one slab are charged.
  static std::uint64_t SlabCharge();

  // Each live page is charged to budget. page_limit_bytes: a cap on live
  // pages alone (0 = none), under the budget's; the daemon has none, and the
  // differential tests use it to predict refusals exactly.
  PageAllocator(std::size_t page_size, MemoryBudget& budget,
                std::uint64_t page_limit_bytes = 0);
  ~PageAllocator();
  PageAllocator(const PageAllocator&) = delete;
  PageAllocator& operator=(const PageAllocator&) = delete;

  // All or nothing: fills out[0..n) with pages holding one mapping each and
  // undefined contents, or returns false (the budget or the page limit
  // refuses, or the system is out of memory) and takes none.
  bool Allocate(std::size_t n, Page** out);

  // Gives every warm page back to the system (madvise) and releases its
  // charge; returns the bytes released. The budget calls it when a charge
  // is refused (set_reclaimer); requires that the caller hold no lock
  // below the allocator's.
  std::uint64_t Reclaim();

  // What of the budget's use is the allocator's own: the warm pages and the
  // slabs' records. The rest is the live pages and the metadata of tasks.
  std::uint64_t own_bytes() const;

  // The shared page of zeros that unwritten memory reads as. Never freed,
  // never written, not counted as resident.
  const std::byte* zero_page() const { return zero_page_; }

  std::size_t page_size() const { return page_size_; }
  std::uint64_t live_pages() const {
    return live_pages_.load(std::memory_order_relaxed);
  }
  MemoryBudget& budget() const { return budget_; }
  std::uint64_t page_limit() const { return limit_pages_; }  // pages; 0 = none
  // Whether n more pages would fit: the budget's room (with nothing else
  // charged meanwhile) and the page limit's.
  bool Fits(std::uint64_t n) const;

  // How many writers are waiting at the limit for readers' pins to go (the
  // pin wait of vm_fault.h), so a test can see a writer blocked there.
  std::uint32_t pin_waiters() const {
    return pin_waiters_.load(std::memory_order_acquire);
  }
  // The waiting writer's side: +1 when it starts waiting, -1 when it stops.
  void CountPinWaiter(int delta) {
    pin_waiters_.fetch_add(static_cast<std::uint32_t>(delta),
                           std::memory_order_acq_rel);
  }

 private:
  friend class Page;
  void Free(Page* page);
  // These require mu_. NewSlab maps a slab (nullptr if the system has no
  // memory), on all_slabs_ only; Unmap takes an empty slab off all_slabs_,
  // releases its charge and unmaps it; GainRoom and LoseRoom put a slab on
  // and off with_room_.
  Slab* NewSlab();
  void Unmap(Slab* slab);
  void GainRoom(Slab* slab);
  void LoseRoom(Slab* slab);

  // Constant after construction.
  const std::size_t page_size_;
  MemoryBudget& budget_;
  const std::uint64_t limit_pages_;  // 0 = none
  std::byte* zero_page_ = nullptr;

  std::atomic<std::uint64_t> live_pages_{0};  // written under mu_
  std::uint64_t warm_pages_ = 0;               // guarded by mu_
  std::uint64_t slabs_ = 0;                    // guarded by mu_
  std::atomic<std::uint32_t> pin_waiters_{0};

  mutable std::mutex mu_;
  // Intrusive lists (no allocation, so Free cannot fail), guarded by mu_:
  // the slabs with a free page, most recently freed into first, and all.
  Slab* with_room_ = nullptr;
  Slab* all_slabs_ = nullptr;
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_PAGE_ALLOCATOR_H_
