// The failure-injection tests' hook into the memory limit.
#ifndef TASKFS_VMCORE_CHARGE_FAILURE_HOOK_H_
#define TASKFS_VMCORE_CHARGE_FAILURE_HOOK_H_

#include <cstdint>

namespace taskfs::vm {

// Test hook, for the failure-injection tests: the nth charge from now
// (1 = the next) of any budget, pages included, fails as if the limit were
// reached; 0 disarms it. Charges are counted on all threads.
void FailChargeAfter(std::uint64_t n);
// The countdown FailChargeAfter set: 1 when the next charge fails, 0 once
// the armed charge has failed or when nothing is armed.
std::uint64_t ChargesBeforeFailure();

// The budget's side (MemoryBudget::TryCharge, for every charge): counts
// this charge down; true if it is the one that fails.
bool ChargeFailureInjected() noexcept;

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_CHARGE_FAILURE_HOOK_H_
