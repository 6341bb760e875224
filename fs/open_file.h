// Open files and the table that owns them until release.
#ifndef TASKFS_FS_OPEN_FILE_H_
#define TASKFS_FS_OPEN_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "fs/error_log.h"
#include "fs/inode.h"
#include "fs/line_assembler.h"
#include "fs/node_table.h"
#include "vmcore/task.h"

namespace taskfs::fs {

// The longest ctl line worth keeping across a split write; no valid command
// comes near it.
inline constexpr std::size_t kMaxCtlLine = 4096;

// An open file of a task. Its address is the fh of its requests.
//
// Thread-safety: task, kind and flags are constant after open, and requests
// read them without a lock. mu guards the rest. It is held to copy or swap
// those fields, and across the core calls that take a maps or status
// snapshot (vm_region_list, task_statistics, then NodeTable::Find), so that
// one open file's readers see one text; never across a ctl command or a
// reply. Order: mu, then the core's locks or NodeTable's.
struct OpenFile {
  // pin keeps the task's node (its attributes) for fstat until the file
  // is freed, even after rmdir.
  OpenFile(std::shared_ptr<vm::Task> t, std::shared_ptr<ErrorLog> e, NodeKind k,
           int f, NodePin p = {})
      : task(std::move(t)),
        errors(std::move(e)),
        kind(k),
        flags(f),
        pin(std::move(p)) {}

  // Constant after construction.
  const std::shared_ptr<vm::Task> task;
  const std::shared_ptr<ErrorLog> errors;  // the task's (never null)
  const NodeKind kind;
  const int flags;  // open(2) flags
  const NodePin pin;

  std::mutex mu;
  std::string text;  // guarded by mu: ctl's result line, maps/status snapshot
  std::size_t ctl_cursor = 0;  // guarded by mu: what reads of ctl have taken
  LineAssembler ctl_lines{kMaxCtlLine};  // guarded by mu: a cut ctl line
};

// Owns every open file from open to release. An unmount sends no release
// for the files still open: they are freed with the table.
//
// Thread-safety: any thread. mu_ is a leaf lock held only inside these
// methods; a file is destroyed after mu_ is let go.
class OpenFileTable {
 public:
  OpenFileTable() = default;
  OpenFileTable(const OpenFileTable&) = delete;
  OpenFileTable& operator=(const OpenFileTable&) = delete;

  // Takes ownership of file; returns it, for use as the fh.
  OpenFile* Adopt(std::unique_ptr<OpenFile> file);

  // Frees an adopted file; a file the table does not hold is ignored.
  void Forget(const OpenFile* file);

  std::size_t Count() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<const OpenFile*, std::unique_ptr<OpenFile>>
      files_;  // guarded by mu_
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_OPEN_FILE_H_
