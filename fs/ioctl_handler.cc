#include "fs/ioctl_handler.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "vmcore/failure_reason.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {
namespace {

using vm::KernReturn;

static_assert(sizeof(taskfs_vm_copy) == 24);
static_assert(sizeof(taskfs_vm_allocate) == 24);
static_assert(sizeof(taskfs_vm_deallocate) == 16);
static_assert(sizeof(taskfs_vm_protect) == 24);
static_assert(sizeof(taskfs_vm_inherit) == 24);
static_assert(sizeof(taskfs_vm_region) == 32);
static_assert(sizeof(taskfs_vm_map_copy) == 40);
static_assert(sizeof(taskfs_page_state) == 16);
static_assert(sizeof(taskfs_vm_remap) == 48);
static_assert(sizeof(taskfs_vm_page_query) == 16 + 16 * TASKFS_PAGE_QUERY_MAX);
static_assert(sizeof(taskfs_vm_read_entry) == 24);
static_assert(sizeof(taskfs_vm_read_list) ==
              8 + 24 * TASKFS_READ_LIST_MAX + TASKFS_READ_LIST_DATA);
// The kernel carries at most 2^14 - 1 bytes of an ioctl's argument.
static_assert(sizeof(taskfs_vm_page_query) < (1u << _IOC_SIZEBITS));
static_assert(sizeof(taskfs_vm_read_list) < (1u << _IOC_SIZEBITS));

// A failure decided here, not in the core: its reason for the errors file.
KernReturn Refuse(KernReturn kr, std::string_view reason) {
  vm::SetFailureReason(reason);
  return kr;
}

template <auto kMember>
bool DecodeAs(const void* in, std::size_t in_size, IoctlArg* arg) {
  auto& member = arg->*kMember;
  if (in == nullptr || in_size < sizeof member) return false;
  std::memcpy(&member, in, sizeof member);
  return true;
}

// --- vm_copy ---------------------------------------------------------------

KernReturn RunCopy(IoctlArg& arg, const IoctlTarget& t) {
  const taskfs_vm_copy& a = arg.copy;
  return vm::vm_copy(t.task, a.src, a.size, a.dst);
}

std::string DescribeCopy(const IoctlArg& arg) {
  const taskfs_vm_copy& a = arg.copy;
  return fmt::format("{:#x} {:#x} {:#x}", a.src, a.size, a.dst);
}

// --- vm_allocate -----------------------------------------------------------

KernReturn CheckAllocate(const IoctlArg& arg) {
  const taskfs_vm_allocate& a = arg.allocate;
  if ((a.flags & ~TASKFS_VM_ALLOCATE_ANYWHERE) != 0) {
    return Refuse(
        vm::KERN_INVALID_ARGUMENT,
        fmt::format("flags {:#x} has bits beyond anywhere (1)", a.flags));
  }
  return vm::KERN_SUCCESS;
}

KernReturn RunAllocate(IoctlArg& arg, const IoctlTarget& t) {
  taskfs_vm_allocate& a = arg.allocate;
  vm::vm_address_t address = a.address;
  const KernReturn kr = vm::vm_allocate(
      t.task, &address, a.size, (a.flags & TASKFS_VM_ALLOCATE_ANYWHERE) != 0);
  if (kr == vm::KERN_SUCCESS) a.address = address;
  return kr;
}

std::string DescribeAllocate(const IoctlArg& arg) {
  const taskfs_vm_allocate& a = arg.allocate;
  return fmt::format("{:#x} {:#x} flags {:#x}", a.address, a.size, a.flags);
}

// --- vm_deallocate ---------------------------------------------------------

KernReturn RunDeallocate(IoctlArg& arg, const IoctlTarget& t) {
  const taskfs_vm_deallocate& a = arg.deallocate;
  return vm::vm_deallocate(t.task, a.address, a.size);
}

std::string DescribeDeallocate(const IoctlArg& arg) {
  const taskfs_vm_deallocate& a = arg.deallocate;
  return fmt::format("{:#x} {:#x}", a.address, a.size);
}

// --- vm_protect ------------------------------------------------------------

KernReturn CheckProtect(const IoctlArg& arg) {
  const taskfs_vm_protect& a = arg.protect;
  if (a.set_maximum > 1) {
    return Refuse(
        vm::KERN_INVALID_ARGUMENT,
        fmt::format("set_maximum {} is neither 0 nor 1", a.set_maximum));
  }
  return vm::KERN_SUCCESS;
}

KernReturn RunProtect(IoctlArg& arg, const IoctlTarget& t) {
  const taskfs_vm_protect& a = arg.protect;
  return vm::vm_protect(t.task, a.address, a.size, a.set_maximum != 0, a.prot);
}

std::string DescribeProtect(const IoctlArg& arg) {
  const taskfs_vm_protect& a = arg.protect;
  return fmt::format("{:#x} {:#x} set_maximum {} {:#x}", a.address, a.size,
                     a.set_maximum, a.prot);
}

// --- vm_inherit ------------------------------------------------------------

KernReturn RunInherit(IoctlArg& arg, const IoctlTarget& t) {
  const taskfs_vm_inherit& a = arg.inherit;
  return vm::vm_inherit(t.task, a.address, a.size, a.inheritance);
}

std::string DescribeInherit(const IoctlArg& arg) {
  const taskfs_vm_inherit& a = arg.inherit;
  return fmt::format("{:#x} {:#x} {}", a.address, a.size, a.inheritance);
}

// --- vm_region -------------------------------------------------------------

KernReturn RunRegion(IoctlArg& arg, const IoctlTarget& t) {
  taskfs_vm_region& a = arg.region;
  vm::vm_address_t address = a.address;
  vm::RegionInfo info;
  const KernReturn kr = vm::vm_region(t.task, &address, &info);
  if (kr != vm::KERN_SUCCESS) return kr;
  a.address = info.start;
  a.size = info.size;
  a.prot = info.protection;
  a.max_prot = info.max_protection;
  a.inheritance = info.inheritance;
  a.pad = 0;
  return vm::KERN_SUCCESS;
}

std::string DescribeRegion(const IoctlArg& arg) {
  return fmt::format("{:#x}", arg.region.address);
}

// --- vm_map_copy -----------------------------------------------------------

KernReturn CheckMapCopy(const IoctlArg& arg) {
  const taskfs_vm_map_copy& a = arg.map_copy;
  if ((a.flags &
       ~(TASKFS_VM_MAP_COPY_DST_ALLOC | TASKFS_VM_MAP_COPY_SRC_DESTROY)) != 0) {
    return Refuse(vm::KERN_INVALID_ARGUMENT,
                  fmt::format("flags {:#x} has bits beyond dst_alloc (1) and "
                              "src_destroy (2)",
                              a.flags));
  }
  return vm::KERN_SUCCESS;
}

// Through the one front end of a copy from another task (fs/ctl_command.h),
// as copy-from.
KernReturn RunMapCopy(IoctlArg& arg, const IoctlTarget& t) {
  const taskfs_vm_map_copy& a = arg.map_copy;
  return MapCopyFrom(
      t.context, t.task, t.context.system->FindTask(a.src_task_id),
      fmt::format("no task has id {}", a.src_task_id),
      MapCopyArgs{a.src, a.size, a.dst,
                  (a.flags & TASKFS_VM_MAP_COPY_DST_ALLOC) != 0,
                  (a.flags & TASKFS_VM_MAP_COPY_SRC_DESTROY) != 0});
}

std::string DescribeMapCopy(const IoctlArg& arg) {
  const taskfs_vm_map_copy& a = arg.map_copy;
  return fmt::format("task {} {:#x} {:#x} {:#x} flags {:#x}", a.src_task_id,
                     a.src, a.size, a.dst, a.flags);
}

// --- vm_remap --------------------------------------------------------------

KernReturn CheckRemap(const IoctlArg& arg) {
  const taskfs_vm_remap& a = arg.remap;
  if ((a.flags & ~(TASKFS_VM_REMAP_ANYWHERE | TASKFS_VM_REMAP_COPY)) != 0) {
    return Refuse(vm::KERN_INVALID_ARGUMENT,
                  fmt::format("flags {:#x} has bits beyond anywhere (1) and "
                              "copy (2)",
                              a.flags));
  }
  return vm::KERN_SUCCESS;
}

// Through the one front end of a remap (fs/ctl_command.h), as remap.
KernReturn RunRemap(IoctlArg& arg, const IoctlTarget& t) {
  taskfs_vm_remap& a = arg.remap;
  RemapArgs args;
  args.src = a.src_address;
  args.size = a.size;
  args.target = a.target_address;
  args.anywhere = (a.flags & TASKFS_VM_REMAP_ANYWHERE) != 0;
  args.copy = (a.flags & TASKFS_VM_REMAP_COPY) != 0;
  args.inheritance = a.inheritance;
  const KernReturn kr =
      RemapFrom(t.context, t.task, t.context.system->FindTask(a.src_task_id),
                fmt::format("no task has id {}", a.src_task_id), &args);
  if (kr == vm::KERN_SUCCESS) {
    a.target_address = args.target;
    a.cur_protection = static_cast<std::uint32_t>(args.cur);
    a.max_protection = static_cast<std::uint32_t>(args.max);
  }
  return kr;
}

std::string DescribeRemap(const IoctlArg& arg) {
  const taskfs_vm_remap& a = arg.remap;
  return fmt::format("task {} {:#x} {:#x} {:#x} flags {:#x} inheritance {}",
                     a.src_task_id, a.src_address, a.size, a.target_address,
                     a.flags, a.inheritance);
}

// --- the page-state query --------------------------------------------------

KernReturn CheckPageQuery(const IoctlArg& arg) {
  const taskfs_vm_page_query& a = arg.page_query;
  if (a.count > TASKFS_PAGE_QUERY_MAX) {
    return Refuse(
        vm::KERN_INVALID_ARGUMENT,
        fmt::format("count {} is more than the {} pages a query holds", a.count,
                    TASKFS_PAGE_QUERY_MAX));
  }
  return vm::KERN_SUCCESS;
}

KernReturn RunPageQuery(IoctlArg& arg, const IoctlTarget& t) {
  taskfs_vm_page_query& a = arg.page_query;
  std::array<vm::PageState, TASKFS_PAGE_QUERY_MAX> states;
  const std::uint64_t page_size = t.task.geometry().page_size();
  const vm::vm_address_t address = a.address & ~(page_size - 1);
  const std::span<vm::PageState> out(states.data(), a.count);
  const KernReturn kr =
      vm::vm_page_query(t.task, address, a.count * page_size, out);
  if (kr != vm::KERN_SUCCESS) return kr;
  a.address = address;
  for (std::size_t i = 0; i < TASKFS_PAGE_QUERY_MAX; ++i) {
    const vm::PageState s = i < out.size() ? out[i] : vm::PageState{};
    a.pages[i] = {s.flags, s.mappings, s.identity};
  }
  return vm::KERN_SUCCESS;
}

std::string DescribePageQuery(const IoctlArg& arg) {
  const taskfs_vm_page_query& a = arg.page_query;
  return fmt::format("{:#x} count {}", a.address, a.count);
}

// --- vm_read_list ----------------------------------------------------------

KernReturn CheckReadList(const IoctlArg& arg) {
  const taskfs_vm_read_list& a = arg.read_list;
  if (a.count > TASKFS_READ_LIST_MAX) {
    return Refuse(
        vm::KERN_INVALID_ARGUMENT,
        fmt::format("count {} is more than the {} entries a list holds",
                    a.count, TASKFS_READ_LIST_MAX));
  }
  std::uint64_t total = 0;
  for (std::uint32_t i = 0; i < a.count; ++i) {
    if (a.entries[i].size > TASKFS_READ_LIST_DATA - total) {
      return Refuse(vm::KERN_INVALID_ARGUMENT,
                    fmt::format("the sizes of entries 0 to {} add up to more "
                                "than the {} bytes a list holds",
                                i, TASKFS_READ_LIST_DATA));
    }
    total += a.entries[i].size;
  }
  return vm::KERN_SUCCESS;
}

// Each entry is one vm_read into its place in data; a failed entry is
// recorded on its own and leaves zeros there.
KernReturn RunReadList(IoctlArg& arg, const IoctlTarget& t) {
  taskfs_vm_read_list& a = arg.read_list;
  std::size_t offset = 0;
  for (std::uint32_t i = 0; i < TASKFS_READ_LIST_MAX; ++i) {
    taskfs_vm_read_entry& e = a.entries[i];
    if (i >= a.count) {
      e = {};
      continue;
    }
    const std::span<std::byte> out(
        reinterpret_cast<std::byte*>(a.data) + offset, e.size);
    const KernReturn kr = vm::vm_read(t.task, e.address, out);
    e.kern_return = kr;
    e.pad = 0;
    if (kr != vm::KERN_SUCCESS) {
      std::memset(out.data(), 0, out.size());
      if (t.on_part_failure) {
        t.on_part_failure(kr, e.address, e.size,
                          fmt::format("ioctl vm_read_list entry {} of {} "
                                      "{:#x} {:#x}",
                                      i, a.count, e.address, e.size));
      }
    }
    offset += e.size;
  }
  std::memset(a.data + offset, 0, sizeof a.data - offset);
  a.pad = 0;
  return vm::KERN_SUCCESS;
}

std::string DescribeReadList(const IoctlArg& arg) {
  return fmt::format("count {}", arg.read_list.count);
}

// --- the table -------------------------------------------------------------

constexpr IoctlCommand kCommands[] = {
    {TASKFS_IOC_VM_COPY, "vm_copy", true, false, DecodeAs<&IoctlArg::copy>,
     nullptr, RunCopy, DescribeCopy},
    {TASKFS_IOC_VM_ALLOCATE, "vm_allocate", true, true,
     DecodeAs<&IoctlArg::allocate>, CheckAllocate, RunAllocate,
     DescribeAllocate},
    {TASKFS_IOC_VM_DEALLOCATE, "vm_deallocate", true, false,
     DecodeAs<&IoctlArg::deallocate>, nullptr, RunDeallocate,
     DescribeDeallocate},
    {TASKFS_IOC_VM_PROTECT, "vm_protect", true, false,
     DecodeAs<&IoctlArg::protect>, CheckProtect, RunProtect, DescribeProtect},
    {TASKFS_IOC_VM_INHERIT, "vm_inherit", true, false,
     DecodeAs<&IoctlArg::inherit>, nullptr, RunInherit, DescribeInherit},
    {TASKFS_IOC_VM_REGION, "vm_region", false, true,
     DecodeAs<&IoctlArg::region>, nullptr, RunRegion, DescribeRegion},
    {TASKFS_IOC_VM_MAP_COPY, "vm_map_copy", true, false,
     DecodeAs<&IoctlArg::map_copy>, CheckMapCopy, RunMapCopy, DescribeMapCopy},
    {TASKFS_IOC_VM_PAGE_QUERY, "vm_page_query", false, true,
     DecodeAs<&IoctlArg::page_query>, CheckPageQuery, RunPageQuery,
     DescribePageQuery, /*reads_memory=*/true},
    {TASKFS_IOC_VM_REMAP, "vm_remap", true, true, DecodeAs<&IoctlArg::remap>,
     CheckRemap, RunRemap, DescribeRemap},
    {TASKFS_IOC_VM_READ_LIST, "vm_read_list", false, true,
     DecodeAs<&IoctlArg::read_list>, CheckReadList, RunReadList,
     DescribeReadList, /*reads_memory=*/true},
};

// A number's size is its struct's, which the table's decode copies.
static_assert(_IOC_SIZE(TASKFS_IOC_VM_COPY) == sizeof(taskfs_vm_copy));
static_assert(_IOC_SIZE(TASKFS_IOC_VM_ALLOCATE) == sizeof(taskfs_vm_allocate));
static_assert(_IOC_SIZE(TASKFS_IOC_VM_DEALLOCATE) ==
              sizeof(taskfs_vm_deallocate));
static_assert(_IOC_SIZE(TASKFS_IOC_VM_PROTECT) == sizeof(taskfs_vm_protect));
static_assert(_IOC_SIZE(TASKFS_IOC_VM_INHERIT) == sizeof(taskfs_vm_inherit));
static_assert(_IOC_SIZE(TASKFS_IOC_VM_REGION) == sizeof(taskfs_vm_region));
static_assert(_IOC_SIZE(TASKFS_IOC_VM_MAP_COPY) == sizeof(taskfs_vm_map_copy));
static_assert(_IOC_SIZE(TASKFS_IOC_VM_PAGE_QUERY) ==
              sizeof(taskfs_vm_page_query));
static_assert(_IOC_SIZE(TASKFS_IOC_VM_REMAP) == sizeof(taskfs_vm_remap));
static_assert(_IOC_SIZE(TASKFS_IOC_VM_READ_LIST) ==
              sizeof(taskfs_vm_read_list));

}  // namespace

