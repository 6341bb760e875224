// The Mach gate: for each call, open the task (Open), check the arguments in
// Mach's order (Checks), and make one call into the engine. See vm_user.h for
// the contracts and lock_order.h for the locks.
#include "vmcore/vm_user.h"

#include <algorithm>
#include <cassert>
#include <initializer_list>
#include <new>
#include <type_traits>

#include <fmt/format.h>

#include "vmcore/address_map.h"
#include "vmcore/failure_reason.h"
#include "vmcore/locks.h"
#include "vmcore/page_range.h"
#include "vmcore/vm_copy.h"
#include "vmcore/vm_fault.h"
#include "vmcore/vm_fork.h"
#include "vmcore/vm_statistics.h"

namespace taskfs::vm {
namespace {

// Runs body, turning exceptions into Mach codes so none escapes the core.
template <typename Body>
auto Guarded(Body&& body) noexcept -> std::invoke_result_t<Body&> {
  using Result = std::invoke_result_t<Body&>;
  try {
    return body();
  } catch (const LimitReached& limit) {
    // Formatted on the stack: the heap may be out too, and a throw here
    // would end the daemon (this function is noexcept).
    char text[128];
    const auto out = fmt::format_to_n(
        text, sizeof text,
        "memory limit {} bytes: {} in use, the call needs {} more",
        limit.limit(), limit.used(), limit.asked());
    SetFailureReason(
        std::string_view(text, std::min(out.size, sizeof text)));
    return Result(KERN_RESOURCE_SHORTAGE);
  } catch (const std::bad_alloc&) {
    SetFailureReason("out of memory: the daemon could not allocate what the "
                     "call needs");
    return Result(KERN_RESOURCE_SHORTAGE);
  } catch (...) {
    SetFailureReason("an unexpected error inside the VM core");
    return Result(KERN_FAILURE);
  }
}

KernReturn CodeOf(KernReturn kr) { return kr; }
template <typename T>
KernReturn CodeOf(const KernResult<T>& result) {
  return result.code();
}

// Runs body under Guarded and makes sure a failure leaves a reason
// (failure_reason.h): every failing path names its own; this one, which
// only names the code, is a net under them.
template <typename Body>
auto WithReason(Body&& body) noexcept {
  const std::uint64_t before = FailureReasonCount();
  auto result = Guarded(body);
  if (CodeOf(result) != KERN_SUCCESS && FailureReasonCount() == before) {
    SetFailureReason(KernReturnName(CodeOf(result)));
  }
  return result;
}

KernReturn Terminated(const Task& task) {
  SetFailureReason(fmt::format("task {} was terminated", task.name()));
  return KERN_INVALID_TASK;
}

enum class Lock { kShared, kExclusive };

// Opens the task of one call: locks it (shared for calls that leave the map
// as it is, exclusive for calls that change it), fails with
// KERN_INVALID_TASK if it is terminated, and runs body under Guarded.
template <typename Body>
auto Open(Task& task, Lock lock, Body&& body) noexcept {
  return WithReason([&]() -> std::invoke_result_t<Body&> {
    TaskLocks locks(task, lock == Lock::kExclusive);
    if (task.terminated()) return Terminated(task);
    return body();
  });
}

// The same for a call on two tasks (which may be one): TaskLocks takes them
// in lock order.
template <typename Body>
auto Open(Task& a, Lock a_lock, Task& b, Lock b_lock, Body&& body) noexcept {
  return WithReason([&]() -> std::invoke_result_t<Body&> {
    TaskLocks locks(a, a_lock == Lock::kExclusive, b,
                    b_lock == Lock::kExclusive);
    if (a.terminated()) return Terminated(a);
    if (b.terminated()) return Terminated(b);
    return body();
  });
}

KernReturn BadTaskName(std::string_view name) {
  SetFailureReason(fmt::format(
      "bad task name '{}' (1 to 64 of A-Z a-z 0-9 . _ -, not starting with "
      "'.', not host_page_size)",
      name.substr(0, 80)));
  return KERN_INVALID_ARGUMENT;
}

// "read needs r", "write needs w": what an access of needed lacks.
std::string Needs(vm_prot_t needed) {
  const std::string_view op = needed == VM_PROT_READ    ? "read"
                              : needed == VM_PROT_WRITE ? "write"
                                                        : "access";
  std::string letters;
  for (const auto& [bit, letter] :
       {std::pair{VM_PROT_READ, 'r'}, std::pair{VM_PROT_WRITE, 'w'},
        std::pair{VM_PROT_EXECUTE, 'x'}}) {
    if (needed & bit) letters.push_back(letter);
  }
  return fmt::format("{} needs {}", op, letters);
}

// The reason of a page that lacks `needed`.
auto NeedsExplained(vm_prot_t needed) {
  return [needed](const MapEntry& e, vm_address_t page) {
    return fmt::format("page {:#x} is {}/{}, {}", page,
                       ProtectionText(e.protection),
                       ProtectionText(e.max_protection), Needs(needed));
  };
}

// Mach's order of checks (vm_user.h), one method per check, called in that
// order: arguments, then (a zero size ends the checks: success, nothing to
// do) bounds, then the source range, then the destination range. The first
// failure is kept and every later check does nothing, so a call states its
// checks as one chain and asks passed() once.
class Checks {
 public:
  // A value checked for alignment, with its name for the reason.
  struct Named {
    const char* name;
    std::uint64_t value;
  };

