// Page access below the facade: reading a checked range into pins or a
// buffer, and the copy-on-write write path (GNU Mach's vm_fault.c role).
//
// Every function here assumes the facade's checks passed: the range is
// built by PageRange, lies wholly in allocated entries and has the access
// the call needs. Requires the task lock of map (shared is enough: these
// change pages, not the map); each function takes and releases the object
// locks it needs itself (lock_order.h), so the caller holds none.
#ifndef TASKFS_VMCORE_VM_FAULT_H_
#define TASKFS_VMCORE_VM_FAULT_H_

#include <cstddef>
#include <span>

#include "vmcore/address_map.h"
#include "vmcore/kern_return.h"
#include "vmcore/page_range.h"
#include "vmcore/pinned_pages.h"
#include "vmcore/vm_system.h"

namespace taskfs::vm {

// The entries a read crosses, ascending, as the facade's range check found
// them (one walk of the map both checks the range and finds them).
using EntryList = std::span<const MapEntry* const>;

// Pins every page of range (entries: its entries) into *out, which must be
// empty: a written page gets a pin, an unwritten one shows the zero page.
// Takes the entries' objects' locks shared, so the view is one snapshot. On
// an exception *out is emptied again before it propagates.
void ReadPinned(VmSystem& system, EntryList entries, const PageRange& range,
                PinnedPages* out);
// The same for the bytes [address, address + size) of a read of any
// alignment (the XNU flavor), where range is PageRange::Rounded of them and
// size is not 0: the pages are pinned whole, *out shows only those bytes.
void ReadPinned(VmSystem& system, EntryList entries, const PageRange& range,
                vm_address_t address, vm_size_t size, PinnedPages* out);

// Copies the bytes of range into out (out.size() == range.size()) under the
// objects' shared locks: no pins, nothing to release.
void ReadInto(VmSystem& system, EntryList entries, const PageRange& range,
              std::span<std::byte> out);
// The same for the bytes [address, address + out.size()), where range is
// PageRange::Rounded of them.
void ReadInto(VmSystem& system, EntryList entries, const PageRange& range,
              vm_address_t address, std::span<std::byte> out);

// What a write puts into the pages it changes.
class WriteSource {
 public:
  // The bytes at data (as many as the write's size), through the cache.
  static WriteSource Bytes(const void* data) {
    return WriteSource(kBytes, data, 0);
  }
  // The same, but a write of kStreamBytes or more goes around the cache
  // (non-temporal stores): a large write is not read back soon, and caching
  // it would only push out what is.
  static WriteSource StreamedBytes(const void* data) {
    return WriteSource(kStreamed, data, 0);
  }
  // size copies of byte.
  static WriteSource Fill(unsigned char byte) {
    return WriteSource(kFill, nullptr, byte);
  }

  static constexpr vm_size_t kStreamBytes = 64 * 1024;

  enum Kind { kBytes, kStreamed, kFill };
  Kind kind() const { return kind_; }
  const std::byte* data() const { return data_; }
  unsigned char byte() const { return byte_; }

 private:
  WriteSource(Kind kind, const void* data, unsigned char byte)
      : kind_(kind), data_(static_cast<const std::byte*>(data)), byte_(byte) {}

  Kind kind_;
  const std::byte* data_;
  unsigned char byte_;
};

// Writes bytes [address, address + size) of source into map, where range is
// PageRange::Rounded of them. Copy-on-write: a page with another mapping or
// a pin is replaced by a fresh copy, an unwritten page by a fresh one; a
// page whose every mapping lies in the range is copied once and then written
// in place. All fresh pages are taken in one batch before any byte changes.
//
// Returns KERN_SUCCESS, or KERN_RESOURCE_SHORTAGE if the batch would pass
// the memory limit (then nothing changed). The copies of pages that only
// readers' pins keep (the write leaves them unmapped, and their last pin
// frees them) may go past the limit into the pin reserve (page_allocator.h);
// the write is refused only when the rest does not fit or the reserve is
// used up. It never waits for a pin. May throw std::bad_alloc (page-table
// chunks) before any byte changes.
KernReturn WriteBytes(VmSystem& system, const AddressMap& map,
                      const PageRange& range, vm_address_t address,
                      vm_size_t size, const WriteSource& source);

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_VM_FAULT_H_
