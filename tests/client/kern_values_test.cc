// <taskfs/mach.h>'s KERN_* values are vmcore's (Mach's numbers), checked at
// compile time, and libtaskfs's errno table is fs/errno_map's.
//
// The header's codes are macros, as in Mach, so vmcore's enumerators are
// captured before it is included.
#include "vmcore/kern_return.h"

namespace {
namespace vm = taskfs::vm;
constexpr int kVmSuccess = vm::KERN_SUCCESS;
constexpr int kVmInvalidAddress = vm::KERN_INVALID_ADDRESS;
constexpr int kVmProtectionFailure = vm::KERN_PROTECTION_FAILURE;
constexpr int kVmNoSpace = vm::KERN_NO_SPACE;
constexpr int kVmInvalidArgument = vm::KERN_INVALID_ARGUMENT;
constexpr int kVmFailure = vm::KERN_FAILURE;
constexpr int kVmResourceShortage = vm::KERN_RESOURCE_SHORTAGE;
constexpr int kVmNameExists = vm::KERN_NAME_EXISTS;
constexpr int kVmInvalidTask = vm::KERN_INVALID_TASK;
constexpr int kVmCodes =
    sizeof vm::kAllKernReturns / sizeof vm::kAllKernReturns[0];
}  // namespace

#include <gtest/gtest.h>

#include "fs/errno_map.h"
#include "taskfs/ioctl.h"
#include "taskfs/mach.h"

static_assert(KERN_SUCCESS == kVmSuccess);
static_assert(KERN_INVALID_ADDRESS == kVmInvalidAddress);
static_assert(KERN_PROTECTION_FAILURE == kVmProtectionFailure);
static_assert(KERN_NO_SPACE == kVmNoSpace);
static_assert(KERN_INVALID_ARGUMENT == kVmInvalidArgument);
static_assert(KERN_FAILURE == kVmFailure);
static_assert(KERN_RESOURCE_SHORTAGE == kVmResourceShortage);
static_assert(KERN_NAME_EXISTS == kVmNameExists);
static_assert(KERN_INVALID_TASK == kVmInvalidTask);
static_assert(kVmCodes == 9, "a new code needs a KERN_* in <taskfs/mach.h>");
// Mach's own numbers, as docs/reference.md §9 requires.
static_assert(KERN_SUCCESS == 0 && KERN_INVALID_ADDRESS == 1 &&
              KERN_PROTECTION_FAILURE == 2 && KERN_NO_SPACE == 3 &&
              KERN_INVALID_ARGUMENT == 4 && KERN_FAILURE == 5 &&
              KERN_RESOURCE_SHORTAGE == 6 && KERN_NAME_EXISTS == 13 &&
              KERN_INVALID_TASK == 16);
static_assert(VM_PROT_READ == TASKFS_VM_PROT_READ &&
              VM_PROT_WRITE == TASKFS_VM_PROT_WRITE &&
              VM_PROT_EXECUTE == TASKFS_VM_PROT_EXECUTE && VM_PROT_NONE == 0 &&
              VM_PROT_ALL == 7);
static_assert(VM_INHERIT_SHARE == TASKFS_VM_INHERIT_SHARE &&
              VM_INHERIT_COPY == TASKFS_VM_INHERIT_COPY &&
              VM_INHERIT_NONE == TASKFS_VM_INHERIT_NONE);
static_assert(sizeof(mach_msg_type_number_t) == 4 &&
              sizeof(vm_address_t) == sizeof(void*));

TEST(ClientKernValues, EveryCodeHasAMachErrorString) {
  for (vm::KernReturn kr : vm::kAllKernReturns) {
    EXPECT_STRNE(mach_error_string(kr), "(os/kern) unknown error code")
        << vm::KernReturnName(kr);
  }
}
