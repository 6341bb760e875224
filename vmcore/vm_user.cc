// The Mach facade: argument checks in Mach's order, locking, and one call
// into the engine per step. See vm_user.h for the contracts and
// lock_order.h for the locks.
#include "vmcore/vm_user.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <exception>
#include <iterator>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <thread>
#include <unordered_set>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "vmcore/address_map.h"
#include "vmcore/page.h"
#include "vmcore/page_range.h"
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

 private:
  PinnedPages* out_;
  const std::size_t page_size_;
};

namespace {

// Runs body, turning exceptions into Mach codes so none escapes the core.
template <typename Body>
KernReturn Guarded(Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return KERN_RESOURCE_SHORTAGE;
  } catch (...) {
    return KERN_FAILURE;
  }
}

// Locks one task (shared or exclusive) or two in ascending id order (one
// lock if they are the same task, exclusive if either side wants it).
class TaskLocks {
 public:
  TaskLocks(Task& a, bool a_exclusive) { Lock(&a, a_exclusive); }
  TaskLocks(Task& a, bool a_exclusive, Task& b, bool b_exclusive) {
    if (&a == &b) {
      Lock(&a, a_exclusive || b_exclusive);
    } else if (a.id() < b.id()) {
      Lock(&a, a_exclusive);
      Lock(&b, b_exclusive);
    } else {
      Lock(&b, b_exclusive);
      Lock(&a, a_exclusive);
    }
  }
  ~TaskLocks() {
    for (int i = count_ - 1; i >= 0; --i) {
      if (exclusive_[i]) {
        tasks_[i]->mu().unlock();
      } else {
        tasks_[i]->mu().unlock_shared();
      }
    }
  }
  TaskLocks(const TaskLocks&) = delete;
  TaskLocks& operator=(const TaskLocks&) = delete;

 private:
  void Lock(Task* task, bool exclusive) {
    if (exclusive) {
      task->mu().lock();
    } else {
      task->mu().lock_shared();
    }
    tasks_[count_] = task;
    exclusive_[count_] = exclusive;
    ++count_;
  }

  Task* tasks_[2] = {};
  bool exclusive_[2] = {};
  int count_ = 0;
};

// Locks the objects behind ranges of task maps, all at once, in ascending
// object id; an object wanted exclusive by any range is locked exclusive.
class ObjectLocks {
 public:
  ObjectLocks() = default;
  ~ObjectLocks() {
    for (auto it = locked_.rbegin(); it != locked_.rend(); ++it) {
      if (it->exclusive) {
        it->object->mu().unlock();
      } else {
        it->object->mu().unlock_shared();
      }
    }
  }
  ObjectLocks(const ObjectLocks&) = delete;
  ObjectLocks& operator=(const ObjectLocks&) = delete;

  // Requires the map's task lock. Adds the objects of range's entries.
  void Add(const AddressMap& map, const PageRange& range, bool exclusive) {
    for (auto it = map.EntryFrom(range.start());
         it != map.entries().end() && it->second.start < range.end(); ++it) {
      wanted_.push_back({it->second.object.get(), exclusive});
    }
  }
  void Add(VmObject* object, bool exclusive) {
    wanted_.push_back({object, exclusive});
  }

  void LockAll() {
    std::sort(wanted_.begin(), wanted_.end(), [](const Want& a, const Want& b) {
      return a.object->id() != b.object->id() ? a.object->id() < b.object->id()
                                              : a.exclusive > b.exclusive;
    });
    for (const Want& want : wanted_) {
      if (!locked_.empty() && locked_.back().object == want.object) continue;
      if (want.exclusive) {
        want.object->mu().lock();
      } else {
        want.object->mu().lock_shared();
      }
      locked_.push_back(want);
    }
  }

 private:
  struct Want {
    VmObject* object;
    bool exclusive;
  };
  // A list that keeps the usual handful of objects without touching the
  // heap (a read or write of one region wants one object).
  class WantList {
   public:
    void push_back(const Want& want) {
      if (heap_.empty() && size_ < kInline) {
        inline_[size_++] = want;
        return;
      }
      if (heap_.empty()) heap_.assign(inline_.begin(), inline_.end());
      heap_.push_back(want);
      ++size_;
    }
    Want* begin() { return heap_.empty() ? inline_.data() : heap_.data(); }
    Want* end() { return begin() + size_; }
    std::reverse_iterator<Want*> rbegin() {
      return std::reverse_iterator<Want*>(end());
    }
    std::reverse_iterator<Want*> rend() {
      return std::reverse_iterator<Want*>(begin());
    }
    bool empty() const { return size_ == 0; }
    Want& back() { return *(end() - 1); }

