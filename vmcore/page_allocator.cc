#include "vmcore/page_allocator.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "vmcore/memory_account.h"

namespace taskfs::vm {

// kSlabPages pages of one mmap, with their Page records.
class Slab {
 public:
  PageAllocator* owner = nullptr;
  std::byte* base = nullptr;
  std::size_t used = 0;        // pages handed out
  std::size_t never_used = 0;  // index of the first page never handed out
  std::size_t warm = 0;        // pages on warm_list
  Page* warm_list = nullptr;   // freed, still resident and charged
  Page* cold_list = nullptr;   // freed and given back to the system
  // Links of PageAllocator's lists: every slab, and those with room.
  Slab* all_prev = nullptr;
  Slab* all_next = nullptr;
  Slab* free_prev = nullptr;
  Slab* free_next = nullptr;
  bool has_room = false;  // on the list of slabs with room
  Page pages[PageAllocator::kSlabPages];
};

namespace {

constexpr std::uint64_t kSlabCharge = sizeof(Slab) + kHeapOverhead;

Page* Pop(Page*& list, Page* next) {
  Page* page = list;
  list = next;
  return page;
}

}  // namespace

std::uint64_t PageAllocator::SlabCharge() { return kSlabCharge; }

std::uint64_t PageAllocator::PinReserveFor(std::uint64_t pinned_bytes,
                                           std::size_t page_size) {
  if (pinned_bytes == 0) return 0;
  const std::uint64_t pages = (pinned_bytes + page_size - 1) / page_size;
  // Copies that fill new slabs need one slab per kSlabPages of them, and a
  // first copy may need one more when every slab is full.
  return pages * page_size + (pages / kSlabPages + 1) * kSlabCharge;
}

void Page::Drop(std::uint64_t n) {
  if (refs_.fetch_sub(n, std::memory_order_acq_rel) == n) {
    slab_->owner->Free(this);
  }
}

PageAllocator::PageAllocator(std::size_t page_size, MemoryBudget& budget,
                             std::uint64_t page_limit_bytes)
    : page_size_(page_size),
      budget_(budget),
      limit_pages_(page_limit_bytes / page_size) {
  void* zero =
      mmap(nullptr, page_size_, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (zero == MAP_FAILED) throw std::bad_alloc();
  zero_page_ = static_cast<std::byte*>(zero);
}

PageAllocator::~PageAllocator() {
  while (Slab* slab = all_slabs_) {
    all_slabs_ = slab->all_next;
    GiveBack(slab->warm * page_size_ + kSlabCharge);
    munmap(slab->base, kSlabPages * page_size_);
    delete slab;
  }
  munmap(zero_page_, page_size_);
}

Slab* PageAllocator::NewSlab() {
  void* mem = mmap(nullptr, kSlabPages * page_size_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) return nullptr;
  Slab* slab = new (std::nothrow) Slab;
  if (slab == nullptr) {
    munmap(mem, kSlabPages * page_size_);
    return nullptr;
  }
  slab->owner = this;
  slab->base = static_cast<std::byte*>(mem);
  for (std::size_t i = 0; i < kSlabPages; ++i) {
    slab->pages[i].data_ = slab->base + i * page_size_;
    slab->pages[i].slab_ = slab;
  }
  slab->all_next = all_slabs_;
  if (all_slabs_ != nullptr) all_slabs_->all_prev = slab;
  all_slabs_ = slab;
  ++slabs_;
  return slab;
}

bool PageAllocator::Allocate(std::size_t n, Page** out,
                             std::size_t pinned_copies) {
  if (n == 0) return true;
  std::lock_guard lock(mu_);
  const std::uint64_t live = live_pages_.load(std::memory_order_relaxed);
  const auto within_page_limit = [&](std::size_t pages) {
    return limit_pages_ == 0 ||
           (pages <= limit_pages_ && live <= limit_pages_ - pages);
  };
  // Pages are taken slab by slab in with_room_'s order, warm ones
  // first in each: count what that takes before taking anything, and charge
  // for the pages that are not warm and for new slabs, so a refusal (or a
  // failed mmap) leaves nothing taken.
  std::size_t warm = 0, available = 0;
  for (Slab* slab = with_room_; slab != nullptr; slab = slab->free_next) {
    const std::size_t free = kSlabPages - slab->used;
    const std::size_t take = std::min(free, n - available);
    warm += std::min(take, slab->warm);
    available += take;
    if (available == n) break;
  }
  const std::size_t new_slabs = (n - available + kSlabPages - 1) / kSlabPages;
  const std::uint64_t charge =
      (n - warm) * std::uint64_t{page_size_} + new_slabs * kSlabCharge;
  // The part of charge that the pin reserve holds: none unless the limit
  // refuses; then the copies of doomed pages that cost something, and the
  // new slabs' records.
  std::uint64_t reserved = 0;
  if (!within_page_limit(n) || !budget_.TryCharge(charge)) {
    const std::size_t copies = std::min(pinned_copies, n);
    if (copies == 0 || !within_page_limit(n - copies)) return false;
    reserved = std::min(copies, n - warm) * std::uint64_t{page_size_} +
               new_slabs * kSlabCharge;
    if (!budget_.TryChargePinReserve(reserved)) return false;
    if (charge != reserved && !budget_.TryCharge(charge - reserved)) {
      budget_.ReleasePinReserve(reserved);
      return false;
    }
    debt_ += reserved;
  }
  // New slabs wait on a chain of their own until the ones counted above are
  // used up, so pages are taken in the order they were counted.
  Slab* fresh = nullptr;
  for (std::size_t i = 0; i < new_slabs; ++i) {
    Slab* slab = NewSlab();
    if (slab == nullptr) {
      // Exactly what was charged goes back, to where it was charged.
      while (fresh != nullptr) {
        Slab* next = fresh->free_next;
        Discard(fresh);
        fresh = next;
      }
      debt_ -= reserved;
      budget_.ReleasePinReserve(reserved);
      budget_.Release(charge - reserved);
      return false;
    }
    slab->free_next = fresh;
    fresh = slab;
  }
  std::size_t taken = 0;
  while (taken < n) {
    if (with_room_ == nullptr) {
      Slab* next = fresh->free_next;
      GainRoom(fresh);
      fresh = next;
    }
    Slab* slab = with_room_;
    while (taken < n && slab->used < kSlabPages) {
      Page* page;
      if (slab->warm_list != nullptr) {
        page = Pop(slab->warm_list, slab->warm_list->next_free_);
        --slab->warm;
        --warm_pages_;
      } else if (slab->cold_list != nullptr) {
        page = Pop(slab->cold_list, slab->cold_list->next_free_);
      } else {
        page = &slab->pages[slab->never_used++];
      }
      page->walk_mark_ = 0;  // live: no walk has counted it
      page->refs_.store(1, std::memory_order_relaxed);
      ++slab->used;
      out[taken++] = page;
    }
    if (slab->used == kSlabPages) LoseRoom(slab);
  }
  live_pages_.store(live + n, std::memory_order_relaxed);
  return true;
}

void PageAllocator::Unmap(Slab* slab) {
  const std::uint64_t charged = slab->warm * page_size_ + kSlabCharge;
  Discard(slab);
  GiveBack(charged);
}

void PageAllocator::Discard(Slab* slab) {
  if (slab->all_prev != nullptr) slab->all_prev->all_next = slab->all_next;
  if (slab->all_next != nullptr) slab->all_next->all_prev = slab->all_prev;
  if (all_slabs_ == slab) all_slabs_ = slab->all_next;
  --slabs_;
  munmap(slab->base, kSlabPages * page_size_);
  delete slab;
}

std::uint64_t PageAllocator::GiveBack(std::uint64_t bytes) {
  const std::uint64_t repaid = std::min(bytes, debt_);
  if (repaid != 0) {
    debt_ -= repaid;
    budget_.ReleasePinReserve(repaid);
  }
  budget_.Release(bytes - repaid);
  return bytes - repaid;
}

void PageAllocator::GainRoom(Slab* slab) {
  slab->has_room = true;
  slab->free_prev = nullptr;
  slab->free_next = with_room_;
  if (with_room_ != nullptr) with_room_->free_prev = slab;
  with_room_ = slab;
}

void PageAllocator::LoseRoom(Slab* slab) {
  if (!slab->has_room) return;
  slab->has_room = false;
  if (slab->free_prev != nullptr) slab->free_prev->free_next = slab->free_next;
  if (slab->free_next != nullptr) slab->free_next->free_prev = slab->free_prev;
  if (with_room_ == slab) with_room_ = slab->free_next;
}

void PageAllocator::Free(Page* page) {
  Slab* slab = page->slab_;
  std::lock_guard lock(mu_);
  live_pages_.fetch_sub(1, std::memory_order_relaxed);
  if (debt_ != 0) {
    // Owing the pin reserve: this page's bytes go to pay it (the class
    // comment), so the page is not kept warm.
    madvise(page->data_, page_size_, MADV_DONTNEED);
    page->next_free_ = slab->cold_list;
    slab->cold_list = page;
    GiveBack(page_size_);
  } else {
    page->next_free_ = slab->warm_list;
    slab->warm_list = page;
    ++slab->warm;
    ++warm_pages_;
  }
  if (slab->used-- == kSlabPages) GainRoom(slab);
  // Give an empty slab back to the system unless it is the only one with
  // room left, which is kept to spare an mmap/munmap pair per page when one
  // page is allocated and freed over and over.
  if (slab->used == 0 && !(with_room_ == slab && slab->free_next == nullptr)) {
    LoseRoom(slab);
    warm_pages_ -= slab->warm;
    Unmap(slab);
  }
}

std::uint64_t PageAllocator::own_bytes() const {
  std::lock_guard lock(mu_);
  return warm_pages_ * page_size_ + slabs_ * kSlabCharge;
}

std::uint64_t PageAllocator::Reclaim() {
  std::lock_guard lock(mu_);
  std::uint64_t released = 0;
  for (Slab* slab = with_room_; slab != nullptr; slab = slab->free_next) {
    while (slab->warm_list != nullptr) {
      Page* page = Pop(slab->warm_list, slab->warm_list->next_free_);
      madvise(page->data_, page_size_, MADV_DONTNEED);
      page->next_free_ = slab->cold_list;
      slab->cold_list = page;
      released += page_size_;
    }
    warm_pages_ -= slab->warm;
    slab->warm = 0;
  }
  return GiveBack(released);
}

void PageAllocator::Populate(Page* const* pages, std::size_t n,
                             std::size_t page_size) noexcept {
#ifdef MADV_POPULATE_WRITE
  std::size_t i = 0;
  while (i < n) {
    std::byte* start = pages[i]->data();
    std::size_t run = 1;
    while (i + run < n && pages[i + run]->data() == start + run * page_size) {
      ++run;
    }
    madvise(start, run * page_size, MADV_POPULATE_WRITE);
    i += run;
  }
#else
  (void)pages;
  (void)n;
  (void)page_size;
#endif
}

}  // namespace taskfs::vm
