#include "fs/ioctl_handler.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "fs/errno_map.h"
#include "taskfs/ioctl.h"
#include "vmcore/failure_reason.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {
namespace {

static_assert(sizeof(taskfs_vm_copy) == 24);
static_assert(sizeof(taskfs_vm_allocate) == 24);
static_assert(sizeof(taskfs_vm_deallocate) == 16);
static_assert(sizeof(taskfs_vm_protect) == 24);
static_assert(sizeof(taskfs_vm_inherit) == 24);
static_assert(sizeof(taskfs_vm_region) == 32);
static_assert(sizeof(taskfs_vm_map_copy) == 40);

// Copies the argument in; false if the kernel passed fewer bytes than the
// command's struct (it passes exactly _IOC_SIZE(cmd) for these numbers).
template <typename T>
bool Decode(const void* in, std::size_t in_size, T* arg) {
  if (in == nullptr || in_size < sizeof(T)) return false;
  std::memcpy(arg, in, sizeof(T));
  return true;
}

template <typename T>
IoctlResult Reply(const T& arg, void* out, std::size_t out_capacity) {
  if (out == nullptr || out_capacity < sizeof(T)) return {EINVAL, 0};
  std::memcpy(out, &arg, sizeof(T));
  return {0, sizeof(T)};
}

IoctlResult FromKern(vm::KernReturn kr) { return {ErrnoFromKern(kr), 0}; }

// A failure decided here, not in the core: its reason for the errors file.
IoctlResult Refuse(vm::KernReturn kr, std::string_view reason) {
  vm::SetFailureReason(reason);
  return FromKern(kr);
}

template <typename T>
IoctlResult BadSize(std::size_t in_size) {
  vm::SetFailureReason(fmt::format(
      "the argument is {} bytes, the command takes {}", in_size, sizeof(T)));
  return {EINVAL, 0};
}

IoctlResult MapCopy(const taskfs_vm_map_copy& a, vm::Task& task,
                    ExecContext& context) {
  if ((a.flags &
       ~(TASKFS_VM_MAP_COPY_DST_ALLOC | TASKFS_VM_MAP_COPY_SRC_DESTROY)) != 0) {
    return Refuse(vm::KERN_INVALID_ARGUMENT,
                  fmt::format("flags {:#x} has bits beyond dst_alloc (1) and "
                              "src_destroy (2)",
                              a.flags));
  }
  return FromKern(MapCopyFrom(
      context, task, context.system->FindTask(a.src_task_id),
      fmt::format("no task has id {}", a.src_task_id),
      MapCopyArgs{a.src, a.size, a.dst,
                  (a.flags & TASKFS_VM_MAP_COPY_DST_ALLOC) != 0,
                  (a.flags & TASKFS_VM_MAP_COPY_SRC_DESTROY) != 0}));
}

}  // namespace

std::string IoctlOperation(unsigned int cmd, const void* in,
                           std::size_t in_size) {
  switch (cmd) {
    case TASKFS_IOC_VM_COPY: {
      taskfs_vm_copy a;
      if (!Decode(in, in_size, &a)) break;
      return fmt::format("ioctl vm_copy {:#x} {:#x} {:#x}", a.src, a.size,
                         a.dst);
    }
    case TASKFS_IOC_VM_ALLOCATE: {
      taskfs_vm_allocate a;
      if (!Decode(in, in_size, &a)) break;
      return fmt::format("ioctl vm_allocate {:#x} {:#x} flags {:#x}", a.address,
                         a.size, a.flags);
    }
    case TASKFS_IOC_VM_DEALLOCATE: {
      taskfs_vm_deallocate a;
      if (!Decode(in, in_size, &a)) break;
      return fmt::format("ioctl vm_deallocate {:#x} {:#x}", a.address, a.size);
    }
    case TASKFS_IOC_VM_PROTECT: {
      taskfs_vm_protect a;
      if (!Decode(in, in_size, &a)) break;
      return fmt::format("ioctl vm_protect {:#x} {:#x} set_maximum {} {:#x}",
                         a.address, a.size, a.set_maximum, a.prot);
    }
    case TASKFS_IOC_VM_INHERIT: {
      taskfs_vm_inherit a;
      if (!Decode(in, in_size, &a)) break;
      return fmt::format("ioctl vm_inherit {:#x} {:#x} {}", a.address, a.size,
                         a.inheritance);
    }
    case TASKFS_IOC_VM_REGION: {
      taskfs_vm_region a;
      if (!Decode(in, in_size, &a)) break;
      return fmt::format("ioctl vm_region {:#x}", a.address);
    }
    case TASKFS_IOC_VM_MAP_COPY: {
      taskfs_vm_map_copy a;
      if (!Decode(in, in_size, &a)) break;
      return fmt::format(
          "ioctl vm_map_copy task {} {:#x} {:#x} {:#x} flags {:#x}",
          a.src_task_id, a.src, a.size, a.dst, a.flags);
    }
    default:
      break;
  }
  return fmt::format("ioctl {:#x} of {} bytes", cmd, in_size);
}

