// A memory object: the pages behind one or more map entries.
#ifndef TASKFS_VMCORE_VM_OBJECT_H_
#define TASKFS_VMCORE_VM_OBJECT_H_

#include <cstdint>
#include <functional>
#include <iterator>
#include <map>

#include "vmcore/charged_allocator.h"
#include "vmcore/deferred_freer.h"
#include "vmcore/memory_account.h"
#include "vmcore/memory_budget.h"
#include "vmcore/page_table.h"
#include "vmcore/phase_fair_mutex.h"

namespace taskfs::vm {

// Map entries point into an object by page index. Several entries share an
// object when a region is split (disjoint index ranges) or inherited `share`
// by a fork (the same range in two tasks): a write through either is seen by
// both, because it changes the object's slot. Copy-on-write is per page
// (Page's reference count) and per page-table subtree (page_table.h), never
// per object.
//
// The object counts how many entries cover each index (coverage). Pages of
// indexes no entry covers any more are freed at once. Coverage keeps a mark
// at each end of every entry's range, so that taking an entry away (Uncover,
// Join) never allocates: those paths run in cleanup and cannot fail.
//
// Memory: the object's record and its coverage are charged to its own
// account (metadata_bytes()), its page table's nodes to the budget's shared
// account, since other objects' tables may hold them too; what can be
// refused throws LimitReached and changes nothing. Its table's large dead
// subtrees go to the system's DeferredFreer, which all of its objects
// share for the same reason.
//
// Thread-safety: mu_ guards pages_ and coverage_; see lock_order.h.
class VmObject {
 public:
  // Charges its record to budget: may throw LimitReached. freer: its page
  // table's (PageTable), the same for every object of budget.
  VmObject(MemoryBudget& budget, DeferredFreer& freer);
  ~VmObject();  // drops every page
  VmObject(const VmObject&) = delete;
  VmObject& operator=(const VmObject&) = delete;

  // Unique and increasing: the lock order among objects.
  std::uint64_t id() const { return id_; }
  PhaseFairMutex& mu() const { return mu_; }

  // Requires mu_ (shared to read, exclusive to change).
  PageTable& pages() { return pages_; }
  const PageTable& pages() const { return pages_; }

  // These require mu_ exclusive. Cover: a new entry covers [lo, hi) (may
  // throw; then nothing changed). Uncover: an entry that covered [lo, hi)
  // goes; frees the pages of indexes nothing covers any more.
  void Cover(std::uint64_t lo, std::uint64_t hi);
  void Uncover(std::uint64_t lo, std::uint64_t hi) noexcept;
  // An entry covering [lo, hi) becomes two, [lo, at) and [at, hi) (may
  // throw; then nothing changed), and back again (Join of the same at).
  void Split(std::uint64_t at);
  void Join(std::uint64_t at) noexcept;
  // An entry covering [lo, at) now covers [lo, hi) (may throw; then nothing
  // changed).
  void Extend(std::uint64_t at, std::uint64_t hi);

  // Requires mu_. How many entries cover index.
  std::uint32_t CoverageAt(std::uint64_t index) const;
  // Requires mu_. True if exactly [lo, hi) is covered, once, by one entry,
  // and nothing else is: an entry over that range is the object's only user.
  bool OnlyCovers(std::uint64_t lo, std::uint64_t hi) const;

  // Requires mu_. Calls fn(lo, hi) for each run of indexes [lo, hi) that
  // some entry covers, ascending; needs no memory.
  template <typename Fn>
  void ForEachCovered(Fn&& fn) const {
    for (auto it = coverage_.begin(); it != coverage_.end(); ++it) {
      if (it->second.count > 0) fn(it->first, std::next(it)->first);
    }
  }

  // Bytes of memory this object holds beyond its pages and page-table
  // nodes: its record and its coverage.
  std::uint64_t metadata_bytes() const { return account_.held(); }

  // The statistics walk's mark (vm_statistics.cc): which walk counted the
  // object last. Read and written only under that walk's lock.
  std::uint64_t walk_mark() const { return walk_mark_; }
  void set_walk_mark(std::uint64_t mark) const { walk_mark_ = mark; }

 private:
  // From its key up to the next: how many entries cover it, and how many
  // entry ranges begin or end at the key.
  struct Mark {
    std::uint32_t count;
    std::uint32_t ends;
  };
  using Coverage =
      std::map<std::uint64_t, Mark, std::less<>,
               ChargedAllocator<std::pair<const std::uint64_t, Mark>>>;

  // The mark at key (made with the count holding there if missing; may
  // throw), and its removal when it no longer marks anything.
  Coverage::iterator MarkAt(std::uint64_t key, bool* made);
  void DropIfIdle(Coverage::iterator it) noexcept;

  const std::uint64_t id_;
  mutable std::uint64_t walk_mark_ = 0;  // see walk_mark()
  mutable PhaseFairMutex mu_;
  MemoryAccount account_;  // before what it charges, so it goes after them
  PageTable pages_;        // guarded by mu_
  // A key exists where the count changes and where an entry's range begins
  // or ends; below the first key the count is 0.
  Coverage coverage_;  // guarded by mu_
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_VM_OBJECT_H_
