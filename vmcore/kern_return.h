// Mach result codes as the VM core returns them.
//
// The numeric values are Mach's own (XNU's osfmk/mach/kern_return.h), so a
// code can be printed, logged or compared with a real Mach kernel's. The
// core never uses errno; the file boundary (fs/errno_map.h) maps each code
// to one errno. The enum, kAllKernReturns and KernReturnName all expand one
// list (kern_return_list.h), so a code added there reaches every table and
// test.
#ifndef TASKFS_VMCORE_KERN_RETURN_H_
#define TASKFS_VMCORE_KERN_RETURN_H_

#include <string_view>

#include "vmcore/kern_return_list.h"

namespace taskfs::vm {

#define TASKFS_KERN_RETURN_ENUMERATOR(name, value) name = value,
enum KernReturn : int { TASKFS_KERN_RETURNS(TASKFS_KERN_RETURN_ENUMERATOR) };
#undef TASKFS_KERN_RETURN_ENUMERATOR

// Every KernReturn value, for tables and tests that must cover them all.
#define TASKFS_KERN_RETURN_ELEMENT(name, value) name,
inline constexpr KernReturn kAllKernReturns[] = {
    TASKFS_KERN_RETURNS(TASKFS_KERN_RETURN_ELEMENT)};
#undef TASKFS_KERN_RETURN_ELEMENT

// "KERN_INVALID_ADDRESS" etc.; "KERN_UNKNOWN" for a value not listed above.
std::string_view KernReturnName(KernReturn kr);

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_KERN_RETURN_H_
