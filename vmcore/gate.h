// The Mach gate's machinery: what every call of vm_user.h goes through
// before it makes its one call into the engine. Open opens the task (its
// lock, its liveness, the exception guard, the failure reason's net), and
// Checks checks the arguments in Mach's order (vm_user.h). vm_user.cc is
// the calls; this is the path they share.
#ifndef TASKFS_VMCORE_GATE_H_
#define TASKFS_VMCORE_GATE_H_

#include <cassert>
#include <cstdint>
#include <initializer_list>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "vmcore/address_map.h"
#include "vmcore/failure_reason.h"
#include "vmcore/kern_result.h"
#include "vmcore/kern_return.h"
#include "vmcore/limit_reached.h"
#include "vmcore/locks.h"
#include "vmcore/page_range.h"
#include "vmcore/task.h"
#include "vmcore/vm_types.h"

namespace taskfs::vm::gate {

// --- the guard ---------------------------------------------------------------

// The reasons and codes of what Guarded catches: the limit, with its figures
// (formatted on the stack: the heap may be out too), the heap, and anything
// else. Each sets the reason and returns the code.
KernReturn LimitRefused(const LimitReached& limit) noexcept;
KernReturn OutOfMemory() noexcept;
KernReturn Unexpected() noexcept;

// Runs body, turning exceptions into Mach codes so none escapes the core.
template <typename Body>
auto Guarded(Body&& body) noexcept -> std::invoke_result_t<Body&> {
  using Result = std::invoke_result_t<Body&>;
  try {
    return body();
  } catch (const LimitReached& limit) {
    return Result(LimitRefused(limit));
  } catch (const std::bad_alloc&) {
    return Result(OutOfMemory());
  } catch (...) {
    return Result(Unexpected());
  }
}

inline KernReturn CodeOf(KernReturn kr) { return kr; }
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

// --- opening a task ----------------------------------------------------------

// KERN_INVALID_TASK, with the reason that task was terminated.
KernReturn Terminated(const Task& task);

enum class Lock { kShared, kExclusive };

// Opens the task of one call: locks it (shared for calls that leave the map
// as it is, exclusive for calls that change it), fails with
// KERN_INVALID_TASK if it is terminated, and runs body under WithReason.
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

// --- reasons -----------------------------------------------------------------

// KERN_INVALID_ARGUMENT, with the rule a task name breaks.
KernReturn BadTaskName(std::string_view name);

// "read needs r", "write needs w": what an access of needed lacks.
std::string Needs(vm_prot_t needed);

// The reason of a page that lacks needed: "page 0x3000 is r--/rwx, write
// needs w".
class NeedsExplained {
 public:
  explicit NeedsExplained(vm_prot_t needed) : needed_(needed) {}
  std::string operator()(const MapEntry& entry, vm_address_t page) const;

 private:
  vm_prot_t needed_;
};

// --- the checks --------------------------------------------------------------

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
  // Page alignment of each value.
  Checks& Aligned(std::initializer_list<Named> values);
  // The alignment rule of a transfer (vm_read, vm_write, vm_copy): Aligned
  // in the classic flavor; the XNU flavor takes any byte range, so there it
  // passes and Bytes checks the pages the range touches.
  Checks& TransferAligned(std::initializer_list<Named> values);
  // The XNU flavor's size rule of vm_read: its data comes back in a message
  // whose count is 32 bits (mach_msg_type_number_t), so a larger size is
  // KERN_INVALID_ARGUMENT. Passes in the classic flavor.
  Checks& MessageSize(vm_size_t size);
  // A flag, protection or inheritance value; why() gives the reason.
  template <typename Why>
  Checks& Valid(bool ok, Why&& why) {
    Enter(kArguments);
    if (!ok && Fail(KERN_INVALID_ARGUMENT)) SetFailureReason(why());
    return *this;
  }
  Checks& NonEmpty(vm_size_t size);

  // 2. Bounds: KERN_INVALID_ADDRESS on wrap-around or outside the space.
  // Sets *out to the range when it passes (PageRange's Exact, Rounded and
  // RoundedApart).
  Checks& Exact(vm_address_t address, vm_size_t size, PageRange* out);
  Checks& Rounded(vm_address_t address, vm_size_t size, PageRange* out);
  Checks& RoundedApart(vm_address_t address, vm_size_t size, PageRange* out);
  // The pages of a transfer's bytes [address, address + size): Exact in the
  // classic flavor (after Aligned), Rounded in the XNU flavor.
  Checks& Bytes(vm_address_t address, vm_size_t size, PageRange* out);

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
                 vm_prot_t needed);
  Checks& Allocated(const AddressMap& map, const PageRange& range);
  // No page allocated (a destination to map): else KERN_NO_SPACE.
  Checks& Free(const AddressMap& map, const PageRange& range);
  // A destination the call chooses: the lowest free hole of round(size)
  // bytes (AddressMap::FindSpace), set in *out; else KERN_NO_SPACE. No
  // bounds check comes before it: size alone decides, and the hole is
  // inside the space.
  Checks& Hole(AddressMap& map, vm_size_t size, PageRange* out);

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
            vm_size_t size, PageRange* out);
  // The reason of a failed range check at page: not allocated.
  static void NotAllocated(vm_address_t page);
  // The reason of a failed range check: the lowest page it fails at.
  template <typename Check, typename Explain>
  static void ExplainRange(const AddressMap& map, const PageRange& range,
                           Check&& check, Explain&& explain) {
    vm_address_t page = range.start();
    for (auto it = map.EntryFrom(page); page < range.end(); ++it) {
      if (it == map.entries().end() || it->second.start > page) {
        NotAllocated(page);
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

// --- what the calls check ----------------------------------------------------

// vm_read's source check, which also collects the range's entries: one walk
// of the map for both (the hot path of every read request: lookups here are
// cache misses).
class Readable {
 public:
  explicit Readable(std::vector<const MapEntry*>* entries)
      : entries_(entries) {}
  KernReturn operator()(const MapEntry& entry) const {
    if ((entry.protection & VM_PROT_READ) == 0) return KERN_PROTECTION_FAILURE;
    entries_->push_back(&entry);
    return KERN_SUCCESS;
  }

 private:
  std::vector<const MapEntry*>* entries_;
};

// vm_protect's check: both forms fail the same way, since the new value (a
// current protection, or a new maximum) may not go beyond the present
// maximum.
KernReturn Protectable(const MapEntry& entry, vm_prot_t new_prot);

// The entries of the calling thread's current read, emptied: kept across
// calls so a read does not allocate.
std::vector<const MapEntry*>& ReadEntries();

}  // namespace taskfs::vm::gate

#endif  // TASKFS_VMCORE_GATE_H_
