// A checked range of whole pages inside an address space.
#ifndef TASKFS_VMCORE_PAGE_RANGE_H_
#define TASKFS_VMCORE_PAGE_RANGE_H_

#include <cstdint>

#include "vmcore/kern_result.h"
#include "vmcore/vm_types.h"

namespace taskfs::vm {

// Geometry of one address space: what every range check needs.
struct Geometry {
  unsigned page_shift = 12;
  std::uint64_t limit = 0;           // 2^address_bits
  Flavor flavor = Flavor::kClassic;  // which alignment rule the calls follow

  std::uint64_t page_size() const { return std::uint64_t{1} << page_shift; }
  bool Aligned(std::uint64_t value) const {
    return (value & (page_size() - 1)) == 0;
  }
};

// [start, end): page-aligned, start <= end <= 2^address_bits. Built only
// through the checked factories below, so code that takes a PageRange never
// checks alignment, wrap-around or bounds again.
class PageRange {
 public:
  // An exact range. Requires address and size to be page-aligned (the
  // caller reports misalignment as KERN_INVALID_ARGUMENT first, in Mach's
  // order). KERN_INVALID_ADDRESS if address + size wraps past 2^64 or the
  // range does not lie inside the address space.
  static KernResult<PageRange> Exact(const Geometry& geometry,
                                     vm_address_t address, vm_size_t size);
  // Mach's rounding: [trunc_page(address), round_page(address + size)).
  // KERN_INVALID_ADDRESS on wrap-around or outside the address space.
  static KernResult<PageRange> Rounded(const Geometry& geometry,
                                       vm_address_t address, vm_size_t size);
  // vm_allocate's rounding, the address and the size each on its own:
  // [trunc_page(address), trunc_page(address) + round_page(size)), so
  // (0x20fff, 2) is the one page at 0x20000. KERN_INVALID_ADDRESS on
  // wrap-around or outside the address space.
  static KernResult<PageRange> RoundedApart(const Geometry& geometry,
                                            vm_address_t address,
                                            vm_size_t size);
  // The whole address space [0, 2^address_bits).
  static PageRange All(const Geometry& geometry) {
    return PageRange(0, geometry.limit);
  }

  PageRange() = default;

  vm_address_t start() const { return start_; }
  vm_address_t end() const { return end_; }
  vm_size_t size() const { return end_ - start_; }
  bool empty() const { return start_ == end_; }

 private:
  PageRange(vm_address_t start, vm_address_t end) : start_(start), end_(end) {}

  vm_address_t start_ = 0;
  vm_address_t end_ = 0;
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_PAGE_RANGE_H_
