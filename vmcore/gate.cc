#include "vmcore/gate.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <utility>

namespace taskfs::vm::gate {

// --- the guard ---------------------------------------------------------------

KernReturn LimitRefused(const LimitReached& limit) noexcept {
  // Formatted on the stack: the heap may be out too, and a throw here
  // would end the daemon (Guarded is noexcept).
  char text[128];
  const auto out = fmt::format_to_n(
      text, sizeof text,
      "memory limit {} bytes: {} in use, the call needs {} more", limit.limit(),
      limit.used(), limit.asked());
  SetFailureReason(std::string_view(text, std::min(out.size, sizeof text)));
  return KERN_RESOURCE_SHORTAGE;
}

KernReturn OutOfMemory() noexcept {
  SetFailureReason(
      "out of memory: the daemon could not allocate what the "
      "call needs");
  return KERN_RESOURCE_SHORTAGE;
}

KernReturn Unexpected() noexcept {
  SetFailureReason("an unexpected error inside the VM core");
  return KERN_FAILURE;
}

// --- opening a task ----------------------------------------------------------

KernReturn Terminated(const Task& task) {
  SetFailureReason(fmt::format("task {} was terminated", task.name()));
  return KERN_INVALID_TASK;
}

// --- reasons -----------------------------------------------------------------

KernReturn BadTaskName(std::string_view name) {
  SetFailureReason(fmt::format(
      "bad task name '{}' (1 to 64 of A-Z a-z 0-9 . _ -, not starting with "
      "'.', not host_page_size)",
      name.substr(0, 80)));
  return KERN_INVALID_ARGUMENT;
}

std::string Needs(vm_prot_t needed) {
  const std::string_view op = needed == VM_PROT_READ    ? "read"
                              : needed == VM_PROT_WRITE ? "write"
                                                        : "access";
  std::string letters;
  for (const auto& [bit, letter] :
       {std::pair{VM_PROT_READ, 'r'}, std::pair{VM_PROT_WRITE, 'w'},
        std::pair{VM_PROT_EXECUTE, 'x'}}) {
    if (needed & bit) letters.push_back(letter);
  }
  return fmt::format("{} needs {}", op, letters);
}

std::string NeedsExplained::operator()(const MapEntry& entry,
                                       vm_address_t page) const {
  return fmt::format("page {:#x} is {}/{}, {}", page,
                     ProtectionText(entry.protection),
                     ProtectionText(entry.max_protection), Needs(needed_));
}

// --- the checks --------------------------------------------------------------

Checks& Checks::TransferAligned(std::initializer_list<Named> values) {
  Enter(kArguments);
  return geometry_.flavor == Flavor::kXnu ? *this : Aligned(values);
}

Checks& Checks::Aligned(std::initializer_list<Named> values) {
  Enter(kArguments);
  for (const Named& v : values) {
    if (!geometry_.Aligned(v.value) && Fail(KERN_INVALID_ARGUMENT)) {
      SetFailureReason(
          fmt::format("{} {:#x} is not a multiple of the page size {:#x}",
                      v.name, v.value, geometry_.page_size()));
    }
  }
  return *this;
}

Checks& Checks::MessageSize(vm_size_t size) {
  Enter(kArguments);
  constexpr vm_size_t kMessageMax = 0xffffffff;
  if (geometry_.flavor == Flavor::kXnu && size > kMessageMax &&
      Fail(KERN_INVALID_ARGUMENT)) {
    SetFailureReason(
        fmt::format("size {:#x} is more than a message carries ({:#x})", size,
                    kMessageMax));
  }
  return *this;
}

Checks& Checks::NonEmpty(vm_size_t size) {
  Enter(kArguments);
  if (size == 0) done_ = true;
  return *this;
}

Checks& Checks::Exact(vm_address_t address, vm_size_t size, PageRange* out) {
  if (Enter(kBounds)) {
    Take(PageRange::Exact(geometry_, address, size), address, size, out);
  }
  return *this;
}

Checks& Checks::Rounded(vm_address_t address, vm_size_t size, PageRange* out) {
  if (Enter(kBounds)) {
    Take(PageRange::Rounded(geometry_, address, size), address, size, out);
  }
  return *this;
}

Checks& Checks::RoundedApart(vm_address_t address, vm_size_t size,
                             PageRange* out) {
  if (Enter(kBounds)) {
    Take(PageRange::RoundedApart(geometry_, address, size), address, size, out);
  }
  return *this;
}

Checks& Checks::Bytes(vm_address_t address, vm_size_t size, PageRange* out) {
  return geometry_.flavor == Flavor::kXnu ? Rounded(address, size, out)
                                          : Exact(address, size, out);
}

Checks& Checks::Access(const AddressMap& map, const PageRange& range,
                       vm_prot_t needed) {
  if (Enter(kRanges) && Fail(map.CheckAccess(range, needed))) {
    ExplainRange(
        map, range,
        [needed](const MapEntry& e) {
          return (e.protection & needed) == needed ? KERN_SUCCESS
                                                   : KERN_PROTECTION_FAILURE;
        },
        NeedsExplained(needed));
  }
  return *this;
}

Checks& Checks::Allocated(const AddressMap& map, const PageRange& range) {
  return Range(
      map, range, [](const MapEntry&) { return KERN_SUCCESS; },
      [](const MapEntry&, vm_address_t) { return std::string(); });
}

Checks& Checks::Free(const AddressMap& map, const PageRange& range) {
  if (Enter(kRanges) && !map.IsFree(range) && Fail(KERN_NO_SPACE)) {
    const MapEntry& in_the_way = map.EntryFrom(range.start())->second;
    const std::optional<RegionInfo> region =
        map.RegionFrom(std::max(in_the_way.start, range.start()));
    SetFailureReason(fmt::format("overlaps region {:#x}-{:#x}", region->start,
                                 region->start + region->size));
  }
  return *this;
}

Checks& Checks::Hole(AddressMap& map, vm_size_t size, PageRange* out) {
  if (!Enter(kRanges)) return *this;
  // A size past the space fits nowhere; below it, rounding cannot wrap.
  const vm_size_t mask = geometry_.page_size() - 1;
  const vm_size_t rounded = (size + mask) & ~mask;
  const KernResult<vm_address_t> start =
      size > geometry_.limit ? KernResult<vm_address_t>(KERN_NO_SPACE)
                             : map.FindSpace(rounded);
  if (!start.ok()) {
    if (Fail(start.code())) {
      SetFailureReason(fmt::format(
          "no free range of {:#x} bytes in the address space", size));
    }
    return *this;
  }
  *out = PageRange::Exact(geometry_, start.value(), rounded).value();
  return *this;
}

void Checks::Take(const KernResult<PageRange>& range, vm_address_t address,
                  vm_size_t size, PageRange* out) {
  if (range.ok()) {
    *out = range.value();
    return;
  }
  Fail(range.code());
  if (address + size < address) {
    SetFailureReason(
        fmt::format("{:#x} + {:#x} wraps past 2^64", address, size));
  } else {
    SetFailureReason(
        fmt::format("{:#x}-{:#x} is not inside the address space [0, {:#x})",
                    address, address + size, geometry_.limit));
  }
}

void Checks::NotAllocated(vm_address_t page) {
  SetFailureReason(fmt::format("page {:#x} is not allocated", page));
}

// --- what the calls check ----------------------------------------------------

KernReturn Protectable(const MapEntry& entry, vm_prot_t new_prot) {
  return (new_prot & ~entry.max_protection) == 0 ? KERN_SUCCESS
                                                 : KERN_PROTECTION_FAILURE;
}

std::vector<const MapEntry*>& ReadEntries() {
  thread_local std::vector<const MapEntry*> entries;
  entries.clear();
  return entries;
}

}  // namespace taskfs::vm::gate
