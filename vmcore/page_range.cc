#include "vmcore/page_range.h"

namespace taskfs::vm {

KernReturn PageRange::Exact(const Geometry& geometry, vm_address_t address,
                            vm_size_t size, PageRange* out) {
  vm_address_t end;
  if (__builtin_add_overflow(address, size, &end) || end > geometry.limit) {
    return KERN_INVALID_ADDRESS;
  }
  *out = PageRange(address, end);
  return KERN_SUCCESS;
}

KernReturn PageRange::Rounded(const Geometry& geometry, vm_address_t address,
                              vm_size_t size, PageRange* out) {
  const std::uint64_t mask = geometry.page_size() - 1;
  vm_address_t end;
  if (__builtin_add_overflow(address, size, &end) ||
      __builtin_add_overflow(end, mask, &end)) {
    return KERN_INVALID_ADDRESS;
  }
  end &= ~mask;
  if (end > geometry.limit) return KERN_INVALID_ADDRESS;
  *out = PageRange(address & ~mask, end);
  return KERN_SUCCESS;
}

}  // namespace taskfs::vm
