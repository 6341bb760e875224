// Benchmarks of the VM core through its Mach facade (vmcore/vm_user.h).
//
// Every figure is for one thread on an otherwise idle machine, 4 KiB pages.
// The table Google Benchmark prints is followed by a short list of the
// figures that have a stated goal, with the goal and whether it was met.
//
//   BM_VmRead/N           zero-copy vm_read (PinnedPages, then Release) of N
//                         bytes of written memory, cycling through a 1 GiB
//                         written region. bytes_per_second is the rate at
//                         which bytes become readable by the caller without
//                         being copied; iov_per_read is the average number of
//                         iovecs a read returns (pages written together sit
//                         side by side in their slab and merge into one).
//   BM_VmReadCopy/N       the same through the buffer variant of vm_read,
//                         which copies the bytes out under the object locks
//                         instead of pinning (memory-bandwidth bound: the
//                         source streams through 1 GiB).
//   BM_VmWrite/N          vm_write of N bytes over resident, exclusively
//                         owned pages of the same region: the steady state,
//                         written in place. new_pages counts pages allocated
//                         during the timed loop; it must be 0.
//   BM_VmCopy1GiB         vm_copy of 1 GiB of written memory to another
//                         allocated region. The time is per copy; the
//                         destination is re-made, untimed, before each one.
//                         virtual_bytes_per_second is bytes copied per
//                         second of copy (a virtual copy: no byte moves).
//                         resident_growth_MiB is the task's resident growth
//                         (task_statistics): 0, the copy shares its pages.
//                         shared_MiB is the resident memory now mapped twice
//                         (1024). rss_growth_MiB is the process's growth: the
//                         destination's page table, not page contents.
//   BM_VmCopy1GiBOntoWritten
//                         the same copy onto a destination that already
//                         holds 1 GiB of written pages (written again,
//                         untimed, before each copy); the time is the
//                         vm_copy alone. resident_MiB: the task's resident
//                         memory after it (1024: the destination's own pages
//                         are freed).
//   BM_TaskFork1GiB       task_fork of the task holding the written GiB
//                         (one region, inheritance copy); the fork is
//                         terminated, untimed, after each.
//   BM_TaskTerminateFork1GiB
//                         the termination of that fork (task_terminate and
//                         the release of the last reference: what rmdir of
//                         its directory costs); the fork is made untimed.
//   BM_VmMapCopy1GiBFromTask/A
//                         vm_map_copy of the written GiB from its task into
//                         a fresh range of another task, as ctl's
//                         `copy-from` does: A=1 with dst_alloc (the copy maps
//                         an unallocated range, `copy-from ... alloc`), A=0
//                         onto an allocated, never written range.
//   BM_VmReadRandomPage1GiB
//                         a 4 KiB zero-copy vm_read (pin, release) of a
//                         random page of 1 GiB written memory: the page-table
//                         lookup and the pin with cold caches, as a random
//                         4 KiB read through the mount sees them.
//   BM_VmReadRandomPageAfter1000Copies
//                         the same 4 KiB reads of a 1 GiB range that is the
//                         last of 1,000 nested copies (R0 -> R1 -> ... ->
//                         R1000 in one task), and of a written range never
//                         copied, in turn: nested_ns, uncopied_ns and their
//                         ratio (goal: 1, a chain costs reads nothing).
//                         chain_s: the 1,000 vm_copys; metadata_MiB: the
//                         task's metadata after them.
//   BM_VmRegionLookup     vm_region at random addresses of a task holding
//                         100,000 regions. Goal: <= 2 us per lookup.
//   BM_VmReadLookup100kRegions
//                         a 4 KiB zero-copy vm_read at a random region of
//                         that task.
//   BM_VmAllocateUnder4Readers
//                         vm_allocate of one page while 4 threads loop 1 MiB
//                         vm_reads of the same task into buffers: the
//                         latency (wall clock) a map change waits for the
//                         task's lock under reader load, with its p50, p99
//                         and max, and the readers' rate meanwhile.
//   BM_Allocate1TiB       a new VmSystem (47 address bits) and task, a 1 TiB
//                         vm_allocate and a one-page vm_write into it. rss_MiB
//                         is the largest process RSS growth over the
//                         iterations. Goal: <= 16 MiB (untouched memory
//                         costs nothing but one map entry).
//   BM_ResidentOverhead256MiB
//                         writes 256 MiB into a fresh task. overhead_pct is
//                         (RSS growth - 256 MiB) / 256 MiB in percent: what
//                         the core spends on bookkeeping (page records, page
//                         tables) per byte held. bytes_per_second is the
//                         first-touch write rate.
//   BM_DoublingCopies     one region of 2^44 bytes with the first page of
//                         its first MiB written; vm_copy of [0, 2^k) onto
//                         [2^k, 2^(k+1)) for k = 20..43 under a 512 MiB
//                         memory limit, until one is refused: k_reached,
//                         the task's metadata_bytes and resident_bytes after
//                         each copy (the figures list some), the time of the
//                         copies.
//
// RSS figures come from /proc/self/statm, each read after malloc_trim(0), so
// that neither memory freed earlier and reused nor memory freed but not yet
// returned to the system distorts them.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/vmcore/take_result.h"
#include "vmcore/kern_return.h"
#include "vmcore/pinned_pages.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_types.h"
#include "vmcore/vm_user.h"

