#include "fs/errno_map.h"

#include <cerrno>

#include "taskfs/errno_table.h"

namespace taskfs::fs {
namespace {

struct Mapping {
  vm::KernReturn kr;
  int error;
};

// <taskfs/errno_table.h> is the table, shared with libtaskfs and the Python
// package; here it becomes rows of vmcore's enum.
#define TASKFS_ERRNO_ROW(kern, error) {vm::kern, error},
constexpr Mapping kTable[] = {TASKFS_ERRNO_TABLE(TASKFS_ERRNO_ROW)};
#undef TASKFS_ERRNO_ROW

}  // namespace

int ErrnoFromKern(vm::KernReturn kr) {
  for (const Mapping& m : kTable) {
    if (m.kr == kr) return m.error;
  }
  return EIO;
}

vm::KernReturn KernFromErrno(int error) {
  for (const Mapping& m : kTable) {
    if (m.error == error) return m.kr;
  }
  return vm::KERN_FAILURE;
}

}  // namespace taskfs::fs
