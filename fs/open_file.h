// Open files and the table that owns them until release.
#ifndef TASKFS_FS_OPEN_FILE_H_
#define TASKFS_FS_OPEN_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "fs/access.h"
#include "fs/error_log.h"
#include "fs/inode.h"
#include "fs/last_failures.h"
#include "fs/line_assembler.h"
#include "fs/node_table.h"
#include "vmcore/memory_account.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"

namespace taskfs::fs {

// The longest ctl line worth keeping across a split write; no valid command
// comes near it.
inline constexpr std::size_t kMaxCtlLine = 4096;
// What a ctl file keeps between writes, at most: the cut line of its line
// reassembly (LineAssembler::kept_bytes) and its result line (under 64
// bytes), each with the heap's own overhead.
inline constexpr std::size_t kCtlLineBytes = kMaxCtlLine + 128;

// An open file of a task. Its address is the fh of its requests.
//
// Rights: opener holds the credentials of the process that opened the file,
// and every request on it acts with them (fs/access.h, Credentials): the
// errors line's uid, and every path from a ctl command or ioctl to another
// task (copy-from, fork, vm_map_copy), whoever sends the request.
//
// Thread-safety: task, kind, flags and opener are constant after open, and
// requests read them without a lock. mu guards the rest. It is held to copy or
// swap those fields, and across the core calls that take a maps or status
// snapshot (vm_region_list, task_statistics, then NodeTable::Find), so that
// one open file's readers see one text; never across a ctl command or a
// reply. Order: mu, then the core's locks or NodeTable's.
//
// Memory: each open file charges the memory limit for its record, its
// opener's group list (and a ctl file for what its line reassembly may keep,
// kCtlLineBytes) when it is made, which may throw
// LimitReached, and for its maps/status/errors snapshot while it keeps one.
// Both may use the budget's reserve (VmConfig::open_file_reserve), so files
// open at the limit.
struct OpenFile {
  // The record of one open file: this struct and its OpenFileTable node.
  static constexpr std::size_t kRecordBytes = 256;

  // pin keeps the task's node (its attributes) for fstat until the file
  // is freed, even after rmdir.
  OpenFile(std::shared_ptr<vm::Task> t, std::shared_ptr<ErrorLog> e, NodeKind k,
           int f, Credentials o, NodePin p = {})
      : task(std::move(t)),
        errors(std::move(e)),
        kind(k),
        flags(f),
        opener(std::move(o)),
        pin(std::move(p)),
        account(task->system().budget()) {
    account.Charge(sizeof(OpenFile) + kRecordBytes +
                       opener.groups.capacity() * sizeof(gid_t) +
                       (kind == NodeKind::kCtl ? kCtlLineBytes : 0),
                   /*use_reserve=*/true);
  }
  ~OpenFile() { account.Release(text_charge); }

  // Requires mu. Charges for text as it now is (releasing the charge of the
  // text it replaced); false if the limit refuses, and then text is emptied.
  bool ChargeText() {
    account.Release(text_charge);
    text_charge = 0;
    const std::size_t bytes = text.capacity() + 1;
    if (!account.TryCharge(bytes, /*use_reserve=*/true)) {
      std::string().swap(text);
      return false;
    }
    text_charge = bytes;
    return true;
  }

  // Constant after construction.
  const std::shared_ptr<vm::Task> task;
  const std::shared_ptr<ErrorLog> errors;  // the task's (never null)
  const NodeKind kind;
  const int flags;           // open(2) flags
  const Credentials opener;  // who opened it: the rights of every request
  const NodePin pin;
  vm::MemoryAccount account;  // thread-safe on its own
  // Each calling thread's last failure on this file (TASKFS_IOC_LAST_REASON);
  // thread-safe on its own, charged to account.
  mutable LastFailures last_failures{account};

  std::mutex mu;
  std::size_t text_charge = 0;  // guarded by mu: what text is charged
  std::string text;  // guarded by mu: ctl's result line, maps/status snapshot
  std::size_t ctl_cursor = 0;  // guarded by mu: what reads of ctl have taken
  // Guarded by mu: how far an errors file's reads are moved on, past the
  // lines forgotten when they were read (ErrorLog::Read); reset by a read
  // at offset 0.
  std::uint64_t errors_shift = 0;
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
  // Guarded by mu_.
  std::unordered_map<const OpenFile*, std::unique_ptr<OpenFile>> files_;
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_OPEN_FILE_H_
