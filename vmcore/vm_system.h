// One VM instance: the configuration, the physical pages and the tasks that
// share them. A mount of taskfs owns exactly one VmSystem.
#ifndef TASKFS_VMCORE_VM_SYSTEM_H_
#define TASKFS_VMCORE_VM_SYSTEM_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "vmcore/deferred_freer.h"
#include "vmcore/kern_result.h"
#include "vmcore/memory_budget.h"
#include "vmcore/page_allocator.h"
#include "vmcore/phase_fair_mutex.h"
#include "vmcore/vm_types.h"

namespace taskfs::vm {

class Task;

struct VmConfig {
  std::uint64_t page_size = 4096;  // power of two, 4096..65536
  unsigned address_bits = 47;      // 24..62
  // Bytes of everything the tasks hold: pages and metadata (memory_budget.h);
  // 0 = no limit.
  std::uint64_t memory_limit = 0;
  // A cap on written pages alone, in bytes, within memory_limit; 0 = none.
  // The daemon has none: the differential tests use it, so that the reference
  // model, which has no metadata, predicts every refusal.
  std::uint64_t page_limit = 0;
  // How far past memory_limit the charges of open files may go, so that a
  // user at the limit can still open files, read status, maps and errors,
  // and free memory through ctl.
  std::uint64_t open_file_reserve = 2 << 20;
  std::uint64_t max_tasks = 1024;  // live tasks
  // Whose rules vm_read, vm_write and vm_copy follow (vm_types.h).
  Flavor flavor = Flavor::kClassic;
  // The most bytes of pages that readers may hold pinned at once
  // (vm_read_pinned views not yet released). A write at the memory limit
  // must still copy a page that only readers' pins keep, although the pins
  // free the old page a moment later; such copies go this far past
  // memory_limit (plus the records of the slabs they may need:
  // PageAllocator::PinReserveFor) instead of being refused. The daemon's
  // pins are its read replies in flight: one request's pages for each of
  // its threads, each of which at any moment holds one reply's pins or
  // writes one request, whose copies were pinned when it counted them; so
  // that much covers every copy. 0: no reserve, such a write is refused at
  // the limit.
  std::uint64_t pin_reserve = 0;
  // How much freed metadata may stay in malloc's heap before the budget
  // asks for it to be given back (MemoryBudget::SetHeapTrim); 0 = never.
  std::uint64_t heap_trim_threshold = 4 << 20;
  // Whether the heap's resident overhang, what fragmentation keeps resident
  // beyond what is charged, is charged too (MemoryBudget::ChargeHeapOverhang),
  // past heap_overhang_allowance bytes of memory resident and not charged
  // beyond the process's level when the VmSystem is made. The heap is the
  // process's: only a process's one VmSystem may (the daemon's). Needs
  // heap_trim_threshold.
  bool charge_heap_overhang = false;
  std::uint64_t heap_overhang_allowance = 8 << 20;
};

// Its moving parts, each owned here: the budget (with its heap trimmer's
// thread), the page allocator, and the deferred freer (deferred_freer.h),
// whose thread frees its page tables' large dead subtrees. The destructor
// empties every task, then drains the freer and joins its thread, before
// the allocator and the budget go.
//
// Thread-safety: all methods may be called concurrently. The task registry is
// guarded by tasks_mu_, level 3 of lock_order.h: taken below every task and
// object lock, and above only the allocator's mu_ (the leaf). Nothing is
// locked while holding it but, through try_lock, a new task's own lock.
class VmSystem {
 public:
  // config must be valid (ValidConfig()); the caller checks it first.
  explicit VmSystem(const VmConfig& config);
  ~VmSystem();  // empties every task, then stops and joins the freer
  VmSystem(const VmSystem&) = delete;
  VmSystem& operator=(const VmSystem&) = delete;

  // Empty string if config is usable, else a one-line reason.
  static std::string ValidateConfig(const VmConfig& config);
  // 1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.', not
  // "host_page_size": the rule of <taskfs/task_name.h>, which libtaskfs and
  // the Python package share.
  static bool ValidTaskName(std::string_view name);

  const VmConfig& config() const { return config_; }
  std::uint64_t page_size() const { return config_.page_size; }
  unsigned address_bits() const { return config_.address_bits; }
  // 2^address_bits: the first address past the address space.
  std::uint64_t address_limit() const {
    return std::uint64_t{1} << config_.address_bits;
  }

  PageAllocator& pages() { return pages_; }
  MemoryBudget& budget() { return budget_; }
  // What frees the large subtrees that this system's page tables drop
  // (page_table.h): its Drain lets them go now.
  DeferredFreer& freer() { return freer_; }

  // What the memory limit counts as used now, in bytes: the written pages
  // and the metadata charged with them, and the heap's overhang. Freed pages
  // the allocator keeps for reuse count as free, since it gives them back
  // whenever the budget needs them, and so do its slabs' records. Subtrees
  // still being freed in the background are let go first, and the overhang
  // is measured again, since pages freed after its last measurement lower
  // it. For statfs(2).
  std::uint64_t MeasureUsedBytes();

  // Ends the system's background threads (the deferred freer, the heap
  // trimmer) after their work, so that the process may fork: they start
  // again when next needed, in whichever process goes on. Only while no
  // other thread calls into the system (a daemon before it goes to the
  // background).
  void BeforeFork() noexcept;

  // Live tasks. Null when there is none of that name or id.
  std::shared_ptr<Task> FindTask(std::string_view name) const;
  std::shared_ptr<Task> FindTask(std::uint64_t id) const;
  // Live tasks in creation order.
  std::vector<std::shared_ptr<Task>> Tasks() const;

  // The registry under the facade (task_create, task_fork, task_terminate
  // call these; use those). AddTask makes and returns an empty task named
  // name (which must be valid): KERN_NAME_EXISTS, or KERN_RESOURCE_SHORTAGE
  // at max_tasks. If lock_out is given, the new task is returned locked
  // exclusive, so that nobody sees it before its creator has filled it (this
  // lock never waits: the task is not visible before it is taken).
  // RemoveTask forgets task; its name becomes free.
  KernResult<std::shared_ptr<Task>> AddTask(
      std::string_view name,
      std::unique_lock<PhaseFairMutex>* lock_out = nullptr);
  void RemoveTask(const Task& task);

 private:
  // Constant after construction.
  const VmConfig config_;

  MemoryBudget budget_;  // thread-safe on its own; before what it charges
  PageAllocator pages_;  // thread-safe on its own
  // Thread-safe on its own; after what its frees give back to, so that it
  // is stopped before they go.
  DeferredFreer freer_;

  mutable std::mutex tasks_mu_;
  std::uint64_t next_task_id_ = 1;  // guarded by tasks_mu_
  std::map<std::uint64_t, std::shared_ptr<Task>> tasks_by_id_;     // guarded
  std::map<std::string, std::uint64_t, std::less<>> ids_by_name_;  // guarded
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_VM_SYSTEM_H_
