// The mem file's ioctls (docs/reference.md §5, taskfs/ioctl.h). One table, a
// row per command, says all the daemon knows of each: its number and name,
// whether it changes memory (then the file must be open for writing, as for
// pwrite), how its argument is checked, the Mach call it runs, and how the
// errors file names it. Decoding, running, describing and the read-only
// check are all driven by that table. Results are Mach codes: the caller
// maps a failure to its errno, once, for every command alike.
#ifndef TASKFS_FS_IOCTL_HANDLER_H_
#define TASKFS_FS_IOCTL_HANDLER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "fs/ctl_command.h"
#include "taskfs/ioctl.h"
#include "vmcore/kern_return.h"
#include "vmcore/task.h"

namespace taskfs::fs {

// The argument of any command: the struct its number names.
union IoctlArg {
  taskfs_vm_copy copy;
  taskfs_vm_allocate allocate;
  taskfs_vm_deallocate deallocate;
  taskfs_vm_protect protect;
  taskfs_vm_inherit inherit;
  taskfs_vm_region region;
  taskfs_vm_map_copy map_copy;
  taskfs_vm_page_query page_query;
  taskfs_vm_remap remap;
  taskfs_vm_read_list read_list;
};

// What a command runs on.
struct IoctlTarget {
  vm::Task& task;        // the mem file's
  ExecContext& context;  // what reaches other tasks (vm_map_copy)
  // A part of a command failed while the command goes on (an entry of
  // vm_read_list): records it as a failure of its own, on the range
  // [address, +size), named operation, with the current failure reason
  // (vm::SetFailureReason). May be null.
  std::function<void(vm::KernReturn kr, std::uint64_t address,
                     std::uint64_t size, std::string_view operation)>
      on_part_failure;
};

// One row of the table.
struct IoctlCommand {
  unsigned int number;    // TASKFS_IOC_*: its _IOC_SIZE is the struct's
  std::string_view name;  // "vm_copy", ...
  bool changes_memory;    // all but vm_region
  bool returns_argument;  // the argument goes back, updated (allocate, region)
  // Copies the command's struct from the in_size bytes at in into *arg;
  // false if they are fewer than the struct (the kernel passes exactly
  // _IOC_SIZE(number) bytes for these numbers).
  bool (*decode)(const void* in, std::size_t in_size, IoctlArg* arg);
  // Checks what the struct's types do not (flag bits, booleans), before
  // anything runs: KERN_SUCCESS, or KERN_INVALID_ARGUMENT and its reason.
  // Null: nothing to check.
  vm::KernReturn (*check)(const IoctlArg& arg);
  // The Mach call; a command that returns its argument updates arg.
  vm::KernReturn (*run)(IoctlArg& arg, const IoctlTarget& target);
  // The arguments as the errors file shows them after "ioctl NAME".
  std::string (*describe)(const IoctlArg& arg);
  // It tells what memory holds (the page query): needs the file open for
  // reading.
  bool reads_memory = false;
};

// Every row, by number.
std::span<const IoctlCommand> IoctlCommands();

// The row of number; null if number is none of ours (ENOTTY).
const IoctlCommand* FindIoctl(unsigned int number);

// One ioctl request: its row and its argument, decoded once, for running
// and, if it fails, for the errors file.
class IoctlRequest {
 public:
  // number with the in_size bytes at in as its argument (in may be null).
  IoctlRequest(unsigned int number, const void* in, std::size_t in_size);

  // Null if number is none of ours: then nothing else may be called.
  const IoctlCommand* command() const { return command_; }

  // Runs the request on target: KERN_SUCCESS and *out_size bytes written to
  // out (room for out_capacity bytes), the argument for a command that
  // returns it, else 0; or the failure's code with its reason
  // (vm::SetFailureReason), and nothing written. A short argument, and no
  // room for an argument to return, are KERN_INVALID_ARGUMENT, found before
  // anything runs.
  vm::KernReturn Run(const IoctlTarget& target, void* out,
                     std::size_t out_capacity, std::size_t* out_size);

  // The request as the errors file names it: "ioctl vm_copy SRC SIZE DST"
  // and so on, or "ioctl 0xNUMBER of N bytes" if its argument is short.
  std::string Describe() const;

 private:
  unsigned int number_;
  std::size_t in_size_;
  const IoctlCommand* command_;
  bool decoded_ = false;
  IoctlArg arg_{};
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_IOCTL_HANDLER_H_