  explicit Checks(const Geometry& geometry) : geometry_(geometry) {}

  // 1. Arguments: KERN_INVALID_ARGUMENT.
  Checks& Aligned(std::initializer_list<Named> values) {
    Enter(kArguments);
    for (const Named& v : values) {
      if (!geometry_.Aligned(v.value) && Fail(KERN_INVALID_ARGUMENT)) {
        SetFailureReason(fmt::format(
            "{} {:#x} is not a multiple of the page size {:#x}", v.name,
            v.value, geometry_.page_size()));
      }
    }
    return *this;
  }
  // A flag, protection or inheritance value; why() gives the reason.
  template <typename Why>
  Checks& Valid(bool ok, Why&& why) {
    Enter(kArguments);
    if (!ok && Fail(KERN_INVALID_ARGUMENT)) SetFailureReason(why());
    return *this;
  }
  Checks& NonEmpty(vm_size_t size) {
    Enter(kArguments);
    if (size == 0) done_ = true;
    return *this;
  }

  // 2. Bounds: KERN_INVALID_ADDRESS on wrap-around or outside the space.
  // Sets *out to the range when it passes.
  Checks& Exact(vm_address_t address, vm_size_t size, PageRange* out) {
    if (Enter(kBounds)) {
      Take(PageRange::Exact(geometry_, address, size), address, size, out);
    }
    return *this;
  }
  Checks& Rounded(vm_address_t address, vm_size_t size, PageRange* out) {
    if (Enter(kBounds)) {
      Take(PageRange::Rounded(geometry_, address, size), address, size, out);
    }
    return *this;
  }
  Checks& RoundedApart(vm_address_t address, vm_size_t size, PageRange* out) {
    if (Enter(kBounds)) {
      Take(PageRange::RoundedApart(geometry_, address, size), address, size,
           out);
    }
    return *this;
  }

