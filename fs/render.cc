#include "fs/render.h"

#include <fmt/format.h>

#include <iterator>

namespace taskfs::fs {
namespace {

std::string_view InheritanceName(vm::vm_inherit_t inheritance) {
  switch (inheritance) {
    case vm::VM_INHERIT_SHARE:
      return "share";
    case vm::VM_INHERIT_COPY:
      return "copy";
    case vm::VM_INHERIT_NONE:
      return "none";
    default:
      return "?";
  }
}

}  // namespace

std::string RenderHostPageSize(std::uint64_t page_size) {
  return fmt::format("{}\n", page_size);
}

std::string RenderMaps(std::span<const vm::RegionInfo> regions) {
  std::string out;
  for (const vm::RegionInfo& r : regions) {
    fmt::format_to(std::back_inserter(out), "{:016x}-{:016x} {}/{} {}\n",
                   r.start, r.start + r.size, vm::ProtectionText(r.protection),
                   vm::ProtectionText(r.max_protection),
                   InheritanceName(r.inheritance));
  }
  return out;
}

std::string RenderStatus(const StatusFacts& facts,
                         const vm::TaskStatistics& stats) {
  return fmt::format(
      "name: {}\n"
      "id: {}\n"
      "owner: {}:{}\n"
      "page_size: {}\n"
      "address_bits: {}\n"
      "regions: {}\n"
      "virtual_bytes: {}\n"
      "resident_bytes: {}\n"
      "shared_bytes: {}\n"
      "metadata_bytes: {}\n"
      "flavor: {}\n",
      facts.name, facts.id, facts.uid, facts.gid, facts.page_size,
      facts.address_bits, stats.regions, stats.virtual_bytes,
      stats.resident_bytes, stats.shared_bytes, stats.metadata_bytes,
      facts.flavor);
}

}  // namespace taskfs::fs
