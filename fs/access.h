// Permission checks of a caller on a task's paths, as the kernel's
// default_permissions makes them on the paths it walks: used where a ctl
// command or an ioctl reaches another task (copy-from, fork, vm_map_copy),
// and the credentials an open file carries for them. Pure functions but
// ReadCredentials, which reads /proc.
#ifndef TASKFS_FS_ACCESS_H_
#define TASKFS_FS_ACCESS_H_

#include <sys/types.h>

#include <span>
#include <string_view>
#include <vector>

#include "fs/node_table.h"
#include "vmcore/kern_return.h"
#include "vmcore/task.h"

namespace taskfs::fs {

// Who makes a request.
struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
  std::span<const gid_t> groups;  // supplementary groups
  // The capabilities that pass the modes, as the kernel's own checks honour
  // them: CAP_DAC_OVERRIDE (read, write and search) and CAP_DAC_READ_SEARCH
  // (read and search). Only root's count (ReadCredentials): a uid 0 without
  // them (a container's root with its capabilities dropped) is held to the
  // modes like anyone.
  bool dac_override = false;
  bool dac_read_search = false;
};

// The identity an open file acts with: its opener's, read when the file was
// opened (uid, gid, every supplementary group, and root's capabilities),
// for every later request on it whoever sends it, as the kernel keeps a
// file's f_cred. A process that inherits a file (a setuid program) gets its
// opener's rights through it, never its own.
struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  bool dac_override = false;
  bool dac_read_search = false;
  // False when the opener's groups and capabilities could not be read: then
  // the file reaches no task beyond its own (MayAccess refuses).
  bool known = false;

  Caller caller() const {
    return Caller{uid, gid, groups, dac_override, dac_read_search};
  }
};

// Does the class of caller (owner, group, other of node) hold all `want`
// bits (a mask of 04, 02, 01) in mode? Capabilities are not counted here.
bool ModeAllows(const Caller& caller, const TaskNode& node, mode_t mode,
                mode_t want);

// The check a path walk to NODE/mem and an open of it would make: search on
// the task directory, read (and write, if want_write) on mem, each granted
// by the modes or by the caller's capabilities. KERN_SUCCESS or
// KERN_PROTECTION_FAILURE.
vm::KernReturn MayAccess(const Caller& caller, const TaskNode& node,
                         bool want_write);

// May the opener of a file reach other through a ctl command or an ioctl
// on it (copy-from, fork, vm_map_copy): MayAccess of other's visible node
// in nodes with opener's rights, reading (and writing, with want_write)
// its mem. KERN_SUCCESS; KERN_INVALID_TASK if other is no longer visible;
// KERN_PROTECTION_FAILURE if the modes refuse, or if opener is not known.
// A refusal sets its reason (vm::SetFailureReason), naming the opener's uid,
// other's modes and owner. (ExecContext::may_access.)
vm::KernReturn OpenerMayAccess(const Credentials& opener,
                               const NodeTable& nodes, vm::Task& other,
                               bool want_write);

// Reads the credentials of a request by uid:gid from `status`, the text of
// its thread's /proc/PID/task/TID/status: the Groups line and, for uid 0,
// the CapEff line. out->known says whether that worked: false if a line is
// missing or malformed, or if the file's filesystem uid and gid are not
// uid:gid (another process, or credentials the kernel swapped for the open,
// as io_uring's personalities do), so that unknown groups never pass for
// none.
void ParseProcStatus(std::string_view status, uid_t uid, gid_t gid,
                     Credentials* out);

// The credentials of the thread pid that made a request as uid:gid, from
// its /proc status (ParseProcStatus); known is false if pid is 0 (outside
// the daemon's pid namespace) or the file cannot be read.
Credentials ReadCredentials(pid_t pid, uid_t uid, gid_t gid);

}  // namespace taskfs::fs

#endif  // TASKFS_FS_ACCESS_H_