   private:
    static constexpr std::size_t kInline = 4;
    std::array<Want, kInline> inline_{};
    std::vector<Want> heap_;
    std::size_t size_ = 0;
  };
  WantList wanted_;
  WantList locked_;
};

// Calls fn(entry, lo, hi) for each piece of an allocated range, ascending,
// where [lo, hi) are the piece's object page indexes.
template <typename Fn>
void ForEachPiece(const AddressMap& map, const PageRange& range, Fn&& fn) {
  const unsigned shift = map.geometry().page_shift;
  vm_address_t address = range.start();
  for (auto it = map.EntryFrom(address); address < range.end(); ++it) {
    const MapEntry& entry = it->second;
    const vm_address_t end = std::min(entry.end, range.end());
    const std::uint64_t lo = entry.offset + ((address - entry.start) >> shift);
    fn(entry, lo, lo + ((end - address) >> shift));
    address = end;
  }
}

// Writes of at least this many bytes go around the cache (StreamCopy): a
// large write is not read back soon, and caching it would only push out what
// is.
constexpr vm_size_t kStreamBytes = 64 * 1024;

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
// every mapping lies in the range is written in place. *for_pins: how many
// of them are needed only because a reader has the page pinned.
// Requires the object locks, exclusive.
std::size_t PagesToWrite(const AddressMap& map, const PageRange& range,
                         std::size_t* for_pins) {
  *for_pins = 0;
  std::size_t needed = 0;
  thread_local std::vector<Page*> shared;
  shared.clear();
  ForEachPiece(map, range,
               [&](const MapEntry& entry, std::uint64_t lo, std::uint64_t hi) {
                 entry.object->pages().Visit(lo, hi, [&](Page* page) {
                   if (page == nullptr) {
                     ++needed;
                   } else if (!page->Exclusive()) {
                     shared.push_back(page);
                   }
                 });
                 entry.object->pages().Reserve(lo, hi);
               });
  std::sort(shared.begin(), shared.end());
  for (auto it = shared.begin(); it != shared.end();) {
    auto run_end = std::upper_bound(it, shared.end(), *it);
    const std::size_t k = static_cast<std::size_t>(run_end - it);
    Page* page = *it;
    const bool all_here = page->mappings() == k;
    needed += (all_here && !page->pinned()) ? k - 1 : k;
    if (all_here && page->pinned()) ++*for_pins;
    it = run_end;
  }
  return needed;
}

// The second half of WriteBytes: batch holds the fresh pages it counted.
template <typename Produce>
void WritePages(const AddressMap& map, const PageRange& range,
                vm_address_t address, vm_size_t size,
                const std::vector<Page*>& batch, Produce& produce) {
  const std::uint64_t page_size = map.geometry().page_size();
  std::size_t used = 0;
  vm_address_t page_address = range.start();
  ForEachPiece(map, range,
               [&](const MapEntry& entry, std::uint64_t lo, std::uint64_t hi) {
                 PageTable& pages = entry.object->pages();
                 for (std::uint64_t index = lo; index < hi;
                      ++index, page_address += page_size) {
                   // The part of this page the request covers.
                   const vm_address_t from = std::max(page_address, address);
                   const vm_address_t to =
                       std::min(page_address + page_size, address + size);
                   const bool whole =
                       from == page_address && to == page_address + page_size;
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
                   produce(page->data() + (from - page_address), from - address,
                           to - from);
                 }
               });
  // A page mapped twice in the range was copied once, then written in place.
  for (std::size_t i = used; i < batch.size(); ++i) batch[i]->DropMapping();
}

