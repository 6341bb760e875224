// The memory limit: one budget for everything users make the daemon hold.
//
// Its parts, each in its own header: MemoryAccount (memory_account.h), what
// one holder has charged; LimitReached (limit_reached.h), what a refused
// charge throws; ReserveScope (reserve_scope.h), a thread's leave to use
// the reserve; ChargedAllocator (charged_allocator.h), containers charged
// to an account; and the failure-injection tests' hook
// (charge_failure_hook.h).
#ifndef TASKFS_VMCORE_MEMORY_BUDGET_H_
#define TASKFS_VMCORE_MEMORY_BUDGET_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

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
  // test hook FailChargeAfter (charge_failure_hook.h) can refuse it too.
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
    while (freed != 0 && !heap_freed_.compare_exchange_weak(
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
  std::uint64_t trim_threshold_ = 0;      // constant once shared
  std::unique_ptr<HeapTrimmer> trimmer_;  // constant once shared
  std::atomic<std::uint64_t> used_{0};
  std::atomic<std::uint64_t> reserve_used_{0};
  std::atomic<std::uint64_t> heap_freed_{0};
  std::atomic<std::uint64_t> pin_reserve_used_{0};
  // The overhang's: constant once shared but for the two atomics. idle_ is
  // the resident memory not charged when ChargeHeapOverhang was called.
  Resident resident_ = nullptr;  // null: the overhang is not charged
  std::uint64_t overhang_allowance_ = 0;
  std::uint64_t idle_ = 0;
  std::atomic<std::uint64_t> overhang_{0};  // also in used_
  std::atomic<std::uint64_t> released_{0};  // since the last measurement
  std::mutex measure_mu_;  // a leaf: held while measuring, never blocks a
                           // refusal (LowerHeapOverhang only tries it)
  std::unique_ptr<MemoryAccount> shared_;  // last: it releases into the above
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_MEMORY_BUDGET_H_
