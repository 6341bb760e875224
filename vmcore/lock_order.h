// The lock order of the VM core, written down once.
//
// A thread that holds several of these locks took them in this order, and
// locks of one level in ascending id order:
//
//   1. Task::mu_              tasks in ascending Task::id()
//                             (vm_map_copy and fork hold two)
//   2. VmObject::mu_          objects in ascending VmObject::id()
//                             (read/write/copy lock every object the range
//                             touches; map changes lock one at a time)
//   3. VmSystem::tasks_mu_    the task registry
//   4. PageAllocator::mu_     the free pages (a leaf)
//
// Nothing in the core waits on anything else while holding a lock: no system
// call but mmap/munmap inside the allocator, no callback into the caller.
// Pages are pinned (reference counts), not locked, while a caller hands their
// bytes on (PinnedPages), so no lock is held across a FUSE reply.
#ifndef TASKFS_VMCORE_LOCK_ORDER_H_
#define TASKFS_VMCORE_LOCK_ORDER_H_
#endif  // TASKFS_VMCORE_LOCK_ORDER_H_