namespace taskfs::vm {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;
constexpr std::uint64_t kTiB = std::uint64_t{1} << 40;

// --- helpers ---------------------------------------------------------------

// The process's resident set in bytes, from /proc/self/statm, after giving
// freed heap memory back to the system.
std::uint64_t ResidentBytes() {
  malloc_trim(0);
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size_pages = 0;
  std::uint64_t resident_pages = 0;
  statm >> size_pages >> resident_pages;
  return resident_pages * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

double ToMiB(double bytes) { return bytes / static_cast<double>(kMiB); }

// Marks the benchmark failed with a readable reason. Returns false on
// failure, so callers can write `if (!Ok(...)) return;`.
bool Ok(benchmark::State& state, KernReturn kr, std::string_view what) {
  if (kr == KERN_SUCCESS) return true;
  const std::string message =
      std::string(what) + ": " + std::string(KernReturnName(kr));
  state.SkipWithError(message.c_str());
  return false;
}

// A VmSystem with one task. Torn down task first, then the system, since a
// task's map frees its pages into the system's allocator.
class Space {
 public:
  Space() = default;
  Space(const Space&) = delete;
  Space& operator=(const Space&) = delete;
  ~Space() { Reset(); }

  // A fresh system and its task; memory_limit 0 is none.
  KernReturn Make(unsigned address_bits, std::uint64_t memory_limit = 0) {
    Reset();
    VmConfig config;
    config.page_size = kPage;
    config.address_bits = address_bits;
    config.memory_limit = memory_limit;
    system_ = std::make_unique<VmSystem>(config);
    return Take(task_create(*system_, "bench"), &task_);
  }
  void Reset() {
    if (task_ != nullptr) task_terminate(*system_, *task_);
    task_.reset();
    system_.reset();
  }

  // Require a successful Make().
  VmSystem& system() const { return *system_; }
  Task& task() const { return *task_; }

 private:
  std::unique_ptr<VmSystem> system_;
  std::shared_ptr<Task> task_;
};

// vm_allocate of [address, address + size).
KernReturn AllocateAt(Task& task, vm_address_t address, vm_size_t size) {
  return vm_allocate(task, &address, size, false);
}

// Writes size bytes (a page multiple) at address in 1 MiB vm_writes.
KernReturn WriteRange(Task& task, vm_address_t address, vm_size_t size,
                      unsigned char byte) {
  const std::vector<unsigned char> data(kMiB, byte);
  for (vm_size_t done = 0; done < size;) {
    const vm_size_t n = std::min<vm_size_t>(kMiB, size - done);
    if (KernReturn kr = vm_write(task, address + done, data.data(), n);
        kr != KERN_SUCCESS) {
      return kr;
    }
    done += n;
  }
  return KERN_SUCCESS;
}

// True if sampled pages of [b, b + size) in task_b hold the same bytes as
// the pages at the same offsets of [a, a + size) in task_a: the first, the
// last and `samples` pseudo-random ones in between. size is a page multiple.
bool SamePages(Task& task_a, vm_address_t a, Task& task_b, vm_address_t b,
               vm_size_t size, int samples = 16) {
  std::mt19937_64 random(size);
  std::vector<unsigned char> page_a(kPage), page_b(kPage);
  const std::uint64_t pages = size / kPage;
  for (int i = 0; i < samples + 2; ++i) {
    const std::uint64_t page = i == 0   ? 0
                               : i == 1 ? pages - 1
                                        : random() % pages;
    if (vm_read(task_a, a + page * kPage,
                std::as_writable_bytes(std::span(page_a))) != KERN_SUCCESS ||
        vm_read(task_b, b + page * kPage,
                std::as_writable_bytes(std::span(page_b))) != KERN_SUCCESS ||
        page_a != page_b) {
      return false;
    }
  }
  return true;
}

// --- figures with goals, printed after the table ----------------------------

struct Figure {
  std::string label;
  double value;
  std::string unit;
  double goal;  // the figure must be <= goal; NaN when there is none
};

std::vector<Figure>& Figures() {
  static auto* const figures = new std::vector<Figure>;
  return *figures;
}

// Records a figure; a later run of the same benchmark (Google Benchmark runs
// a body several times while it settles on an iteration count) replaces it,
// so the list ends up describing the runs the table reports.
void RecordFigure(const std::string& label, double value,
                  const std::string& unit,
                  double goal = std::numeric_limits<double>::quiet_NaN()) {
  for (Figure& figure : Figures()) {
    if (figure.label == label) {
      figure = Figure{label, value, unit, goal};
      return;
    }
  }
  Figures().push_back(Figure{label, value, unit, goal});
}

void PrintFigures(std::ostream& out) {
  if (Figures().empty()) return;
  out << "\nFigures with goals:\n";
  for (const Figure& figure : Figures()) {
    char line[256];
    if (std::isnan(figure.goal)) {
      std::snprintf(line, sizeof(line), "  %-44s %12.3f %s\n",
                    figure.label.c_str(), figure.value, figure.unit.c_str());
    } else {
      std::snprintf(
          line, sizeof(line), "  %-44s %12.3f %-8s goal <= %g %s: %s\n",
          figure.label.c_str(), figure.value, figure.unit.c_str(), figure.goal,
          figure.unit.c_str(), figure.value <= figure.goal ? "met" : "MISSED");
    }
    out << line;
  }
}

// --- fixture: 1 GiB of written memory ----------------------------------------

// One task whose [kSource, kSource + 1 GiB) is allocated and written. Built
// once, on first use, and kept (never destroyed) for the rest of the run:
// writing 1 GiB is setup, not a figure.
struct WrittenGiB {
  static constexpr vm_address_t kSource = kGiB;
  static constexpr vm_address_t kDest = 4 * kGiB;

  Space space;
  KernReturn status = KERN_FAILURE;
};

const WrittenGiB& GetWrittenGiB() {
  static const WrittenGiB* const fixture = [] {
    auto* f = new WrittenGiB;
    f->status = f->space.Make(47);
    vm_address_t address = WrittenGiB::kSource;
    if (f->status == KERN_SUCCESS) {
      f->status = vm_allocate(f->space.task(), &address, kGiB, false);
    }
    if (f->status == KERN_SUCCESS) {
      f->status = WriteRange(f->space.task(), address, kGiB, 0x5a);
    }
    return f;
  }();
  return *fixture;
}

// --- vm_read / vm_write on written memory ------------------------------------

// Zero-copy vm_read of state.range(0) bytes, cycling through the 1 GiB.
void BM_VmRead(benchmark::State& state) {
  const WrittenGiB& fixture = GetWrittenGiB();
  if (!Ok(state, fixture.status, "setup")) return;
  Task& task = fixture.space.task();
  const vm_size_t size = static_cast<vm_size_t>(state.range(0));
  PinnedPages pinned;  // reused: Release() keeps its capacity
  vm_size_t offset = 0;
  std::uint64_t iovecs = 0;
  for (auto _ : state) {
    KernReturn kr =
        vm_read_pinned(task, WrittenGiB::kSource + offset, size, &pinned);
    if (kr != KERN_SUCCESS) {
      Ok(state, kr, "vm_read");
      break;
    }
    benchmark::DoNotOptimize(pinned.iov().data());
    iovecs += pinned.iov().size();
    pinned.Release();
    offset = (offset + size) & (kGiB - 1);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
  state.counters["iov_per_read"] = benchmark::Counter(
      static_cast<double>(iovecs), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_VmRead)->Arg(4096)->Arg(1 << 20);

// vm_read into a caller's buffer: one memcpy per page, no pins.
void BM_VmReadCopy(benchmark::State& state) {
  const WrittenGiB& fixture = GetWrittenGiB();
  if (!Ok(state, fixture.status, "setup")) return;
  Task& task = fixture.space.task();
  const vm_size_t size = static_cast<vm_size_t>(state.range(0));
  std::vector<unsigned char> buffer(size);
  vm_size_t offset = 0;
  for (auto _ : state) {
    KernReturn kr =
        vm_read(task, WrittenGiB::kSource + offset,
                std::as_writable_bytes(std::span(buffer.data(), size)));
    if (kr != KERN_SUCCESS) {
      Ok(state, kr, "vm_read");
      break;
    }
    benchmark::DoNotOptimize(buffer.data());
    benchmark::ClobberMemory();
    offset = (offset + size) & (kGiB - 1);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
}
BENCHMARK(BM_VmReadCopy)->Arg(4096)->Arg(1 << 20);

// vm_write over resident pages that only this mapping holds: written in
// place, no page allocated in the timed loop (new_pages proves it).
void BM_VmWrite(benchmark::State& state) {
  const WrittenGiB& fixture = GetWrittenGiB();
  if (!Ok(state, fixture.status, "setup")) return;
  Task& task = fixture.space.task();
  const vm_size_t size = static_cast<vm_size_t>(state.range(0));
  std::vector<unsigned char> data(size, 0xa5);
  const std::uint64_t live_before = fixture.space.system().pages().live_pages();
  vm_size_t offset = 0;
  for (auto _ : state) {
    KernReturn kr =
        vm_write(task, WrittenGiB::kSource + offset, data.data(), size);
    if (kr != KERN_SUCCESS) {
      Ok(state, kr, "vm_write");
      break;
    }
    offset = (offset + size) & (kGiB - 1);
  }
  const std::uint64_t live_after = fixture.space.system().pages().live_pages();
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
  state.counters["new_pages"] = static_cast<double>(live_after - live_before);
}
BENCHMARK(BM_VmWrite)->Arg(4096)->Arg(1 << 20);

// --- vm_copy of 1 GiB --------------------------------------------------------

void BM_VmCopy1GiB(benchmark::State& state) {
  const WrittenGiB& fixture = GetWrittenGiB();
  if (!Ok(state, fixture.status, "setup")) return;
  Task& task = fixture.space.task();
  constexpr vm_address_t kSource = WrittenGiB::kSource;
  constexpr vm_address_t kDest = WrittenGiB::kDest;

  TaskStatistics before;
  if (!Ok(state, Take(task_statistics(task), &before), "task_statistics"))
    return;
  const std::uint64_t rss_before = ResidentBytes();

  std::chrono::duration<double> copying{0};
  for (auto _ : state) {
    // A fresh, unwritten destination, so each iteration is a full copy.
    state.PauseTiming();
    KernReturn kr = vm_deallocate(task, kDest, kGiB);
    vm_address_t dest = kDest;
    if (kr == KERN_SUCCESS) kr = vm_allocate(task, &dest, kGiB, false);
    state.ResumeTiming();
    if (kr != KERN_SUCCESS) {
      Ok(state, kr, "re-making the destination");
      break;
    }
    const auto start = std::chrono::steady_clock::now();
    kr = vm_copy(task, kSource, kGiB, kDest);
    copying += std::chrono::steady_clock::now() - start;
    if (kr != KERN_SUCCESS) {
      Ok(state, kr, "vm_copy");
      break;
    }
  }

  // The last copy is still in place: measure what it holds.
  TaskStatistics after;
  Take(task_statistics(task), &after);
  const std::uint64_t rss_after = ResidentBytes();
  std::vector<unsigned char> a(kPage), b(kPage);
  const bool same =
      vm_read(task, kSource + kGiB - kPage,
              std::as_writable_bytes(std::span(a.data(), kPage))) ==
          KERN_SUCCESS &&
      vm_read(task, kDest + kGiB - kPage,
              std::as_writable_bytes(std::span(b.data(), kPage))) ==
          KERN_SUCCESS &&
      a == b;
  // Undo, so the source pages are exclusively owned again for later writes.
  vm_deallocate(task, kDest, kGiB);
  if (state.error_occurred()) return;
  if (!same) {
    state.SkipWithError("the copy differs from its source");
    return;
  }

  const double copied =
      static_cast<double>(state.iterations()) * static_cast<double>(kGiB);
  state.SetItemsProcessed(state.iterations() *
                          static_cast<std::int64_t>(kGiB / kPage));
  state.counters["virtual_bytes_per_second"] = benchmark::Counter(
      copied, benchmark::Counter::kIsRate, benchmark::Counter::kIs1024);
  const double resident_growth = static_cast<double>(after.resident_bytes) -
                                 static_cast<double>(before.resident_bytes);
  state.counters["resident_growth_MiB"] = ToMiB(resident_growth);
  state.counters["shared_MiB"] = ToMiB(static_cast<double>(after.shared_bytes));
  state.counters["rss_growth_MiB"] =
      ToMiB(static_cast<double>(rss_after) - static_cast<double>(rss_before));
  RecordFigure("vm_copy 1 GiB: time per copy",
               copying.count() * 1e3 / static_cast<double>(state.iterations()),
               "ms");
  RecordFigure("vm_copy 1 GiB: task resident growth", ToMiB(resident_growth),
               "MiB", 0);
}
BENCHMARK(BM_VmCopy1GiB)->Unit(benchmark::kMillisecond)->Iterations(20);

// vm_copy of the written GiB onto a destination that holds 1 GiB of written
// pages of its own, which the copy drops as it maps the source's. The time
// is the vm_copy alone (manual time); before each copy the destination is
// written again, untimed, which also takes back the sharing the previous
// copy made. Each copy is checked on sampled pages. resident_MiB is the
// task's resident memory after the last copy: 1024, the destination's own
// pages freed.
void BM_VmCopy1GiBOntoWritten(benchmark::State& state) {
  const WrittenGiB& fixture = GetWrittenGiB();
  if (!Ok(state, fixture.status, "setup")) return;
  Task& task = fixture.space.task();
  constexpr vm_address_t kSource = WrittenGiB::kSource;
  constexpr vm_address_t kDest = WrittenGiB::kDest;
  if (!Ok(state, AllocateAt(task, kDest, kGiB), "allocating the destination"))
    return;

  std::chrono::duration<double> copying{0};
  for (auto _ : state) {
    state.PauseTiming();
    // Not a byte the source holds, so a copy that left it would show.
    KernReturn kr = WriteRange(task, kDest, kGiB, 0xc3);
    state.ResumeTiming();
    if (!Ok(state, kr, "writing the destination")) break;
    const auto start = std::chrono::steady_clock::now();
    kr = vm_copy(task, kSource, kGiB, kDest);
    const std::chrono::duration<double> took =
        std::chrono::steady_clock::now() - start;
    state.SetIterationTime(took.count());
    copying += took;
    if (!Ok(state, kr, "vm_copy")) break;
    state.PauseTiming();
    const bool same = SamePages(task, kSource, task, kDest, kGiB);
    state.ResumeTiming();
    if (!same) {
      state.SkipWithError("the copy differs from its source");
      break;
    }
  }

  TaskStatistics after;
  const KernReturn stats = Take(task_statistics(task), &after);
  // Undo, so the source pages are exclusively owned again for later writes.
  vm_deallocate(task, kDest, kGiB);
  if (state.error_occurred() || !Ok(state, stats, "task_statistics")) return;
  state.counters["resident_MiB"] =
      ToMiB(static_cast<double>(after.resident_bytes));
  RecordFigure("vm_copy 1 GiB onto written: time per copy",
               copying.count() * 1e3 / static_cast<double>(state.iterations()),
               "ms");
}
BENCHMARK(BM_VmCopy1GiBOntoWritten)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->Iterations(10);

// --- task_fork of 1 GiB, and its termination ---------------------------------

// Forks the task holding the written GiB (its one region, inheritance copy)
// and terminates the fork, iteration after iteration; the time (manual) is
// task_fork's when time_fork, else the termination's: task_terminate and
// the release of the last reference, what rmdir of the fork's directory
// does. The fork is checked on sampled pages and by its resident size.
void ForkAndTerminate(benchmark::State& state, bool time_fork) {
  const WrittenGiB& fixture = GetWrittenGiB();
  if (!Ok(state, fixture.status, "setup")) return;
  VmSystem& system = fixture.space.system();
  Task& parent = fixture.space.task();
  std::chrono::duration<double> timed{0};
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    std::shared_ptr<Task> child;
    const KernReturn kr = Take(task_fork(system, parent, "bench-fork"), &child);
    std::chrono::duration<double> took =
        std::chrono::steady_clock::now() - start;
    if (!Ok(state, kr, "task_fork")) break;

    state.PauseTiming();
    TaskStatistics stats;
    const bool same = Take(task_statistics(*child), &stats) == KERN_SUCCESS &&
                      stats.resident_bytes == kGiB &&
                      SamePages(parent, WrittenGiB::kSource, *child,
                                WrittenGiB::kSource, kGiB);
    state.ResumeTiming();

    if (!time_fork) start = std::chrono::steady_clock::now();
    const KernReturn terminated = task_terminate(system, *child);
    child.reset();
    if (!time_fork) took = std::chrono::steady_clock::now() - start;
    state.SetIterationTime(took.count());
    timed += took;
    if (!Ok(state, terminated, "task_terminate")) break;
    if (!same) {
      state.SkipWithError("the fork differs from its parent");
      break;
    }
  }
  if (state.error_occurred()) return;
  const double ms =
      timed.count() * 1e3 / static_cast<double>(state.iterations());
  if (time_fork) {
    RecordFigure("task_fork, 1 GiB written: time per fork", ms, "ms");
  } else {
    RecordFigure("task_terminate of that fork: time", ms, "ms");
  }
}

void BM_TaskFork1GiB(benchmark::State& state) {
  ForkAndTerminate(state, /*time_fork=*/true);
}
BENCHMARK(BM_TaskFork1GiB)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->Iterations(20);

void BM_TaskTerminateFork1GiB(benchmark::State& state) {
  ForkAndTerminate(state, /*time_fork=*/false);
}
BENCHMARK(BM_TaskTerminateFork1GiB)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->Iterations(20);

// --- vm_map_copy of 1 GiB from another task ----------------------------------

// vm_map_copy of the written GiB from the fixture's task into a fresh range
// of a second task of the same system, as ctl's `copy-from` makes it:
// state.range(0) 1 is `copy-from ... alloc` (dst_alloc: the range is
// unallocated and the copy maps it), 0 a copy onto an allocated range that
// was never written. The destination is taken away (and made again for 0),
// untimed, before each copy; the time is the vm_map_copy alone. Each copy is
// checked on sampled pages.
void BM_VmMapCopy1GiBFromTask(benchmark::State& state) {
  const WrittenGiB& fixture = GetWrittenGiB();
  if (!Ok(state, fixture.status, "setup")) return;
  const bool dst_alloc = state.range(0) != 0;
  VmSystem& system = fixture.space.system();
  Task& source = fixture.space.task();
  constexpr vm_address_t kSource = WrittenGiB::kSource;
  constexpr vm_address_t kDest = WrittenGiB::kDest;
  std::shared_ptr<Task> dest;
  if (!Ok(state, Take(task_create(system, "bench-dest"), &dest),
          "task_create")) {
    return;
  }

  std::chrono::duration<double> copying{0};
  for (auto _ : state) {
    state.PauseTiming();
    KernReturn kr = vm_deallocate(*dest, kDest, kGiB);
    if (kr == KERN_SUCCESS && !dst_alloc) kr = AllocateAt(*dest, kDest, kGiB);
    state.ResumeTiming();
    if (!Ok(state, kr, "making the destination")) break;
    const auto start = std::chrono::steady_clock::now();
    kr = vm_map_copy(*dest, kDest, source, kSource, kGiB, dst_alloc,
                     /*src_destroy=*/false);
    const std::chrono::duration<double> took =
        std::chrono::steady_clock::now() - start;
    state.SetIterationTime(took.count());
    copying += took;
    if (!Ok(state, kr, "vm_map_copy")) break;
    state.PauseTiming();
    const bool same = SamePages(source, kSource, *dest, kDest, kGiB);
    state.ResumeTiming();
    if (!same) {
      state.SkipWithError("the copy differs from its source");
      break;
    }
  }
  // The source pages are exclusively owned again once the task goes.
  task_terminate(system, *dest);
  if (state.error_occurred()) return;
  state.SetLabel(dst_alloc ? "copy-from alloc" : "copy-from onto allocated");
  RecordFigure(dst_alloc ? "vm_map_copy 1 GiB from a task, dst_alloc"
                         : "vm_map_copy 1 GiB from a task, allocated",
               copying.count() * 1e3 / static_cast<double>(state.iterations()),
               "ms");
}
BENCHMARK(BM_VmMapCopy1GiBFromTask)
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->Iterations(20);

// --- 100,000 regions ---------------------------------------------------------

// One task with kRegionCount one-page regions side by side: every page is
// written, and odd pages are made read-only so that neighbors never merge.
struct HundredKRegions {
  static constexpr std::uint64_t kRegionCount = 100000;
  static constexpr vm_address_t kBase = kGiB;
  static constexpr std::size_t kAddresses = 1 << 16;  // a power of two

  Space space;
  // Random addresses, each inside a random region (any byte of its page).
  std::vector<vm_address_t> addresses;
  KernReturn status = KERN_FAILURE;
};

KernReturn BuildRegions(HundredKRegions* f) {
  constexpr std::uint64_t kCount = HundredKRegions::kRegionCount;
  constexpr vm_address_t kBase = HundredKRegions::kBase;
  if (KernReturn kr = f->space.Make(47); kr != KERN_SUCCESS) return kr;
  Task& task = f->space.task();
  vm_address_t address = kBase;
  if (KernReturn kr = vm_allocate(task, &address, kCount * kPage, false);
      kr != KERN_SUCCESS) {
    return kr;
  }
  if (KernReturn kr = WriteRange(task, kBase, kCount * kPage, 0x3c);
      kr != KERN_SUCCESS) {
    return kr;
  }
  for (std::uint64_t i = 1; i < kCount; i += 2) {
    if (KernReturn kr =
            vm_protect(task, kBase + i * kPage, kPage, false, VM_PROT_READ);
        kr != KERN_SUCCESS) {
      return kr;
    }
  }
  TaskStatistics stats;
  if (KernReturn kr = Take(task_statistics(task), &stats); kr != KERN_SUCCESS) {
    return kr;
  }
  if (stats.regions != kCount) return KERN_FAILURE;

  std::mt19937_64 random(42);
  std::uniform_int_distribution<std::uint64_t> region(0, kCount - 1);
  std::uniform_int_distribution<std::uint64_t> byte(0, kPage - 1);
  f->addresses.resize(HundredKRegions::kAddresses);
  for (vm_address_t& a : f->addresses) {
    a = kBase + region(random) * kPage + byte(random);
  }
  return KERN_SUCCESS;
}

const HundredKRegions& GetHundredKRegions() {
  static const HundredKRegions* const fixture = [] {
    auto* f = new HundredKRegions;
    f->status = BuildRegions(f);
    return f;
  }();
  return *fixture;
}

// vm_region at a random address: finds the entry and the maximal run of equal
// attributes around it. Goal: <= 2 us per lookup with 100,000 regions.
void BM_VmRegionLookup(benchmark::State& state) {
  const HundredKRegions& fixture = GetHundredKRegions();
  if (!Ok(state, fixture.status, "setup")) return;
  Task& task = fixture.space.task();
  std::size_t i = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    vm_address_t address =
        fixture.addresses[i++ & (HundredKRegions::kAddresses - 1)];
    RegionInfo info;
    KernReturn kr = vm_region(task, &address, &info);
    if (kr != KERN_SUCCESS || info.size != kPage) {
      Ok(state, kr == KERN_SUCCESS ? KERN_FAILURE : kr, "vm_region");
      break;
    }
    benchmark::DoNotOptimize(info);
  }
  const std::chrono::duration<double, std::nano> elapsed =
      std::chrono::steady_clock::now() - start;
  state.SetItemsProcessed(state.iterations());
  state.counters["regions"] =
      static_cast<double>(HundredKRegions::kRegionCount);
  RecordFigure("vm_region, 100k regions: time per lookup",
               elapsed.count() / static_cast<double>(state.iterations()), "ns",
               2000);
}
BENCHMARK(BM_VmRegionLookup)->Unit(benchmark::kNanosecond);

// A 4 KiB zero-copy vm_read of a random page of the written GiB.
void BM_VmReadRandomPage1GiB(benchmark::State& state) {
  const WrittenGiB& fixture = GetWrittenGiB();
  if (!Ok(state, fixture.status, "setup")) return;
  Task& task = fixture.space.task();
  constexpr std::size_t kAddresses = 1 << 16;
  std::vector<vm_address_t> addresses(kAddresses);
  std::mt19937_64 random(7);
  for (vm_address_t& a : addresses) {
    a = WrittenGiB::kSource + (random() % (kGiB / kPage)) * kPage;
  }
  PinnedPages pinned;
  std::size_t i = 0;
  for (auto _ : state) {
    const KernReturn kr =
        vm_read_pinned(task, addresses[i++ & (kAddresses - 1)], kPage, &pinned);
    if (kr != KERN_SUCCESS) {
      Ok(state, kr, "vm_read");
      break;
    }
    benchmark::DoNotOptimize(pinned.iov().data());
    pinned.Release();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VmReadRandomPage1GiB)->Unit(benchmark::kNanosecond);

// Random 4 KiB zero-copy vm_reads of a range at the end of a chain of
// nested copies, against the same reads of a range that was never copied.
// In one task: R0 (1 GiB, written) is copied by vm_copy onto R1, R1 onto
// R2, ..., R999 onto R1000, each Ri a separate region allocated just
// before its copy; U (1 GiB, written the same way) is never copied. Both are
// read at the same 65,536 random page offsets, as BM_VmReadRandomPage1GiB
// reads its GiB. Each iteration reads R1000 and U in turn (the order
// swapped every iteration, so that a drift in the machine hits both alike):
// for each, one untimed pass over the offsets, which brings that range's
// page tables and page records back into the cache the other range's reads
// pushed them out of, then kTimedPasses timed passes. The iteration time
// (manual) is R1000's. Whatever a copy keeps to find its pages later,
// reading the last copy of a chain must cost no more than reading memory
// never copied (ratio 1).
void BM_VmReadRandomPageAfter1000Copies(benchmark::State& state) {
  constexpr int kCopies = 1000;
  constexpr std::size_t kAddresses = 1 << 16;
  constexpr int kTimedPasses = 2;
  constexpr vm_address_t kUncopied = kGiB;
  constexpr vm_address_t kChain = kTiB;       // R0; Ri at kChain + i * kStride
  constexpr vm_address_t kStride = 2 * kGiB;  // gaps: no two Ri merge
  constexpr vm_address_t kLast = kChain + kCopies * kStride;

  Space space;
  if (!Ok(state, space.Make(47), "make")) return;
  Task* const task = &space.task();
  if (!Ok(state, AllocateAt(*task, kUncopied, kGiB), "allocate U") ||
      !Ok(state, WriteRange(*task, kUncopied, kGiB, 0x5a), "write U") ||
      !Ok(state, AllocateAt(*task, kChain, kGiB), "allocate R0") ||
      !Ok(state, WriteRange(*task, kChain, kGiB, 0x5a), "write R0")) {
    return;
  }
  const auto chain_start = std::chrono::steady_clock::now();
  for (int i = 1; i <= kCopies; ++i) {
    const vm_address_t from = kChain + (i - 1) * kStride;
    const vm_address_t to = kChain + i * kStride;
    if (!Ok(state, AllocateAt(*task, to, kGiB), "allocate Ri") ||
        !Ok(state, vm_copy(*task, from, kGiB, to), "vm_copy Ri-1 to Ri")) {
      return;
    }
  }
  const std::chrono::duration<double> chain_time =
      std::chrono::steady_clock::now() - chain_start;
  TaskStatistics stats;
  if (!Ok(state, Take(task_statistics(*task), &stats), "task_statistics"))
    return;
  if (!SamePages(*task, kChain, *task, kLast, kGiB)) {
    state.SkipWithError("R1000 differs from R0");
    return;
  }

  std::vector<vm_size_t> offsets(kAddresses);
  std::mt19937_64 random(7);
  for (vm_size_t& offset : offsets) {
    offset = (random() % (kGiB / kPage)) * kPage;
  }
  PinnedPages pinned;
  // One read of [base, base + 1 GiB) at each offset; false on a failure.
  auto read_pass = [&](vm_address_t base) {
    for (const vm_size_t offset : offsets) {
      if (vm_read_pinned(*task, base + offset, kPage, &pinned) !=
          KERN_SUCCESS) {
        return false;
      }
      benchmark::DoNotOptimize(pinned.iov().data());
      pinned.Release();
    }
    return true;
  };
  std::chrono::duration<double> nested{0}, uncopied{0};
  bool nested_first = true;
  for (auto _ : state) {
    std::chrono::duration<double> took[2];  // [0]: R1000, [1]: U
    bool read = true;
    for (const int which : {nested_first ? 0 : 1, nested_first ? 1 : 0}) {
      const vm_address_t base = which == 0 ? kLast : kUncopied;
      read = read && read_pass(base);  // warm-up, untimed
      const auto start = std::chrono::steady_clock::now();
      for (int pass = 0; pass < kTimedPasses; ++pass) {
        read = read && read_pass(base);
      }
      took[which] = std::chrono::steady_clock::now() - start;
    }
    if (!read) {
      state.SkipWithError("vm_read failed");
      break;
    }
    nested_first = !nested_first;
    state.SetIterationTime(took[0].count());
    nested += took[0];
    uncopied += took[1];
  }
  if (state.error_occurred()) return;
  const std::int64_t reads_per_range =
      state.iterations() * kTimedPasses * static_cast<std::int64_t>(kAddresses);
  const double reads = static_cast<double>(reads_per_range);
  const double nested_ns = nested.count() * 1e9 / reads;
  const double uncopied_ns = uncopied.count() * 1e9 / reads;
  state.SetItemsProcessed(reads_per_range);
  state.counters["nested_ns"] = nested_ns;
  state.counters["uncopied_ns"] = uncopied_ns;
  state.counters["ratio"] = nested_ns / uncopied_ns;
  state.counters["chain_s"] = chain_time.count();
  state.counters["metadata_MiB"] =
      ToMiB(static_cast<double>(stats.metadata_bytes));
  RecordFigure("vm_read 4 KiB after 1000 copies: per read", nested_ns, "ns");
  RecordFigure("vm_read 4 KiB, range never copied: per read", uncopied_ns,
               "ns");
  RecordFigure("vm_read 4 KiB: after 1000 copies / uncopied",
               nested_ns / uncopied_ns, "x");
  RecordFigure("1000 nested vm_copy of 1 GiB: total time",
               chain_time.count() * 1e3, "ms");
  RecordFigure("1000 nested vm_copy of 1 GiB: task metadata",
               ToMiB(static_cast<double>(stats.metadata_bytes)), "MiB");
}
BENCHMARK(BM_VmReadRandomPageAfter1000Copies)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->Iterations(8);

// A 4 KiB zero-copy vm_read of a random region of the same task.
void BM_VmReadLookup100kRegions(benchmark::State& state) {
  const HundredKRegions& fixture = GetHundredKRegions();
  if (!Ok(state, fixture.status, "setup")) return;
  Task& task = fixture.space.task();
  PinnedPages pinned;
  std::size_t i = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const vm_address_t address =
        fixture.addresses[i++ & (HundredKRegions::kAddresses - 1)] &
        ~(kPage - 1);
    KernReturn kr = vm_read_pinned(task, address, kPage, &pinned);
    if (kr != KERN_SUCCESS) {
      Ok(state, kr, "vm_read");
      break;
    }
    benchmark::DoNotOptimize(pinned.iov().data());
    pinned.Release();
  }
  const std::chrono::duration<double, std::nano> elapsed =
      std::chrono::steady_clock::now() - start;
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() *
                          static_cast<std::int64_t>(kPage));
  RecordFigure("vm_read 4 KiB, 100k regions: time per read",
               elapsed.count() / static_cast<double>(state.iterations()), "ns");
}
BENCHMARK(BM_VmReadLookup100kRegions)->Unit(benchmark::kNanosecond);

// --- map changes under readers ---------------------------------------------

// vm_allocate (one page, anywhere) on a task while 4 threads loop 1 MiB
// vm_reads into their own buffers from the task's written 1 MiB region (the
// load under which std::shared_mutex kept vm_allocate out for over 30 s).
// The time is per vm_allocate, wall clock; each is undone by an untimed
// vm_deallocate. p50_us/p99_us/max_us: the latency's percentiles over the
// run; reads_per_s: what the readers did meanwhile (the task's lock lets
// them go on).
void BM_VmAllocateUnder4Readers(benchmark::State& state) {
  constexpr int kReaders = 4;
  constexpr vm_address_t kBase = kGiB;
  Space space;
  if (!Ok(state, space.Make(40), "make") ||
      !Ok(state, AllocateAt(space.task(), kBase, kMiB), "allocate") ||
      !Ok(state, WriteRange(space.task(), kBase, kMiB, 0x5a), "write")) {
    return;
  }
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> reads{0};
  std::atomic<int> started{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; ++i) {
    readers.emplace_back([&] {
      std::vector<std::byte> buffer(kMiB);
      bool first = true;
      while (!stop.load(std::memory_order_relaxed)) {
        if (vm_read(space.task(), kBase, buffer) != KERN_SUCCESS) break;
        reads.fetch_add(1, std::memory_order_relaxed);
        if (first) started.fetch_add(1);
        first = false;
      }
    });
  }
  while (started.load() < kReaders) std::this_thread::yield();

  std::vector<double> latencies_us;
  const std::uint64_t reads_before = reads.load();
  const auto run_start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    vm_address_t address = 0;
    const auto start = std::chrono::steady_clock::now();
    const KernReturn kr = vm_allocate(space.task(), &address, kPage, true);
    const std::chrono::duration<double> took =
        std::chrono::steady_clock::now() - start;
    state.SetIterationTime(took.count());
    latencies_us.push_back(took.count() * 1e6);
    if (!Ok(state, kr, "vm_allocate") ||
        !Ok(state, vm_deallocate(space.task(), address, kPage),
            "vm_deallocate")) {
      break;
    }
  }
  const std::chrono::duration<double> run =
      std::chrono::steady_clock::now() - run_start;
  const double reads_per_s =
      static_cast<double>(reads.load() - reads_before) / run.count();
  stop.store(true);
  for (std::thread& reader : readers) reader.join();
  if (latencies_us.empty()) return;
  std::sort(latencies_us.begin(), latencies_us.end());
  auto at = [&](double q) {
    return latencies_us[static_cast<std::size_t>(
        q * static_cast<double>(latencies_us.size() - 1))];
  };
  state.counters["p50_us"] = at(0.5);
  state.counters["p99_us"] = at(0.99);
  state.counters["max_us"] = latencies_us.back();
  state.counters["reads_per_s"] = reads_per_s;
  RecordFigure("vm_allocate under 4 readers of 1 MiB: p99 latency", at(0.99),
               "us");
}
BENCHMARK(BM_VmAllocateUnder4Readers)
    ->Unit(benchmark::kMicrosecond)
    ->UseManualTime()
    ->Iterations(2000);

// --- memory cost -------------------------------------------------------------

// Allocating 1 TiB and writing one page of it. Timed: making the system and
// task, the vm_allocate and the vm_write. rss_MiB: the largest RSS growth
// seen with the page written. Goal: <= 16 MiB.
void BM_Allocate1TiB(benchmark::State& state) {
  static const std::vector<unsigned char>* const page =
      new std::vector<unsigned char>(kPage, 0x77);
  double worst_rss = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::uint64_t rss_before = ResidentBytes();
    state.ResumeTiming();

    Space space;
    KernReturn kr = space.Make(47);
    vm_address_t address = kTiB;
    if (kr == KERN_SUCCESS)
      kr = vm_allocate(space.task(), &address, kTiB, false);
    if (kr == KERN_SUCCESS) {
      kr = vm_write(space.task(), kTiB + kTiB / 2, page->data(), kPage);
    }

    state.PauseTiming();
    TaskStatistics stats;
    if (kr == KERN_SUCCESS) kr = Take(task_statistics(space.task()), &stats);
    if (kr == KERN_SUCCESS &&
        (stats.virtual_bytes != kTiB || stats.resident_bytes != kPage)) {
      kr = KERN_FAILURE;
    }
    const double rss =
        static_cast<double>(ResidentBytes()) - static_cast<double>(rss_before);
    if (rss > worst_rss) worst_rss = rss;
    space.Reset();  // untimed
    state.ResumeTiming();
    if (kr != KERN_SUCCESS) {
      Ok(state, kr, "allocate 1 TiB, write a page");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["rss_MiB"] = ToMiB(worst_rss);
  RecordFigure("allocate 1 TiB + write 1 page: RSS growth", ToMiB(worst_rss),
               "MiB", 16);
}
BENCHMARK(BM_Allocate1TiB)->Unit(benchmark::kMicrosecond)->Iterations(20);

// Writes 256 MiB into a fresh task; overhead_pct is the RSS beyond the 256 MiB
// of page contents, in percent of it.
void BM_ResidentOverhead256MiB(benchmark::State& state) {
  constexpr vm_size_t kSize = 256 * kMiB;
  constexpr vm_address_t kBase = kGiB;
  double growth = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::uint64_t rss_before = ResidentBytes();
    state.ResumeTiming();

    Space space;
    KernReturn kr = space.Make(47);
    vm_address_t address = kBase;
    if (kr == KERN_SUCCESS)
      kr = vm_allocate(space.task(), &address, kSize, false);
    if (kr == KERN_SUCCESS) kr = WriteRange(space.task(), kBase, kSize, 0x11);

    state.PauseTiming();
    growth =
        static_cast<double>(ResidentBytes()) - static_cast<double>(rss_before);
    space.Reset();  // untimed
    state.ResumeTiming();
    if (kr != KERN_SUCCESS) {
      Ok(state, kr, "write 256 MiB");
      break;
    }
  }
  const double overhead_pct = (growth - static_cast<double>(kSize)) * 100.0 /
                              static_cast<double>(kSize);
  state.SetBytesProcessed(state.iterations() *
                          static_cast<std::int64_t>(kSize));
  state.counters["rss_growth_MiB"] = ToMiB(growth);
  state.counters["overhead_pct"] = overhead_pct;
  RecordFigure("resident overhead, 256 MiB written", overhead_pct, "%");
}
BENCHMARK(BM_ResidentOverhead256MiB)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

// Metadata of doubling copies. One task with one region, [0, 2^44): the
// first page of [0, 1 MiB) is written (the rest of that MiB reads as
// zeros), then for k = 20..43 vm_copy copies [0, 2^k) onto [2^k, 2^(k+1)),
// so that after copy k the region holds 2^(k-19) copies of the 1 MiB start
// and one page is resident, mapped 2^(k-19) times. After each copy,
// task_statistics gives metadata_bytes and resident_bytes; the copy of page
// 0 is read back at 2^k.
//
// The bound: the system's memory limit (kLimit, 512 MiB) covers pages and
// metadata together, and a copy that would pass it is refused with
// KERN_RESOURCE_SHORTAGE and changes nothing, so the run holds at most
// about 512 MiB (plus the heap's slack around what is charged) however far
// it gets, and a refusal ends the series. Where a copy costs metadata per
// page mapped (a page-table slot for each written page, in 4 KiB chunks of
// 512 slots: one chunk per 2 MiB of the region here), the region after copy
// k needs about 2^(k+1) / 512 bytes, which passes 512 MiB at k = 37; where
// it costs metadata per map entry, every k up to 43 fits in a few KiB.
// The time (manual) is that of the copies made, the refused one included.
// k_reached: the last k copied (43: all of them); refused_at: the k refused,
// 0 if none; metadata_MiB and resident_KiB: at k_reached.
void BM_DoublingCopies(benchmark::State& state) {
  constexpr std::uint64_t kLimit = 512 * kMiB;
  constexpr unsigned kFirstK = 20;
  constexpr unsigned kLastK = 43;
  constexpr vm_size_t kRegion = std::uint64_t{1} << (kLastK + 1);
  std::vector<std::uint64_t> metadata(kLastK + 1), resident(kLastK + 1);
  unsigned reached = 0;
  unsigned refused = 0;
  std::chrono::duration<double> copying{0};
  for (auto _ : state) {
    Space space;
    const std::vector<unsigned char> page(kPage, 0x6b);
    if (!Ok(state, space.Make(47, kLimit), "make") ||
        !Ok(state, AllocateAt(space.task(), 0, kRegion), "vm_allocate") ||
        !Ok(state, vm_write(space.task(), 0, page.data(), kPage), "vm_write")) {
      break;
    }
    Task& task = space.task();
    reached = 0;
    refused = 0;
    copying = {};
    std::vector<unsigned char> back(kPage);
    for (unsigned k = kFirstK; k <= kLastK; ++k) {
      const vm_size_t half = std::uint64_t{1} << k;
      const auto start = std::chrono::steady_clock::now();
      const KernReturn kr = vm_copy(task, 0, half, half);
      copying += std::chrono::steady_clock::now() - start;
      if (kr == KERN_RESOURCE_SHORTAGE) {
        refused = k;
        break;
      }
      TaskStatistics stats;
      if (!Ok(state, kr, "vm_copy") ||
          !Ok(state, Take(task_statistics(task), &stats), "task_statistics") ||
          !Ok(state,
              vm_read(task, half, std::as_writable_bytes(std::span(back))),
              "vm_read")) {
        break;
      }
      if (back != page) {
        state.SkipWithError("the copy of page 0 differs from it");
        break;
      }
      metadata[k] = stats.metadata_bytes;
      resident[k] = stats.resident_bytes;
      reached = k;
    }
    state.SetIterationTime(copying.count());
  }
  if (state.error_occurred() || reached == 0) {
    if (!state.error_occurred()) state.SkipWithError("the first copy failed");
    return;
  }
  state.counters["k_reached"] = reached;
  state.counters["refused_at"] = refused;
  state.counters["metadata_MiB"] =
      ToMiB(static_cast<double>(metadata[reached]));
  state.counters["resident_KiB"] =
      static_cast<double>(resident[reached]) / 1024;
  RecordFigure("doubling copies: memory limit", ToMiB(kLimit), "MiB");
  RecordFigure("doubling copies: last k copied (goal 43)", reached, "");
  RecordFigure("doubling copies: k refused (0: none)", refused, "");
  for (unsigned k = kFirstK; k <= reached; ++k) {
    if (k % 4 == 0 || k == reached) {
      RecordFigure("doubling copies: metadata at k = " + std::to_string(k),
                   static_cast<double>(metadata[k]) / 1024, "KiB");
    }
  }
  RecordFigure("doubling copies: resident at the last k",
               static_cast<double>(resident[reached]) / 1024, "KiB");
  RecordFigure("doubling copies: time of the copies", copying.count() * 1e3,
               "ms");
}
BENCHMARK(BM_DoublingCopies)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->Iterations(1);

}  // namespace
}  // namespace taskfs::vm

int main(int argc, char** argv) {
  // The list of figures goes after the table on stdout, unless stdout holds
  // a machine-readable format, which it would corrupt.
  bool console = true;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--benchmark_format=") &&
        arg != "--benchmark_format=console") {
      console = false;
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  taskfs::vm::PrintFigures(console ? std::cout : std::cerr);
  benchmark::Shutdown();
  return 0;
}
