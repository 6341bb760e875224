// Mach result codes as the VM core returns them.
//
// The numeric values are Mach's own (osfmk/mach/kern_return.h), so a code can be
// printed, logged or compared with a real Mach kernel's. The core never uses
// errno; the file boundary (fs/errno_map.h) maps each code to one errno.
#ifndef TASKFS_VMCORE_KERN_RETURN_H_
#define TASKFS_VMCORE_KERN_RETURN_H_

#include <string_view>

namespace taskfs::vm {

enum KernReturn : int {
  KERN_SUCCESS = 0,
  KERN_INVALID_ADDRESS = 1,
  KERN_PROTECTION_FAILURE = 2,
  KERN_NO_SPACE = 3,
  KERN_INVALID_ARGUMENT = 4,
  KERN_FAILURE = 5,
  KERN_RESOURCE_SHORTAGE = 6,
  KERN_NAME_EXISTS = 13,
  KERN_INVALID_TASK = 16,
};

// Every KernReturn value, for tables and tests that must cover them all.
inline constexpr KernReturn kAllKernReturns[] = {
    KERN_SUCCESS,           KERN_INVALID_ADDRESS, KERN_PROTECTION_FAILURE,
    KERN_NO_SPACE,          KERN_INVALID_ARGUMENT, KERN_FAILURE,
    KERN_RESOURCE_SHORTAGE, KERN_NAME_EXISTS,     KERN_INVALID_TASK,
};

// "KERN_INVALID_ADDRESS" etc.; "KERN_UNKNOWN" for a value not listed above.
std::string_view KernReturnName(KernReturn kr);

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_KERN_RETURN_H_
