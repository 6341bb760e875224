#include "vmcore/charge_failure_hook.h"

#include <atomic>

namespace taskfs::vm {
namespace {

// FailChargeAfter's countdown: charges left before the one that fails.
std::atomic<std::uint64_t> charges_until_failure{0};

}  // namespace

bool ChargeFailureInjected() noexcept {
  std::uint64_t left = charges_until_failure.load(std::memory_order_relaxed);
  while (left != 0) {
    if (charges_until_failure.compare_exchange_weak(
            left, left - 1, std::memory_order_relaxed)) {
      return left == 1;
    }
  }
  return false;
}

void FailChargeAfter(std::uint64_t n) {
  charges_until_failure.store(n, std::memory_order_relaxed);
}

std::uint64_t ChargesBeforeFailure() {
  return charges_until_failure.load(std::memory_order_relaxed);
}

}  // namespace taskfs::vm
