// The reason channel (docs/reference.md §5, TASKFS_IOC_LAST_REASON): for one
// open file, the errors line of each calling thread's last failure on it, so
// that a client asks for the reason of the very call that failed, however
// many other threads and processes fail on the same task meanwhile.
#ifndef TASKFS_FS_LAST_FAILURES_H_
#define TASKFS_FS_LAST_FAILURES_H_

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "vmcore/memory_account.h"

namespace taskfs::fs {

// A thread's last failure: the errors file's SEQ and line (without its
// newline, cut at kMaxLine bytes).
struct LastFailure {
  std::uint64_t seq = 0;
  std::string line;
};

// Keeps the last failure of each of the kThreads threads that failed on the
// file most recently (a thread is FUSE's caller pid, which is the calling
// thread's id); the thread that failed longest ago makes room for a new one.
//
// Memory: nothing until the first failure; then the slots
// (kSlotsBytes) and each kept line are charged to account (the open file's),
// using its reserve. A charge refused drops what it was for: at the memory
// limit a failure is kept with its SEQ and an empty line, or not at all.
//
// Thread-safety: all methods may be called concurrently; mu_ is a leaf.
class LastFailures {
 public:
  static constexpr std::size_t kThreads = 64;
  // The longest line kept: what TASKFS_IOC_LAST_REASON's line holds.
  static constexpr std::size_t kMaxLine = 1015;

  explicit LastFailures(vm::MemoryAccount& account) : account_(account) {}
  ~LastFailures();
  LastFailures(const LastFailures&) = delete;
  LastFailures& operator=(const LastFailures&) = delete;

  // Thread tid failed with errors line seq, line (a trailing newline is
  // dropped). Never throws: what cannot be kept is dropped.
  void Note(pid_t tid, std::uint64_t seq, std::string_view line) noexcept;

  // tid's last failure, forgotten as it is returned: a later question
  // about tid gets SEQ 0 and "" unless tid failed again. The failure of a
  // call is asked for right after it; forgetting it means a call that
  // fails without a record (an errno the file system gives before any Mach
  // call) is never taken for an older one.
  LastFailure Take(pid_t tid) noexcept;

 private:
  struct Slot {
    pid_t tid = 0;  // 0: free
    std::uint64_t seq = 0;
    std::uint64_t used = 0;  // when it was last noted: the oldest goes
    std::size_t charge = 0;  // what line is charged
    std::string line;
  };
  using Slots = std::array<Slot, kThreads>;
  static constexpr std::size_t kSlotsBytes = sizeof(Slots) + 64;

  // Empties slot, releasing its line's charge. Requires mu_.
  void Clear(Slot& slot) noexcept;

  vm::MemoryAccount& account_;
  std::mutex mu_;
  std::unique_ptr<Slots> slots_;  // guarded by mu_; null before a failure
  std::uint64_t clock_ = 0;       // guarded by mu_
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_LAST_FAILURES_H_
