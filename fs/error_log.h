// A task's `errors` file (docs/reference.md §7): its last failed operations, on
// any path, each with the Mach code and the reason that decided it.
#ifndef TASKFS_FS_ERROR_LOG_H_
#define TASKFS_FS_ERROR_LOG_H_

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <string>
#include <string_view>

#include "vmcore/kern_return.h"
#include "vmcore/memory_account.h"

namespace taskfs::fs {

// A ring of the last kCapacity lines
//     SEQ uid UID OPERATION: KERN_NAME: REASON
// SEQ counts every failure recorded, from 1. Bytes that would break the one
// line a failure gets (control characters, non-ASCII) are written as \xNN,
// and OPERATION and REASON are cut at kMaxField bytes, so the log holds at
// most kCapacity * kMaxLine bytes whatever it is fed.
//
// As a file, the log is every line ever recorded, one after another: its
// size counts them all and only grows, and the kept lines are its last
// bytes. What lies before them is forgotten; a read there is moved to the
// oldest kept line (Read), so that tail -f, which reads from where the file
// last ended, sees each new line once (docs/reference.md §7.3).
//
// Thread-safety: all methods may be called concurrently; mu_ is a leaf.
class ErrorLog {
 public:
  static constexpr std::size_t kCapacity = 256;
  static constexpr std::size_t kMaxField = 240;
  // SEQ, uid, both fields escaped (4 bytes a byte at worst), the code.
  static constexpr std::size_t kMaxLine = 2 * 4 * kMaxField + 96;

  // Charges the log's record and the task's node (kNodeBytes) to budget at
  // once, and each kept line when it is kept: may throw LimitReached.
  explicit ErrorLog(vm::MemoryBudget& budget);
  ErrorLog(const ErrorLog&) = delete;
  ErrorLog& operator=(const ErrorLog&) = delete;

  // Records one failure and returns its SEQ. May throw std::bad_alloc, and
  // then records nothing. At the memory limit the oldest lines make room
  // for the new one; when even an empty log has no room the line is not
  // kept, but its SEQ is counted. With line, *line gets the line as
  // recorded (with its newline), kept or not.
  std::uint64_t Record(uid_t uid, std::string_view operation, vm::KernReturn kr,
                       std::string_view reason, std::string* line = nullptr);

  // Every kept line, oldest first, each ending in '\n'.
  std::string Text() const;

  // The bytes of every line ever recorded, kept or not.
  std::uint64_t size() const;

  // At most max bytes of the file from off on, in *out (empty at or past
  // its end); returns the offset they start at: off, or the offset of the
  // oldest kept line when off lies before it.
  std::uint64_t Read(std::uint64_t off, std::size_t max,
                     std::string* out) const;

  // When the last line was recorded; zero before the first.
  timespec changed() const;

  // SEQ of the newest line; 0 before the first failure.
  std::uint64_t last_seq() const;

  // What the log and its task's node hold, charged to the memory limit.
  std::uint64_t metadata_bytes() const { return account_.held(); }

  // The file system's record of one task beside the log (TaskNode and its
  // NodeTable entry), charged with it.
  static constexpr std::size_t kNodeBytes = 512;

 private:
  static std::uint64_t Cost(const std::string& line);
  // Empties slot i, releasing its charge. Requires mu_.
  void Drop(std::size_t i) noexcept;

  vm::MemoryAccount account_;
  mutable std::mutex mu_;
  std::array<std::string, kCapacity> lines_;  // guarded by mu_; a ring
  std::uint64_t recorded_ = 0;                // guarded by mu_
  std::uint64_t total_bytes_ = 0;  // guarded by mu_: of every line recorded
  std::uint64_t kept_bytes_ = 0;   // guarded by mu_: of lines_
  timespec changed_{};             // guarded by mu_
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_ERROR_LOG_H_
