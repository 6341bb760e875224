// The lock order of the VM core, written down once.
//
// A thread that holds several of these locks took them in this order, and
// locks of one level in ascending id order:
//
//   1. Task::mu_              tasks in ascending Task::id() (TaskLocks,
//                             locks.h; vm_map_copy holds two)
//   2. VmObject::mu_          objects in ascending VmObject::id()
//                             (ObjectLocks, locks.h: read, write, copy, fork
//                             and statistics lock every object they touch at
//                             once; AddressMap's changes lock one at a time)
//   3. VmSystem::tasks_mu_    the task registry (it takes a new task's own
//                             lock only by try_lock, which never waits)
//   4. PageAllocator::mu_     the free pages (the leaf)
//
// One more leaf, never held together with PageAllocator::mu_: the
// statistics walk's lock (vm_statistics.cc), which MapStatistics takes after
// every object lock of its map.
//
// The task and object locks are PhaseFairMutex (phase_fair_mutex.h): a map
// change waits only for the calls already in, however many readers follow,
// and a reader for one writer at most. So no thread takes a lock it holds
// again, not even shared: behind a waiting writer that would deadlock.
//
// Nothing in the core waits on anything else while holding a lock: no system
// call but mmap/munmap/madvise inside the allocator, no callback into the
// caller, no sleep. A write at the memory limit that meets readers' pins does
// not wait for them: it copies the pages from the pin reserve
// (page_allocator.h).
// Pages are pinned (reference counts), not locked, while a caller hands their
// bytes on (PinnedPages), so no lock is held across a FUSE reply.
#ifndef TASKFS_VMCORE_LOCK_ORDER_H_
#define TASKFS_VMCORE_LOCK_ORDER_H_
#endif  // TASKFS_VMCORE_LOCK_ORDER_H_
