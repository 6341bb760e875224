// The memory limit: one budget for everything users make the daemon hold.
#ifndef TASKFS_VMCORE_MEMORY_BUDGET_H_
#define TASKFS_VMCORE_MEMORY_BUDGET_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>

#include "vmcore/heap_trimmer.h"

namespace taskfs::vm {

class MemoryAccount;

// Bytes charged against memory_limit: written pages (PageAllocator) and the
// metadata that maps them (page-table chunks, map entries, objects and their
// coverage, task records, and what the file system keeps per task and per
// open file). A charge that would pass the limit is refused and changes
// nothing; callers turn the refusal into KERN_RESOURCE_SHORTAGE.
//
// Thread-safety: all methods are thread-safe (one atomic word).
class MemoryBudget {
 public:
  // limit_bytes: 0 means none. reserve_bytes: a second, small pool that the
  // charges allowed to use it (MemoryAccount::TryCharge) fall back on when
  // the limit refuses them. pin_reserve_bytes: a third, that only the page
  // allocator draws on, for the copies of pages that only readers' pins
  // keep (PageAllocator::Allocate).
  explicit MemoryBudget(std::uint64_t limit_bytes,
                        std::uint64_t reserve_bytes = 0,
                        std::uint64_t pin_reserve_bytes = 0);
  ~MemoryBudget();
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // All or nothing: true if bytes now count as used, within the limit. The
  // test hook FailChargeAfter can refuse it too.
  bool TryCharge(std::uint64_t bytes) noexcept;
  void Release(std::uint64_t bytes) noexcept {
    used_.fetch_sub(bytes, std::memory_order_relaxed);
  }
  // The same for the reserve.
  bool TryChargeReserve(std::uint64_t bytes) noexcept;
  void ReleaseReserve(std::uint64_t bytes) noexcept {
    reserve_used_.fetch_sub(bytes, std::memory_order_relaxed);
  }
  // The same for the pin reserve.
  bool TryChargePinReserve(std::uint64_t bytes) noexcept;
  void ReleasePinReserve(std::uint64_t bytes) noexcept {
    pin_reserve_used_.fetch_sub(bytes, std::memory_order_relaxed);
  }

  std::uint64_t limit() const { return limit_; }  // 0 = none
  // What is charged within the limit, and within the reserve.
  std::uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  std::uint64_t reserve_used() const {
    return reserve_used_.load(std::memory_order_relaxed);
  }
  // The pin reserve's size, and what is charged within it.
  std::uint64_t pin_reserve() const { return pin_reserve_; }
  std::uint64_t pin_reserve_used() const {
    return pin_reserve_used_.load(std::memory_order_relaxed);
  }

  // What MemoryAccount::Charge calls once when the budget refuses, before
  // trying again: it gives back memory that is charged but not needed (the
  // allocator's freed pages) and returns the bytes it released. Set before
  // the budget is shared; it must take no lock a charging thread can hold.
  using Reclaimer = std::uint64_t (*)(void* arg);
  void SetReclaimer(Reclaimer reclaimer, void* arg) {
    reclaimer_ = reclaimer;
    reclaimer_arg_ = arg;
  }
  // The reclaimer's bytes, plus what measuring the heap's overhang anew
  // took off it (below).
  std::uint64_t Reclaim() noexcept {
    const std::uint64_t released =
        reclaimer_ != nullptr ? reclaimer_(reclaimer_arg_) : 0;
    return released + LowerHeapOverhang();
  }

  // The account of what several holders share, charged once however many
  // hold it: the page-table nodes (page_table.h).
  MemoryAccount& shared() { return *shared_; }

  // Giving freed metadata back to the system. What accounts charge is
  // malloc'd, and freeing it leaves it resident in malloc's free lists,
  // where written pages (mmap'd slabs) cannot reuse it. Once what accounts
  // hold has fallen threshold bytes below its highest level since the last
  // trim (allocations that reuse what was freed lower the count again, so
  // churn asks for nothing), a trim (heap_trimmer.h) is asked for; it runs
  // on its own thread, outside every lock. So the heap holds at most about
  // threshold bytes that nothing is charged for, beyond what fragmentation
  // keeps. 0 = never. Set before the budget is shared; trim: what runs
  // (glibc's malloc_trim(0) unless a test says otherwise).
  void SetHeapTrim(std::uint64_t threshold,
                   HeapTrimmer::Trim trim = &HeapTrimmer::TrimMallocHeap);
  // The trimmer, or null if none is set: to wait for its trims (tests).
  HeapTrimmer* heap_trimmer() const { return trimmer_.get(); }
  // What accounts have released since the last trim and not charged again.
  std::uint64_t heap_freed() const {
    return heap_freed_.load(std::memory_order_relaxed);
  }

