#include "fs/errno_map.h"

#include <cerrno>

namespace taskfs::fs {
namespace {

struct Mapping {
  vm::KernReturn kr;
  int error;
};

// SPEC §2, plus the two codes the registry adds (a taken task name, a task
// that is gone). One row per code and one code per errno, so the table can
// be read both ways.
constexpr Mapping kTable[] = {
    {vm::KERN_SUCCESS, 0},
    {vm::KERN_INVALID_ARGUMENT, EINVAL},
    {vm::KERN_INVALID_ADDRESS, EFAULT},
    {vm::KERN_PROTECTION_FAILURE, EACCES},
    {vm::KERN_NO_SPACE, ENOMEM},
    {vm::KERN_RESOURCE_SHORTAGE, ENOSPC},
    {vm::KERN_INVALID_TASK, ESRCH},
    {vm::KERN_NAME_EXISTS, EEXIST},
    {vm::KERN_FAILURE, EIO},
};

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
