#include "vmcore/kern_return.h"

namespace taskfs::vm {

std::string_view KernReturnName(KernReturn kr) {
  switch (kr) {
    case KERN_SUCCESS: return "KERN_SUCCESS";
    case KERN_INVALID_ADDRESS: return "KERN_INVALID_ADDRESS";
    case KERN_PROTECTION_FAILURE: return "KERN_PROTECTION_FAILURE";
    case KERN_NO_SPACE: return "KERN_NO_SPACE";
    case KERN_INVALID_ARGUMENT: return "KERN_INVALID_ARGUMENT";
    case KERN_FAILURE: return "KERN_FAILURE";
    case KERN_RESOURCE_SHORTAGE: return "KERN_RESOURCE_SHORTAGE";
    case KERN_NAME_EXISTS: return "KERN_NAME_EXISTS";
    case KERN_INVALID_TASK: return "KERN_INVALID_TASK";
  }
  return "KERN_UNKNOWN";
}

}  // namespace taskfs::vm
