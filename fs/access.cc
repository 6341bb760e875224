#include "fs/access.h"

#include <algorithm>

namespace taskfs::fs {

bool ModeAllows(const Caller& caller, const TaskNode& node, mode_t mode,
                mode_t want) {
  if (caller.uid == node.uid) return ((mode >> 6) & want) == want;
  const bool in_group = caller.gid == node.gid ||
                        std::find(caller.groups.begin(), caller.groups.end(),
                                  node.gid) != caller.groups.end();
  if (in_group) return ((mode >> 3) & want) == want;
  return (mode & want) == want;
}

bool NeedsGroups(uid_t uid, gid_t gid, const TaskNode& node) {
  return uid != 0 && uid != node.uid && gid != node.gid;
}

vm::KernReturn MayAccess(const Caller& caller, const TaskNode& node,
                         bool want_write) {
  if (caller.uid == 0) return vm::KERN_SUCCESS;
  const mode_t want = want_write ? 06 : 04;
  const unsigned dir = static_cast<unsigned>(NodeKind::kDir);
  const unsigned mem = static_cast<unsigned>(NodeKind::kMem);
  if (!ModeAllows(caller, node, node.modes[dir], 01) ||
      !ModeAllows(caller, node, node.modes[mem], want)) {
    return vm::KERN_PROTECTION_FAILURE;
  }
  return vm::KERN_SUCCESS;
}

std::vector<gid_t> ReadGroups(
    const std::function<int(int size, gid_t* list)>& get) {
  // Most callers have few groups; a second call is rare.
  std::vector<gid_t> groups(64);
  for (;;) {
    const int n = get(static_cast<int>(groups.size()), groups.data());
    if (n < 0) return {};
    if (static_cast<std::size_t>(n) <= groups.size()) {
      groups.resize(static_cast<std::size_t>(n));
      return groups;
    }
    groups.resize(static_cast<std::size_t>(n));
  }
}

}  // namespace taskfs::fs
