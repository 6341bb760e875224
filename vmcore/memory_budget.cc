#include "vmcore/memory_budget.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "vmcore/charge_failure_hook.h"
#include "vmcore/memory_account.h"

namespace taskfs::vm {
namespace {

bool ChargeWithin(std::atomic<std::uint64_t>& used, std::uint64_t ceiling,
                  std::uint64_t bytes) {
  std::uint64_t now = used.load(std::memory_order_relaxed);
  do {
    if (bytes > ceiling || now > ceiling - bytes) return false;
  } while (
      !used.compare_exchange_weak(now, now + bytes, std::memory_order_relaxed));
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
  if (ChargeFailureInjected()) return false;
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
  trimmer_ =
      threshold != 0
          ? std::make_unique<HeapTrimmer>(
                trim,
                [](void* budget) {
                  static_cast<MemoryBudget*>(budget)->MeasureHeapOverhang();
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

}  // namespace taskfs::vm
