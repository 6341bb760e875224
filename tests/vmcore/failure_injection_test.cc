// Allocation failure as an ordinary error: every operation kind of the Mach
// facade (vmcore/vm_user.h), with a failure injected at each allocation it
// makes, returns KERN_RESOURCE_SHORTAGE and changes nothing.
//
// This binary replaces the global operator new/new[] (every overload,
// nothrow and aligned included) with a counting version that, while armed,
// fails the Nth allocation: it throws std::bad_alloc, or returns nullptr for
// the nothrow forms. The charges that allocate nothing (pages) are failed
// through the budget's test hook, FailChargeAfter. Three sweeps run for each
// case, for N = 1, 2, ... until the operation completes without reaching
// the injection:
//   heap:   the Nth heap allocation fails, the later ones succeed;
//   charge: the Nth budget charge fails (MemoryBudget::TryCharge);
//   OOM:    the Nth heap allocation and every later one fail, as when the
//           machine is out of memory (what the failure paths themselves may
//           allocate fails too);
//   limit+OOM: the Nth charge fails and every heap allocation after it,
//           the memory limit reached on a machine out of memory.
// Each case builds the same state first (several regions, pages shared by a
// copy within a task, by a fork's copy and share regions, by a copy to a
// third task, and a pinned read), on the core and on the reference model
// (reference_model.h). The operation runs on a fresh thread, so its
// thread-local buffers start empty and their first allocations are injected
// too; the hook is armed only around the call. After a failing call the
// state must be identical to the state before it: a full snapshot of the
// core (every page's object, index, physical page, mappings, pins, coverage
// and bytes; each task's regions and every figure of task_statistics,
// metadata_bytes included; each task's record; the task list; the budget's
// used() and reserve; the allocator's live pages and own bytes) equal to the
// one taken before the call, which is checked against the model (tasks,
// regions, readable bytes, statistics, pins, live pages), as is the state
// after an uninjected call. A call that reaches the injection and still
// succeeds (the budget's reclaim or reserve absorbed the failure) must leave
// the state of an uninjected success.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "tests/vmcore/reference_model.h"
#include "tests/vmcore/take_result.h"
#include "vmcore/charge_failure_hook.h"
#include "vmcore/kern_return.h"
#include "vmcore/locks.h"
#include "vmcore/page.h"
#include "vmcore/pinned_pages.h"
#include "vmcore/task.h"
#include "vmcore/vm_object.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_types.h"
#include "vmcore/vm_user.h"

// --- the allocation hook -----------------------------------------------------