// Writes bytes [address, address + size) of an allocated range, producing
// them with produce(dst, offset_in_request, n). Copy-on-write: a page with
// another mapping or a pin is replaced by a fresh copy; an unwritten page by
// a fresh one. All new pages are taken in one batch before any byte changes,
// so a refused allocation changes nothing. Requires the task lock; takes the
// object locks.
template <typename Produce>
KernReturn WriteBytes(VmSystem& system, const AddressMap& map,
                      vm_address_t address, vm_size_t size, Produce&& produce) {
  const Geometry& geometry = map.geometry();
  PageRange range;
  PageRange::Rounded(geometry, address, size, &range);
  // At the memory limit, a page held only by a reader's pin (a reply still
  // on its way to the kernel) would need a copy now but not a moment later:
  // when the write would fit without those copies, wait up to
  // config().pin_wait for the pins to go before refusing it.
  using Clock = std::chrono::steady_clock;
  using std::chrono::microseconds;
  PageAllocator& pages = system.pages();
  Clock::time_point deadline{};
  microseconds pause{0};  // before the next attempt, locks released
  for (bool first = true;; first = false) {
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
    ObjectLocks locks;
    locks.Add(map, range, /*exclusive=*/true);
    locks.LockAll();
    std::size_t for_pins = 0;
    const std::size_t needed = PagesToWrite(map, range, &for_pins);
    thread_local std::vector<Page*> batch;
    batch.resize(needed);
    if (!pages.Allocate(needed, batch.data())) {
      const Clock::time_point now = Clock::now();
      if (first) deadline = now + system.config().pin_wait;
      // Would the write fit if the pinned pages needed no copy?
      const std::uint64_t limit = pages.limit_pages();
      const std::size_t rest = needed - for_pins;
      const bool pins_in_the_way = for_pins > 0 && limit != 0 &&
                                   rest <= limit &&
                                   pages.live_pages() <= limit - rest;
      if (!pins_in_the_way || now >= deadline) return KERN_RESOURCE_SHORTAGE;
      // 20 us, doubling to 1 ms, never past the deadline.
      pause = std::min({std::max(pause * 2, microseconds{20}),
                        microseconds{1000},
                        std::chrono::ceil<microseconds>(deadline - now)});
      continue;
    }
    WritePages(map, range, address, size, batch, produce);
    StoreFence();  // before the object locks go
    return KERN_SUCCESS;
  }
}

// Makes dst_range of dst_map a copy-on-write copy of src_range of src_map
// (same size, both allocated, possibly the same map and overlapping).
// Requires the task locks; takes the object locks.
void CopyPages(const AddressMap& src_map, const PageRange& src_range,
               const AddressMap& dst_map, const PageRange& dst_range) {
  const unsigned shift = src_map.geometry().page_shift;
  ObjectLocks locks;
  locks.Add(src_map, src_range, /*exclusive=*/false);
  locks.Add(dst_map, dst_range, /*exclusive=*/true);
  locks.LockAll();

  // Take the written source pages first: the copy is as if the source were
  // read whole before the destination changes. Each reference taken here
  // becomes a destination mapping.
  struct Written {
    std::uint64_t page;  // page number from the start of the range
    Page* data;
  };
  std::vector<Written> written;
  std::uint64_t seen = 0;
  try {
    ForEachPiece(
        src_map, src_range,
        [&](const MapEntry& entry, std::uint64_t lo, std::uint64_t hi) {
          const std::uint64_t base = seen;
          entry.object->pages().ForEach(
              lo, hi, [&](std::uint64_t index, Page* page) {
                written.push_back({base + (index - lo), page});
                page->AddMapping();
              });
          seen += hi - lo;
        });
    // Make room for them in the destination before anything changes.
    auto next = written.begin();
    std::uint64_t dst_seen = 0;
    ForEachPiece(
        dst_map, dst_range,
        [&](const MapEntry& entry, std::uint64_t lo, std::uint64_t hi) {
          for (; next != written.end() && next->page < dst_seen + (hi - lo);
               ++next) {
            const std::uint64_t index = lo + (next->page - dst_seen);
            entry.object->pages().Reserve(index, index + 1);
          }
          dst_seen += hi - lo;
        });
  } catch (...) {
    for (const Written& w : written) w.data->DropMapping();
    throw;
  }

  auto next = written.begin();
  std::uint64_t dst_seen = 0;
  ForEachPiece(
      dst_map, dst_range,
      [&](const MapEntry& entry, std::uint64_t lo, std::uint64_t hi) {
        PageTable& pages = entry.object->pages();
        pages.Clear(lo, hi, [](Page* page) { page->DropMapping(); });
        for (; next != written.end() && next->page < dst_seen + (hi - lo);
             ++next) {
          pages.Slot(lo + (next->page - dst_seen)) = next->data;
        }
        dst_seen += hi - lo;
      });
  // Trim only after every piece is filled: two pieces of the destination can
  // share an object, and trimming after the first could drop a chunk that
  // was reserved for the second.
  ForEachPiece(dst_map, dst_range,
               [&](const MapEntry& entry, std::uint64_t lo, std::uint64_t hi) {
                 entry.object->pages().Trim(lo, hi);
               });
  (void)shift;
}

