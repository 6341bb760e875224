// Physical pages for all tasks of one VmSystem, and the memory limit.
#ifndef TASKFS_VMCORE_PAGE_ALLOCATOR_H_
#define TASKFS_VMCORE_PAGE_ALLOCATOR_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>

#include "vmcore/page.h"

namespace taskfs::vm {

// Pages come from slabs of kSlabPages pages mapped with mmap, so a page costs
// no malloc and pages allocated together are usually adjacent in memory (a
// PinnedPages then needs few iovecs). A slab whose pages are all free is
// unmapped, returning its memory to the system.
//
// Thread-safety: all methods are thread-safe; mu_ is a leaf lock.
class PageAllocator {
 public:
  static constexpr std::size_t kSlabPages = 512;

  // limit_bytes: cap on live pages (0 = none).
  PageAllocator(std::size_t page_size, std::uint64_t limit_bytes);
  ~PageAllocator();
  PageAllocator(const PageAllocator&) = delete;
  PageAllocator& operator=(const PageAllocator&) = delete;

  // All or nothing: fills out[0..n) with pages holding one mapping each and
  // undefined contents, or returns false (memory limit reached, or the system
  // is out of memory) and takes none.
  bool Allocate(std::size_t n, Page** out);

  // The shared page of zeros that unwritten memory reads as. Never freed,
  // never written, not counted as resident.
  const std::byte* zero_page() const { return zero_page_; }

  std::size_t page_size() const { return page_size_; }
  std::uint64_t live_pages() const {
    return live_pages_.load(std::memory_order_relaxed);
  }
  std::uint64_t limit_pages() const { return limit_pages_; }

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
  Slab* NewSlab();  // requires mu_

  // Constant after construction.
  const std::size_t page_size_;
  const std::uint64_t limit_pages_;  // 0 = none
  std::byte* zero_page_ = nullptr;

  std::atomic<std::uint64_t> live_pages_{0};  // written under mu_
  std::atomic<std::uint32_t> pin_waiters_{0};

  std::mutex mu_;
  std::set<Slab*> slabs_with_free_;  // guarded by mu_
  std::set<Slab*> all_slabs_;        // guarded by mu_
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_PAGE_ALLOCATOR_H_
