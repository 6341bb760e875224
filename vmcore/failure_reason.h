// Why a call into the VM core failed, in words: the REASON of a task's
// errors file (docs/reference.md §7). One line naming what decided the code:
// the lowest offending page and what it lacked or held, the region in the way,
// the limit and the amount asked for, the argument that was malformed.
//
// Each thread has its own: every facade call (vm_user.h) that returns a
// code other than KERN_SUCCESS sets the calling thread's reason before it
// returns, and a successful call leaves it as it was. So a caller reads it
// right after a failure, on the same thread, before its next core call.
// Nothing is formatted on a path that succeeds.
#ifndef TASKFS_VMCORE_FAILURE_REASON_H_
#define TASKFS_VMCORE_FAILURE_REASON_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "vmcore/vm_types.h"

namespace taskfs::vm {

// The reason of this thread's last failure; "" before the first.
std::string_view LastFailureReason();

// Sets this thread's reason. The core calls it where it decides a failure;
// a caller above the core may call it for a failure of its own (a refused
// permission, an unknown task), so that the reason it reads back is that
// failure's. Never throws: a reason that cannot be kept is cut short.
void SetFailureReason(std::string_view reason) noexcept;

// How many times this thread's reason was set: the facade compares it
// before and after a call to tell whether the call set one.
std::uint64_t FailureReasonCount();

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_FAILURE_REASON_H_
