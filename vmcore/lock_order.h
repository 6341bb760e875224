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
// One exception: a write at the memory limit that would fit but for readers'
// pins sleeps, holding its task lock shared and no object lock, until the
// pins go or VmConfig::pin_wait passes. Dropping a pin takes no lock but the
// allocator's, so the wait cannot deadlock.
// Pages are pinned (reference counts), not locked, while a caller hands their
// bytes on (PinnedPages), so no lock is held across a FUSE reply.
#ifndef TASKFS_VMCORE_LOCK_ORDER_H_
#define TASKFS_VMCORE_LOCK_ORDER_H_
#endif  // TASKFS_VMCORE_LOCK_ORDER_H_
