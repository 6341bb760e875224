#include "vmcore/memory_account.h"

#include <algorithm>

#include "vmcore/reserve_scope.h"

namespace taskfs::vm {

bool MemoryAccount::TryCharge(std::uint64_t bytes, bool use_reserve) noexcept {
  if (budget_->TryCharge(bytes) ||
      (budget_->Reclaim() != 0 && budget_->TryCharge(bytes))) {
    held_.fetch_add(bytes, std::memory_order_relaxed);
    budget_->HeapCharged(bytes);
    return true;
  }
  if ((use_reserve || ReserveScope::active()) &&
      budget_->TryChargeReserve(bytes)) {
    held_.fetch_add(bytes, std::memory_order_relaxed);
    reserve_held_.fetch_add(bytes, std::memory_order_relaxed);
    budget_->HeapCharged(bytes);
    return true;
  }
  return false;
}

void MemoryAccount::Charge(std::uint64_t bytes, bool use_reserve) {
  if (!TryCharge(bytes, use_reserve)) {
    throw LimitReached(budget_->limit(), budget_->used(), bytes);
  }
}

void MemoryAccount::Release(std::uint64_t bytes) noexcept {
  if (bytes == 0) return;  // an account that held nothing goes untouched
  // What the reserve holds goes back first; a loop, since several threads
  // may release from one account (the shared one).
  std::uint64_t reserved = reserve_held_.load(std::memory_order_relaxed);
  std::uint64_t in_reserve;
  do {
    in_reserve = std::min(bytes, reserved);
  } while (in_reserve != 0 &&
           !reserve_held_.compare_exchange_weak(reserved, reserved - in_reserve,
                                                std::memory_order_relaxed));
  if (in_reserve != 0) {
    budget_->ReleaseReserve(in_reserve);
  }
  held_.fetch_sub(bytes, std::memory_order_relaxed);
  budget_->Release(bytes - in_reserve);
  budget_->HeapReleased(bytes);
}

}  // namespace taskfs::vm
