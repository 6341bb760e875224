#include "vmcore/page_allocator.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace taskfs::vm {

// kSlabPages pages of one mmap, with their Page records.
class Slab {
 public:
  PageAllocator* owner = nullptr;
  std::byte* base = nullptr;
  std::size_t used = 0;         // pages handed out
  std::size_t never_used = 0;   // index of the first page never handed out
  Page* free_list = nullptr;    // pages handed out once and returned
  Page pages[PageAllocator::kSlabPages];
};

void Page::Drop(std::uint64_t n) {
  if (refs_.fetch_sub(n, std::memory_order_acq_rel) == n) {
    slab_->owner->Free(this);
  }
}

PageAllocator::PageAllocator(std::size_t page_size, std::uint64_t limit_bytes)
    : page_size_(page_size),
      limit_pages_(limit_bytes == 0 ? 0 : (limit_bytes / page_size)) {
  void* zero = mmap(nullptr, page_size_, PROT_READ,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (zero == MAP_FAILED) throw std::bad_alloc();
  zero_page_ = static_cast<std::byte*>(zero);
}

PageAllocator::~PageAllocator() {
  for (Slab* slab : all_slabs_) {
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
  all_slabs_.insert(slab);
  slabs_with_free_.insert(slab);
  return slab;
}

bool PageAllocator::Allocate(std::size_t n, Page** out) {
  if (n == 0) return true;
  std::lock_guard lock(mu_);
  const std::uint64_t live = live_pages_.load(std::memory_order_relaxed);
  if (limit_pages_ != 0 && (n > limit_pages_ || live > limit_pages_ - n)) {
    return false;
  }
  // Make sure enough slabs exist before taking anything, so a failed mmap
  // leaves nothing taken.
  std::size_t available = 0;
  for (Slab* slab : slabs_with_free_) {
    available += kSlabPages - slab->used;
    if (available >= n) break;
  }
  while (available < n) {
    if (NewSlab() == nullptr) return false;
    available += kSlabPages;
  }
  std::size_t taken = 0;
  while (taken < n) {
    Slab* slab = *slabs_with_free_.begin();
    while (taken < n && slab->used < kSlabPages) {
      Page* page;
      if (slab->free_list != nullptr) {
        page = slab->free_list;
        slab->free_list = page->next_free_;
      } else {
        page = &slab->pages[slab->never_used++];
      }
      page->next_free_ = nullptr;
      page->refs_.store(1, std::memory_order_relaxed);
      ++slab->used;
      out[taken++] = page;
    }
    if (slab->used == kSlabPages) slabs_with_free_.erase(slab);
  }
  live_pages_.store(live + n, std::memory_order_relaxed);
  return true;
}

void PageAllocator::Free(Page* page) {
  Slab* slab = page->slab_;
  std::lock_guard lock(mu_);
  live_pages_.fetch_sub(1, std::memory_order_relaxed);
  page->next_free_ = slab->free_list;
  slab->free_list = page;
  if (slab->used-- == kSlabPages) slabs_with_free_.insert(slab);
  // Give an empty slab back to the system unless it is the only one with
  // room left, which is kept to spare an mmap/munmap pair per page when one
  // page is allocated and freed over and over.
  if (slab->used == 0 && slabs_with_free_.size() > 1) {
    slabs_with_free_.erase(slab);
    all_slabs_.erase(slab);
    munmap(slab->base, kSlabPages * page_size_);
    delete slab;
  }
}

}  // namespace taskfs::vm
