// Taking the task and object locks in the one order lock_order.h states.
#ifndef TASKFS_VMCORE_LOCKS_H_
#define TASKFS_VMCORE_LOCKS_H_

#include "vmcore/address_map.h"
#include "vmcore/page_range.h"
#include "vmcore/small_vector.h"
#include "vmcore/task.h"
#include "vmcore/vm_object.h"

namespace taskfs::vm {

// Locks one task (shared or exclusive), or two in ascending id order; one
// lock, exclusive if either side wants it, when both are the same task.
// Releases them in reverse order on destruction. Requires the caller to hold
// no task or object lock.
class TaskLocks {
 public:
  TaskLocks(Task& a, bool a_exclusive) { Lock(a, a_exclusive); }
  TaskLocks(Task& a, bool a_exclusive, Task& b, bool b_exclusive);
  ~TaskLocks() {
    for (int i = count_ - 1; i >= 0; --i) {
      if (exclusive_[i]) {
        tasks_[i]->mu().unlock();
      } else {
        tasks_[i]->mu().unlock_shared();
      }
    }
  }
  TaskLocks(const TaskLocks&) = delete;
  TaskLocks& operator=(const TaskLocks&) = delete;

 private:
  void Lock(Task& task, bool exclusive) {
    if (exclusive) {
      task.mu().lock();
    } else {
      task.mu().lock_shared();
    }
    tasks_[count_] = &task;
    exclusive_[count_] = exclusive;
    ++count_;
  }

  Task* tasks_[2] = {};
  bool exclusive_[2] = {};
  int count_ = 0;
};

// Collects the objects behind ranges of task maps, then locks them all at
// once in ascending object id; an object wanted exclusive by any range is
// locked exclusive. Releases them on destruction.
//
// Requires the task locks of the maps (their entries must not change) and no
// object lock held by the caller. Add after LockAll is not allowed. A read or
// write of a few regions locks without touching the heap.
class ObjectLocks {
 public:
  ObjectLocks() = default;
  ~ObjectLocks() {
    for (std::size_t i = locked_; i-- > 0;) {
      if (wants_[i].exclusive) {
        wants_[i].object->mu().unlock();
      } else {
        wants_[i].object->mu().unlock_shared();
      }
    }
  }
  ObjectLocks(const ObjectLocks&) = delete;
  ObjectLocks& operator=(const ObjectLocks&) = delete;

  // Adds the objects of range's entries.
  void Add(const AddressMap& map, const PageRange& range, bool exclusive);
  void Add(VmObject* object, bool exclusive) {
    wants_.push_back({object, exclusive});
  }

  void LockAll();

 private:
  struct Want {
    VmObject* object;
    bool exclusive;
  };
  static constexpr std::size_t kInline = 4;

  // Sorts wants_ by object id and keeps one want per object, exclusive if
  // any was.
  void SortAndMerge();

  SmallVector<Want, kInline> wants_;  // after LockAll: one per object, sorted
  std::size_t locked_ = 0;            // wants_[0, locked_) are held
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_LOCKS_H_
