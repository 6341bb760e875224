#include "vmcore/page_range.h"

namespace taskfs::vm {

KernResult<PageRange> PageRange::Exact(const Geometry& geometry,
                                       vm_address_t address, vm_size_t size) {
  vm_address_t end;
  if (__builtin_add_overflow(address, size, &end) || end > geometry.limit) {
    return KERN_INVALID_ADDRESS;
  }
  return PageRange(address, end);
}

KernResult<PageRange> PageRange::Rounded(const Geometry& geometry,
                                         vm_address_t address, vm_size_t size) {
  const std::uint64_t mask = geometry.page_size() - 1;
  vm_address_t end;
  if (__builtin_add_overflow(address, size, &end) ||
      __builtin_add_overflow(end, mask, &end)) {
    return KERN_INVALID_ADDRESS;
  }
  end &= ~mask;
  if (end > geometry.limit) return KERN_INVALID_ADDRESS;
  return PageRange(address & ~mask, end);
}

KernResult<PageRange> PageRange::RoundedApart(const Geometry& geometry,
                                              vm_address_t address,
                                              vm_size_t size) {
  const std::uint64_t mask = geometry.page_size() - 1;
  if (size > ~std::uint64_t{0} - mask) return KERN_INVALID_ADDRESS;
  return Exact(geometry, address & ~mask, (size + mask) & ~mask);
}

}  // namespace taskfs::vm
