// An emulated Mach task: a name, an id and an address map.
#ifndef TASKFS_VMCORE_TASK_H_
#define TASKFS_VMCORE_TASK_H_

#include <atomic>
#include <cstdint>
#include <ctime>
#include <string>

#include "vmcore/address_map.h"
#include "vmcore/memory_account.h"
#include "vmcore/page_range.h"
#include "vmcore/phase_fair_mutex.h"

namespace taskfs::vm {

class VmSystem;

// Tasks are made by task_create/task_fork (vm_user.h) and shared by
// std::shared_ptr: whoever holds one may call into it even after
// task_terminate, and then gets KERN_INVALID_TASK.
//
// Thread-safety: id, name, system, geometry and the creation time are
// constant; the change time is atomic. mu_ guards the
// map and the terminated flag: shared for calls that leave the map as it is
// (read, write, copy, statistics: they lock the objects they touch),
// exclusive for calls that change it. See lock_order.h.
class Task {
 public:
  // Charges the task's record to the budget: may throw LimitReached.
  Task(VmSystem& system, std::uint64_t id, std::string name);
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;

  std::uint64_t id() const { return id_; }
  const std::string& name() const { return name_; }
  VmSystem& system() const { return system_; }
  const Geometry& geometry() const { return map_.geometry(); }

  PhaseFairMutex& mu() const { return mu_; }
  // Require mu_.
  AddressMap& map() { return map_; }
  const AddressMap& map() const { return map_; }
  bool terminated() const { return terminated_; }
  // Requires mu_ exclusive: empties the map (freeing its memory) and makes
  // every later call fail with KERN_INVALID_TASK. Cannot fail.
  void Terminate() noexcept;

  // What the task's own record holds. Thread-safe.
  MemoryAccount& account() { return account_; }
  const MemoryAccount& account() const { return account_; }

  // When the task was made, and when its memory or its map last changed
  // (CLOCK_REALTIME): its making, then every call that changed a byte or a
  // region (the calls of vm_user.h note it when they succeed). It never goes
  // back. Thread-safe.
  timespec created() const { return ToTimespec(created_ns_); }
  timespec changed() const { return ToTimespec(changed_ns_.load()); }
  void NoteChange() noexcept;

 private:
  static std::int64_t Now() noexcept;
  static timespec ToTimespec(std::int64_t ns) {
    return {static_cast<time_t>(ns / 1000000000),
            static_cast<long>(ns % 1000000000)};
  }

  VmSystem& system_;
  const std::uint64_t id_;
  const std::string name_;
  MemoryAccount account_;  // thread-safe on its own
  const std::int64_t created_ns_ = Now();
  std::atomic<std::int64_t> changed_ns_ = created_ns_;

  mutable PhaseFairMutex mu_;
  AddressMap map_;           // guarded by mu_
  bool terminated_ = false;  // guarded by mu_
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_TASK_H_
