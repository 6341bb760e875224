#include "vmcore/kern_return.h"

namespace taskfs::vm {

std::string_view KernReturnName(KernReturn kr) {
#define TASKFS_KERN_RETURN_CASE(name, value) \
  case name:                                 \
    return #name;
  switch (kr) { TASKFS_KERN_RETURNS(TASKFS_KERN_RETURN_CASE) }
#undef TASKFS_KERN_RETURN_CASE
  return "KERN_UNKNOWN";
}

}  // namespace taskfs::vm
