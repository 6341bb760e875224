// A thread's leave to charge the memory limit's reserve.
#ifndef TASKFS_VMCORE_RESERVE_SCOPE_H_
#define TASKFS_VMCORE_RESERVE_SCOPE_H_

namespace taskfs::vm {

// While one is alive on a thread, every charge made on that thread may use
// the reserve: vm_deallocate's, so that freeing memory at the limit works
// even when it splits a region (one more map entry). The reserve's fixed
// size bounds what this allows.
class ReserveScope {
 public:
  ReserveScope();
  ~ReserveScope();
  ReserveScope(const ReserveScope&) = delete;
  ReserveScope& operator=(const ReserveScope&) = delete;
  static bool active();
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_RESERVE_SCOPE_H_