namespace {

// Armed by ArmHeap around the call under test only; the call runs on one
// thread while every other thread of the binary waits, so one global count
// is that call's.
std::atomic<bool> heap_armed{false};
std::atomic<std::uint64_t> heap_count{0};  // allocations since arming
std::uint64_t heap_fail_at = 0;            // the Nth fails
bool heap_sticky = false;                  // and every later one
bool heap_after_charge = false;  // instead: all once the armed charge failed
std::atomic<bool> heap_hit{false};

bool FailThisAllocation() {
  if (!heap_armed.load(std::memory_order_relaxed)) return false;
  if (heap_after_charge) return taskfs::vm::ChargesBeforeFailure() == 0;
  const std::uint64_t n = heap_count.fetch_add(1) + 1;
  if (n == heap_fail_at || (heap_sticky && n > heap_fail_at)) {
    heap_hit.store(true);
    return true;
  }
  return false;
}

void* AllocateOrNull(std::size_t size) noexcept {
  if (FailThisAllocation()) return nullptr;
  return std::malloc(size == 0 ? 1 : size);
}

void* AllocateAlignedOrNull(std::size_t size, std::align_val_t align) noexcept {
  if (FailThisAllocation()) return nullptr;
  void* p = nullptr;
  const std::size_t a =
      std::max(static_cast<std::size_t>(align), sizeof(void*));
  if (posix_memalign(&p, a, size == 0 ? 1 : size) != 0) return nullptr;
  return p;
}

void* AllocateOrThrow(std::size_t size) {
  void* p = AllocateOrNull(size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* AllocateAlignedOrThrow(std::size_t size, std::align_val_t align) {
  void* p = AllocateAlignedOrNull(size, align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(std::size_t size) { return AllocateOrThrow(size); }
void* operator new[](std::size_t size) { return AllocateOrThrow(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return AllocateOrNull(size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return AllocateOrNull(size);
}
void* operator new(std::size_t size, std::align_val_t align) {
  return AllocateAlignedOrThrow(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return AllocateAlignedOrThrow(size, align);
}
void* operator new(std::size_t size, std::align_val_t align,
                   const std::nothrow_t&) noexcept {
  return AllocateAlignedOrNull(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align,
                     const std::nothrow_t&) noexcept {
  return AllocateAlignedOrNull(size, align);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t,
                     const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t,
                       const std::nothrow_t&) noexcept {
  std::free(p);
}

namespace taskfs::vm {
namespace {

using reference::Bytes;
using reference::Model;

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t P(std::uint64_t n) { return n * kPage; }

enum class Sweep { kHeap, kCharge, kOutOfMemory, kLimitOutOfMemory };
constexpr Sweep kSweeps[] = {Sweep::kHeap, Sweep::kCharge, Sweep::kOutOfMemory,
                             Sweep::kLimitOutOfMemory};

const char* SweepName(Sweep sweep) {
  switch (sweep) {
    case Sweep::kHeap:
      return "heap";
    case Sweep::kCharge:
      return "charge";
    case Sweep::kOutOfMemory:
      return "oom";
    case Sweep::kLimitOutOfMemory:
      return "limit+oom";
  }
  return "?";
}

// Arms the hook of sweep at n for the life of the object.
class Injection {
 public:
  Injection(Sweep sweep, std::uint64_t n) : sweep_(sweep), done_(n == 0) {
    if (n == 0) return;
    if (sweep == Sweep::kCharge || sweep == Sweep::kLimitOutOfMemory) {
      FailChargeAfter(n);
    }
    if (sweep == Sweep::kCharge) return;
    heap_count.store(0);
    heap_fail_at = n;
    heap_sticky = sweep == Sweep::kOutOfMemory;
    heap_after_charge = sweep == Sweep::kLimitOutOfMemory;
    heap_hit.store(false);
    heap_armed.store(true);
  }
  ~Injection() { Disarm(); }
  Injection(const Injection&) = delete;
  Injection& operator=(const Injection&) = delete;

  // Stops injecting; true if the armed failure happened.
  bool Disarm() {
    if (done_) return hit_;
    done_ = true;
    heap_armed.store(false);
    heap_after_charge = false;
    if (sweep_ == Sweep::kHeap || sweep_ == Sweep::kOutOfMemory) {
      hit_ = heap_hit.load();
    } else {
      hit_ = ChargesBeforeFailure() == 0;
      FailChargeAfter(0);
    }
    return hit_;
  }

 private:
  Sweep sweep_;
  bool done_;  // disarmed, or never armed
  bool hit_ = false;
};

// --- the state: the core and the model, driven together ----------------------

VmConfig Config() {
  VmConfig config;
  config.page_size = kPage;
  config.address_bits = 32;
  config.memory_limit = 64 << 20;
  config.max_tasks = 16;
  return config;
}

constexpr std::size_t kSetupPin = 0;  // a pinned read held by the setup
constexpr std::size_t kCallPin = 1;   // the pin slot of vm_read_pinned

// The core and the model side by side: task t is tasks[t] in the core and
// number t in the model. The setup's calls must agree and succeed.
struct World {
  World() : system(std::make_unique<VmSystem>(Config())), model(Config(), 2) {}

  std::unique_ptr<VmSystem> system;
  std::vector<std::shared_ptr<Task>> tasks;
  Model model;
  PinnedPages pins[2];
  // What the call under test uses or makes, kept out of its allocations.
  std::vector<std::byte> buffer = std::vector<std::byte>(P(16));
  std::shared_ptr<Task> created;

  Task& T(std::size_t t) { return *tasks[t]; }

  void Create(const char* name) {
    std::shared_ptr<Task> task;
    ASSERT_EQ(Take(task_create(*system, name), &task), KERN_SUCCESS);
    ASSERT_EQ(model.Create(name), KERN_SUCCESS);
    tasks.push_back(task);
  }
  void Fork(std::size_t parent, const char* name) {
    std::shared_ptr<Task> task;
    ASSERT_EQ(Take(task_fork(*system, T(parent), name), &task), KERN_SUCCESS);
    ASSERT_EQ(model.Fork(parent, name), KERN_SUCCESS);
    tasks.push_back(task);
  }
  void Allocate(std::size_t t, vm_address_t address, vm_size_t size) {
    vm_address_t a = address, b = address;
    ASSERT_EQ(vm_allocate(T(t), &a, size, false), KERN_SUCCESS);
    ASSERT_EQ(model.Allocate(t, &b, size, false), KERN_SUCCESS);
  }
  // Fills whole pages [address, address + pages) with byte, byte + 1, ...
  void Write(std::size_t t, vm_address_t address, std::uint64_t pages,
             std::uint8_t byte) {
    Bytes data(P(pages));
    for (std::uint64_t p = 0; p < pages; ++p) {
      std::fill_n(data.begin() + static_cast<std::ptrdiff_t>(P(p)), kPage,
                  static_cast<std::uint8_t>(byte + p));
      data[P(p) + 1] = static_cast<std::uint8_t>(t);  // who wrote it
    }
    ASSERT_EQ(vm_write(T(t), address, data.data(), data.size()), KERN_SUCCESS);
    ASSERT_EQ(model.Write(t, address, data.data(), data.size()), KERN_SUCCESS);
  }
  void Protect(std::size_t t, vm_address_t address, vm_size_t size,
               bool set_maximum, vm_prot_t prot) {
    ASSERT_EQ(vm_protect(T(t), address, size, set_maximum, prot), KERN_SUCCESS);
    ASSERT_EQ(model.Protect(t, address, size, set_maximum, prot), KERN_SUCCESS);
  }
  void Inherit(std::size_t t, vm_address_t address, vm_size_t size,
               vm_inherit_t inheritance) {
    ASSERT_EQ(vm_inherit(T(t), address, size, inheritance), KERN_SUCCESS);
    ASSERT_EQ(model.Inherit(t, address, size, inheritance), KERN_SUCCESS);
  }
  void Copy(std::size_t t, vm_address_t source, vm_size_t size,
            vm_address_t dest) {
    ASSERT_EQ(vm_copy(T(t), source, size, dest), KERN_SUCCESS);
    ASSERT_EQ(model.Copy(t, source, size, dest), KERN_SUCCESS);
  }
  void MapCopy(std::size_t dst, vm_address_t dest, std::size_t src,
               vm_address_t source, vm_size_t size, bool dst_alloc,
               bool src_destroy) {
    ASSERT_EQ(
        vm_map_copy(T(dst), dest, T(src), source, size, dst_alloc, src_destroy),
        KERN_SUCCESS);
    ASSERT_EQ(
        model.MapCopy(dst, dest, src, source, size, dst_alloc, src_destroy),
        KERN_SUCCESS);
  }
  void Pin(std::size_t t, vm_address_t address, vm_size_t size) {
    ASSERT_EQ(vm_read_pinned(T(t), address, size, &pins[kSetupPin]),
              KERN_SUCCESS);
    ASSERT_EQ(model.ReadPinned(t, address, size, kSetupPin), KERN_SUCCESS);
  }
};

// Task numbers of the setup.
constexpr std::size_t kA = 0, kB = 1, kC = 2;

// Region addresses of task A.
constexpr vm_address_t kData = 0x10000;    // 16 pages, copy, written 0-5, 8-11
constexpr vm_address_t kShared = 0x40000;  // 8 pages, share, written 0-3
constexpr vm_address_t kRead = 0x80000;    // 8 pages, r--, written 0-7,
                                           // then 4 rw- pages
constexpr vm_address_t kNone = 0xa0000;    // 4 pages, none, written 0-1
constexpr vm_address_t kFree = 0x200000;   // nothing here
// 1600 pages, written at 0 and 600: page-table leaves 0 and 1 exist, 2 and 3
// (pages 1024 to 1600) not yet.
constexpr vm_address_t kBig = 0x400000;
constexpr vm_address_t kLeaf2 = kBig + P(1024);

// The state every case starts from: pages shared within a task (a vm_copy),
// between parent and child (the copy and share regions of a fork, one page
// broken by a write on each side), with a third task (a vm_map_copy), and a
// pinned read.
void BuildState(World& w) {
  w.Create("a");
  w.Allocate(kA, kData, P(16));
  w.Write(kA, kData, 6, 'a');
  w.Copy(kA, kData, P(4), kData + P(8));  // pages 8-11 share 0-3
  w.Allocate(kA, kShared, P(8));
  w.Write(kA, kShared, 4, 'A');
  w.Inherit(kA, kShared, P(8), VM_INHERIT_SHARE);
  w.Allocate(kA, kRead, P(8));
  w.Write(kA, kRead, 8, '0');
  w.Protect(kA, kRead, P(8), false, VM_PROT_READ);
  w.Allocate(kA, kRead + P(8), P(4));  // rw-, next to it
  w.Allocate(kA, kNone, P(4));
  w.Write(kA, kNone, 2, 'n');
  w.Inherit(kA, kNone, P(4), VM_INHERIT_NONE);
  w.Allocate(kA, kBig, P(1600));
  w.Write(kA, kBig, 1, 'g');
  w.Write(kA, kBig + P(600), 1, 'h');

  w.Fork(kA, "b");
  w.Write(kB, kData + P(1), 1, 'x');    // breaks one copied page in b
  w.Write(kA, kData + P(2), 1, 'y');    // and one in a
  w.Write(kB, kShared + P(5), 1, 's');  // seen by both

  w.Create("c");
  w.MapCopy(kC, 0x20000, kA, kData, P(8), /*dst_alloc=*/true, false);
  w.Allocate(kC, 0x60000, P(4));
  w.Write(kC, 0x60000, 2, 'c');

  w.Pin(kA, kData + P(4), P(2));
  // No freed page stays charged: a charge the test fails is then refused,
  // not rescued by the budget's reclaim.
  w.system->pages().Reclaim();
}

// --- comparing
// ----------------------------------------------------------------

std::uint64_t Hash(const std::byte* data, std::size_t n) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < n; ++i) {
    h = (h ^ static_cast<std::uint8_t>(data[i])) * 1099511628211ull;
  }
  return h;
}

std::string RegionText(const RegionInfo& r) {
  return fmt::format("{:#x}+{:#x} {}/{} inherit {}", r.start, r.size,
                     r.protection, r.max_protection, r.inheritance);
}

std::string StatsLine(const TaskStatistics& s) {
  return fmt::format(
      "regions {} virtual {:#x} resident {:#x} shared {:#x} "
      "metadata {}",
      s.regions, s.virtual_bytes, s.resident_bytes, s.shared_bytes,
      s.metadata_bytes);
}

// The core's whole state as lines, objects and pages numbered in the order
// first met, so two systems built alike compare equal.
std::vector<std::string> Snapshot(World& w) {
  std::vector<std::string> out;
  std::map<const void*, std::size_t> objects, pages;
  auto number = [](std::map<const void*, std::size_t>& m, const void* p) {
    return m.emplace(p, m.size() + 1).first->second;
  };
  VmSystem& system = *w.system;
  out.push_back(
      fmt::format("charged {} own {} live pages {}",
                  system.budget().used() + system.budget().reserve_used(),
                  system.pages().own_bytes(), system.pages().live_pages()));
  out.push_back(
      fmt::format("of which the reserve {}", system.budget().reserve_used()));
  for (const std::shared_ptr<Task>& task : system.Tasks()) {
    out.push_back(fmt::format("task {} {} record {}", task->id(), task->name(),
                              task->account().held()));
  }
  for (const std::shared_ptr<Task>& task : w.tasks) {
    out.push_back(fmt::format("task {}", task->id()));
    const KernResult<std::vector<RegionInfo>> regions = vm_region_list(*task);
    if (!regions.ok()) {
      out.push_back(
          fmt::format("  regions: {}", KernReturnName(regions.code())));
      continue;
    }
    for (const RegionInfo& r : regions.value()) {
      out.push_back("  region " + RegionText(r));
    }
    const KernResult<TaskStatistics> stats = task_statistics(*task);
    out.push_back("  stats " +
                  (stats.ok() ? StatsLine(stats.value())
                              : std::string(KernReturnName(stats.code()))));
    TaskLocks task_lock(*task, /*exclusive=*/false);
    const AddressMap& map = task->map();
    out.push_back(fmt::format("  map metadata {}", map.metadata_bytes()));
    ObjectLocks object_locks;
    object_locks.Add(map, PageRange::All(map.geometry()), /*exclusive=*/false);
    object_locks.LockAll();
    // One line per written page, and one per run of unwritten pages of
    // one entry with equal coverage (they read as zeros).
    for (const auto& [start, entry] : map.entries()) {
      const VmObject& object = *entry.object;
      const std::size_t object_number = number(objects, &object);
      for (vm_address_t a = entry.start; a < entry.end;) {
        const std::uint64_t index = entry.offset + (a - entry.start) / kPage;
        const Page* page = object.pages().Get(index);
        const std::uint32_t coverage = object.CoverageAt(index);
        std::string line = fmt::format(
            "  {:#x}: object {} (metadata {}) index {} coverage {}", a,
            object_number, object.metadata_bytes(), index, coverage);
        a += kPage;
        if (page != nullptr) {
          line += fmt::format(" page {} mappings {} pinned {} bytes {:x}",
                              number(pages, page), page->mappings(),
                              page->pinned(), Hash(page->data(), kPage));
        } else {
          std::uint64_t next = index + 1;
          for (; a < entry.end && object.pages().Get(next) == nullptr &&
                 object.CoverageAt(next) == coverage;
               a += kPage, ++next) {
          }
          line += fmt::format(" unwritten to {:#x}", a);
        }
        out.push_back(std::move(line));
      }
    }
  }
  for (const PinnedPages& pin : w.pins) {
    std::vector<std::byte> bytes(pin.size());
    pin.CopyTo(bytes.data());
    out.push_back(fmt::format("pin {} bytes {:x}", pin.size(),
                              Hash(bytes.data(), bytes.size())));
  }
  return out;
}

// What a caller sees, core against model: the tasks, each task's regions,
// statistics and readable bytes, the pins, the live pages.
void ExpectMatchesModel(World& w, const std::string& where) {
  SCOPED_TRACE(where);
  std::vector<std::string> core_names, model_names;
  for (const std::shared_ptr<Task>& task : w.system->Tasks()) {
    core_names.push_back(task->name());
  }
  for (std::size_t t = 0; t < w.model.task_count(); ++t) {
    if (w.model.alive(t)) model_names.push_back(w.model.name(t));
  }
  EXPECT_EQ(core_names, model_names);
  ASSERT_EQ(w.tasks.size(), w.model.task_count());
  for (std::size_t t = 0; t < w.tasks.size(); ++t) {
    std::vector<RegionInfo> core_regions, model_regions;
    const KernReturn kr = Take(vm_region_list(w.T(t)), &core_regions);
    EXPECT_EQ(kr, w.model.RegionList(t, &model_regions)) << "task " << t;
    if (kr != KERN_SUCCESS) continue;
    EXPECT_EQ(core_regions, model_regions) << "task " << t;
    TaskStatistics core_stats, model_stats;
    EXPECT_EQ(Take(task_statistics(w.T(t)), &core_stats), KERN_SUCCESS);
    EXPECT_EQ(w.model.Statistics(t, &model_stats), KERN_SUCCESS);
    EXPECT_TRUE(reference::SameStats(core_stats, model_stats))
        << "task " << t << ": core " << reference::StatsText(core_stats)
        << ", model " << reference::StatsText(model_stats);
    for (const auto& [first, end] : w.model.Runs(t, VM_PROT_READ)) {
      // Kept between calls: this check runs after every injected failure,
      // and fresh buffers of a region's size cost more than the reads.
      static Bytes core_bytes, model_bytes;
      core_bytes.assign(P(end - first), 0);
      EXPECT_EQ(vm_read(w.T(t), P(first),
                        std::as_writable_bytes(std::span(core_bytes))),
                KERN_SUCCESS);
      EXPECT_EQ(w.model.Read(t, P(first), P(end - first), &model_bytes),
                KERN_SUCCESS);
      EXPECT_TRUE(core_bytes == model_bytes)
          << "task " << t << " bytes at " << reference::Hex(P(first));
    }
  }
  for (std::size_t pin = 0; pin < 2; ++pin) {
    Bytes core_bytes(w.pins[pin].size());
    w.pins[pin].CopyTo(core_bytes.data());
    EXPECT_TRUE(core_bytes == w.model.PinnedBytes(pin)) << "pin " << pin;
  }
  EXPECT_EQ(w.system->pages().live_pages(), w.model.LivePages());
}

// The first line where two snapshots differ, or "". from = 2 leaves out
// how the charges are split between the limit and the reserve.
std::string FirstDifference(const std::vector<std::string>& want,
                            const std::vector<std::string>& got,
                            std::size_t from = 0) {
  if (from != 0 && want.front() != got.front()) {
    return "want: " + want.front() + "\n got: " + got.front();
  }
  for (std::size_t i = from; i < std::max(want.size(), got.size()); ++i) {
    const std::string a = i < want.size() ? want[i] : "(none)";
    const std::string b = i < got.size() ? got[i] : "(none)";
    if (a != b) return "want: " + a + "\n got: " + b;
  }
  return "";
}

// --- the cases
// ------------------------------------------------------------------

// One operation kind: core runs it on the core alone (under injection) and
// returns its code; model runs the same on the model (for the state of a
// success). Both may add a task (create, fork).
struct Case {
  const char* name;
  std::function<KernReturn(World&)> core;
  std::function<void(World&)> model;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  auto add = [&cases](const char* name, std::function<KernReturn(World&)> core,
                      std::function<void(World&)> model) {
    cases.push_back({name, std::move(core), std::move(model)});
  };
  add(
      "vm_allocate fixed, a new region",
      [](World& w) {
        vm_address_t a = kFree;
        return vm_allocate(w.T(kA), &a, P(3), false);
      },
      [](World& w) {
        vm_address_t a = kFree;
        w.model.Allocate(kA, &a, P(3), false);
      });
  add(
      "vm_allocate fixed, extending the region below",
      [](World& w) {
        vm_address_t a = 0x60000 + P(4);
        return vm_allocate(w.T(kC), &a, P(2), false);
      },
      [](World& w) {
        vm_address_t a = 0x60000 + P(4);
        w.model.Allocate(kC, &a, P(2), false);
      });
  add(
      "vm_allocate anywhere",
      [](World& w) {
        vm_address_t a = 0;
        return vm_allocate(w.T(kB), &a, P(5), true);
      },
      [](World& w) {
        vm_address_t a = 0;
        w.model.Allocate(kB, &a, P(5), true);
      });
  add(
      "vm_deallocate inside a region",
      [](World& w) { return vm_deallocate(w.T(kA), kData + P(2), P(3)); },
      [](World& w) { w.model.Deallocate(kA, kData + P(2), P(3)); });
  add(
      "vm_deallocate across regions",
      [](World& w) {
        return vm_deallocate(w.T(kB), kData + P(12),
                             kShared + P(2) - kData - P(12));
      },
      [](World& w) {
        w.model.Deallocate(kB, kData + P(12), kShared + P(2) - kData - P(12));
      });
  add(
      "vm_protect",
      [](World& w) {
        return vm_protect(w.T(kA), kData + P(3), P(6), false, VM_PROT_READ);
      },
      [](World& w) {
        w.model.Protect(kA, kData + P(3), P(6), false, VM_PROT_READ);
      });
  add(
      "vm_protect set_maximum across regions",
      [](World& w) {
        return vm_protect(w.T(kA), kRead + P(6), P(4), true, VM_PROT_READ);
      },
      [](World& w) {
        w.model.Protect(kA, kRead + P(6), P(4), true, VM_PROT_READ);
      });
  add(
      "vm_inherit",
      [](World& w) {
        return vm_inherit(w.T(kB), kShared + P(1), P(2), VM_INHERIT_NONE);
      },
      [](World& w) {
        w.model.Inherit(kB, kShared + P(1), P(2), VM_INHERIT_NONE);
      });
  static const Bytes kBytes = [] {
    Bytes b(P(8));
    for (std::size_t i = 0; i < b.size(); ++i) {
      b[i] = static_cast<std::uint8_t>(i * 7 + i / kPage);
    }
    return b;
  }();
  add(
      "vm_write of fresh pages",
      [](World& w) {
        return vm_write(w.T(kA), kData + P(12), kBytes.data(), P(4));
      },
      [](World& w) { w.model.Write(kA, kData + P(12), kBytes.data(), P(4)); });
  add(
      "vm_write of fresh pages in two new page-table leaves",
      [](World& w) {
        return vm_write(w.T(kA), kLeaf2 + P(510), kBytes.data(), P(4));
      },
      [](World& w) {
        w.model.Write(kA, kLeaf2 + P(510), kBytes.data(), P(4));
      });
  add(
      "vm_write copy-on-write of shared and pinned pages",
      [](World& w) { return vm_write(w.T(kA), kData, kBytes.data(), P(8)); },
      [](World& w) { w.model.Write(kA, kData, kBytes.data(), P(8)); });
  add(
      "vm_write of a share region's pages",
      [](World& w) { return vm_write(w.T(kB), kShared, kBytes.data(), P(6)); },
      [](World& w) { w.model.Write(kB, kShared, kBytes.data(), P(6)); });
  add(
      "vm_read", [](World& w) { return vm_read(w.T(kA), kData, w.buffer); },
      [](World&) {});
  add(
      "vm_read_pinned",
      [](World& w) {
        return vm_read_pinned(w.T(kB), kData, P(16), &w.pins[kCallPin]);
      },
      [](World& w) { w.model.ReadPinned(kB, kData, P(16), kCallPin); });
  add(
      "vm_copy within a task, overlapping",
      [](World& w) { return vm_copy(w.T(kA), kData, P(10), kData + P(3)); },
      [](World& w) { w.model.Copy(kA, kData, P(10), kData + P(3)); });
  add(
      "vm_copy into new page-table leaves",
      [](World& w) { return vm_copy(w.T(kA), kData, P(8), kLeaf2 + P(508)); },
      [](World& w) { w.model.Copy(kA, kData, P(8), kLeaf2 + P(508)); });
  add(
      "vm_copy across regions",
      [](World& w) { return vm_copy(w.T(kB), kData, P(6), kShared + P(1)); },
      [](World& w) { w.model.Copy(kB, kData, P(6), kShared + P(1)); });
  // vm_map_copy: (dst, dest, src, source, size, dst_alloc, src_destroy).
  struct MapCopyArgs {
    const char* name;
    std::size_t dst;
    vm_address_t dest;
    std::size_t src;
    vm_address_t source;
    vm_size_t size;
    bool dst_alloc, src_destroy;
  };
  static const MapCopyArgs kMapCopies[] = {
      {"vm_map_copy onto another task", kC, 0x20000 + P(1), kA, kData, P(6),
       false, false},
      {"vm_map_copy dst_alloc into another task", kC, kFree, kB, kData, P(16),
       true, false},
      {"vm_map_copy src_destroy onto another task", kB, kData, kC,
       0x20000 + P(2), P(5), false, true},
      {"vm_map_copy dst_alloc src_destroy from another task", kA, kFree, kB,
       kData + P(3), P(10), true, true},
      {"vm_map_copy src_destroy into new page-table leaves of another task", kB,
       kLeaf2 + P(20), kC, 0x20000, P(8), false, true},
      {"vm_map_copy within a task", kA, kData + P(8), kA, kShared, P(6), false,
       false},
      {"vm_map_copy dst_alloc within a task", kA, kFree, kA, kData + P(2), P(8),
       true, false},
      {"vm_map_copy dst_alloc src_destroy within a task", kA, kFree, kA,
       kShared, P(8), true, true},
      {"vm_map_copy src_destroy within a task, overlapping (a move)", kA,
       kData + P(2), kA, kData, P(6), false, true},
  };
  for (const MapCopyArgs& c : kMapCopies) {
    add(
        c.name,
        [&c](World& w) {
          return vm_map_copy(w.T(c.dst), c.dest, w.T(c.src), c.source, c.size,
                             c.dst_alloc, c.src_destroy);
        },
        [&c](World& w) {
          w.model.MapCopy(c.dst, c.dest, c.src, c.source, c.size, c.dst_alloc,
                          c.src_destroy);
        });
  }
  add(
      "task_create",
      [](World& w) { return Take(task_create(*w.system, "new"), &w.created); },
      [](World& w) { w.model.Create("new"); });
  add(
      "task_fork with copy, share and none regions",
      [](World& w) {
        return Take(task_fork(*w.system, w.T(kA), "new"), &w.created);
      },
      [](World& w) { w.model.Fork(kA, "new"); });
  add(
      "task_terminate",
      [](World& w) { return task_terminate(*w.system, w.T(kB)); },
      [](World& w) { w.model.Terminate(kB); });
  add(
      "vm_region",
      [](World& w) {
        vm_address_t a = kData + P(13);
        RegionInfo info;
        return vm_region(w.T(kA), &a, &info);
      },
      [](World&) {});
  add(
      "vm_region_list", [](World& w) { return vm_region_list(w.T(kA)).code(); },
      [](World&) {});
  add(
      "task_statistics",
      [](World& w) { return task_statistics(w.T(kB)).code(); }, [](World&) {});
  return cases;
}

// Runs c.core on a thread of its own under the injection of sweep at n (0:
// none); *hit says whether the injection was reached.
KernReturn RunInjected(World& w, const Case& c, Sweep sweep, std::uint64_t n,
                       bool* hit) {
  KernReturn kr = KERN_FAILURE;
  std::thread thread([&] {
    Injection injection(sweep, n);
    kr = c.core(w);
    *hit = injection.Disarm();
  });
  thread.join();
  if (w.created != nullptr) w.tasks.push_back(std::move(w.created));
  return kr;
}

// The failed expectations of the running test so far.
int Failures() {
  const ::testing::TestResult* result =
      ::testing::UnitTest::GetInstance()->current_test_info()->result();
  int failures = 0;
  for (int i = 0; i < result->total_part_count(); ++i) {
    if (result->GetTestPartResult(i).failed()) ++failures;
  }
  return failures;
}

struct Counts {
  std::uint64_t points = 0;    // calls that reached an injection
  std::uint64_t absorbed = 0;  // of which succeeded all the same
};

// The sweep of one case: N = 1, 2, ... until the call completes without
// reaching the injection.
Counts SweepCase(const Case& c, Sweep sweep,
                 const std::vector<std::string>& before,
                 const std::vector<std::string>& after) {
  Counts counts;
  const int failures_before = Failures();
  constexpr std::uint64_t kMaxPoints = 10000;
  for (std::uint64_t n = 1; n <= kMaxPoints; ++n) {
    SCOPED_TRACE(fmt::format("{} sweep, injection at {}", SweepName(sweep), n));
    World w;
    BuildState(w);
    if (::testing::Test::HasFatalFailure()) return counts;
    bool hit = false;
    const KernReturn kr = RunInjected(w, c, sweep, n, &hit);
    if (!hit) {
      EXPECT_EQ(kr, KERN_SUCCESS);
      EXPECT_EQ(FirstDifference(after, Snapshot(w)), "");
      return counts;
    }
    ++counts.points;
    if (kr == KERN_SUCCESS) {
      ++counts.absorbed;
      // The budget's reserve may hold what the limit refused (vm_deallocate).
      EXPECT_EQ(FirstDifference(after, Snapshot(w), 2), "")
          << "a failure absorbed by the budget";
      continue;
    }
    EXPECT_EQ(kr, KERN_RESOURCE_SHORTAGE) << KernReturnName(kr);
    // The snapshot holds all the model compares (tasks, regions,
    // statistics, bytes, pins, live pages), and the state before was
    // checked against the model: equal to it, this state matches the model.
    // Exact in every sweep, the heap out for good included: what a refused
    // call changed in page tables is put back from its undo log, which
    // needs no memory.
    const std::vector<std::string> now = Snapshot(w);
    EXPECT_EQ(FirstDifference(before, now), "")
        << "a failed call changed the state";
    // The first failing point of a sweep is the one to read.
    if (Failures() != failures_before) return counts;
  }
  ADD_FAILURE() << "no end after " << kMaxPoints << " injection points";
  return counts;
}

TEST(FailureInjectionTest, EveryOperationIsAllOrNothingAtEveryAllocation) {
  const std::vector<Case> cases = Cases();
  std::map<Sweep, Counts> totals;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    // The state before, and after an uninjected success, each checked
    // against the model.
    World before_world;
    BuildState(before_world);
    ASSERT_FALSE(HasFatalFailure());
    ExpectMatchesModel(before_world, "after the setup");
    const std::vector<std::string> before = Snapshot(before_world);
    World after_world;
    BuildState(after_world);
    bool hit = false;
    ASSERT_EQ(RunInjected(after_world, c, Sweep::kHeap, 0, &hit), KERN_SUCCESS);
    c.model(after_world);
    ExpectMatchesModel(after_world, "after an uninjected call");
    const std::vector<std::string> after = Snapshot(after_world);

    std::string line = fmt::format("{:<60}", c.name);
    for (Sweep sweep : kSweeps) {
      const Counts counts = SweepCase(c, sweep, before, after);
      totals[sweep].points += counts.points;
      totals[sweep].absorbed += counts.absorbed;
      line += fmt::format(" {} {:>2}", SweepName(sweep), counts.points);
      if (counts.absorbed != 0)
        line += fmt::format(" ({} absorbed)", counts.absorbed);
    }
    std::printf("%s\n", line.c_str());
  }
  std::uint64_t total = 0;
  for (const auto& [sweep, counts] : totals) total += counts.points;
  std::uint64_t absorbed = 0;
  std::string per_sweep;
  for (Sweep sweep : kSweeps) {
    absorbed += totals[sweep].absorbed;
    per_sweep += fmt::format("{}{} {}", per_sweep.empty() ? "" : ", ",
                             SweepName(sweep), totals[sweep].points);
  }
  std::printf(
      "failure injection: %zu operation kinds, %llu injection points (%s), "
      "%llu absorbed by the budget's reclaim or reserve\n",
      cases.size(), static_cast<unsigned long long>(total), per_sweep.c_str(),
      static_cast<unsigned long long>(absorbed));
  ::testing::Test::RecordProperty("operation_kinds",
                                  static_cast<int>(cases.size()));
  ::testing::Test::RecordProperty("injection_points", static_cast<int>(total));
}

// A call refused for a reason of its own formats that reason, which
// allocates: with the heap out from the first allocation on, the call still
// returns (its own code, or KERN_RESOURCE_SHORTAGE when even the reason
// could not be made) and changes nothing.
TEST(FailureInjectionTest, RefusalsReturnWithTheHeapExhausted) {
  World w;
  BuildState(w);
  ASSERT_FALSE(HasFatalFailure());
  const std::vector<std::string> before = Snapshot(w);
  const Case refusals[] = {
      {"task_fork with a bad name",
       [](World& w) { return task_fork(*w.system, w.T(kA), "a/b").code(); },
       nullptr},
      {"task_create of a taken name",
       [](World& w) { return task_create(*w.system, "b").code(); }, nullptr},
      {"vm_allocate fixed over a region",
       [](World& w) {
         vm_address_t a = kData;
         return vm_allocate(w.T(kA), &a, P(1), false);
       },
       nullptr},
      {"vm_write of a read-only page",
       [](World& w) { return vm_write(w.T(kA), kRead, w.buffer.data(), P(1)); },
       nullptr},
  };
  const KernReturn own[] = {KERN_INVALID_ARGUMENT, KERN_NAME_EXISTS,
                            KERN_NO_SPACE, KERN_PROTECTION_FAILURE};
  for (std::size_t i = 0; i < std::size(refusals); ++i) {
    SCOPED_TRACE(refusals[i].name);
    bool hit = false;
    EXPECT_EQ(RunInjected(w, refusals[i], Sweep::kHeap, 0, &hit), own[i]);
    const KernReturn kr =
        RunInjected(w, refusals[i], Sweep::kOutOfMemory, 1, &hit);
    EXPECT_TRUE(kr == own[i] || kr == KERN_RESOURCE_SHORTAGE)
        << KernReturnName(kr);
    EXPECT_EQ(FirstDifference(before, Snapshot(w)), "");
  }
}

}  // namespace
}  // namespace taskfs::vm