  // Charging the heap's resident overhang: what fragmentation keeps. A
  // heap page that still holds one live block stays resident however much
  // of it was freed, and a trim cannot give it back: free all but one map
  // entry in every 4 KiB and only the survivors are charged, while the
  // heap they pin stays. So after each trim, and after every threshold
  // bytes of heap released (releases that charges reuse included, so that
  // freeing and allocating again in turn cannot hide it), the trimmer's
  // thread measures what the process holds resident beyond its idle level,
  // what is charged (pages, warm pages and slab records too, within the
  // limit and both reserves) and allowance, and keeps that as one floating
  // charge: used() includes it, so charges are refused once fragmentation
  // has taken their room, and it goes down as the heap comes back. A
  // refused charge measures again (Reclaim) and only lowers it, so a
  // refusal never rests on a level the heap has since left, and never waits
  // for a trim. The idle level is what is resident and not charged when
  // this is called. The heap is the process's: only one budget of a process
  // may do this, and only with SetHeapTrim set (its thread measures).
  // resident: the process's anonymous resident bytes (0 = unknown, changes
  // nothing). Set before the budget is shared.
  using Resident = std::uint64_t (*)();
  // From /proc/self/statm: resident less file-backed pages; 0 if unreadable.
  static std::uint64_t ResidentAnonymousBytes() noexcept;
  void ChargeHeapOverhang(std::uint64_t allowance,
                          Resident resident = &ResidentAnonymousBytes);
  // The floating charge now (included in used()).
  std::uint64_t heap_overhang() const {
    return overhang_.load(std::memory_order_relaxed);
  }
  // Measures the overhang now and sets it, up or down (the trimmer's
  // thread; tests). Does nothing unless ChargeHeapOverhang was called.
  void MeasureHeapOverhang() noexcept { MeasureOverhang(/*raise=*/true); }
  // The same, but only ever lowering it, and nothing while another
  // measurement runs; returns the bytes it took off. If some is left and
  // heap was freed since the last trim was asked for, asks for one (never
  // waits for it): its measurement lowers the rest if the trim gives the
  // heap back. For refusals, and for statfs.
  std::uint64_t LowerHeapOverhang() noexcept;

  // MemoryAccount's side: bytes of heap charged, and released.
  void HeapCharged(std::uint64_t bytes) noexcept {
    if (trimmer_ == nullptr) return;
    std::uint64_t freed = heap_freed_.load(std::memory_order_relaxed);
    while (freed != 0 &&
           !heap_freed_.compare_exchange_weak(
               freed, freed > bytes ? freed - bytes : 0,
               std::memory_order_relaxed)) {
    }
  }
  void HeapReleased(std::uint64_t bytes) noexcept {
    if (trimmer_ == nullptr) return;
    if (heap_freed_.fetch_add(bytes, std::memory_order_relaxed) + bytes >=
        trim_threshold_) {
      AskForTrim();
    }
    if (resident_ != nullptr &&
        released_.fetch_add(bytes, std::memory_order_relaxed) + bytes >=
            trim_threshold_) {
      AskForMeasure();
    }
  }

 private:
  void AskForTrim() noexcept;
  void AskForMeasure() noexcept;
  std::uint64_t MeasureOverhang(bool raise) noexcept;

  const std::uint64_t limit_;
  const std::uint64_t reserve_;
  const std::uint64_t pin_reserve_;
  Reclaimer reclaimer_ = nullptr;
  void* reclaimer_arg_ = nullptr;
  std::uint64_t trim_threshold_ = 0;       // constant once shared
  std::unique_ptr<HeapTrimmer> trimmer_;   // constant once shared
  std::atomic<std::uint64_t> used_{0};
  std::atomic<std::uint64_t> reserve_used_{0};
  std::atomic<std::uint64_t> heap_freed_{0};
  std::atomic<std::uint64_t> pin_reserve_used_{0};
  // The overhang's: constant once shared but for the two atomics. idle_ is
  // the resident memory not charged when ChargeHeapOverhang was called.
  Resident resident_ = nullptr;  // null: the overhang is not charged
  std::uint64_t overhang_allowance_ = 0;
  std::uint64_t idle_ = 0;
  std::atomic<std::uint64_t> overhang_{0};   // also in used_
  std::atomic<std::uint64_t> released_{0};   // since the last measurement
  std::mutex measure_mu_;  // a leaf: held while measuring, never blocks a
                           // refusal (LowerHeapOverhang only tries it)
  std::unique_ptr<MemoryAccount> shared_;  // last: it releases into the above
};

// What a refused charge throws: a std::bad_alloc, so every path that
// survives running out of memory survives the limit the same way, with the
// figures for the failure reason.
class LimitReached : public std::bad_alloc {
 public:
  LimitReached(std::uint64_t limit, std::uint64_t used, std::uint64_t asked)
      : limit_(limit), used_(used), asked_(asked) {}
  const char* what() const noexcept override { return "memory limit reached"; }
  std::uint64_t limit() const { return limit_; }
  std::uint64_t used() const { return used_; }
  std::uint64_t asked() const { return asked_; }

