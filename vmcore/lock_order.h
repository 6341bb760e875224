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
//   5. DeferredFreer::mu_     the system's list of dead page-table subtrees
//                             (deferred_freer.h): a leaf like 4, never held
//                             together with it. Taken to hand a subtree over
//                             (a table dropping its last reference, under
//                             that object's lock) or take one off; nothing
//                             is locked under it and nothing is freed while
//                             it is held.
//
// One more leaf, never held together with PageAllocator::mu_: the
// statistics walk's lock (vm_statistics.cc), which MapStatistics takes after
// every object lock of its map.
//
// The freer's thread (VmSystem owns it, and its destructor drains and joins
// it) holds no lock while it frees a subtree; the free takes
// PageAllocator::mu_ for the pages it drops and DeferredFreer::mu_ for a
// large child it hands back. A thread that waits for it (Drain: a write or
// a charge refused at the limit, MapStatistics, MeasureUsedBytes, the
// system's end) may hold task and object locks, which the free never takes,
// but neither of those two.
//
// The task and object locks are PhaseFairMutex (phase_fair_mutex.h): a map
// change waits only for the calls already in, however many readers follow,
// and a reader for one writer at most. So no thread takes a lock it holds
// again, not even shared: behind a waiting writer that would deadlock.
//
// Nothing in the core waits on anything else while holding a lock: no system
// call but mmap/munmap/madvise inside the allocator, no callback into the
// caller, no sleep; the one wait is a Drain's for the freer's thread
// (above), whose work takes none of the locks a drainer may hold. A write
// at the memory limit that meets readers' pins does not wait for them: it
// copies the pages from the pin reserve (page_allocator.h).
// Pages are pinned (reference counts), not locked, while a caller hands their
// bytes on (PinnedPages), so no lock is held across a FUSE reply.
#ifndef TASKFS_VMCORE_LOCK_ORDER_H_
#define TASKFS_VMCORE_LOCK_ORDER_H_
#endif  // TASKFS_VMCORE_LOCK_ORDER_H_
