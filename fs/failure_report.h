// The one account of a failed request (docs/reference.md §7): a line in the
// daemon's log, a line in the errors file of the task it failed on, and, for a
// vm_map_copy or vm_remap from another task, a line in that source task's
// errors file.
// Every failure site of the adapter (mem reads and writes, ctl commands,
// ioctls, mkdir) reports through here, so the three stay one story.
#ifndef TASKFS_FS_FAILURE_REPORT_H_
#define TASKFS_FS_FAILURE_REPORT_H_

#include <spdlog/spdlog.h>
#include <sys/types.h>

#include <cstdint>
#include <new>
#include <string>
#include <string_view>

#include "fs/ctl_command.h"
#include "fs/error_log.h"
#include "fs/node_table.h"
#include "fs/open_file.h"
#include "vmcore/kern_return.h"
#include "vmcore/task.h"

namespace taskfs::fs {

// What the log says of a failed request on a task: one line
//     VERB TASK 0xADDRESS+0xSIZE: KERN_NAME
// or, with why set, in place of the range
//     VERB TASK: WHY: KERN_NAME
// at debug level; KERN_FAILURE is unexpected and is a warning.
struct Failure {
  // A request on a range of the task.
  Failure(std::string_view v, vm::KernReturn k, std::uint64_t a,
          std::uint64_t s)
      : verb(v), kr(k), address(a), size(s) {}
  // A request that failed for why, not on a range (a ctl line that does not
  // parse: the parser's error).
  Failure(std::string_view v, vm::KernReturn k, std::string_view w)
      : verb(v), kr(k), why(w) {}

  std::string_view verb;  // the request: "read", "write", "ctl", "ioctl"
  vm::KernReturn kr;
  std::uint64_t address = 0;
  std::uint64_t size = 0;
  std::string_view why;
};

// Holds references only: make one where it is needed, and use it while the
// log and the table live. Thread-safe as they are.
class FailureReport {
 public:
  // caller: the thread that sent the request (FUSE's caller pid), whose
  // last failure on the file the record becomes (OpenFile::last_failures).
  FailureReport(spdlog::logger& log, const NodeTable& nodes, pid_t caller = 0)
      : log_(log), nodes_(nodes), caller_(caller) {}

  // A request on file failed: logs it, then records it in the errors file
  // of file's task, before the reply. The record holds the uid of the
  // file's opener (whose rights the request used), operation() (a
  // std::string: the request as the errors file names it, made only here),
  // the code, and the reason the core or the adapter gave for it
  // (vm::SetFailureReason). The line is also the caller's last failure on
  // file (TASKFS_IOC_LAST_REASON). A record that cannot be made for want of
  // memory is dropped: the reply stays the request's own.
  template <typename Operation>
  void Task(const OpenFile& file, const Failure& failure,
            const Operation& operation) const {
    Log(failure, file.task->name());
    try {
      std::string line;
      const std::uint64_t seq =
          Record(file, *file.errors, failure.kr, operation(), &line);
      file.last_failures.Note(caller_, seq, line);
    } catch (const std::bad_alloc&) {
    }
  }

  // A vm_map_copy from source into file's task (a copy-from line or the
  // ioctl) failed once source was found: records it in source's errors
  // file too, unless source is file's own task or is gone. The caller may
  // hold no right on source, so the line is the daemon's own account of the
  // call, with nothing the caller chose but numbers: the ranges and the id
  // of the task copied into. (ExecContext::on_source_failure.)
  void Source(const OpenFile& file, vm::Task& source, const MapCopyArgs& args,
              vm::KernReturn kr) const noexcept;
  // The same for a vm_remap from source into file's task (remap or the
  // ioctl): "vm_remap SRC SIZE into task id ID at TARGET|anywhere
  // copy|share". (ExecContext::on_remap_source_failure.)
  void Source(const OpenFile& file, vm::Task& source, const RemapArgs& args,
              vm::KernReturn kr) const noexcept;

  // A request failed with no task to record it in (mkdir of name): logs
  //     VERB NAME: KERN_NAME
  void Untracked(std::string_view verb, std::string_view name,
                 vm::KernReturn kr) const;

 private:
  void Log(const Failure& failure, std::string_view task) const;
  // What both Source()s do: records operation() (a std::string) in source's
  // errors file, unless source is file's own task or is gone; a record that
  // cannot be made for want of memory is dropped.
  template <typename Operation>
  void InSource(const OpenFile& file, vm::Task& source, vm::KernReturn kr,
                const Operation& operation) const noexcept;
  // Records in log with file's opener and the current failure reason;
  // returns its SEQ, and with line the line (ErrorLog::Record).
  static std::uint64_t Record(const OpenFile& file, ErrorLog& log,
                              vm::KernReturn kr, std::string_view operation,
                              std::string* line = nullptr);

  spdlog::logger& log_;
  const NodeTable& nodes_;
  const pid_t caller_;
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_FAILURE_REPORT_H_
