// A ctl file as a stream of commands (docs/reference.md §6): each write is cut
// into lines (fs/line_assembler.h), the lines it completes run at once, in
// order, until one fails; a line cut by the end of a write waits for the
// next write or for close(2); and a read returns the result line of the
// last command run, from a cursor of its own that each write resets.
#ifndef TASKFS_FS_CTL_STREAM_H_
#define TASKFS_FS_CTL_STREAM_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "fs/ctl_command.h"
#include "fs/failure_report.h"
#include "fs/line_assembler.h"
#include "fs/open_file.h"
#include "vmcore/kern_return.h"

namespace taskfs::fs {

// The commands of one request on a ctl file. Holds references only: make
// one per request. Takes file.mu only to take out or put back what the file
// keeps (its cut line, its result line), never across a command.
class CtlStream {
 public:
  // The commands run on file's task with context (the rights of file's
  // opener) and report each failure through report.
  CtlStream(OpenFile& file, ExecContext& context, const FailureReport& report)
      : file_(file), context_(context), report_(report) {}

  // A write of buf: runs the lines it completes. KERN_SUCCESS, or the code
  // of the command that failed (KERN_INVALID_ARGUMENT for a line that does
  // not parse); then the lines after it do not run, and the cut line the
  // file kept is dropped. The result line of the last command run is what
  // the next read returns.
  vm::KernReturn Write(std::string_view buf);

  // close(2): runs the cut line the last write kept, if any, as Write does.
  vm::KernReturn Flush();

  // A read of size bytes of file's result line, from its read cursor.
  static std::string Read(OpenFile& file, std::size_t size);

 private:
  // Runs lines in order until one fails; its code, or KERN_SUCCESS. *result
  // gets the result line of the last command run, *ran whether any ran.
  vm::KernReturn Run(Lines lines, std::string* result, bool* ran);
  // Keeps result (and a newline) as what reads return, from its start.
  void StoreResult(const std::string& result);

  OpenFile& file_;
  ExecContext& context_;
  const FailureReport& report_;
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_CTL_STREAM_H_
