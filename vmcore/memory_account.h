// What one holder has charged to the memory limit (memory_budget.h).
#ifndef TASKFS_VMCORE_MEMORY_ACCOUNT_H_
#define TASKFS_VMCORE_MEMORY_ACCOUNT_H_

#include <atomic>
#include <cstdint>

#include "vmcore/limit_reached.h"
#include "vmcore/memory_budget.h"

namespace taskfs::vm {

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
  // A ReserveScope (reserve_scope.h) alive on the thread counts as
  // use_reserve.
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

// What one heap block costs beyond its bytes (glibc's header and rounding),
// charged with each allocation so the charge follows resident memory.
inline constexpr std::uint64_t kHeapOverhead = 16;

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_MEMORY_ACCOUNT_H_