KernReturn CheckAligned(const Geometry& geometry,
                        std::initializer_list<std::uint64_t> values) {
  for (std::uint64_t v : values) {
    if (!geometry.Aligned(v)) return KERN_INVALID_ARGUMENT;
  }
  return KERN_SUCCESS;
}

KernReturn CheckProtectable(const MapEntry& entry, vm_prot_t new_prot) {
  // Both forms of vm_protect fail the same way: the new value (a current
  // protection, or a new maximum) may not go beyond the present maximum.
  return (new_prot & ~entry.max_protection) == 0 ? KERN_SUCCESS
                                                 : KERN_PROTECTION_FAILURE;
}

}  // namespace

// --- tasks -----------------------------------------------------------------

KernReturn task_create(VmSystem& system, std::string_view name,
                       std::shared_ptr<Task>* task_out) {
  return Guarded([&] {
    if (!VmSystem::ValidTaskName(name)) return KERN_INVALID_ARGUMENT;
    return system.AddTask(name, task_out);
  });
}

KernReturn task_fork(VmSystem& system, Task& parent, std::string_view name,
                     std::shared_ptr<Task>* child_out) {
  return Guarded([&] {
    if (!VmSystem::ValidTaskName(name)) return KERN_INVALID_ARGUMENT;
    std::shared_lock parent_lock(parent.mu());
    if (parent.terminated()) return KERN_INVALID_TASK;
    // Build the child's map before the child is published, so nobody sees a
    // half-forked task. All the parent's objects stay locked while the
    // pages are taken, so the child is one snapshot: no write to the parent
    // lands in it halfway.
    std::vector<MapEntry> entries;
    {
      const AddressMap& map = parent.map();
      PageRange all;
      PageRange::Exact(map.geometry(), 0, map.geometry().limit, &all);
      ObjectLocks locks;
      locks.Add(map, all, /*exclusive=*/false);
      locks.LockAll();
      const unsigned shift = map.geometry().page_shift;
      for (const auto& [start, entry] : map.entries()) {
        if (entry.inheritance == VM_INHERIT_NONE) continue;
        MapEntry child = entry;
        if (entry.inheritance == VM_INHERIT_COPY) {
          // A new object holding the same pages: copy-on-write both ways.
          const std::uint64_t lo = entry.offset;
          const std::uint64_t hi = lo + ((entry.end - entry.start) >> shift);
          child.object = std::make_shared<VmObject>();
          child.offset = 0;
          PageTable& copy = child.object->pages();
          entry.object->pages().ForEach(
              lo, hi, [&](std::uint64_t index, Page* page) {
                copy.Reserve(index - lo, index - lo + 1);
                page->AddMapping();
                copy.Slot(index - lo) = page;
              });
        }
        entries.push_back(std::move(child));
      }
    }
    // The share entries are covered (Insert) only now, with no object
    // locked: the parent's shared task lock keeps their objects covered
    // meanwhile, so none of their pages can be freed.
    std::shared_ptr<Task> child;
    std::unique_lock<std::shared_mutex> child_lock;
    if (KernReturn kr = system.AddTask(name, &child, &child_lock);
        kr != KERN_SUCCESS) {
      return kr;
    }
    try {
      for (MapEntry& entry : entries) child->map().Insert(std::move(entry));
    } catch (...) {
      child->Terminate();
      system.RemoveTask(*child);
      throw;
    }
    *child_out = std::move(child);
    return KERN_SUCCESS;
  });
}

KernReturn task_terminate(VmSystem& system, Task& task) {
  return Guarded([&] {
    std::unique_lock lock(task.mu());
    if (task.terminated()) return KERN_INVALID_TASK;
    task.Terminate();
    system.RemoveTask(task);
    return KERN_SUCCESS;
  });
}