std::span<const IoctlCommand> IoctlCommands() { return kCommands; }

const IoctlCommand* FindIoctl(unsigned int number) {
  const auto it = std::find_if(
      std::begin(kCommands), std::end(kCommands),
      [number](const IoctlCommand& c) { return c.number == number; });
  return it == std::end(kCommands) ? nullptr : it;
}

IoctlRequest::IoctlRequest(unsigned int number, const void* in,
                           std::size_t in_size)
    : number_(number), in_size_(in_size), command_(FindIoctl(number)) {
  if (command_ != nullptr) decoded_ = command_->decode(in, in_size, &arg_);
}

KernReturn IoctlRequest::Run(const IoctlTarget& target, void* out,
                             std::size_t out_capacity, std::size_t* out_size) {
  *out_size = 0;
  const std::size_t size = _IOC_SIZE(command_->number);
  if (!decoded_) {
    return Refuse(vm::KERN_INVALID_ARGUMENT,
                  fmt::format("the argument is {} bytes, the command takes {}",
                              in_size_, size));
  }
  if (command_->check != nullptr) {
    const KernReturn kr = command_->check(arg_);
    if (kr != vm::KERN_SUCCESS) return kr;
  }
  // Room for the result is checked first: a failure after the call would
  // leave a change behind.
  if (command_->returns_argument && (out == nullptr || out_capacity < size)) {
    return Refuse(vm::KERN_INVALID_ARGUMENT,
                  "no room for the result in the argument");
  }
  const KernReturn kr = command_->run(arg_, target);
  if (kr != vm::KERN_SUCCESS || !command_->returns_argument) return kr;
  std::memcpy(out, &arg_, size);
  *out_size = size;
  return vm::KERN_SUCCESS;
}

std::string IoctlRequest::Describe() const {
  if (!decoded_)
    return fmt::format("ioctl {:#x} of {} bytes", number_, in_size_);
  return fmt::format("ioctl {} {}", command_->name, command_->describe(arg_));
}

}  // namespace taskfs::fs