  // 3, 4. A range of map, ascending: KERN_INVALID_ADDRESS at the lowest
  // unallocated page, else check(entry)'s verdict for the lowest entry it
  // refuses (AddressMap::CheckRange), which explain(entry, page) puts in
  // words. The source range first.
  template <typename Check, typename Explain>
  Checks& Range(const AddressMap& map, const PageRange& range, Check&& check,
                Explain&& explain) {
    if (Enter(kRanges) && Fail(map.CheckRange(range, check))) {
      ExplainRange(map, range, check, explain);
    }
    return *this;
  }
  // Every page allocated and with `needed` in its current protection.
  Checks& Access(const AddressMap& map, const PageRange& range,
                 vm_prot_t needed) {
    if (Enter(kRanges) && Fail(map.CheckAccess(range, needed))) {
      ExplainRange(
          map, range,
          [needed](const MapEntry& e) {
            return (e.protection & needed) == needed ? KERN_SUCCESS
                                                     : KERN_PROTECTION_FAILURE;
          },
          NeedsExplained(needed));
    }
    return *this;
  }
  Checks& Allocated(const AddressMap& map, const PageRange& range) {
    return Range(
        map, range, [](const MapEntry&) { return KERN_SUCCESS; },
        [](const MapEntry&, vm_address_t) { return std::string(); });
  }
  // No page allocated (a destination to map): else KERN_NO_SPACE.
  Checks& Free(const AddressMap& map, const PageRange& range) {
    if (Enter(kRanges) && !map.IsFree(range) && Fail(KERN_NO_SPACE)) {
      const MapEntry& in_the_way = map.EntryFrom(range.start())->second;
      const std::optional<RegionInfo> region =
          map.RegionFrom(std::max(in_the_way.start, range.start()));
      SetFailureReason(fmt::format("overlaps region {:#x}-{:#x}",
                                   region->start,
                                   region->start + region->size));
    }
    return *this;
  }

  // True if every check passed and the call has work to do.
  bool passed() const { return code_ == KERN_SUCCESS && !done_; }
  // The first failure, or KERN_SUCCESS (also for a zero-size call).
  KernReturn code() const { return code_; }

 private:
  enum Stage { kArguments, kBounds, kRanges };

  // Whether a check of stage still has to run.
  bool Enter(Stage stage) {
    assert(stage >= stage_ && "checks out of Mach's order");
    stage_ = stage;
    return code_ == KERN_SUCCESS && !done_;
  }
  // Keeps kr if it is the first failure; true if it was (the caller then
  // sets the reason).
  bool Fail(KernReturn kr) {
    if (code_ != KERN_SUCCESS || kr == KERN_SUCCESS) return false;
    code_ = kr;
    return true;
  }
  void Take(const KernResult<PageRange>& range, vm_address_t address,
            vm_size_t size, PageRange* out) {
    if (range.ok()) {
      *out = range.value();
      return;
    }
    Fail(range.code());
    if (address + size < address) {
      SetFailureReason(
          fmt::format("{:#x} + {:#x} wraps past 2^64", address, size));
    } else {
      SetFailureReason(fmt::format(
          "{:#x}-{:#x} is not inside the address space [0, {:#x})", address,
          address + size, geometry_.limit));
    }
  }
  // The reason of a failed range check: the lowest page it fails at.
  template <typename Check, typename Explain>
  static void ExplainRange(const AddressMap& map, const PageRange& range,
                           Check&& check, Explain&& explain) {
    vm_address_t page = range.start();
    for (auto it = map.EntryFrom(page); page < range.end(); ++it) {
      if (it == map.entries().end() || it->second.start > page) {
        SetFailureReason(fmt::format("page {:#x} is not allocated", page));
        return;
      }
      if (check(it->second) != KERN_SUCCESS) {
        SetFailureReason(explain(it->second, page));
        return;
      }
      page = it->second.end;
    }
  }