KernReturn task_statistics(Task& task, TaskStatistics* stats) {
  return Guarded([&] {
    std::shared_lock lock(task.mu());
    if (task.terminated()) return KERN_INVALID_TASK;
    const AddressMap& map = task.map();
    PageRange all;
    PageRange::Exact(map.geometry(), 0, map.geometry().limit, &all);
    ObjectLocks locks;
    locks.Add(map, all, /*exclusive=*/false);
    locks.LockAll();

    TaskStatistics s;
    map.ForEachRegion([&s](const RegionInfo&) { ++s.regions; });
    s.virtual_bytes = map.virtual_bytes();
    const std::uint64_t page_size = map.geometry().page_size();
    std::unordered_set<const Page*> counted;
    for (const auto& [start, entry] : map.entries()) {
      const VmObject& object = *entry.object;
      const std::uint64_t lo = entry.offset;
      const std::uint64_t hi =
          lo + ((entry.end - entry.start) >> map.geometry().page_shift);
      object.pages().ForEach(lo, hi, [&](std::uint64_t index, Page* page) {
        if (!counted.insert(page).second) return;
        s.resident_bytes += page_size;
        if (page->mappings() > 1 || object.CoverageAt(index) > 1) {
          s.shared_bytes += page_size;
        }
      });
    }
    // A page seen twice in this task is mapped at two addresses: shared.
    *stats = s;
    return KERN_SUCCESS;
  });
}

// --- memory ----------------------------------------------------------------

KernReturn vm_allocate(Task& task, vm_address_t* address, vm_size_t size,
                       bool anywhere) {
  return Guarded([&] {
    std::unique_lock lock(task.mu());
    if (task.terminated()) return KERN_INVALID_TASK;
    const Geometry& geometry = task.geometry();
    AddressMap& map = task.map();
    if (anywhere) {
      if (size == 0) {
        *address = 0;
        return KERN_SUCCESS;
      }
      const std::uint64_t mask = geometry.page_size() - 1;
      if (size > geometry.limit) return KERN_NO_SPACE;
      const vm_size_t rounded = (size + mask) & ~mask;
      vm_address_t start;
      if (KernReturn kr = map.FindSpace(rounded, &start); kr != KERN_SUCCESS) {
        return kr;
      }
      PageRange range;
      PageRange::Exact(geometry, start, rounded, &range);
      map.AllocateRange(range);
      *address = start;
      return KERN_SUCCESS;
    }
    if (size == 0) return KERN_SUCCESS;
    // Mach's vm_allocate rounds the address down and the size up, each on
    // its own: allocate(0x20fff, 2) is one page at 0x20000, not two.
    const std::uint64_t mask = geometry.page_size() - 1;
    if (size > ~std::uint64_t{0} - mask) return KERN_INVALID_ADDRESS;
    PageRange range;
    if (KernReturn kr = PageRange::Exact(geometry, *address & ~mask,
                                         (size + mask) & ~mask, &range);
        kr != KERN_SUCCESS) {
      return kr;
    }
    if (!map.IsFree(range)) return KERN_NO_SPACE;
    map.AllocateRange(range);
    *address = range.start();
    return KERN_SUCCESS;
  });
}

KernReturn vm_deallocate(Task& task, vm_address_t address, vm_size_t size) {
  return Guarded([&] {
    std::unique_lock lock(task.mu());
    if (task.terminated()) return KERN_INVALID_TASK;
    if (size == 0) return KERN_SUCCESS;
    PageRange range;
    if (KernReturn kr =
            PageRange::Rounded(task.geometry(), address, size, &range);
        kr != KERN_SUCCESS) {
      return kr;
    }
    task.map().Remove(range);
    return KERN_SUCCESS;
  });
}

KernReturn vm_protect(Task& task, vm_address_t address, vm_size_t size,
                      bool set_maximum, vm_prot_t new_prot) {
  return Guarded([&] {
    std::unique_lock lock(task.mu());
    if (task.terminated()) return KERN_INVALID_TASK;
    if ((new_prot & ~VM_PROT_ALL) != 0) return KERN_INVALID_ARGUMENT;
    if (size == 0) return KERN_SUCCESS;
    PageRange range;
    if (KernReturn kr =
            PageRange::Rounded(task.geometry(), address, size, &range);
        kr != KERN_SUCCESS) {
      return kr;
    }
    AddressMap& map = task.map();
    if (KernReturn kr = map.CheckRange(range,
                                       [new_prot](const MapEntry& entry) {
                                         return CheckProtectable(entry,
                                                                 new_prot);
                                       });
        kr != KERN_SUCCESS) {
      return kr;
    }
    map.ForEachClipped(range, [&](MapEntry& entry) {
      if (set_maximum) {
        entry.max_protection = new_prot;
        entry.protection &= new_prot;
      } else {
        entry.protection = new_prot;
      }
    });
    return KERN_SUCCESS;
  });
}

