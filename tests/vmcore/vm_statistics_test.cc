// task_statistics' walk.
#include "vmcore/vm_statistics.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "tests/vmcore/engine_test_util.h"
#include "vmcore/page_allocator.h"
#include "vmcore/vm_copy.h"
#include "vmcore/vm_fork.h"

namespace {

// What this thread has allocated with operator new while counting: so a
// test can see what one call needs.
thread_local bool counting = false;
thread_local std::size_t counted_bytes = 0;

// Out of line, so that the compiler does not pair the frees below with
// operator new's call.
[[gnu::noinline]] void* CountedMalloc(std::size_t size,
                                      std::size_t align = 0) noexcept {
  if (counting) counted_bytes += size;
  if (align <= alignof(std::max_align_t)) {
    return std::malloc(size == 0 ? 1 : size);
  }
  void* p = nullptr;
  return posix_memalign(&p, align, size == 0 ? 1 : size) == 0 ? p : nullptr;
}
[[gnu::noinline]] void Free(void* p) noexcept { std::free(p); }

void* CountedOrThrow(std::size_t size, std::size_t align = 0) {
  if (void* p = CountedMalloc(size, align)) return p;
  throw std::bad_alloc();
}

}  // namespace

// For the whole of vmcore_tests: plain malloc, counted on a thread that asks.
// Every form is replaced, so that each allocation and its release meet in
// the same allocator (AddressSanitizer checks that they do).
void* operator new(std::size_t size) { return CountedOrThrow(size); }
void* operator new[](std::size_t size) { return CountedOrThrow(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return CountedMalloc(size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return CountedMalloc(size);
}
void* operator new(std::size_t size, std::align_val_t align) {
  return CountedOrThrow(size, static_cast<std::size_t>(align));
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return CountedOrThrow(size, static_cast<std::size_t>(align));
}
void* operator new(std::size_t size, std::align_val_t align,
                   const std::nothrow_t&) noexcept {
  return CountedMalloc(size, static_cast<std::size_t>(align));
}
void* operator new[](std::size_t size, std::align_val_t align,
                     const std::nothrow_t&) noexcept {
  return CountedMalloc(size, static_cast<std::size_t>(align));
}
void operator delete(void* p) noexcept { Free(p); }
void operator delete[](void* p) noexcept { Free(p); }
void operator delete(void* p, std::size_t) noexcept { Free(p); }
void operator delete[](void* p, std::size_t) noexcept { Free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { Free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { Free(p); }
void operator delete(void* p, std::align_val_t) noexcept { Free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { Free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  Free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  Free(p);
}
void operator delete(void* p, std::align_val_t,
                     const std::nothrow_t&) noexcept {
  Free(p);
}
void operator delete[](void* p, std::align_val_t,
                       const std::nothrow_t&) noexcept {
  Free(p);
}

namespace taskfs::vm {
namespace {

// The engine tests' helpers (engine_test_util.h).
using namespace engine_test;  // NOLINT(build/namespaces)

// What the budget holds beyond the live pages and the allocator's own
// memory (its freed pages kept for reuse, its slab records): the tasks' maps
// and page tables, and their records.
std::uint64_t ChargedBeyondPages(VmSystem& system) {
  return system.budget().used() - system.pages().own_bytes() -
         system.pages().live_pages() * kPage;
}

// A task's metadata_bytes as task_statistics reports it: its map and
// objects (MapStatistics) and its record.
std::uint64_t MetadataBytes(const Task& task) {
  return MapStatistics(task.map()).metadata_bytes + task.account().held();
}

TEST(VmStatisticsTest, EmptyMap) {
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  const TaskStatistics s = MapStatistics(task->map());
  EXPECT_EQ(s.regions, 0u);
  EXPECT_EQ(s.virtual_bytes, 0u);
  EXPECT_EQ(s.resident_bytes, 0u);
  EXPECT_EQ(s.shared_bytes, 0u);
}

TEST(VmStatisticsTest, CountsRegionsResidentAndSharedPages) {
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  AddressMap& map = task->map();
  map.AllocateRange(R(map, 0, 4 * kPage));
  map.AllocateRange(R(map, 8 * kPage, kPage));
  map.SetProtection(R(map, 8 * kPage, kPage), VM_PROT_READ, false);
  ASSERT_EQ(Fill(*system, map, 0, 2 * kPage, 'a'), KERN_SUCCESS);
  TaskStatistics s = MapStatistics(map);
  EXPECT_EQ(s.regions, 2u);
  EXPECT_EQ(s.virtual_bytes, 5 * kPage);
  EXPECT_EQ(s.resident_bytes, 2 * kPage);
  EXPECT_EQ(s.shared_bytes, 0u);
  // A copy within the task: the page is mapped twice, counted once, shared.
  CopyOverwrite(map, R(map, 0, kPage), map, R(map, 3 * kPage, kPage));
  s = MapStatistics(map);
  EXPECT_EQ(s.resident_bytes, 2 * kPage);
  EXPECT_EQ(s.shared_bytes, kPage);
}

// A page shared with another task is resident here and shared.
TEST(VmStatisticsTest, PageOfAnotherTaskIsShared) {
  auto system = MakeSystem();
  auto a = MakeTask(*system, "a");
  auto b = MakeTask(*system, "b");
  a->map().AllocateRange(R(a->map(), 0, kPage));
  b->map().AllocateRange(R(b->map(), 0, kPage));
  ASSERT_EQ(Fill(*system, a->map(), 0, kPage, 'a'), KERN_SUCCESS);
  CopyOverwrite(a->map(), R(a->map(), 0, kPage), b->map(),
                R(b->map(), 0, kPage));
  EXPECT_EQ(MapStatistics(b->map()).shared_bytes, kPage);
  EXPECT_EQ(MapStatistics(a->map()).shared_bytes, kPage);
}

// docs/reference.md §7 through a copy within one task and a write on each side
// of it: resident_bytes counts each written page once however many addresses
// show it, shared_bytes the part shown at more than one, and metadata_bytes is
// all the budget holds for the task beyond its pages (one task: nothing is
// counted twice, nothing left out). The ranges cross a chunk boundary (512
// pages) and the copy covers a whole chunk. Freeing both sides gives back
// every page and every byte of metadata.
TEST(VmStatisticsTest, CopyThenAWriteOnEachSideThenFreeingBoth) {
  constexpr std::uint64_t kPages = 1024;
  constexpr vm_address_t kSrc = 0;
  constexpr vm_address_t kDst = 4096 * kPage;
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  AddressMap& map = task->map();
  const std::uint64_t live_at_start = system->pages().live_pages();
  const std::uint64_t charged_at_start = ChargedBeyondPages(*system);
  ASSERT_EQ(charged_at_start, MetadataBytes(*task));

  auto expect = [&](const char* when, std::uint64_t resident,
                    std::uint64_t shared, std::uint64_t live) {
    SCOPED_TRACE(when);
    const TaskStatistics s = MapStatistics(map);
    EXPECT_EQ(s.resident_bytes, resident * kPage);
    EXPECT_EQ(s.shared_bytes, shared * kPage);
    EXPECT_EQ(system->pages().live_pages(), live_at_start + live);
    EXPECT_EQ(MetadataBytes(*task), ChargedBeyondPages(*system));
  };

  map.AllocateRange(R(map, kSrc, kPages * kPage));
  map.AllocateRange(R(map, kDst, kPages * kPage));
  // Three entries over the destination's one object, counted once.
  map.SetProtection(R(map, kDst + 900 * kPage, kPage), VM_PROT_READ, false);
  expect("allocated", 0, 0, 0);
  // The source's pages 0, 1, 511 and 512 (either side of the chunk
  // boundary); the destination's page 1, which the copy replaces, and page
  // 1000, which it does not reach.
  for (const std::uint64_t p : {0, 1, 511, 512}) {
    ASSERT_EQ(Fill(*system, map, kSrc + p * kPage, kPage, 'a'), KERN_SUCCESS);
  }
  ASSERT_EQ(Fill(*system, map, kDst + kPage, kPage, 'x'), KERN_SUCCESS);
  ASSERT_EQ(Fill(*system, map, kDst + 1000 * kPage, kPage, 'y'), KERN_SUCCESS);
  expect("written", 6, 0, 6);

  // [0, 513) onto the destination: the four written pages are now shown
  // twice, counted once, and shared; the replaced page is freed.
  CopyOverwrite(map, R(map, kSrc, 513 * kPage), map, R(map, kDst, 513 * kPage));
  expect("copied", 5, 4, 5);
  EXPECT_EQ(Pages(*system, map, kDst, 2), "aa");
  EXPECT_EQ(Pages(*system, map, kDst + 511 * kPage, 2), "aa");

  // A write on the destination side copies its page: the source's stays,
  // no longer shared.
  ASSERT_EQ(Fill(*system, map, kDst + 511 * kPage, kPage, 'd'), KERN_SUCCESS);
  expect("destination written", 6, 3, 6);
  // And one on the source side, of another page.
  ASSERT_EQ(Fill(*system, map, kSrc + 512 * kPage, kPage, 's'), KERN_SUCCESS);
  expect("source written", 7, 2, 7);
  EXPECT_EQ(Pages(*system, map, kSrc + 511 * kPage, 2), "as");
  EXPECT_EQ(Pages(*system, map, kDst + 511 * kPage, 2), "da");
  EXPECT_EQ(Pages(*system, map, kSrc, 2), "aa");
  EXPECT_EQ(Pages(*system, map, kDst, 2), "aa");

  map.Remove(R(map, kDst, kPages * kPage));
  expect("destination freed", 4, 0, 4);
  map.Remove(R(map, kSrc, kPages * kPage));
  expect("both freed", 0, 0, 0);
  const TaskStatistics s = MapStatistics(map);
  EXPECT_EQ(s.regions, 0u);
  EXPECT_EQ(s.virtual_bytes, 0u);
  EXPECT_EQ(ChargedBeyondPages(*system), charged_at_start);
  // What the allocator keeps of the freed pages it gives back on demand,
  // but for the one slab it keeps for the next page.
  system->pages().Reclaim();
  EXPECT_LE(system->pages().own_bytes(), PageAllocator::SlabCharge());
}

// The same across two tasks: each counts the pages it shows, shared while
// the other task shows them too. A task's metadata_bytes may count memory
// that another task's counts as well (docs/reference.md §7: what is held for
// its map and page tables), so together they account for at least what is held.
TEST(VmStatisticsTest, CopyToAnotherTaskThenAWriteOnEachSide) {
  auto system = MakeSystem();
  auto a = MakeTask(*system, "a");
  auto b = MakeTask(*system, "b");
  const std::uint64_t charged_at_start = ChargedBeyondPages(*system);
  auto expect = [&](const char* when, std::uint64_t a_resident,
                    std::uint64_t a_shared, std::uint64_t b_resident,
                    std::uint64_t b_shared, std::uint64_t live) {
    SCOPED_TRACE(when);
    const TaskStatistics sa = MapStatistics(a->map());
    const TaskStatistics sb = MapStatistics(b->map());
    EXPECT_EQ(sa.resident_bytes, a_resident * kPage);
    EXPECT_EQ(sa.shared_bytes, a_shared * kPage);
    EXPECT_EQ(sb.resident_bytes, b_resident * kPage);
    EXPECT_EQ(sb.shared_bytes, b_shared * kPage);
    EXPECT_EQ(system->pages().live_pages(), live);
    EXPECT_GE(MetadataBytes(*a) + MetadataBytes(*b),
              ChargedBeyondPages(*system));
  };
  a->map().AllocateRange(R(a->map(), 0, 600 * kPage));
  b->map().AllocateRange(R(b->map(), 0, 600 * kPage));
  for (const std::uint64_t p : {0, 511, 512}) {
    ASSERT_EQ(Fill(*system, a->map(), p * kPage, kPage, 'a'), KERN_SUCCESS);
  }
  CopyOverwrite(a->map(), R(a->map(), 0, 600 * kPage), b->map(),
                R(b->map(), 0, 600 * kPage));
  expect("copied", 3, 3, 3, 3, 3);
  ASSERT_EQ(Fill(*system, b->map(), 0, kPage, 'b'), KERN_SUCCESS);
  expect("b written", 3, 2, 3, 2, 4);
  ASSERT_EQ(Fill(*system, a->map(), 511 * kPage, kPage, 'c'), KERN_SUCCESS);
  expect("a written", 3, 1, 3, 1, 5);
  EXPECT_EQ(Pages(*system, a->map(), 0, 1), "a");
  EXPECT_EQ(Pages(*system, b->map(), 511 * kPage, 2), "aa");
  EXPECT_EQ(Pages(*system, a->map(), 511 * kPage, 2), "ca");

  b->map().Remove(R(b->map(), 0, 600 * kPage));
  expect("b freed", 3, 0, 0, 0, 3);
  a->map().Remove(R(a->map(), 0, 600 * kPage));
  expect("both freed", 0, 0, 0, 0, 0);
  EXPECT_EQ(ChargedBeyondPages(*system), charged_at_start);
}

// A task with an aligned copy of its pages (which shares whole leaves) and
// one a page off (which maps the pages again, slot by slot), and its fork,
// which inherits the aligned copy shared (the same object, each index
// covered by both tasks' entries) and the rest copied (the page tables
// shared): every page is reached several ways.
std::shared_ptr<Task> SharedEveryWay(VmSystem& system, Task& task,
                                     std::uint64_t pages) {
  AddressMap& map = task.map();
  map.AllocateRange(R(map, 0, 4 * pages * kPage));
  EXPECT_EQ(Fill(system, map, 0, pages * kPage, 'a'), KERN_SUCCESS);
  CopyOverwrite(map, R(map, 0, pages * kPage), map,
                R(map, pages * kPage, pages * kPage));
  CopyOverwrite(map, R(map, 0, pages * kPage), map,
                R(map, (2 * pages + 1) * kPage, pages * kPage));
  map.SetInheritance(R(map, pages * kPage, pages * kPage), VM_INHERIT_SHARE);
  std::shared_lock lock(task.mu());
  KernResult<std::shared_ptr<Task>> child = ForkTask(system, task, "child");
  EXPECT_EQ(child.code(), KERN_SUCCESS);
  return child.ok() ? child.value() : nullptr;
}

// Each page counts once, and a walk counts the same however many walks (of
// either task) came before it.
TEST(VmStatisticsTest, PagesReachedManyWaysCountOnceInEveryWalk) {
  constexpr std::uint64_t kPages = 2048;  // four leaves
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  auto child = SharedEveryWay(*system, *task, kPages);
  ASSERT_NE(child, nullptr);
  for (int walk = 0; walk < 3; ++walk) {
    for (const Task* t : {task.get(), child.get()}) {
      const TaskStatistics s = MapStatistics(t->map());
      EXPECT_EQ(s.resident_bytes, kPages * kPage);
      EXPECT_EQ(s.shared_bytes, kPages * kPage);
      EXPECT_EQ(s.virtual_bytes, 4 * kPages * kPage);
    }
  }
  // One task alone: every byte it holds beyond its pages, counted once.
  system->RemoveTask(*child);
  child.reset();
  EXPECT_EQ(MetadataBytes(*task), ChargedBeyondPages(*system));
  const TaskStatistics s = MapStatistics(task->map());
  EXPECT_EQ(s.resident_bytes, kPages * kPage);
  EXPECT_EQ(s.shared_bytes, kPages * kPage);
}

// Walks of both tasks on eight threads at once each see the figures one
// walk alone sees.
TEST(VmStatisticsTest, ConcurrentWalksAgree) {
  constexpr std::uint64_t kPages = 1536;
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  auto child = SharedEveryWay(*system, *task, kPages);
  ASSERT_NE(child, nullptr);
  const TaskStatistics alone = MapStatistics(task->map());
  const TaskStatistics child_alone = MapStatistics(child->map());
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      const Task& t = i % 2 == 0 ? *task : *child;
      const TaskStatistics& expect = i % 2 == 0 ? alone : child_alone;
      for (int n = 0; n < 50; ++n) {
        std::shared_lock lock(t.mu());
        const TaskStatistics s = MapStatistics(t.map());
        if (s.resident_bytes != expect.resident_bytes ||
            s.shared_bytes != expect.shared_bytes ||
            s.metadata_bytes != expect.metadata_bytes) {
          ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

// The bytes one MapStatistics call allocates.
std::size_t WalkAllocates(const Task& task) {
  counted_bytes = 0;
  counting = true;
  const TaskStatistics s = MapStatistics(task.map());
  counting = false;
  EXPECT_GT(s.shared_bytes, 0u);
  return counted_bytes;
}

// What a walk allocates does not grow with the pages it counts: 16 times
// the shared pages, the same bytes.
TEST(VmStatisticsTest, AWalkNeedsNoMemoryPerPage) {
  auto system = MakeSystem();
  auto small = MakeTask(*system, "small");
  auto small_child = SharedEveryWay(*system, *small, 512);
  ASSERT_NE(small_child, nullptr);
  system->RemoveTask(*small_child);
  auto large = MakeTask(*system, "large");
  auto large_child = SharedEveryWay(*system, *large, 16 * 512);
  ASSERT_NE(large_child, nullptr);
  // The first walk on a thread may set up what its thread keeps for every
  // later call (the lock list); that is not per page.
  WalkAllocates(*small);
  const std::size_t for_small = WalkAllocates(*small);
  const std::size_t for_large = WalkAllocates(*large);
  EXPECT_EQ(for_large, for_small);
  EXPECT_LT(for_large, 4096u);
}

// Nor with the regions split from one: 4,096 of them cost what 16 do.
TEST(VmStatisticsTest, AWalkNeedsNoMemoryPerSplitRegion) {
  auto system = MakeSystem();
  auto few = MakeTask(*system, "few");
  auto many = MakeTask(*system, "many");
  for (const auto& [task, regions] :
       {std::pair{few.get(), 16u}, std::pair{many.get(), 4096u}}) {
    AddressMap& map = task->map();
    map.AllocateRange(R(map, 0, 2 * regions * kPage));
    ASSERT_EQ(Fill(*system, map, 0, 2 * regions * kPage, 'r'), KERN_SUCCESS);
    CopyOverwrite(map, R(map, 0, kPage), map, R(map, kPage, kPage));
    for (std::uint64_t p = 1; p < 2 * regions; p += 2) {
      map.SetProtection(R(map, p * kPage, kPage), VM_PROT_READ, false);
    }
    ASSERT_EQ(MapStatistics(map).regions, 2 * regions);
  }
  EXPECT_EQ(WalkAllocates(*many), WalkAllocates(*few));
}

}  // namespace
}  // namespace taskfs::vm
