// Fuzz target: the mem file's ioctl decoder (fs/ioctl_handler.h,
// docs/reference.md §5).
//
// Two identical systems run side by side: one receives each ioctl through
// the ioctl table's IoctlRequest, the other the Mach call that
// docs/reference.md §5's table says the argument bytes stand for, decoded here
// independently, field by field, as little-endian numbers at their offsets. The
// errno, the bytes returned and afterwards both tasks' regions and statistics
// must agree; otherwise the target prints the call and aborts. Both systems
// hold tasks "a" (id 1) and "b" (id 2) with a written region each, so copies
// have something to copy.
//
// Input: records of
//   command byte  below 0xe0: one of the ten commands; 0xe0 to 0xef:
//                 terminate task b in both systems (then ESRCH paths);
//                 0xf0 and up: a raw 32-bit command number follows;
//   flags byte    bit 0: the file is task b's, else task a's; bit 1: the
//                 caller may not write task b (the may_access hook refuses);
//   in size byte  below 0xc0: the command's own size, else the low six bits
//                 (0: no argument at all);
//   out size byte the same for the room to reply into;
//   the argument  as many bytes as the in size.
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fs/ctl_command.h"
#include "fs/errno_map.h"
#include "fs/ioctl_handler.h"
#include "taskfs/ioctl.h"
#include "tests/fs/ioctl_request_util.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/vmcore/take_result.h"
#include "vmcore/kern_return.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_types.h"
#include "vmcore/vm_user.h"

namespace taskfs::fuzz {
namespace {

constexpr unsigned int kCommands[] = {
    TASKFS_IOC_VM_COPY,     TASKFS_IOC_VM_ALLOCATE,  TASKFS_IOC_VM_DEALLOCATE,
    TASKFS_IOC_VM_PROTECT,  TASKFS_IOC_VM_INHERIT,   TASKFS_IOC_VM_REGION,
    TASKFS_IOC_VM_MAP_COPY, TASKFS_IOC_VM_READ_LIST, TASKFS_IOC_VM_PAGE_QUERY,
    TASKFS_IOC_VM_REMAP,
};
constexpr std::size_t kMaxRecords = 200;

using fs_test::HandleIoctl;
using fs_test::IoctlChangesMemory;
using fs_test::IoctlResult;

// The argument size docs/reference.md §5 gives the command; 0 for an unknown
// one.
std::size_t ArgSize(unsigned int cmd) {
  switch (cmd) {
    case TASKFS_IOC_VM_COPY:
    case TASKFS_IOC_VM_ALLOCATE:
    case TASKFS_IOC_VM_PROTECT:
    case TASKFS_IOC_VM_INHERIT:
      return 24;
    case TASKFS_IOC_VM_DEALLOCATE:
      return 16;
    case TASKFS_IOC_VM_REGION:
      return 32;
    case TASKFS_IOC_VM_MAP_COPY:
      return 40;
    case TASKFS_IOC_VM_REMAP:
      return 48;
    case TASKFS_IOC_VM_PAGE_QUERY:
      return 16 + 16 * 1000;
    case TASKFS_IOC_VM_READ_LIST:
      return 8 + 64 * 24 + 14336;
    default:
      return 0;
  }
}

// The little-endian field of `bytes` at `offset`.
std::uint64_t Field(const std::vector<std::uint8_t>& arg, std::size_t offset,
                    unsigned bytes) {
  std::uint64_t value = 0;
  for (unsigned i = 0; i < bytes; ++i) {
    value |= std::uint64_t{arg[offset + i]} << (8 * i);
  }
  return value;
}

void PutField(std::vector<std::uint8_t>* out, std::size_t offset,
              std::uint64_t value, unsigned bytes) {
  for (unsigned i = 0; i < bytes; ++i) {
    (*out)[offset + i] = static_cast<std::uint8_t>(value >> (8 * i));
  }
}

// One system with tasks a and b.
struct World {
  World() : system(Config()) {
    vm::Take(vm::task_create(system, "a"), &a);
    vm::Take(vm::task_create(system, "b"), &b);
    Populate(*a, 0x1000, 0x11);
    Populate(*b, 0x8000, 0x22);
  }

  static vm::VmConfig Config() {
    return {.page_size = 4096,
            .address_bits = 24,
            .memory_limit = 64 * 4096,
            .max_tasks = 4};
  }

