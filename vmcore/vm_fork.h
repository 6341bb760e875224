// task_fork's map building (GNU Mach's vm_map_fork).
#ifndef TASKFS_VMCORE_VM_FORK_H_
#define TASKFS_VMCORE_VM_FORK_H_

#include <memory>
#include <string_view>

#include "vmcore/kern_result.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"

namespace taskfs::vm {

// Makes a new task named name (valid: VmSystem::ValidTaskName) whose map is
// built from parent's by each region's inheritance: share entries map the
// same object, copy entries get a new object holding the same pages
// copy-on-write, none entries are left out. The child is one snapshot of
// the parent (all its objects stay locked while the pages are taken) and is
// filled before anyone can see it (VmSystem::AddTask's exclusive lock).
//
// Requires parent's task lock, shared, and no object lock. Returns the
// child, or AddTask's KERN_NAME_EXISTS / KERN_RESOURCE_SHORTAGE. On an
// exception the child is removed again and nothing is left behind.
KernResult<std::shared_ptr<Task>> ForkTask(VmSystem& system, const Task& parent,
                                           std::string_view name);

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_VM_FORK_H_