 private:
  std::uint64_t limit_, used_, asked_;
};

// The part of a budget that one holder (a map, an object, a task) has
// charged, so a holder can say how much metadata it keeps and gives all of
// it back when it goes.
//
// Thread-safety: thread-safe; the count is one atomic word.
class MemoryAccount {
 public:
  explicit MemoryAccount(MemoryBudget& budget) : budget_(&budget) {}
  ~MemoryAccount() { Release(held()); }
  MemoryAccount(const MemoryAccount&) = delete;
  MemoryAccount& operator=(const MemoryAccount&) = delete;

  // All or nothing: true if bytes are now charged. When the limit refuses,
  // asks the budget's reclaimer for room once and tries again; then, with
  // use_reserve, tries the reserve (what lets a user at the limit still
  // open files, read status, maps and errors, and free memory through ctl).
  bool TryCharge(std::uint64_t bytes, bool use_reserve = false) noexcept;
  // TryCharge that throws LimitReached when refused.
  void Charge(std::uint64_t bytes, bool use_reserve = false);
  // Gives back bytes, from what the reserve holds first.
  void Release(std::uint64_t bytes) noexcept;
  std::uint64_t held() const { return held_.load(std::memory_order_relaxed); }
  MemoryBudget& budget() const { return *budget_; }

 private:
  MemoryBudget* budget_;
  std::atomic<std::uint64_t> held_{0};
  std::atomic<std::uint64_t> reserve_held_{0};  // the part in the reserve
};

// While one is alive on a thread, every charge made on that thread may use
// the reserve: vm_deallocate's, so that freeing memory at the limit works
// even when it splits a region (one more map entry). The reserve's fixed
// size bounds what this allows.
class ReserveScope {
 public:
  ReserveScope();
  ~ReserveScope();
  ReserveScope(const ReserveScope&) = delete;
  ReserveScope& operator=(const ReserveScope&) = delete;
  static bool active();
};

// What one heap block costs beyond its bytes (glibc's header and rounding),
// charged with each allocation so the charge follows resident memory.
inline constexpr std::uint64_t kHeapOverhead = 16;

// A standard allocator that charges an account for what it allocates, for
// the containers whose size users decide (map entries, coverage, page-table
// chunk lists).
template <typename T>
class ChargedAllocator {
 public:
  using value_type = T;

  explicit ChargedAllocator(MemoryAccount& account) : account_(&account) {}
  template <typename U>
  ChargedAllocator(const ChargedAllocator<U>& other)  // NOLINT: rebinding
      : account_(other.account()) {}

  T* allocate(std::size_t n) {
    const std::uint64_t bytes = Cost(n);
    account_->Charge(bytes);
    try {
      return std::allocator<T>().allocate(n);
    } catch (...) {
      account_->Release(bytes);
      throw;
    }
  }
  void deallocate(T* p, std::size_t n) noexcept {
    std::allocator<T>().deallocate(p, n);
    account_->Release(Cost(n));
  }

  MemoryAccount* account() const { return account_; }
  template <typename U>
  bool operator==(const ChargedAllocator<U>& other) const {
    return account_ == other.account();
  }

 private:
  static std::uint64_t Cost(std::size_t n) {
    return n * sizeof(T) + kHeapOverhead;
  }
  MemoryAccount* account_;
};

// Test hook, for the failure-injection tests: the nth charge from now
// (1 = the next) of any budget, pages included, fails as if the limit were
// reached; 0 disarms it. Charges are counted on all threads.
void FailChargeAfter(std::uint64_t n);
// The countdown FailChargeAfter set: 1 when the next charge fails, 0 once
// the armed charge has failed or when nothing is armed.
std::uint64_t ChargesBeforeFailure();

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_MEMORY_BUDGET_H_