KernReturn vm_inherit(Task& task, vm_address_t address, vm_size_t size,
                      vm_inherit_t inheritance) {
  return Guarded([&] {
    std::unique_lock lock(task.mu());
    if (task.terminated()) return KERN_INVALID_TASK;
    if (inheritance > VM_INHERIT_NONE) return KERN_INVALID_ARGUMENT;
    if (size == 0) return KERN_SUCCESS;
    PageRange range;
    if (KernReturn kr =
            PageRange::Rounded(task.geometry(), address, size, &range);
        kr != KERN_SUCCESS) {
      return kr;
    }
    AddressMap& map = task.map();
    if (KernReturn kr =
            map.CheckRange(range, [](const MapEntry&) { return KERN_SUCCESS; });
        kr != KERN_SUCCESS) {
      return kr;
    }
    map.ForEachClipped(
        range, [&](MapEntry& entry) { entry.inheritance = inheritance; });
    return KERN_SUCCESS;
  });
}

KernReturn vm_region(Task& task, vm_address_t* address, RegionInfo* info) {
  return Guarded([&] {
    std::shared_lock lock(task.mu());
    if (task.terminated()) return KERN_INVALID_TASK;
    if (!task.map().RegionFrom(*address, info)) return KERN_NO_SPACE;
    *address = info->start;
    return KERN_SUCCESS;
  });
}

KernReturn vm_region_list(Task& task, std::vector<RegionInfo>* regions) {
  return Guarded([&] {
    std::shared_lock lock(task.mu());
    if (task.terminated()) return KERN_INVALID_TASK;
    regions->clear();
    task.map().ForEachRegion(
        [regions](const RegionInfo& info) { regions->push_back(info); });
    return KERN_SUCCESS;
  });
}

namespace {

// vm_read's checks, then visit(page) for each page of the range in address
// order (nullptr for a page never written), all under the task lock and the
// shared locks of the range's objects: one consistent snapshot.
template <typename Visit>
KernReturn ReadPages(Task& task, vm_address_t address, vm_size_t size,
                     Visit&& visit) {
  std::shared_lock lock(task.mu());
  if (task.terminated()) return KERN_INVALID_TASK;
  const Geometry& geometry = task.geometry();
  if (KernReturn kr = CheckAligned(geometry, {address, size});
      kr != KERN_SUCCESS) {
    return kr;
  }
  if (size == 0) return KERN_SUCCESS;
  PageRange range;
  if (KernReturn kr = PageRange::Exact(geometry, address, size, &range);
      kr != KERN_SUCCESS) {
    return kr;
  }
  // One walk of the map checks the range and finds its entries (the
  // hot path of every read request: lookups here are cache misses).
  thread_local std::vector<const MapEntry*> entries;
  entries.clear();
  const AddressMap& map = task.map();
  if (KernReturn kr =
          map.CheckRange(range,
                         [](const MapEntry& entry) {
                           if ((entry.protection & VM_PROT_READ) == 0) {
                             return KERN_PROTECTION_FAILURE;
                           }
                           entries.push_back(&entry);
                           return KERN_SUCCESS;
                         });
      kr != KERN_SUCCESS) {
    return kr;
  }
  ObjectLocks locks;
  for (const MapEntry* entry : entries) {
    locks.Add(entry->object.get(), /*exclusive=*/false);
  }
  locks.LockAll();
  const unsigned shift = geometry.page_shift;
  for (const MapEntry* entry : entries) {
    const vm_address_t from = std::max(entry->start, range.start());
    const vm_address_t to = std::min(entry->end, range.end());
    const std::uint64_t lo = entry->offset + ((from - entry->start) >> shift);
    entry->object->pages().Visit(lo, lo + ((to - from) >> shift), visit);
  }
  return KERN_SUCCESS;
}

}  // namespace

