// Permission checks of a caller on a task's paths, as the kernel's
// default_permissions makes them on the paths it walks: used where a ctl
// command reaches another task (copy-from, fork; SPEC §4). Pure functions.
#ifndef TASKFS_FS_ACCESS_H_
#define TASKFS_FS_ACCESS_H_

#include <sys/types.h>

#include <functional>
#include <span>
#include <vector>

#include "fs/node_table.h"
#include "vmcore/kern_return.h"

namespace taskfs::fs {

// Who makes a request.
struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
  std::span<const gid_t> groups;  // supplementary groups
};

// The identity an open file acts with: its opener's, read when the file was
// opened (uid, gid and every supplementary group), for every later request
// on it whoever sends it, as the kernel keeps a file's f_cred. A process
// that inherits a file (a setuid program) gets its opener's rights through
// it, never its own.
struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;

  Caller caller() const { return Caller{uid, gid, groups}; }
};

// Does the class of caller (owner, group, other of node) hold all `want`
// bits (a mask of 04, 02, 01) in mode? Root is not special here.
bool ModeAllows(const Caller& caller, const TaskNode& node, mode_t mode,
                mode_t want);

// Whether ModeAllows needs caller.groups for node: not for the owner, nor
// for a caller whose own gid is node's group.
bool NeedsGroups(uid_t uid, gid_t gid, const TaskNode& node);

// The check a path walk to NODE/mem and an open of it would make: search on
// the task directory, read (and write, if want_write) on mem. KERN_SUCCESS
// for root; else KERN_SUCCESS or KERN_PROTECTION_FAILURE.
vm::KernReturn MayAccess(const Caller& caller, const TaskNode& node,
                         bool want_write);

// Reads a whole group list from get, which behaves as fuse_req_getgroups:
// fills up to size entries of list and returns the total number of groups,
// or a negative errno. Grows the buffer until the list fits; an error gives
// an empty list.
std::vector<gid_t> ReadGroups(
    const std::function<int(int size, gid_t* list)>& get);

}  // namespace taskfs::fs

#endif  // TASKFS_FS_ACCESS_H_