  const Geometry& geometry_;
  KernReturn code_ = KERN_SUCCESS;
  bool done_ = false;  // a zero-size call: nothing more to check or do
  Stage stage_ = kArguments;
};

// vm_read's source check, which also collects the range's entries: one walk
// of the map for both (the hot path of every read request: lookups here are
// cache misses).
auto Readable(std::vector<const MapEntry*>* entries) {
  return [entries](const MapEntry& entry) {
    if ((entry.protection & VM_PROT_READ) == 0) return KERN_PROTECTION_FAILURE;
    entries->push_back(&entry);
    return KERN_SUCCESS;
  };
}

// vm_protect's check: both forms fail the same way, since the new value (a
// current protection, or a new maximum) may not go beyond the present
// maximum.
KernReturn Protectable(const MapEntry& entry, vm_prot_t new_prot) {
  return (new_prot & ~entry.max_protection) == 0 ? KERN_SUCCESS
                                                 : KERN_PROTECTION_FAILURE;
}

// The entries of the calling thread's current read: kept across calls so a
// read does not allocate.
std::vector<const MapEntry*>& ReadEntries() {
  thread_local std::vector<const MapEntry*> entries;
  entries.clear();
  return entries;
}

}  // namespace

// --- tasks -----------------------------------------------------------------

KernResult<std::shared_ptr<Task>> task_create(VmSystem& system,
                                              std::string_view name) {
  return WithReason([&]() -> KernResult<std::shared_ptr<Task>> {
    if (!VmSystem::ValidTaskName(name)) return BadTaskName(name);
    return system.AddTask(name);
  });
}

KernResult<std::shared_ptr<Task>> task_fork(VmSystem& system, Task& parent,
                                            std::string_view name) {
  // The name is an argument of the call, checked before the parent is
  // (guarded too: formatting the reason allocates).
  if (!VmSystem::ValidTaskName(name)) {
    return WithReason([&]() -> KernResult<std::shared_ptr<Task>> {
      return BadTaskName(name);
    });
  }
  return Open(parent, Lock::kShared,
              [&] { return ForkTask(system, parent, name); });
}

KernReturn task_terminate(VmSystem& system, Task& task) {
  return Open(task, Lock::kExclusive, [&] {
    task.Terminate();
    system.RemoveTask(task);
    return KERN_SUCCESS;
  });
}

KernResult<TaskStatistics> task_statistics(Task& task) {
  return Open(task, Lock::kShared, [&]() -> KernResult<TaskStatistics> {
    TaskStatistics stats = MapStatistics(task.map());
    stats.metadata_bytes += task.account().held();
    return stats;
  });
}

// --- memory ----------------------------------------------------------------

KernReturn vm_allocate(Task& task, vm_address_t* address, vm_size_t size,
                       bool anywhere) {
  return Open(task, Lock::kExclusive, [&] {
    AddressMap& map = task.map();
    if (anywhere) {
      if (size == 0) {
        *address = 0;
        return KERN_SUCCESS;
      }
      KernResult<vm_address_t> start = map.AllocateAnywhere(size);
      if (!start.ok()) {
        SetFailureReason(fmt::format(
            "no free range of {:#x} bytes in the address space", size));
        return start.code();
      }
      *address = start.value();
      return KERN_SUCCESS;
    }
    PageRange range;
    Checks check(task.geometry());
    check.NonEmpty(size).RoundedApart(*address, size, &range).Free(map, range);
    if (!check.passed()) return check.code();
    map.AllocateRange(range);
    *address = range.start();
    return KERN_SUCCESS;
  });
}

KernReturn vm_deallocate(Task& task, vm_address_t address, vm_size_t size) {
  return Open(task, Lock::kExclusive, [&] {
    PageRange range;
    Checks check(task.geometry());
    check.NonEmpty(size).Rounded(address, size, &range);
    if (!check.passed()) return check.code();
    // At the limit, the split of a region may use the reserve: freeing
    // memory must not need free memory.
    ReserveScope reserve;
    task.map().Remove(range);
    return KERN_SUCCESS;
  });
}

KernReturn vm_protect(Task& task, vm_address_t address, vm_size_t size,
                      bool set_maximum, vm_prot_t new_prot) {
  return Open(task, Lock::kExclusive, [&] {
    AddressMap& map = task.map();
    PageRange range;
    Checks check(task.geometry());
    check
        .Valid((new_prot & ~VM_PROT_ALL) == 0,
               [new_prot] {
                 return fmt::format("protection {:#x} has bits beyond rwx",
                                    new_prot);
               })
        .NonEmpty(size)
        .Rounded(address, size, &range)
        .Range(
            map, range,
            [new_prot](const MapEntry& entry) {
              return Protectable(entry, new_prot);
            },
            [new_prot](const MapEntry& entry, vm_address_t page) {
              return fmt::format("page {:#x} has maximum {}, {} goes beyond it",
                                 page, ProtectionText(entry.max_protection),
                                 ProtectionText(new_prot));
            });
    if (!check.passed()) return check.code();
    map.SetProtection(range, new_prot, set_maximum);
    return KERN_SUCCESS;
  });
}

KernReturn vm_inherit(Task& task, vm_address_t address, vm_size_t size,
                      vm_inherit_t inheritance) {
  return Open(task, Lock::kExclusive, [&] {
    AddressMap& map = task.map();
    PageRange range;
    Checks check(task.geometry());
    check
        .Valid(inheritance <= VM_INHERIT_NONE,
               [inheritance] {
                 return fmt::format(
                     "inheritance {} is not share (0), copy (1) or none (2)",
                     inheritance);
               })
        .NonEmpty(size)
        .Rounded(address, size, &range)
        .Allocated(map, range);
    if (!check.passed()) return check.code();
    map.SetInheritance(range, inheritance);
    return KERN_SUCCESS;
  });
}

KernReturn vm_region(Task& task, vm_address_t* address, RegionInfo* info) {
  return Open(task, Lock::kShared, [&] {
    const std::optional<RegionInfo> region = task.map().RegionFrom(*address);
    if (!region) {
      SetFailureReason(fmt::format("no region at or above {:#x}", *address));
      return KERN_NO_SPACE;
    }
    *info = *region;
    *address = region->start;
    return KERN_SUCCESS;
  });
}

KernResult<std::vector<RegionInfo>> vm_region_list(Task& task,
                                                   MemoryAccount* account,
                                                   std::uint64_t per_region) {
  return Open(
      task, Lock::kShared, [&]() -> KernResult<std::vector<RegionInfo>> {
        std::vector<RegionInfo> regions;
        try {
          task.map().ForEachRegion([&](const RegionInfo& info) {
            if (account != nullptr) account->Charge(per_region, true);
            try {
              regions.push_back(info);
            } catch (...) {
              if (account != nullptr) account->Release(per_region);
              throw;
            }
          });
        } catch (...) {
          if (account != nullptr) account->Release(regions.size() * per_region);
          throw;
        }
        return regions;
      });
}

KernReturn vm_read_pinned(Task& task, vm_address_t address, vm_size_t size,
                          PinnedPages* out) {
  out->Release();
  return Open(task, Lock::kShared, [&] {
    std::vector<const MapEntry*>& entries = ReadEntries();
    PageRange range;
    Checks check(task.geometry());
    check.Aligned({{"address", address}, {"size", size}})
        .NonEmpty(size)
        .Exact(address, size, &range)
        .Range(task.map(), range, Readable(&entries),
               NeedsExplained(VM_PROT_READ));
    if (!check.passed()) return check.code();
    ReadPinned(task.system(), entries, range, out);
    return KERN_SUCCESS;
  });
}

KernReturn vm_read(Task& task, vm_address_t address,
                   std::span<std::byte> buffer) {
  return Open(task, Lock::kShared, [&] {
    std::vector<const MapEntry*>& entries = ReadEntries();
    PageRange range;
    Checks check(task.geometry());
    check.Aligned({{"address", address}, {"size", buffer.size()}})
        .NonEmpty(buffer.size())
        .Exact(address, buffer.size(), &range)
        .Range(task.map(), range, Readable(&entries),
               NeedsExplained(VM_PROT_READ));
    if (!check.passed()) return check.code();
    ReadInto(task.system(), entries, range, buffer);
    return KERN_SUCCESS;
  });
}

KernReturn vm_write(Task& task, vm_address_t address, const void* data,
                    vm_size_t size) {
  return Open(task, Lock::kShared, [&] {
    PageRange range;
    Checks check(task.geometry());
    check.Aligned({{"address", address}, {"size", size}})
        .NonEmpty(size)
        .Exact(address, size, &range)
        .Access(task.map(), range, VM_PROT_WRITE);
    if (!check.passed()) return check.code();
    return WriteBytes(task.system(), task.map(), range, address, size,
                      WriteSource::StreamedBytes(data));
  });
}

KernReturn vm_copy(Task& task, vm_address_t source, vm_size_t size,
                   vm_address_t dest) {
  return Open(task, Lock::kShared, [&] {
    const AddressMap& map = task.map();
    PageRange src_range, dst_range;
    Checks check(task.geometry());
    check.Aligned({{"source", source}, {"size", size}, {"destination", dest}})
        .NonEmpty(size)
        .Exact(source, size, &src_range)
        .Exact(dest, size, &dst_range)
        .Access(map, src_range, VM_PROT_READ)
        .Access(map, dst_range, VM_PROT_WRITE);
    if (!check.passed()) return check.code();
    CopyOverwrite(map, src_range, map, dst_range);
    return KERN_SUCCESS;
  });
}

KernReturn vm_map_copy(Task& dst_task, vm_address_t dest, Task& src_task,
                       vm_address_t source, vm_size_t size, bool dst_alloc,
                       bool src_destroy) {
  const Lock dst_lock = dst_alloc ? Lock::kExclusive : Lock::kShared;
  const Lock src_lock = src_destroy ? Lock::kExclusive : Lock::kShared;
  return Open(dst_task, dst_lock, src_task, src_lock, [&] {
    AddressMap& src_map = src_task.map();
    AddressMap& dst_map = dst_task.map();
    PageRange src_range, dst_range;
    Checks check(dst_task.geometry());
    check.Aligned({{"source", source}, {"size", size}, {"destination", dest}})
        .NonEmpty(size)
        .Exact(source, size, &src_range)
        .Exact(dest, size, &dst_range)
        .Access(src_map, src_range, VM_PROT_READ);
    if (dst_alloc) {
      check.Free(dst_map, dst_range);
    } else {
      check.Access(dst_map, dst_range, VM_PROT_WRITE);
    }
    if (!check.passed()) return check.code();
    MapCopy(src_map, src_range, dst_map, dst_range, dst_alloc, src_destroy);
    return KERN_SUCCESS;
  });
}

namespace {

// vm_load and vm_fill: any alignment, any protection, every page touched
// allocated.
KernReturn Load(Task& task, vm_address_t address, vm_size_t size,
                const WriteSource& source) {
  return Open(task, Lock::kShared, [&] {
    PageRange range;
    Checks check(task.geometry());
    check.NonEmpty(size)
        .Rounded(address, size, &range)
        .Allocated(task.map(), range);
    if (!check.passed()) return check.code();
    return WriteBytes(task.system(), task.map(), range, address, size, source);
  });
}

}  // namespace

KernReturn vm_load(Task& task, vm_address_t address, const void* data,
                   vm_size_t size) {
  return Load(task, address, size, WriteSource::Bytes(data));
}

KernReturn vm_fill(Task& task, vm_address_t address, vm_size_t size,
                   unsigned char byte) {
  return Load(task, address, size, WriteSource::Fill(byte));
}

KernResult<vm_address_t> vm_find_data(Task& task, vm_address_t from) {
  return Open(task, Lock::kShared, [&] { return task.map().FindData(from); });
}

KernResult<vm_address_t> vm_find_hole(Task& task, vm_address_t from) {
  return Open(task, Lock::kShared, [&]() -> KernResult<vm_address_t> {
    return task.map().FindHole(from);
  });
}

}  // namespace taskfs::vm