bool IoctlChangesMemory(unsigned int cmd) {
  switch (cmd) {
    case TASKFS_IOC_VM_COPY:
    case TASKFS_IOC_VM_ALLOCATE:
    case TASKFS_IOC_VM_DEALLOCATE:
    case TASKFS_IOC_VM_PROTECT:
    case TASKFS_IOC_VM_INHERIT:
    case TASKFS_IOC_VM_MAP_COPY:
      return true;
    default:
      return false;
  }
}

IoctlResult HandleIoctl(unsigned int cmd, const void* in, std::size_t in_size,
                        void* out, std::size_t out_capacity, vm::Task& task,
                        ExecContext& context) {
  switch (cmd) {
    case TASKFS_IOC_VM_COPY: {
      taskfs_vm_copy a;
      if (!Decode(in, in_size, &a)) return BadSize<taskfs_vm_copy>(in_size);
      return FromKern(vm::vm_copy(task, a.src, a.size, a.dst));
    }
    case TASKFS_IOC_VM_ALLOCATE: {
      taskfs_vm_allocate a;
      if (!Decode(in, in_size, &a)) return BadSize<taskfs_vm_allocate>(in_size);
      if ((a.flags & ~TASKFS_VM_ALLOCATE_ANYWHERE) != 0) {
        return Refuse(
            vm::KERN_INVALID_ARGUMENT,
            fmt::format("flags {:#x} has bits beyond anywhere (1)", a.flags));
      }
      // Check the reply's room first: a failure after allocating would
      // leave a change behind.
      if (out == nullptr || out_capacity < sizeof a) {
        return Refuse(vm::KERN_INVALID_ARGUMENT,
                      "no room for the result in the argument");
      }
      vm::vm_address_t address = a.address;
      const vm::KernReturn kr = vm::vm_allocate(
          task, &address, a.size, (a.flags & TASKFS_VM_ALLOCATE_ANYWHERE) != 0);
      if (kr != vm::KERN_SUCCESS) return FromKern(kr);
      a.address = address;
      return Reply(a, out, out_capacity);
    }
    case TASKFS_IOC_VM_DEALLOCATE: {
      taskfs_vm_deallocate a;
      if (!Decode(in, in_size, &a))
        return BadSize<taskfs_vm_deallocate>(in_size);
      return FromKern(vm::vm_deallocate(task, a.address, a.size));
    }
    case TASKFS_IOC_VM_PROTECT: {
      taskfs_vm_protect a;
      if (!Decode(in, in_size, &a)) return BadSize<taskfs_vm_protect>(in_size);
      if (a.set_maximum > 1) {
        return Refuse(
            vm::KERN_INVALID_ARGUMENT,
            fmt::format("set_maximum {} is neither 0 nor 1", a.set_maximum));
      }
      return FromKern(
          vm::vm_protect(task, a.address, a.size, a.set_maximum != 0, a.prot));
    }
    case TASKFS_IOC_VM_INHERIT: {
      taskfs_vm_inherit a;
      if (!Decode(in, in_size, &a)) return BadSize<taskfs_vm_inherit>(in_size);
      return FromKern(vm::vm_inherit(task, a.address, a.size, a.inheritance));
    }
    case TASKFS_IOC_VM_REGION: {
      taskfs_vm_region a;
      if (!Decode(in, in_size, &a)) return BadSize<taskfs_vm_region>(in_size);
      if (out == nullptr || out_capacity < sizeof a) {
        return Refuse(vm::KERN_INVALID_ARGUMENT,
                      "no room for the result in the argument");
      }
      vm::vm_address_t address = a.address;
      vm::RegionInfo info;
      const vm::KernReturn kr = vm::vm_region(task, &address, &info);
      if (kr != vm::KERN_SUCCESS) return FromKern(kr);
      a.address = info.start;
      a.size = info.size;
      a.prot = info.protection;
      a.max_prot = info.max_protection;
      a.inheritance = info.inheritance;
      a.pad = 0;
      return Reply(a, out, out_capacity);
    }
    case TASKFS_IOC_VM_MAP_COPY: {
      taskfs_vm_map_copy a;
      if (!Decode(in, in_size, &a)) return BadSize<taskfs_vm_map_copy>(in_size);
      return MapCopy(a, task, context);
    }
    default:
      return {ENOTTY, 0};
  }
}

}  // namespace taskfs::fs