KernReturn vm_read(Task& task, vm_address_t address, vm_size_t size,
                   PinnedPages* out) {
  out->Release();
  return Guarded([&] {
    PinnedPagesBuilder builder(out, task.geometry().page_size());
    const std::byte* zero = task.system().pages().zero_page();
    try {
      return ReadPages(task, address, size,
                       [&](Page* page) { builder.Add(page, zero); });
    } catch (...) {
      out->Release();
      throw;
    }
  });
}

KernReturn vm_read(Task& task, vm_address_t address, vm_size_t size,
                   void* buffer) {
  return Guarded([&] {
    const std::size_t page_size = task.geometry().page_size();
    const std::byte* zero = task.system().pages().zero_page();
    auto* out = static_cast<std::byte*>(buffer);
    // Copied under the object locks: no pins, nothing to release.
    return ReadPages(task, address, size, [&](Page* page) {
      std::memcpy(out, page != nullptr ? page->data() : zero, page_size);
      out += page_size;
    });
  });
}

KernReturn vm_write(Task& task, vm_address_t address, const void* data,
                    vm_size_t size) {
  return Guarded([&] {
    std::shared_lock lock(task.mu());
    if (task.terminated()) return KERN_INVALID_TASK;
    const Geometry& geometry = task.geometry();
    if (KernReturn kr = CheckAligned(geometry, {address, size});
        kr != KERN_SUCCESS) {
      return kr;
    }
    if (size == 0) return KERN_SUCCESS;
    PageRange range;
    if (KernReturn kr = PageRange::Exact(geometry, address, size, &range);
        kr != KERN_SUCCESS) {
      return kr;
    }
    if (KernReturn kr = task.map().CheckAccess(range, VM_PROT_WRITE);
        kr != KERN_SUCCESS) {
      return kr;
    }
    const auto* bytes = static_cast<const std::byte*>(data);
    if (size >= kStreamBytes) {
      return WriteBytes(task.system(), task.map(), address, size,
                        [bytes](std::byte* dst, vm_size_t offset, vm_size_t n) {
                          StreamCopy(dst, bytes + offset, n);
                        });
    }
    return WriteBytes(task.system(), task.map(), address, size,
                      [bytes](std::byte* dst, vm_size_t offset, vm_size_t n) {
                        std::memcpy(dst, bytes + offset, n);
                      });
  });
}

KernReturn vm_copy(Task& task, vm_address_t source, vm_size_t size,
                   vm_address_t dest) {
  return Guarded([&] {
    std::shared_lock lock(task.mu());
    if (task.terminated()) return KERN_INVALID_TASK;
    const Geometry& geometry = task.geometry();
    if (KernReturn kr = CheckAligned(geometry, {source, size, dest});
        kr != KERN_SUCCESS) {
      return kr;
    }
    if (size == 0) return KERN_SUCCESS;
    PageRange src_range, dst_range;
    if (KernReturn kr = PageRange::Exact(geometry, source, size, &src_range);
        kr != KERN_SUCCESS) {
      return kr;
    }
    if (KernReturn kr = PageRange::Exact(geometry, dest, size, &dst_range);
        kr != KERN_SUCCESS) {
      return kr;
    }
    const AddressMap& map = task.map();
    if (KernReturn kr = map.CheckAccess(src_range, VM_PROT_READ);
        kr != KERN_SUCCESS) {
      return kr;
    }
    if (KernReturn kr = map.CheckAccess(dst_range, VM_PROT_WRITE);
        kr != KERN_SUCCESS) {
      return kr;
    }
    CopyPages(map, src_range, map, dst_range);
    return KERN_SUCCESS;
  });
}

