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
// The pin reserve. A write must copy a page that readers have pinned even
// when it is the page's last mapping; the old page is then doomed: nothing
// maps it, nothing can pin it again, and it is freed when its last pin goes,
// a moment later. At the limit such a copy is not refused: Allocate charges
// it to the budget's pin reserve instead (MemoryBudget::pin_reserve, sized
// by VmConfig::pin_reserve for every page readers can pin at once), and the
// allocator owes the reserve what it drew. The invariant, under mu_:
//
//   budget().pin_reserve_used() == debt_, and
//   what the allocator has charged within the limit + debt_
//       == (live + warm pages) * page_size + slabs * SlabCharge().
//
// Every byte the allocator gives back pays the debt first, and a page freed
// while there is a debt goes cold instead of warm, so that its bytes are
// given back. The next free after a copy (the doomed page's own, when its
// last pin goes, unless another page was freed first) therefore returns the
// reserve to where it was, and the figure within the limit never moved: the
// copy took over the doomed page's charge. (A copy that needed a new slab
// when every slab was full drew the slab's records too; the frees after
// the doomed page's pay those.)
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
  // refuses, or the system is out of memory) and takes none. pinned_copies:
  // how many of the n are copies of doomed pages (see above); when the
  // limit refuses the n, those copies (and the records of any new slab) may
  // be charged to the pin reserve and be past the page limit, as long as
  // the rest fits within them.
  bool Allocate(std::size_t n, Page** out, std::size_t pinned_copies = 0);

  // What the pin reserve must hold for readers to pin pinned_bytes at once
  // with every pinned page doomed: the copies, and the records of the slabs
  // they may need. 0 for 0.
  static std::uint64_t PinReserveFor(std::uint64_t pinned_bytes,
                                     std::size_t page_size);

  // Gives every warm page back to the system (madvise) and releases its
  // charge, paying the pin reserve's debt first; returns the bytes released
  // within the limit. The budget calls it when a charge is refused
  // (set_reclaimer); requires that the caller hold no lock below the
  // allocator's.
  std::uint64_t Reclaim();

  // What of the budget's use is the allocator's own: the warm pages and the
  // slabs' records. The rest is the live pages and the metadata of tasks.
  std::uint64_t own_bytes() const;

  // Makes the memory of pages[0..n) resident at once (MADV_POPULATE_WRITE
  // over each run of adjacent pages), for a caller about to fill them all:
  // one call per run instead of a fault per page. Their contents stay
  // undefined; a kernel without it leaves them to fault as usual.
  static void Populate(Page* const* pages, std::size_t n,
                       std::size_t page_size) noexcept;

  // The shared page of zeros that unwritten memory reads as. Never freed,
  // never written, not counted as resident.
  const std::byte* zero_page() const { return zero_page_; }

  std::size_t page_size() const { return page_size_; }
  std::uint64_t live_pages() const {
    return live_pages_.load(std::memory_order_relaxed);
  }
  MemoryBudget& budget() const { return budget_; }
  std::uint64_t page_limit() const { return limit_pages_; }  // pages; 0 = none
 private:
  friend class Page;
  void Free(Page* page);
  // These require mu_. NewSlab maps a slab (nullptr if the system has no
  // memory), on all_slabs_ only; Unmap takes an empty slab off all_slabs_,
  // gives back its charge and unmaps it (Discard: the same but its charge);
  // GainRoom and LoseRoom put a slab on and off with_room_. GiveBack
  // releases bytes of the allocator's charge, the debt to the pin reserve
  // first, and returns what it released within the limit.
  Slab* NewSlab();
  void Unmap(Slab* slab);
  void Discard(Slab* slab);
  std::uint64_t GiveBack(std::uint64_t bytes);
  void GainRoom(Slab* slab);
  void LoseRoom(Slab* slab);

  // Constant after construction.
  const std::size_t page_size_;
  MemoryBudget& budget_;
  const std::uint64_t limit_pages_;  // 0 = none
  std::byte* zero_page_ = nullptr;

  std::atomic<std::uint64_t> live_pages_{0};  // written under mu_
  std::uint64_t warm_pages_ = 0;              // guarded by mu_
  std::uint64_t slabs_ = 0;                   // guarded by mu_
  std::uint64_t debt_ = 0;  // bytes charged to the pin reserve; mu_

  mutable std::mutex mu_;
  // Intrusive lists (no allocation, so Free cannot fail), guarded by mu_:
  // the slabs with a free page, most recently freed into first, and all.
  Slab* with_room_ = nullptr;
  Slab* all_slabs_ = nullptr;
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_PAGE_ALLOCATOR_H_
