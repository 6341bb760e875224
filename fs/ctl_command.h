// The command grammar shared by ctl writes and manifests (docs/reference.md §6,
// §8): one grammar, one parser, one executor.
#ifndef TASKFS_FS_CTL_COMMAND_H_
#define TASKFS_FS_CTL_COMMAND_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "vmcore/kern_return.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_types.h"

namespace taskfs::fs {

// One parsed line.
struct Command {
  enum class Op {
    kAllocate,          // allocate ADDR SIZE
    kAllocateAnywhere,  // allocate anywhere SIZE
    kDeallocate,        // deallocate ADDR SIZE
    kProtect,           // protect ADDR SIZE [max] PROT
    kInherit,           // inherit ADDR SIZE share|copy|none
    kCopy,              // copy SRC SIZE DST
    kCopyFrom,          // copy-from TASK SRC SIZE DST [alloc] [destroy]
    kFork,              // fork CHILD
    kRemap,             // remap TASK SRC SIZE DST|anywhere share|copy
    // Manifest only:
    kTask,  // task NAME
    kFill,  // fill ADDR SIZE BYTE
    kLoad,  // load ADDR FILE
    kCore,  // core FILE
  };
  Op op = Op::kAllocate;
  vm::vm_address_t address = 0;  // ADDR, SRC
  vm::vm_size_t size = 0;        // SIZE
  vm::vm_address_t dest = 0;     // DST
  vm::vm_prot_t prot = 0;        // PROT
  bool set_maximum = false;      // protect ... max PROT
  vm::vm_inherit_t inheritance = 0;
  bool dst_alloc = false;    // copy-from ... alloc
  bool src_destroy = false;  // copy-from ... destroy
  bool anywhere = false;     // remap ... anywhere
  bool copy = false;         // remap ... copy
  unsigned char byte = 0;    // fill BYTE
  std::string name;          // TASK, CHILD, NAME, or FILE for load and core
};

enum class Grammar { kCtl, kManifest };

struct ParseResult {
  // False: the line is malformed; error says why in one line.
  bool ok = false;
  // True for a blank or comment-only line: nothing to run.
  bool empty = false;
  Command command;
  std::string error;
};

// Text a user wrote, in quotes for an error line, cut after max bytes.
std::string Quoted(std::string_view s, std::size_t max = 40);

// Parses one line (no trailing newline). Numbers follow fs/number.h:
// decimal or 0x hex, sizes also take K, M, G, T (x1024), and a number that
// does not fit in 64 bits is an error. Manifest-only commands are errors in
// the ctl grammar.
ParseResult ParseCommand(std::string_view line, Grammar grammar);

// The arguments of a vm_map_copy from another task into this one
// (copy-from, TASKFS_IOC_VM_MAP_COPY).
struct MapCopyArgs {
  vm::vm_address_t src = 0;
  vm::vm_size_t size = 0;
  vm::vm_address_t dst = 0;
  bool dst_alloc = false;
  bool src_destroy = false;
};

// The arguments of a vm_remap from another task (or this one) into this one
// (remap, TASKFS_IOC_VM_REMAP); target, cur and max are also its results.
struct RemapArgs {
  vm::vm_address_t src = 0;
  vm::vm_size_t size = 0;
  vm::vm_address_t target = 0;
  bool anywhere = false;
  bool copy = false;  // else share
  vm::vm_inherit_t inheritance = vm::VM_INHERIT_DEFAULT;
  vm::vm_prot_t cur = 0;
  vm::vm_prot_t max = 0;
};

// What a command needs from the file system around it.
struct ExecContext {
  vm::VmSystem* system = nullptr;
  // May the caller reach `other` (read access; write access if want_write)?
  // KERN_SUCCESS, or the code to fail with. Null: everything is allowed.
  std::function<vm::KernReturn(vm::Task& other, bool want_write)> may_access;
  // Called for a task a command created (fork), so the file system can give
  // it an owner and inodes. May be null.
  std::function<void(const std::shared_ptr<vm::Task>&)> on_task_created;
  // Called when a vm_map_copy from source failed once source was found (its
  // access refused, or the copy itself), so the file system can tell the
  // source's owner. May be null.
  std::function<void(vm::Task& source, const MapCopyArgs& args,
                     vm::KernReturn kr)>
      on_source_failure;
  // The same for a remap from source (RemapFrom). May be null.
  std::function<void(vm::Task& source, const RemapArgs& args,
                     vm::KernReturn kr)>
      on_remap_source_failure;
};

// The one front end of a copy from another task, for copy-from and
// TASKFS_IOC_VM_MAP_COPY: source is the task the caller named (null: none
// has that name or id, and missing says so, as the failure's reason). Checks
// that the caller may reach source (read; read and write for src_destroy),
// then runs vm_map_copy into task. Reports a failure after source was found
// to context.on_source_failure.
vm::KernReturn MapCopyFrom(ExecContext& context, vm::Task& task,
                           const std::shared_ptr<vm::Task>& source,
                           std::string_view missing, const MapCopyArgs& args);

// The one front end of a remap (remap, TASKFS_IOC_VM_REMAP): source (null:
// KERN_INVALID_TASK with the reason missing) must be reachable with read
// access, and for a share with write access too (context.may_access): the
// target can then write the source's memory. Then vm::vm_remap. Reports a
// failure after source was found to context.on_remap_source_failure.
vm::KernReturn RemapFrom(ExecContext& context, vm::Task& task,
                         const std::shared_ptr<vm::Task>& source,
                         std::string_view missing, RemapArgs* args);

// Runs a ctl-grammar command on task. *result gets the line a read of ctl
// returns afterwards, without newline: the address as 0x... for
// `allocate anywhere` and `remap`, "ok" for other successes, else "error
// KERN_...".
vm::KernReturn ExecuteCommand(const Command& command, vm::Task& task,
                              ExecContext& context, std::string* result);

}  // namespace taskfs::fs

#endif  // TASKFS_FS_CTL_COMMAND_H_
