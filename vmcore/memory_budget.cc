#include "vmcore/memory_budget.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace taskfs::vm {
namespace {

// FailChargeAfter's countdown: charges left before the one that fails.
std::atomic<std::uint64_t> charges_until_failure{0};

thread_local int reserve_scopes = 0;

// True if the test hook fails this charge.
bool InjectedFailure() {
  std::uint64_t left = charges_until_failure.load(std::memory_order_relaxed);
  while (left != 0) {
    if (charges_until_failure.compare_exchange_weak(
            left, left - 1, std::memory_order_relaxed)) {
      return left == 1;
    }
  }
  return false;
}

}  // namespace

namespace {

bool ChargeWithin(std::atomic<std::uint64_t>& used, std::uint64_t ceiling,
                  std::uint64_t bytes) {
  std::uint64_t now = used.load(std::memory_order_relaxed);
  do {
    if (bytes > ceiling || now > ceiling - bytes) return false;
  } while (!used.compare_exchange_weak(now, now + bytes,
                                       std::memory_order_relaxed));
  return true;
}

}  // namespace

MemoryBudget::MemoryBudget(std::uint64_t limit_bytes,
                           std::uint64_t reserve_bytes,
                           std::uint64_t pin_reserve_bytes)
    : limit_(limit_bytes),
      reserve_(reserve_bytes),
      pin_reserve_(pin_reserve_bytes),
      shared_(std::make_unique<MemoryAccount>(*this)) {}

MemoryBudget::~MemoryBudget() {
  // The shared account releases into the budget (and may ask for a trim);
  // then the trimmer's thread, which measures the budget, stops before the
  // members it reads go.
  shared_.reset();
  trimmer_.reset();
}

bool MemoryBudget::TryCharge(std::uint64_t bytes) noexcept {
  if (InjectedFailure()) return false;
  if (limit_ == 0) {
    used_.fetch_add(bytes, std::memory_order_relaxed);
    return true;
  }
  return ChargeWithin(used_, limit_, bytes);
}

void MemoryBudget::SetHeapTrim(std::uint64_t threshold,
                               HeapTrimmer::Trim trim) {
  trim_threshold_ = threshold;
  // After each trim, the overhang (if it is charged) is measured.
  trimmer_ = threshold != 0
                 ? std::make_unique<HeapTrimmer>(
                       trim,
                       [](void* budget) {
                         static_cast<MemoryBudget*>(budget)
                             ->MeasureHeapOverhang();
                       },
                       this)
                 : nullptr;
}

void MemoryBudget::AskForTrim() noexcept {
  // One of the releasers that saw the count pass the threshold asks.
  if (heap_freed_.exchange(0, std::memory_order_relaxed) >= trim_threshold_) {
    trimmer_->Request();
  }
}

void MemoryBudget::AskForMeasure() noexcept {
  if (released_.exchange(0, std::memory_order_relaxed) >= trim_threshold_) {
    trimmer_->RequestAfter();
  }
}

std::uint64_t MemoryBudget::ResidentAnonymousBytes() noexcept {
  // "size resident shared ...", in pages; shared is what is file-backed.
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[128];
  const ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (n <= 0) return 0;
  text[n] = '\0';
  unsigned long long size = 0, resident = 0, shared = 0;
  if (std::sscanf(text, "%llu %llu %llu", &size, &resident, &shared) != 3 ||
      shared > resident) {
    return 0;
  }
  return (resident - shared) * static_cast<std::uint64_t>(::getpagesize());
}

void MemoryBudget::ChargeHeapOverhang(std::uint64_t allowance,
                                      Resident resident) {
  const std::uint64_t now = resident();
  const std::uint64_t charged = used() + reserve_used() + pin_reserve_used();
  overhang_allowance_ = allowance;
  idle_ = now > charged ? now - charged : 0;
  resident_ = now != 0 ? resident : nullptr;
}

std::uint64_t MemoryBudget::LowerHeapOverhang() noexcept {
  if (resident_ == nullptr) return 0;
  const std::uint64_t lowered = MeasureOverhang(/*raise=*/false);
  if (trimmer_ != nullptr && heap_overhang() != 0 &&
      heap_freed_.exchange(0, std::memory_order_relaxed) != 0) {
    trimmer_->Request();
  }
  return lowered;
}

std::uint64_t MemoryBudget::MeasureOverhang(bool raise) noexcept {
  if (resident_ == nullptr) return 0;
  std::unique_lock lock(measure_mu_, std::defer_lock);
  if (raise) {
    lock.lock();
  } else if (!lock.try_lock()) {
    return 0;
  }
  // What is charged besides the overhang, before and after the reading:
  // the larger, so that a charge made while reading (a page not yet
  // written) counts for, not against, the user. overhang_ changes only
  // under measure_mu_.
  const std::uint64_t overhang = overhang_.load(std::memory_order_relaxed);
  const auto charged = [&] {
    const std::uint64_t all = used() + reserve_used() + pin_reserve_used();
    return all > overhang ? all - overhang : 0;
  };
  const std::uint64_t before = charged();
  const std::uint64_t resident = resident_();
  if (resident == 0) return 0;
  const std::uint64_t floor =
      idle_ + std::max(before, charged()) + overhang_allowance_;
  const std::uint64_t target = resident > floor ? resident - floor : 0;
  if (target > overhang) {
    if (!raise) return 0;
    overhang_.store(target, std::memory_order_relaxed);
    used_.fetch_add(target - overhang, std::memory_order_relaxed);
    return 0;
  }
  overhang_.store(target, std::memory_order_relaxed);
  used_.fetch_sub(overhang - target, std::memory_order_relaxed);
  return overhang - target;
}

bool MemoryBudget::TryChargeReserve(std::uint64_t bytes) noexcept {
  return limit_ != 0 && ChargeWithin(reserve_used_, reserve_, bytes);
}

bool MemoryBudget::TryChargePinReserve(std::uint64_t bytes) noexcept {
  return ChargeWithin(pin_reserve_used_, pin_reserve_, bytes);
}

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

ReserveScope::ReserveScope() { ++reserve_scopes; }
ReserveScope::~ReserveScope() { --reserve_scopes; }
bool ReserveScope::active() { return reserve_scopes != 0; }

void FailChargeAfter(std::uint64_t n) {
  charges_until_failure.store(n, std::memory_order_relaxed);
}

std::uint64_t ChargesBeforeFailure() {
  return charges_until_failure.load(std::memory_order_relaxed);
}

}  // namespace taskfs::vm
