// The text of the generated files (docs/reference.md §4, §7), from values the
// caller has read from the VM core. Pure functions.
#ifndef TASKFS_FS_RENDER_H_
#define TASKFS_FS_RENDER_H_

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "vmcore/vm_types.h"

namespace taskfs::fs {

// host_page_size: "4096\n".
std::string RenderHostPageSize(std::uint64_t page_size);

// maps: one line "START-END cur/max inheritance" per region, 16 hex digits
// for each address (END exclusive), in the order given.
std::string RenderMaps(std::span<const vm::RegionInfo> regions);

// What status shows besides the task's statistics.
struct StatusFacts {
  std::string_view name;
  std::uint64_t id = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::uint64_t page_size = 0;
  unsigned address_bits = 0;
  std::string_view flavor = "classic";  // the mount's -o flavor=
};

// status: "key: value" lines, in the order of docs/reference.md §7.
std::string RenderStatus(const StatusFacts& facts,
                         const vm::TaskStatistics& stats);

}  // namespace taskfs::fs

#endif  // TASKFS_FS_RENDER_H_
