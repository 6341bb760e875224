// What another thread can take of a PhaseFairMutex right now, for tests of
// which locks are held and how.
#ifndef TASKFS_TESTS_VMCORE_LOCK_PROBE_H_
#define TASKFS_TESTS_VMCORE_LOCK_PROBE_H_

#include <thread>

#include "vmcore/phase_fair_mutex.h"

namespace taskfs::vm {

enum class Held { kNot, kShared, kExclusive };

// Tries mu from another thread (probing from the thread that holds it would
// be undefined), and leaves it as it was.
inline Held Probe(const PhaseFairMutex& mu) {
  auto& m = const_cast<PhaseFairMutex&>(mu);
  Held held = Held::kNot;
  std::thread other([&] {
    if (m.try_lock()) {
      m.unlock();
    } else if (m.try_lock_shared()) {
      m.unlock_shared();
      held = Held::kShared;
    } else {
      held = Held::kExclusive;
    }
  });
  other.join();
  return held;
}

}  // namespace taskfs::vm

#endif  // TASKFS_TESTS_VMCORE_LOCK_PROBE_H_
