// A memory object: the pages behind one or more map entries.
#ifndef TASKFS_VMCORE_VM_OBJECT_H_
#define TASKFS_VMCORE_VM_OBJECT_H_

#include <cstdint>
#include <map>

#include "vmcore/page_table.h"
#include "vmcore/phase_fair_mutex.h"

namespace taskfs::vm {

// Map entries point into an object by page index. Several entries share an
// object when a region is split (disjoint index ranges) or inherited `share`
// by a fork (the same range in two tasks): a write through either is seen by
// both, because it changes the object's slot. Copy-on-write is per page
// (Page's reference count), never per object.
//
// The object counts how many entries cover each index (coverage). Pages of
// indexes no entry covers any more are freed at once.
//
// Thread-safety: mu_ guards pages_ and coverage_; see lock_order.h.
class VmObject {
 public:
  VmObject();
  ~VmObject();  // drops every page
  VmObject(const VmObject&) = delete;
  VmObject& operator=(const VmObject&) = delete;

  // Unique and increasing: the lock order among objects.
  std::uint64_t id() const { return id_; }
  PhaseFairMutex& mu() const { return mu_; }

  // Requires mu_ (shared to read, exclusive to change).
  PageTable& pages() { return pages_; }
  const PageTable& pages() const { return pages_; }

  // Requires mu_ exclusive. An entry now covers [lo, hi).
  void Cover(std::uint64_t lo, std::uint64_t hi);
  // Requires mu_ exclusive. An entry no longer covers [lo, hi); frees the
  // pages of indexes nothing covers any more.
  void Uncover(std::uint64_t lo, std::uint64_t hi);
  // Requires mu_. How many entries cover index.
  std::uint32_t CoverageAt(std::uint64_t index) const;
  // Requires mu_. True if exactly [lo, hi) is covered, once, and nothing else
  // is: an entry over that range is the object's only user.
  bool OnlyCovers(std::uint64_t lo, std::uint64_t hi) const;

 private:
  // Adds delta to the coverage of [lo, hi); calls on_zero(a, b) for each part
  // whose coverage became 0.
  template <typename Fn>
  void AddCoverage(std::uint64_t lo, std::uint64_t hi, int delta, Fn&& on_zero);

  const std::uint64_t id_;
  mutable PhaseFairMutex mu_;
  PageTable pages_;  // guarded by mu_
  // Piecewise-constant coverage: the count at key k holds from k up to the
  // next key; below the first key it is 0. Neighbors never hold equal counts.
  std::map<std::uint64_t, std::uint32_t> coverage_;  // guarded by mu_
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_VM_OBJECT_H_