  static void Populate(vm::Task& task, vm::vm_address_t address,
                       std::uint8_t byte) {
    vm::vm_allocate(task, &address, 0x4000, false);
    vm::vm_fill(task, address, 0x2000, byte);
  }

  vm::VmSystem system;
  std::shared_ptr<vm::Task> a;
  std::shared_ptr<vm::Task> b;
};

struct Outcome {
  int error = 0;
  std::vector<std::uint8_t> out;  // the bytes returned
};

// What docs/reference.md §5 says the ioctl does, run on `world` with the vm
// calls.
Outcome Expected(World& world, unsigned int cmd,
                 const std::vector<std::uint8_t>* arg, std::size_t out_room,
                 vm::Task& task, bool deny_write_b) {
  const std::size_t size = ArgSize(cmd);
  if (size == 0) return {ENOTTY, {}};
  if (arg == nullptr || arg->size() < size) return {EINVAL, {}};
  const std::vector<std::uint8_t>& a = *arg;
  auto kern = [](vm::KernReturn kr) {
    return Outcome{fs::ErrnoFromKern(kr), {}};
  };
  switch (cmd) {
    case TASKFS_IOC_VM_COPY:
      return kern(
          vm::vm_copy(task, Field(a, 0, 8), Field(a, 8, 8), Field(a, 16, 8)));
    case TASKFS_IOC_VM_ALLOCATE: {
      const std::uint32_t flags = static_cast<std::uint32_t>(Field(a, 16, 4));
      if ((flags & ~1u) != 0) return kern(vm::KERN_INVALID_ARGUMENT);
      if (out_room < size) return {EINVAL, {}};
      vm::vm_address_t address = Field(a, 0, 8);
      const vm::KernReturn kr =
          vm::vm_allocate(task, &address, Field(a, 8, 8), flags == 1);
      if (kr != vm::KERN_SUCCESS) return kern(kr);
      Outcome outcome{0, std::vector<std::uint8_t>(a.begin(), a.begin() + 24)};
      PutField(&outcome.out, 0, address, 8);
      return outcome;
    }
    case TASKFS_IOC_VM_DEALLOCATE:
      return kern(vm::vm_deallocate(task, Field(a, 0, 8), Field(a, 8, 8)));
    case TASKFS_IOC_VM_PROTECT: {
      const std::uint64_t set_maximum = Field(a, 16, 4);
      if (set_maximum > 1) return kern(vm::KERN_INVALID_ARGUMENT);
      return kern(vm::vm_protect(task, Field(a, 0, 8), Field(a, 8, 8),
                                 set_maximum == 1,
                                 static_cast<vm::vm_prot_t>(Field(a, 20, 4))));
    }
    case TASKFS_IOC_VM_INHERIT:
      return kern(
          vm::vm_inherit(task, Field(a, 0, 8), Field(a, 8, 8),
                         static_cast<vm::vm_inherit_t>(Field(a, 16, 4))));
    case TASKFS_IOC_VM_REGION: {
      if (out_room < size) return {EINVAL, {}};
      vm::vm_address_t address = Field(a, 0, 8);
      vm::RegionInfo info;
      const vm::KernReturn kr = vm::vm_region(task, &address, &info);
      if (kr != vm::KERN_SUCCESS) return kern(kr);
      Outcome outcome{0, std::vector<std::uint8_t>(32, 0)};
      PutField(&outcome.out, 0, info.start, 8);
      PutField(&outcome.out, 8, info.size, 8);
      PutField(&outcome.out, 16, info.protection, 4);
      PutField(&outcome.out, 20, info.max_protection, 4);
      PutField(&outcome.out, 24, info.inheritance, 4);
      return outcome;
    }
    case TASKFS_IOC_VM_MAP_COPY: {
      const std::uint64_t flags = Field(a, 32, 4);
      if ((flags & ~3u) != 0) return kern(vm::KERN_INVALID_ARGUMENT);
      const bool destroy = (flags & 2) != 0;
      std::shared_ptr<vm::Task> source = world.system.FindTask(Field(a, 0, 8));
      if (source == nullptr) return kern(vm::KERN_INVALID_TASK);
      if (deny_write_b && destroy && source == world.b) {
        return kern(vm::KERN_PROTECTION_FAILURE);
      }
      return kern(vm::vm_map_copy(task, Field(a, 24, 8), *source,
                                  Field(a, 8, 8), Field(a, 16, 8),
                                  (flags & 1) != 0, destroy));
    }
    case TASKFS_IOC_VM_READ_LIST: {
      // u32 count, u32 pad, 64 entries of {address, size, i32 kern_return,
      // u32 pad}, then the data area; entry i's bytes follow those before.
      constexpr std::size_t kEntries = 8, kData = 8 + 64 * 24;
      const std::uint64_t count = Field(a, 0, 4);
      if (count > 64) return kern(vm::KERN_INVALID_ARGUMENT);
      std::uint64_t total = 0;
      for (std::uint64_t i = 0; i < count; ++i) {
        const std::uint64_t entry_size = Field(a, kEntries + 24 * i + 8, 8);
        if (entry_size > 14336 - total) return kern(vm::KERN_INVALID_ARGUMENT);
        total += entry_size;
      }
      if (out_room < size) return {EINVAL, {}};
      Outcome outcome{0, std::vector<std::uint8_t>(size, 0)};
      PutField(&outcome.out, 0, count, 4);
      std::size_t offset = kData;
      for (std::uint64_t i = 0; i < count; ++i) {
        const std::size_t at = kEntries + 24 * i;
        const std::uint64_t address = Field(a, at, 8);
        const std::uint64_t entry_size = Field(a, at + 8, 8);
        std::vector<std::uint8_t> bytes(entry_size);
        const vm::KernReturn kr = vm::vm_read(
            task, address, std::as_writable_bytes(std::span(bytes)));
        PutField(&outcome.out, at, address, 8);
        PutField(&outcome.out, at + 8, entry_size, 8);
        PutField(&outcome.out, at + 16, static_cast<std::uint32_t>(kr), 4);
        if (kr == vm::KERN_SUCCESS) {
          std::copy(bytes.begin(), bytes.end(), outcome.out.begin() + offset);
        }
        offset += entry_size;
      }
      return outcome;
    }
    case TASKFS_IOC_VM_REMAP: {
      // u64 source id, source address, size, target address; u32 flags
      // (1 anywhere, 2 copy), inheritance, then the two protections out.
      const std::uint64_t flags = Field(a, 32, 4);
      if ((flags & ~3u) != 0) return kern(vm::KERN_INVALID_ARGUMENT);
      if (out_room < size) return {EINVAL, {}};
      const bool copy = (flags & 2) != 0;
      std::shared_ptr<vm::Task> source = world.system.FindTask(Field(a, 0, 8));
      if (source == nullptr) return kern(vm::KERN_INVALID_TASK);
      const bool denied = deny_write_b && source == world.b;
      if (denied && !copy) return kern(vm::KERN_PROTECTION_FAILURE);
      vm::vm_address_t target = Field(a, 24, 8);
      vm::vm_prot_t cur = 0, max = 0;
      const vm::KernReturn kr =
          vm::vm_remap(task, &target, Field(a, 16, 8), (flags & 1) != 0,
                       *source, Field(a, 8, 8), copy, &cur, &max,
                       static_cast<vm::vm_inherit_t>(Field(a, 36, 4)), denied);
      if (kr != vm::KERN_SUCCESS) return kern(kr);
      Outcome outcome{0,
                      std::vector<std::uint8_t>(a.begin(), a.begin() + size)};
      PutField(&outcome.out, 24, target, 8);
      PutField(&outcome.out, 40, static_cast<std::uint32_t>(cur), 4);
      PutField(&outcome.out, 44, static_cast<std::uint32_t>(max), 4);
      return outcome;
    }
    case TASKFS_IOC_VM_PAGE_QUERY: {
      // u64 address (rounded down to a page), u64 count; out, 1000 page
      // states of u32 flags, u32 mappings, u64 identity.
      const std::uint64_t count = Field(a, 8, 8);
      if (count > 1000) return kern(vm::KERN_INVALID_ARGUMENT);
      if (out_room < size) return {EINVAL, {}};
      const std::uint64_t page = world.system.page_size();
      const vm::vm_address_t address = Field(a, 0, 8) & ~(page - 1);
      std::vector<vm::PageState> states(count);
      const vm::KernReturn kr =
          vm::vm_page_query(task, address, count * page, states);
      if (kr != vm::KERN_SUCCESS) return kern(kr);
      Outcome outcome{0, std::vector<std::uint8_t>(size, 0)};
      PutField(&outcome.out, 0, address, 8);
      PutField(&outcome.out, 8, count, 8);
      for (std::size_t i = 0; i < count; ++i) {
        PutField(&outcome.out, 16 + 16 * i, states[i].flags, 4);
        PutField(&outcome.out, 20 + 16 * i, states[i].mappings, 4);
        PutField(&outcome.out, 24 + 16 * i, states[i].identity, 8);
      }
      return outcome;
    }
    default:
      return {ENOTTY, {}};
  }
}

// A page's identity is opaque, and differs between the two systems for the
// same memory: what must agree is which pages share one. Each identity of a
// page-state query's reply becomes the number of its first appearance.
void NumberIdentities(unsigned int cmd, std::vector<std::uint8_t>* out) {
  if (cmd != TASKFS_IOC_VM_PAGE_QUERY || out->size() < 16) return;
  std::vector<std::uint64_t> seen;
  for (std::size_t at = 24; at + 8 <= out->size(); at += 16) {
    const std::uint64_t identity = Field(*out, at, 8);
    if (identity == 0) continue;
    auto it = std::find(seen.begin(), seen.end(), identity);
    if (it == seen.end()) it = seen.insert(seen.end(), identity);
    PutField(out, at, static_cast<std::uint64_t>(it - seen.begin()) + 1, 8);
  }
}

std::string Hex(const std::vector<std::uint8_t>& bytes) {
  std::string text;
  char buffer[4];
  for (std::uint8_t b : bytes) {
    std::snprintf(buffer, sizeof buffer, "%02x", b);
    text += buffer;
  }
  return text;
}

[[noreturn]] void Fail(std::size_t record, unsigned int cmd,
                       const std::vector<std::uint8_t>* arg,
                       std::size_t out_room, const std::string& detail) {
  std::fprintf(stderr,
               "\nioctl record #%zu: cmd 0x%08x, argument %s, room %zu\n  %s\n",
               record, cmd, arg == nullptr ? "none" : Hex(*arg).c_str(),
               out_room, detail.c_str());
  std::abort();
}

bool SameState(vm::Task& x, vm::Task& y) {
  std::vector<vm::RegionInfo> x_regions, y_regions;
  vm::TaskStatistics x_stats, y_stats;
  const vm::KernReturn x_kr = vm::Take(vm::vm_region_list(x), &x_regions);
  const vm::KernReturn y_kr = vm::Take(vm::vm_region_list(y), &y_regions);
  vm::Take(vm::task_statistics(x), &x_stats);
  vm::Take(vm::task_statistics(y), &y_stats);
  return x_kr == y_kr && x_regions == y_regions &&
         x_stats.regions == y_stats.regions &&
         x_stats.virtual_bytes == y_stats.virtual_bytes &&
         x_stats.resident_bytes == y_stats.resident_bytes &&
         x_stats.shared_bytes == y_stats.shared_bytes;
}

// The bytes of each readable region of x and y (the same regions, as
// SameState has found), at most kComparedPages from each region's start.
bool SameContents(vm::Task& x, vm::Task& y) {
  constexpr std::uint64_t kComparedPages = 16;
  std::vector<vm::RegionInfo> regions;
  if (vm::Take(vm::vm_region_list(x), &regions) != vm::KERN_SUCCESS)
    return true;
  const std::uint64_t page = x.system().page_size();
  for (const vm::RegionInfo& r : regions) {
    if ((r.protection & vm::VM_PROT_READ) == 0) continue;
    const std::uint64_t size = std::min(r.size, kComparedPages * page);
    std::vector<std::uint8_t> x_bytes(size), y_bytes(size);
    if (vm::vm_read(x, r.start,
                    std::as_writable_bytes(std::span(x_bytes.data(), size))) !=
            vm::KERN_SUCCESS ||
        vm::vm_read(y, r.start,
                    std::as_writable_bytes(std::span(y_bytes.data(), size))) !=
            vm::KERN_SUCCESS ||
        x_bytes != y_bytes) {
      return false;
    }
  }
  return true;
}

bool KnownErrno(int error) {
  for (vm::KernReturn kr : vm::kAllKernReturns) {
    if (kr != vm::KERN_SUCCESS && fs::ErrnoFromKern(kr) == error) return true;
  }
  return error == ENOTTY;
}

void Run(FuzzInput& in) {
  World handled;   // through the ioctl table
  World expected;  // through the vm calls
  for (std::size_t record = 1; record <= kMaxRecords && !in.empty(); ++record) {
    const std::uint8_t selector = in.Byte();
    if (selector >= 0xe0 && selector < 0xf0) {
      vm::task_terminate(handled.system, *handled.b);
      vm::task_terminate(expected.system, *expected.b);
      continue;
    }
    const unsigned int cmd =
        selector < 0xe0 ? kCommands[selector % std::size(kCommands)] : in.U32();
    const std::uint8_t flags = in.Byte();
    const bool on_b = (flags & 1) != 0;
    const bool deny_write_b = (flags & 2) != 0;
    const std::uint8_t in_byte = in.Byte();
    const std::uint8_t out_byte = in.Byte();
    const std::size_t in_size = in_byte < 0xc0 ? ArgSize(cmd) : in_byte & 63;
    const std::size_t out_room = out_byte < 0xc0 ? ArgSize(cmd) : out_byte & 63;

    // Exactly the sizes given, so that ASan catches a read or write past
    // them; none at all for size 0.
    std::vector<std::uint8_t> arg(in_size);
    for (std::uint8_t& b : arg) b = in.Byte();
    std::vector<std::uint8_t> out(out_room, 0xa5);

    fs::ExecContext context;
    context.system = &handled.system;
    if (deny_write_b) {
      context.may_access = [&handled](vm::Task& other, bool want_write) {
        return want_write && &other == handled.b.get()
                   ? vm::KERN_PROTECTION_FAILURE
                   : vm::KERN_SUCCESS;
      };
    }
    vm::Task& task = on_b ? *handled.b : *handled.a;
    const IoctlResult got = HandleIoctl(
        cmd, in_size == 0 ? nullptr : arg.data(), in_size,
        out_room == 0 ? nullptr : out.data(), out_room, task, context);
    const Outcome want =
        Expected(expected, cmd, in_size == 0 ? nullptr : &arg, out_room,
                 on_b ? *expected.b : *expected.a, deny_write_b);
    const std::vector<std::uint8_t>* shown = in_size == 0 ? nullptr : &arg;

    if (got.error != 0 && !KnownErrno(got.error)) {
      Fail(record, cmd, shown, out_room,
           "errno " + std::to_string(got.error) +
               " is none of docs/reference.md §2's");
    }
    if (got.error != want.error) {
      Fail(record, cmd, shown, out_room,
           "errno " + std::to_string(got.error) + ", expected " +
               std::to_string(want.error));
    }
    if (got.out_size > out_room || (got.error != 0 && got.out_size != 0)) {
      Fail(record, cmd, shown, out_room,
           "returns " + std::to_string(got.out_size) + " bytes");
    }
    std::vector<std::uint8_t> returned(out.begin(), out.begin() + got.out_size);
    std::vector<std::uint8_t> wanted = want.out;
    NumberIdentities(cmd, &returned);
    NumberIdentities(cmd, &wanted);
    if (returned != wanted) {
      Fail(record, cmd, shown, out_room,
           "returned " + Hex(returned) + ", expected " + Hex(wanted));
    }
    if (IoctlChangesMemory(cmd) !=
        (ArgSize(cmd) != 0 && cmd != TASKFS_IOC_VM_REGION &&
         cmd != TASKFS_IOC_VM_READ_LIST && cmd != TASKFS_IOC_VM_PAGE_QUERY)) {
      Fail(record, cmd, shown, out_room, "IoctlChangesMemory is wrong");
    }
    if (!SameState(*handled.a, *expected.a) ||
        !SameState(*handled.b, *expected.b)) {
      Fail(record, cmd, shown, out_room,
           "the tasks' regions or statistics differ afterwards");
    }
  }
  if (!SameContents(*handled.a, *expected.a) ||
      !SameContents(*handled.b, *expected.b)) {
    std::fprintf(stderr, "\nthe tasks' contents differ at the end\n");
    std::abort();
  }
}

}  // namespace
}  // namespace taskfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  taskfs::fuzz::FuzzInput in(data, size);
  taskfs::fuzz::Run(in);
  return 0;
}
