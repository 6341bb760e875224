#include "vmcore/locks.h"

#include <algorithm>

namespace taskfs::vm {

TaskLocks::TaskLocks(Task& a, bool a_exclusive, Task& b, bool b_exclusive) {
  if (&a == &b) {
    Lock(a, a_exclusive || b_exclusive);
  } else if (a.id() < b.id()) {
    Lock(a, a_exclusive);
    Lock(b, b_exclusive);
  } else {
    Lock(b, b_exclusive);
    Lock(a, a_exclusive);
  }
}

void ObjectLocks::Add(const AddressMap& map, const PageRange& range,
                      bool exclusive) {
  for (auto it = map.EntryFrom(range.start());
       it != map.entries().end() && it->second.start < range.end(); ++it) {
    // The entries split from one region follow one another with one
    // object: one want for each run, so that a million regions made by
    // vm_protect cost one want, not a million (16 bytes each, uncharged).
    VmObject* object = it->second.object.get();
    if (!wants_.empty() && wants_[wants_.size() - 1].object == object) {
      wants_[wants_.size() - 1].exclusive |= exclusive;
      continue;
    }
    wants_.push_back({object, exclusive});
  }
}

void ObjectLocks::LockAll() {
  if (wants_.size() > 1) SortAndMerge();
  for (const Want& want : wants_) {
    if (want.exclusive) {
      want.object->mu().lock();
    } else {
      want.object->mu().lock_shared();
    }
    ++locked_;
  }
}

void ObjectLocks::SortAndMerge() {
  // By id, exclusive wants first, so the first want of each object decides.
  std::sort(wants_.begin(), wants_.end(), [](const Want& a, const Want& b) {
    return a.object->id() != b.object->id() ? a.object->id() < b.object->id()
                                            : a.exclusive > b.exclusive;
  });
  Want* end = std::unique(
      wants_.begin(), wants_.end(),
      [](const Want& a, const Want& b) { return a.object == b.object; });
  wants_.truncate(static_cast<std::size_t>(end - wants_.begin()));
}

}  // namespace taskfs::vm
