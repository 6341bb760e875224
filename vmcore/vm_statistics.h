// task_statistics' walk of a map.
#ifndef TASKFS_VMCORE_VM_STATISTICS_H_
#define TASKFS_VMCORE_VM_STATISTICS_H_

#include <cstdint>
#include <mutex>

#include "vmcore/address_map.h"
#include "vmcore/vm_types.h"

namespace taskfs::vm {

// The figures of map (TaskStatistics): its regions, its allocated bytes, the
// bytes of its distinct written pages, and of those the ones also mapped
// elsewhere (another mapping of the page, or another entry over the same
// object index -- a page at two addresses of this task counts as shared),
// and the metadata of the map and its objects (the task's own account is
// the caller's to add).
// Requires map's task lock (shared is enough) and no object lock; takes
// every object of the map shared, so the figures are one snapshot.
TaskStatistics MapStatistics(const AddressMap& map);

// A block of walk marks no statistics walk will ever use, and the walk's
// lock held for as long as the block is: a save (saved_state.h) numbers the
// pages and objects it meets with marks of [first(), first() + kSpan), in
// the words they keep for the walk, so that telling a page met before from
// a new one needs no memory. Take it after every object lock whose objects'
// and pages' marks are written (lock_order.h: a leaf, like the walk's).
//
// Marks come from one 64-bit counter that never goes back: a mark used
// twice would make a walk or save skip what it had not met. Keep(n) gives
// back the block's marks past its first n, so a save uses only as many as
// it numbered things (a counter of 2^64 then lasts centuries at a mark a
// nanosecond); taking a mark past the last one stops the daemon
// (std::terminate) rather than reuse it.
class ReservedMarks {
 public:
  static constexpr std::uint64_t kSpan = std::uint64_t{1} << 40;

  ReservedMarks();
  ReservedMarks(const ReservedMarks&) = delete;
  ReservedMarks& operator=(const ReservedMarks&) = delete;

  std::uint64_t first() const { return first_; }
  // Only [first(), first() + n) of the block were used; the rest goes back
  // when the block ends. n is at most kSpan.
  void Keep(std::uint64_t n);
  // Whether mark is one of this block's.
  bool Holds(std::uint64_t mark) const {
    return mark >= first_ && mark - first_ < kSpan;
  }

 private:
  std::unique_lock<std::mutex> lock_;
  std::uint64_t first_ = 0;
};

// The last mark taken so far (for tests: marks are never reused).
std::uint64_t LastWalkMark();

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_VM_STATISTICS_H_