KernReturn vm_map_copy(Task& dst_task, vm_address_t dest, Task& src_task,
                       vm_address_t source, vm_size_t size, bool dst_alloc,
                       bool src_destroy) {
  return Guarded([&] {
    TaskLocks locks(dst_task, dst_alloc, src_task, src_destroy);
    if (dst_task.terminated() || src_task.terminated()) {
      return KERN_INVALID_TASK;
    }
    const Geometry& geometry = dst_task.geometry();
    if (KernReturn kr = CheckAligned(geometry, {source, size, dest});
        kr != KERN_SUCCESS) {
      return kr;
    }
    if (size == 0) return KERN_SUCCESS;
    PageRange src_range, dst_range;
    if (KernReturn kr = PageRange::Exact(geometry, source, size, &src_range);
        kr != KERN_SUCCESS) {
      return kr;
    }
    if (KernReturn kr = PageRange::Exact(geometry, dest, size, &dst_range);
        kr != KERN_SUCCESS) {
      return kr;
    }
    AddressMap& src_map = src_task.map();
    AddressMap& dst_map = dst_task.map();
    if (KernReturn kr = src_map.CheckAccess(src_range, VM_PROT_READ);
        kr != KERN_SUCCESS) {
      return kr;
    }
    if (dst_alloc) {
      if (!dst_map.IsFree(dst_range)) return KERN_NO_SPACE;
      // New regions with the source's attributes over one new object.
      std::vector<MapEntry> pieces;
      auto object = std::make_shared<VmObject>();
      for (auto it = src_map.EntryFrom(src_range.start());
           it != src_map.entries().end() && it->second.start < src_range.end();
           ++it) {
        const vm_address_t lo = std::max(it->second.start, src_range.start());
        const vm_address_t hi = std::min(it->second.end, src_range.end());
        MapEntry piece = it->second;
        piece.start = dst_range.start() + (lo - src_range.start());
        piece.end = dst_range.start() + (hi - src_range.start());
        piece.object = object;
        piece.offset = (lo - src_range.start()) >> geometry.page_shift;
        pieces.push_back(std::move(piece));
      }
      try {
        for (MapEntry& piece : pieces) dst_map.Insert(std::move(piece));
        CopyPages(src_map, src_range, dst_map, dst_range);
      } catch (...) {
        dst_map.Remove(dst_range);
        throw;
      }
    } else {
      if (KernReturn kr = dst_map.CheckAccess(dst_range, VM_PROT_WRITE);
          kr != KERN_SUCCESS) {
        return kr;
      }
      CopyPages(src_map, src_range, dst_map, dst_range);
    }
    if (src_destroy) src_map.Remove(src_range);
    return KERN_SUCCESS;
  });
}

namespace {

template <typename Produce>
KernReturn LoadBytes(Task& task, vm_address_t address, vm_size_t size,
                     Produce&& produce) {
  return Guarded([&] {
    std::shared_lock lock(task.mu());
    if (task.terminated()) return KERN_INVALID_TASK;
    if (size == 0) return KERN_SUCCESS;
    PageRange range;
    if (KernReturn kr =
            PageRange::Rounded(task.geometry(), address, size, &range);
        kr != KERN_SUCCESS) {
      return kr;
    }
    if (KernReturn kr = task.map().CheckRange(
            range, [](const MapEntry&) { return KERN_SUCCESS; });
        kr != KERN_SUCCESS) {
      return kr;
    }
    return WriteBytes(task.system(), task.map(), address, size, produce);
  });
}

}  // namespace

KernReturn vm_load(Task& task, vm_address_t address, const void* data,
                   vm_size_t size) {
  const auto* bytes = static_cast<const std::byte*>(data);
  return LoadBytes(task, address, size,
                   [bytes](std::byte* dst, vm_size_t offset, vm_size_t n) {
                     std::memcpy(dst, bytes + offset, n);
                   });
}

KernReturn vm_fill(Task& task, vm_address_t address, vm_size_t size,
                   unsigned char byte) {
  return LoadBytes(task, address, size,
                   [byte](std::byte* dst, vm_size_t, vm_size_t n) {
                     std::memset(dst, byte, n);
                   });
}

KernReturn vm_find_data(Task& task, vm_address_t from, vm_address_t* found) {
  return Guarded([&] {
    std::shared_lock lock(task.mu());
    if (task.terminated()) return KERN_INVALID_TASK;
    const AddressMap& map = task.map();
    auto it = map.EntryFrom(from);
    if (it == map.entries().end()) return KERN_NO_SPACE;
    *found = std::max(from, it->second.start);
    return KERN_SUCCESS;
  });
}

KernReturn vm_find_hole(Task& task, vm_address_t from, vm_address_t* found) {
  return Guarded([&] {
    std::shared_lock lock(task.mu());
    if (task.terminated()) return KERN_INVALID_TASK;
    const AddressMap& map = task.map();
    vm_address_t address = from;
    for (auto it = map.EntryFrom(from);
         it != map.entries().end() && it->second.start <= address; ++it) {
      address = it->second.end;
    }
    *found = std::min(address, map.geometry().limit);
    return KERN_SUCCESS;
  });
}

}  // namespace taskfs::vm
