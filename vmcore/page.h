// A physical page: page_size bytes and a reference count.
#ifndef TASKFS_VMCORE_PAGE_H_
#define TASKFS_VMCORE_PAGE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace taskfs::vm {

class Slab;

// Counts two kinds of reference in one atomic word, so that whoever drops the
// last one of either kind frees the page exactly once:
//   low 32 bits:  mappings, one per VmObject slot that holds the page;
//   high 32 bits: pins, one per PinnedPages that shows it.
// A page may be written in place only when it has exactly one mapping and no
// pin; otherwise a writer copies it first (copy-on-write). The check is stable
// under the lock of the one object mapping it: new references to a page are
// made only by threads holding the lock of an object that maps it.
class Page {
 public:
  std::byte* data() const { return data_; }

  void AddMapping() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Pin() { refs_.fetch_add(kPin, std::memory_order_relaxed); }
  // These free the page when they drop the last reference.
  void DropMapping() { Drop(1); }
  void Unpin() { Drop(kPin); }

  bool Exclusive() const { return refs_.load(std::memory_order_acquire) == 1; }
  // True while a reader holds a pin (a vm_read_pinned view not yet released).
  bool pinned() const {
    return (refs_.load(std::memory_order_acquire) >> 32) != 0;
  }
  std::uint32_t mappings() const {
    return static_cast<std::uint32_t>(refs_.load(std::memory_order_acquire));
  }

  // The statistics walk's mark (vm_statistics.cc): which walk counted the
  // page last. Meaningful on a live page only, and read and written only
  // under that walk's lock. It shares the word of the free list's link, so
  // it costs the page nothing.
  std::uint64_t walk_mark() const { return walk_mark_; }
  void set_walk_mark(std::uint64_t mark) { walk_mark_ = mark; }

 private:
  friend class PageAllocator;
  static constexpr std::uint64_t kPin = std::uint64_t{1} << 32;

  void Drop(std::uint64_t n);

  std::atomic<std::uint64_t> refs_{0};
  std::byte* data_ = nullptr;  // constant after the slab is made
  Slab* slab_ = nullptr;       // constant after the slab is made
  union {
    Page* next_free_ = nullptr;  // while free; guarded by PageAllocator::mu_
    std::uint64_t walk_mark_;    // while live; see walk_mark()
  };
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_PAGE_H_
