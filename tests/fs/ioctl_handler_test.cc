// The mem file's ioctls (docs/reference.md §5, taskfs/ioctl.h): decoding,
// results and exact errno values.
#include "fs/ioctl_handler.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fs/ctl_command.h"
#include "fs/errno_map.h"
#include "taskfs/ioctl.h"
#include "tests/fs/ioctl_request_util.h"
#include "tests/vmcore/take_result.h"
#include "vmcore/failure_reason.h"
#include "vmcore/kern_return.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_types.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {
namespace {

constexpr std::uint64_t kPage = 4096;

using fs_test::HandleIoctl;
using fs_test::IoctlChangesMemory;
using fs_test::IoctlResult;

constexpr unsigned int kAllCommands[] = {
    TASKFS_IOC_VM_COPY,      TASKFS_IOC_VM_ALLOCATE,   TASKFS_IOC_VM_DEALLOCATE,
    TASKFS_IOC_VM_PROTECT,   TASKFS_IOC_VM_INHERIT,    TASKFS_IOC_VM_REGION,
    TASKFS_IOC_VM_MAP_COPY,  TASKFS_IOC_VM_PAGE_QUERY, TASKFS_IOC_VM_REMAP,
    TASKFS_IOC_VM_READ_LIST,
};

vm::RegionInfo Region(vm::vm_address_t start, vm::vm_size_t size,
                      vm::vm_prot_t prot = vm::VM_PROT_DEFAULT,
                      vm::vm_prot_t max = vm::VM_PROT_ALL,
                      vm::vm_inherit_t inheritance = vm::VM_INHERIT_COPY) {
  vm::RegionInfo info;
  info.start = start;
  info.size = size;
  info.protection = prot;
  info.max_protection = max;
  info.inheritance = inheritance;
  return info;
}

// --- the header ------------------------------------------------------------

TEST(IoctlHeaderTest, StructSizes) {
  EXPECT_EQ(sizeof(taskfs_vm_copy), 24u);
  EXPECT_EQ(sizeof(taskfs_vm_allocate), 24u);
  EXPECT_EQ(sizeof(taskfs_vm_deallocate), 16u);
  EXPECT_EQ(sizeof(taskfs_vm_protect), 24u);
  EXPECT_EQ(sizeof(taskfs_vm_inherit), 24u);
  EXPECT_EQ(sizeof(taskfs_vm_region), 32u);
  EXPECT_EQ(sizeof(taskfs_vm_map_copy), 40u);
  EXPECT_EQ(sizeof(taskfs_page_state), 16u);
  EXPECT_EQ(sizeof(taskfs_vm_page_query), 16016u);
}

TEST(IoctlHeaderTest, NumbersEncodeTypeNumberDirectionAndSize) {
  const struct {
    unsigned int cmd;
    unsigned nr;
    unsigned dir;
    unsigned size;
  } kCases[] = {
      {TASKFS_IOC_VM_COPY, 1, _IOC_WRITE, 24},
      {TASKFS_IOC_VM_ALLOCATE, 2, _IOC_READ | _IOC_WRITE, 24},
      {TASKFS_IOC_VM_DEALLOCATE, 3, _IOC_WRITE, 16},
      {TASKFS_IOC_VM_PROTECT, 4, _IOC_WRITE, 24},
      {TASKFS_IOC_VM_INHERIT, 5, _IOC_WRITE, 24},
      {TASKFS_IOC_VM_REGION, 6, _IOC_READ | _IOC_WRITE, 32},
      {TASKFS_IOC_VM_MAP_COPY, 7, _IOC_READ | _IOC_WRITE, 40},
      {TASKFS_IOC_VM_PAGE_QUERY, 8, _IOC_READ | _IOC_WRITE, 16016},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.nr);
    EXPECT_EQ(_IOC_TYPE(c.cmd), static_cast<unsigned>('M'));
    EXPECT_EQ(_IOC_NR(c.cmd), c.nr);
    EXPECT_EQ(_IOC_DIR(c.cmd), c.dir);
    EXPECT_EQ(_IOC_SIZE(c.cmd), c.size);
  }
}

TEST(IoctlHeaderTest, MachValues) {
  EXPECT_EQ(TASKFS_VM_PROT_READ, vm::VM_PROT_READ);
  EXPECT_EQ(TASKFS_VM_PROT_WRITE, vm::VM_PROT_WRITE);
  EXPECT_EQ(TASKFS_VM_PROT_EXECUTE, vm::VM_PROT_EXECUTE);
  EXPECT_EQ(TASKFS_VM_INHERIT_SHARE, vm::VM_INHERIT_SHARE);
  EXPECT_EQ(TASKFS_VM_INHERIT_COPY, vm::VM_INHERIT_COPY);
  EXPECT_EQ(TASKFS_VM_INHERIT_NONE, vm::VM_INHERIT_NONE);
  EXPECT_EQ(TASKFS_VM_ALLOCATE_ANYWHERE, 1u);
  EXPECT_EQ(TASKFS_VM_MAP_COPY_DST_ALLOC, 1u);
  EXPECT_EQ(TASKFS_VM_MAP_COPY_SRC_DESTROY, 2u);
}

TEST(IoctlChangesMemoryTest, AllButRegionPageQueryAndReadList) {
  EXPECT_TRUE(IoctlChangesMemory(TASKFS_IOC_VM_COPY));
  EXPECT_TRUE(IoctlChangesMemory(TASKFS_IOC_VM_ALLOCATE));
  EXPECT_TRUE(IoctlChangesMemory(TASKFS_IOC_VM_DEALLOCATE));
  EXPECT_TRUE(IoctlChangesMemory(TASKFS_IOC_VM_PROTECT));
  EXPECT_TRUE(IoctlChangesMemory(TASKFS_IOC_VM_INHERIT));
  EXPECT_TRUE(IoctlChangesMemory(TASKFS_IOC_VM_MAP_COPY));
  EXPECT_FALSE(IoctlChangesMemory(TASKFS_IOC_VM_REGION));
  EXPECT_FALSE(IoctlChangesMemory(TASKFS_IOC_VM_PAGE_QUERY));
  EXPECT_FALSE(IoctlChangesMemory(TASKFS_IOC_VM_READ_LIST));
  EXPECT_FALSE(IoctlChangesMemory(0));
}

TEST(IoctlReadsMemoryTest, OnlyThePageQueryAndReadList) {
  for (const IoctlCommand& row : IoctlCommands()) {
    SCOPED_TRACE(row.name);
    EXPECT_EQ(row.reads_memory, row.number == TASKFS_IOC_VM_PAGE_QUERY ||
                                    row.number == TASKFS_IOC_VM_READ_LIST);
  }
}

// --- the table -------------------------------------------------------------

TEST(IoctlTableTest, OneRowPerCommandByNumber) {
  const std::span<const IoctlCommand> rows = IoctlCommands();
  ASSERT_EQ(rows.size(), std::size(kAllCommands));
  const char* const kNames[] = {"vm_copy",     "vm_allocate",   "vm_deallocate",
                                "vm_protect",  "vm_inherit",    "vm_region",
                                "vm_map_copy", "vm_page_query", "vm_remap",
                                "vm_read_list"};
  for (std::size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE(kNames[i]);
    EXPECT_EQ(rows[i].number, kAllCommands[i]);
    EXPECT_EQ(rows[i].name, kNames[i]);
    EXPECT_EQ(FindIoctl(kAllCommands[i]), &rows[i]);
    EXPECT_EQ(rows[i].returns_argument,
              (_IOC_DIR(rows[i].number) & _IOC_READ) != 0 &&
                  rows[i].number != TASKFS_IOC_VM_MAP_COPY);
  }
  EXPECT_EQ(FindIoctl(0), nullptr);
  EXPECT_EQ(FindIoctl(0x5401), nullptr);
}

TEST(IoctlDescribeTest, TheErrorsFileNamesTheDecodedArgument) {
  const auto describe = [](unsigned int cmd, const auto& arg) {
    return IoctlRequest(cmd, &arg, sizeof arg).Describe();
  };
  EXPECT_EQ(describe(TASKFS_IOC_VM_COPY, taskfs_vm_copy{0x10, 0x20, 0x30}),
            "ioctl vm_copy 0x10 0x20 0x30");
  EXPECT_EQ(describe(TASKFS_IOC_VM_ALLOCATE,
                     taskfs_vm_allocate{0x1000, 0x2000, 5, 9}),
            "ioctl vm_allocate 0x1000 0x2000 flags 0x5");
  EXPECT_EQ(
      describe(TASKFS_IOC_VM_DEALLOCATE, taskfs_vm_deallocate{0x1000, 0x2000}),
      "ioctl vm_deallocate 0x1000 0x2000");
  EXPECT_EQ(
      describe(TASKFS_IOC_VM_PROTECT, taskfs_vm_protect{0x1000, 0x2000, 1, 5}),
      "ioctl vm_protect 0x1000 0x2000 set_maximum 1 0x5");
  EXPECT_EQ(
      describe(TASKFS_IOC_VM_INHERIT, taskfs_vm_inherit{0x1000, 0x2000, 2, 0}),
      "ioctl vm_inherit 0x1000 0x2000 2");
  EXPECT_EQ(
      describe(TASKFS_IOC_VM_REGION, taskfs_vm_region{0x1000, 7, 1, 2, 3, 4}),
      "ioctl vm_region 0x1000");
  EXPECT_EQ(describe(TASKFS_IOC_VM_MAP_COPY,
                     taskfs_vm_map_copy{3, 0x1000, 0x2000, 0x3000, 3, 0}),
            "ioctl vm_map_copy task 3 0x1000 0x2000 0x3000 flags 0x3");
}

TEST(IoctlDescribeTest, AShortArgumentIsNamedByNumberAndSize) {
  const taskfs_vm_copy arg{0x10, 0x20, 0x30};
  EXPECT_EQ(IoctlRequest(TASKFS_IOC_VM_COPY, &arg, 8).Describe(),
            "ioctl 0x40184d01 of 8 bytes");
  EXPECT_EQ(IoctlRequest(TASKFS_IOC_VM_COPY, nullptr, 24).Describe(),
            "ioctl 0x40184d01 of 24 bytes");
  EXPECT_EQ(IoctlRequest(0x5401, &arg, sizeof arg).Describe(),
            "ioctl 0x5401 of 24 bytes");
}

// --- running them ----------------------------------------------------------

class IoctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vm::VmConfig config;
    config.page_size = kPage;
    config.address_bits = 32;
    config.memory_limit = 0;
    config.max_tasks = 8;
    system_ = std::make_unique<vm::VmSystem>(config);
    ASSERT_EQ(vm::Take(vm::task_create(*system_, "t"), &task_),
              vm::KERN_SUCCESS);
    context_.system = system_.get();
  }

  // Runs cmd with in as the argument and room for a T coming back in *out.
  template <typename T>
  IoctlResult Call(unsigned int cmd, const T& in, T* out) {
    return HandleIoctl(cmd, &in, sizeof in, out, sizeof *out, *task_, context_);
  }

  // Runs a command that returns nothing; checks that it returns nothing.
  template <typename T>
  int CallNoOut(unsigned int cmd, const T& in) {
    T out;
    std::memset(&out, 0xee, sizeof out);
    const IoctlResult r = Call(cmd, in, &out);
    EXPECT_EQ(r.out_size, 0u);
    return r.error;
  }

  void Allocate(vm::vm_address_t address, vm::vm_size_t size,
                vm::Task* task = nullptr) {
    ASSERT_EQ(vm::vm_allocate(task != nullptr ? *task : *task_, &address, size,
                              false),
              vm::KERN_SUCCESS);
  }

  std::vector<vm::RegionInfo> Regions(vm::Task* task = nullptr) {
    std::vector<vm::RegionInfo> regions;
    EXPECT_EQ(vm::Take(vm::vm_region_list(task != nullptr ? *task : *task_),
                       &regions),
              vm::KERN_SUCCESS);
    return regions;
  }

  void WritePage(vm::vm_address_t address, unsigned char byte,
                 vm::Task* task = nullptr) {
    const std::vector<unsigned char> data(kPage, byte);
    ASSERT_EQ(vm::vm_write(task != nullptr ? *task : *task_, address,
                           data.data(), kPage),
              vm::KERN_SUCCESS);
  }

  // The first byte of the page at address, or -1 if it cannot be read.
  int ReadByte(vm::vm_address_t address, vm::Task* task = nullptr) {
    std::vector<unsigned char> data(kPage);
    if (vm::vm_read(task != nullptr ? *task : *task_, address,
                    std::as_writable_bytes(std::span(data.data(), kPage))) !=
        vm::KERN_SUCCESS) {
      return -1;
    }
    return data[0];
  }

  std::unique_ptr<vm::VmSystem> system_;
  std::shared_ptr<vm::Task> task_;
  ExecContext context_;
};

TEST_F(IoctlTest, VmCopy) {
  Allocate(0x10000, 2 * kPage);
  WritePage(0x10000, 0x42);
  EXPECT_EQ(
      CallNoOut(TASKFS_IOC_VM_COPY, taskfs_vm_copy{0x10000, kPage, 0x11000}),
      0);
  EXPECT_EQ(ReadByte(0x11000), 0x42);
}

TEST_F(IoctlTest, VmPageQuery) {
  Allocate(0x10000, 4 * kPage);
  WritePage(0x11000, 0x42);
  ASSERT_EQ(vm::vm_copy(*task_, 0x11000, kPage, 0x13000), vm::KERN_SUCCESS);
  // In: an unaligned address, one page before the region, five pages.
  auto in = std::make_unique<taskfs_vm_page_query>();
  auto out = std::make_unique<taskfs_vm_page_query>();
  in->address = 0xf123;
  in->count = 6;
  std::memset(out.get(), 0xee, sizeof *out);
  const IoctlResult r = Call(TASKFS_IOC_VM_PAGE_QUERY, *in, out.get());
  ASSERT_EQ(r.error, 0);
  EXPECT_EQ(r.out_size, sizeof *out);
  EXPECT_EQ(out->address, 0xf000u);
  EXPECT_EQ(out->count, 6u);
  const std::uint32_t kAllocated = TASKFS_PAGE_ALLOCATED;
  const std::uint32_t kShared =
      TASKFS_PAGE_ALLOCATED | TASKFS_PAGE_RESIDENT | TASKFS_PAGE_SHARED;
  const std::uint32_t kFlags[] = {0,          kAllocated, kShared,
                                  kAllocated, kShared,    0};
  for (std::size_t i = 0; i < 6; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(out->pages[i].flags, kFlags[i]);
  }
  EXPECT_EQ(out->pages[2].mappings, 2u);
  EXPECT_NE(out->pages[2].identity, 0u);
  EXPECT_EQ(out->pages[2].identity, out->pages[4].identity);
  EXPECT_EQ(out->pages[1].identity, 0u);
  // Beyond count: zeros, not what the caller passed in.
  EXPECT_EQ(out->pages[6].flags, 0u);
  EXPECT_EQ(out->pages[999].identity, 0u);
}

TEST_F(IoctlTest, VmPageQueryErrors) {
  auto q = std::make_unique<taskfs_vm_page_query>();
  auto out = std::make_unique<taskfs_vm_page_query>();
  q->address = 0x10000;
  q->count = TASKFS_PAGE_QUERY_MAX + 1;
  EXPECT_EQ(Call(TASKFS_IOC_VM_PAGE_QUERY, *q, out.get()).error, EINVAL);
  // Past the end of the (32-bit) address space.
  q->address = 0xffffe000;
  q->count = 3;
  EXPECT_EQ(Call(TASKFS_IOC_VM_PAGE_QUERY, *q, out.get()).error, EFAULT);
  q->count = 2;
  EXPECT_EQ(Call(TASKFS_IOC_VM_PAGE_QUERY, *q, out.get()).error, 0);
  q->count = 0;
  EXPECT_EQ(Call(TASKFS_IOC_VM_PAGE_QUERY, *q, out.get()).error, 0);
}

// Each entry is its own vm_read; a failed one is reported as a part of
// the call, with its reason, and the call goes on.
TEST_F(IoctlTest, VmReadListReportsEachFailedEntry) {
  Allocate(0x10000, 2 * kPage);
  WritePage(0x11000, 0x42);
  auto in = std::make_unique<taskfs_vm_read_list>();
  auto out = std::make_unique<taskfs_vm_read_list>();
  in->count = 3;
  in->entries[0] = {0x20000, kPage, 0, 0};
  in->entries[1] = {0x11000, kPage, 0, 0};
  in->entries[2] = {0x10001, 1, 0, 0};
  std::memset(in->data, 0xee, sizeof in->data);
  std::vector<std::string> parts;
  IoctlRequest request(TASKFS_IOC_VM_READ_LIST, in.get(), sizeof *in);
  fs::IoctlTarget target{*task_, context_, {}};
  target.on_part_failure = [&](vm::KernReturn kr, std::uint64_t address,
                               std::uint64_t size, std::string_view op) {
    parts.push_back(fmt::format("{} {:#x}+{:#x} {}: {}", op, address, size,
                                vm::KernReturnName(kr),
                                vm::LastFailureReason()));
  };
  std::size_t out_size = 0;
  ASSERT_EQ(request.Run(target, out.get(), sizeof *out, &out_size),
            vm::KERN_SUCCESS);
  EXPECT_EQ(out_size, sizeof *out);
  EXPECT_EQ(out->entries[0].kern_return, vm::KERN_INVALID_ADDRESS);
  EXPECT_EQ(out->entries[1].kern_return, vm::KERN_SUCCESS);
  EXPECT_EQ(out->entries[2].kern_return, vm::KERN_INVALID_ARGUMENT);
  EXPECT_EQ(out->data[0], 0);  // the failed entry's room: zeros
  EXPECT_EQ(out->data[kPage], 0x42);
  EXPECT_EQ(out->data[2 * kPage - 1], 0x42);
  EXPECT_EQ(out->data[2 * kPage], 0);
  EXPECT_EQ(out->data[sizeof out->data - 1], 0);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0],
            "ioctl vm_read_list entry 0 of 3 0x20000 0x1000 0x20000+0x1000 "
            "KERN_INVALID_ADDRESS: page 0x20000 is not allocated");
  EXPECT_EQ(parts[1].rfind("ioctl vm_read_list entry 2 of 3 0x10001 0x1 "
                           "0x10001+0x1 KERN_INVALID_ARGUMENT: ",
                           0),
            0u)
      << parts[1];
}

// A list refused as a whole reads nothing and reports no entry: an
// argument shorter than the struct, no room for the result, too many
// entries, or sizes past the data area (exactly full is accepted).
TEST_F(IoctlTest, VmReadListRefusedWholeReadsNothing) {
  Allocate(0x10000, 4 * kPage);
  auto in = std::make_unique<taskfs_vm_read_list>();
  auto out = std::make_unique<taskfs_vm_read_list>();
  in->count = 1;
  in->entries[0] = {0x20000, kPage, 0, 0};  // would fail if read
  int parts = 0;
  fs::IoctlTarget target{*task_, context_, {}};
  target.on_part_failure = [&](vm::KernReturn, std::uint64_t, std::uint64_t,
                               std::string_view) { ++parts; };
  const auto run = [&](std::size_t in_size, std::size_t out_capacity) {
    IoctlRequest request(TASKFS_IOC_VM_READ_LIST, in.get(), in_size);
    std::size_t out_size = 1;
    const vm::KernReturn kr =
        request.Run(target, out.get(), out_capacity, &out_size);
    if (kr != vm::KERN_SUCCESS) {
      EXPECT_EQ(out_size, 0u);
    }
    return kr;
  };
  EXPECT_EQ(run(sizeof *in - 1, sizeof *out), vm::KERN_INVALID_ARGUMENT);
  EXPECT_EQ(run(0, sizeof *out), vm::KERN_INVALID_ARGUMENT);
  EXPECT_EQ(run(sizeof *in, sizeof *out - 1), vm::KERN_INVALID_ARGUMENT);
  EXPECT_NE(vm::LastFailureReason().find("no room for the result"),
            std::string::npos);
  in->count = TASKFS_READ_LIST_MAX + 1;
  EXPECT_EQ(run(sizeof *in, sizeof *out), vm::KERN_INVALID_ARGUMENT);
  in->count = 0xffffffffu;
  EXPECT_EQ(run(sizeof *in, sizeof *out), vm::KERN_INVALID_ARGUMENT);
  in->count = 3;
  in->entries[0] = {0x20000, TASKFS_READ_LIST_DATA - 1, 0, 0};
  in->entries[1] = {0x20000, 0, 0, 0};
  in->entries[2] = {0x20000, 2, 0, 0};
  EXPECT_EQ(run(sizeof *in, sizeof *out), vm::KERN_INVALID_ARGUMENT);
  EXPECT_EQ(parts, 0);
  // Exactly the data area: accepted, each entry read (and failed) alone.
  in->entries[2].size = 1;
  EXPECT_EQ(run(sizeof *in, sizeof *out), vm::KERN_SUCCESS);
  EXPECT_EQ(parts, 2);
  EXPECT_EQ(out->entries[0].kern_return, vm::KERN_INVALID_ARGUMENT);
  EXPECT_EQ(out->entries[1].kern_return, vm::KERN_SUCCESS);
  EXPECT_EQ(out->entries[2].kern_return, vm::KERN_INVALID_ARGUMENT);
}

TEST_F(IoctlTest, VmCopyErrors) {
  Allocate(0x10000, 2 * kPage);
  EXPECT_EQ(
      CallNoOut(TASKFS_IOC_VM_COPY, taskfs_vm_copy{0x10001, kPage, 0x11000}),
      EINVAL);
  EXPECT_EQ(
      CallNoOut(TASKFS_IOC_VM_COPY, taskfs_vm_copy{0x10000, kPage, 0x20000}),
      EFAULT);
  ASSERT_EQ(vm::vm_protect(*task_, 0x11000, kPage, false, vm::VM_PROT_READ),
            vm::KERN_SUCCESS);
  EXPECT_EQ(
      CallNoOut(TASKFS_IOC_VM_COPY, taskfs_vm_copy{0x10000, kPage, 0x11000}),
      EACCES);
}

TEST_F(IoctlTest, VmAllocateFixedReturnsTheAddress) {
  taskfs_vm_allocate out{};
  const IoctlResult r = Call(TASKFS_IOC_VM_ALLOCATE,
                             taskfs_vm_allocate{0x10000, 8192, 0, 0}, &out);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.out_size, sizeof(taskfs_vm_allocate));
  EXPECT_EQ(out.address, 0x10000u);
  EXPECT_EQ(out.size, 8192u);
  EXPECT_EQ(Regions(), std::vector<vm::RegionInfo>{Region(0x10000, 0x2000)});
}

TEST_F(IoctlTest, VmAllocateFixedRoundsTheAddressDown) {
  taskfs_vm_allocate out{};
  const IoctlResult r = Call(TASKFS_IOC_VM_ALLOCATE,
                             taskfs_vm_allocate{0x10010, 100, 0, 0}, &out);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(out.address, 0x10000u);
  EXPECT_EQ(Regions(), std::vector<vm::RegionInfo>{Region(0x10000, 0x1000)});
}

TEST_F(IoctlTest, VmAllocateAnywhereReturnsTheAddress) {
  Allocate(0, kPage);
  Allocate(0x3000, kPage);
  taskfs_vm_allocate out{};
  const IoctlResult r = Call(
      TASKFS_IOC_VM_ALLOCATE,
      taskfs_vm_allocate{0x80000, 2 * kPage, TASKFS_VM_ALLOCATE_ANYWHERE, 0},
      &out);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.out_size, sizeof(taskfs_vm_allocate));
  EXPECT_EQ(out.address, 0x1000u);
  EXPECT_EQ(out.size, 2 * kPage);
  EXPECT_EQ(out.flags, TASKFS_VM_ALLOCATE_ANYWHERE);
  EXPECT_EQ(Regions(), std::vector<vm::RegionInfo>{Region(0, 0x4000)});
}

TEST_F(IoctlTest, VmAllocateErrors) {
  Allocate(0x10000, kPage);
  taskfs_vm_allocate out{};
  EXPECT_EQ(Call(TASKFS_IOC_VM_ALLOCATE,
                 taskfs_vm_allocate{0x10000, kPage, 0, 0}, &out)
                .error,
            ENOMEM);
  EXPECT_EQ(Call(TASKFS_IOC_VM_ALLOCATE,
                 taskfs_vm_allocate{0, std::uint64_t{1} << 33,
                                    TASKFS_VM_ALLOCATE_ANYWHERE, 0},
                 &out)
                .error,
            ENOMEM);
  EXPECT_EQ(Call(TASKFS_IOC_VM_ALLOCATE,
                 taskfs_vm_allocate{std::uint64_t{1} << 32, kPage, 0, 0}, &out)
                .error,
            EFAULT);
  EXPECT_EQ(Regions(), std::vector<vm::RegionInfo>{Region(0x10000, 0x1000)});
}

TEST_F(IoctlTest, VmAllocateRejectsUnknownFlags) {
  for (std::uint32_t flags : {2u, 3u, 0x80000000u}) {
    SCOPED_TRACE(flags);
    taskfs_vm_allocate out{};
    const IoctlResult r =
        Call(TASKFS_IOC_VM_ALLOCATE,
             taskfs_vm_allocate{0x10000, kPage, flags, 0}, &out);
    EXPECT_EQ(r.error, EINVAL);
    EXPECT_EQ(r.out_size, 0u);
  }
  EXPECT_TRUE(Regions().empty());
}

TEST_F(IoctlTest, VmDeallocate) {
  Allocate(0x10000, 3 * kPage);
  EXPECT_EQ(
      CallNoOut(TASKFS_IOC_VM_DEALLOCATE, taskfs_vm_deallocate{0x11000, kPage}),
      0);
  EXPECT_EQ(Regions(), (std::vector<vm::RegionInfo>{Region(0x10000, 0x1000),
                                                    Region(0x12000, 0x1000)}));
  EXPECT_EQ(CallNoOut(TASKFS_IOC_VM_DEALLOCATE,
                      taskfs_vm_deallocate{0, std::uint64_t{1} << 32}),
            0);
  EXPECT_TRUE(Regions().empty());
}

TEST_F(IoctlTest, VmProtect) {
  Allocate(0x10000, 2 * kPage);
  EXPECT_EQ(
      CallNoOut(TASKFS_IOC_VM_PROTECT,
                taskfs_vm_protect{0x10000, kPage, 0, TASKFS_VM_PROT_READ}),
      0);
  EXPECT_EQ(CallNoOut(TASKFS_IOC_VM_PROTECT,
                      taskfs_vm_protect{
                          0x11000, kPage, 1,
                          TASKFS_VM_PROT_READ | TASKFS_VM_PROT_EXECUTE}),
            0);
  EXPECT_EQ(Regions(),
            (std::vector<vm::RegionInfo>{Region(0x10000, 0x1000, 1, 7),
                                         Region(0x11000, 0x1000, 1, 5)}));
}

TEST_F(IoctlTest, VmProtectErrors) {
  Allocate(0x10000, kPage);
  ASSERT_EQ(vm::vm_protect(*task_, 0x10000, kPage, true, vm::VM_PROT_READ),
            vm::KERN_SUCCESS);
  EXPECT_EQ(
      CallNoOut(TASKFS_IOC_VM_PROTECT, taskfs_vm_protect{0x10000, kPage, 0, 3}),
      EACCES);
  EXPECT_EQ(CallNoOut(TASKFS_IOC_VM_PROTECT,
                      taskfs_vm_protect{0x10000, 2 * kPage, 0, 1}),
            EFAULT);
  EXPECT_EQ(
      CallNoOut(TASKFS_IOC_VM_PROTECT, taskfs_vm_protect{0x10000, kPage, 0, 8}),
      EINVAL);
  EXPECT_EQ(
      CallNoOut(TASKFS_IOC_VM_PROTECT, taskfs_vm_protect{0x10000, kPage, 2, 1}),
      EINVAL);
  EXPECT_EQ(Regions(),
            std::vector<vm::RegionInfo>{Region(0x10000, 0x1000, 1, 1)});
}

TEST_F(IoctlTest, VmInherit) {
  Allocate(0x10000, 2 * kPage);
  EXPECT_EQ(
      CallNoOut(TASKFS_IOC_VM_INHERIT,
                taskfs_vm_inherit{0x10000, kPage, TASKFS_VM_INHERIT_SHARE, 0}),
      0);
  EXPECT_EQ(
      CallNoOut(TASKFS_IOC_VM_INHERIT,
                taskfs_vm_inherit{0x11000, kPage, TASKFS_VM_INHERIT_NONE, 0}),
      0);
  EXPECT_EQ(Regions(),
            (std::vector<vm::RegionInfo>{
                Region(0x10000, 0x1000, 3, 7, vm::VM_INHERIT_SHARE),
                Region(0x11000, 0x1000, 3, 7, vm::VM_INHERIT_NONE)}));
  EXPECT_EQ(
      CallNoOut(TASKFS_IOC_VM_INHERIT, taskfs_vm_inherit{0x10000, kPage, 3, 0}),
      EINVAL);
  EXPECT_EQ(
      CallNoOut(TASKFS_IOC_VM_INHERIT, taskfs_vm_inherit{0x20000, kPage, 0, 0}),
      EFAULT);
}

TEST_F(IoctlTest, VmRegionReturnsTheRegionHoldingTheAddress) {
  Allocate(0x10000, 4 * kPage);
  ASSERT_EQ(vm::vm_protect(*task_, 0x12000, 2 * kPage, true, 5),
            vm::KERN_SUCCESS);
  ASSERT_EQ(vm::vm_inherit(*task_, 0x12000, 2 * kPage, vm::VM_INHERIT_SHARE),
            vm::KERN_SUCCESS);
  taskfs_vm_region out;
  std::memset(&out, 0xee, sizeof out);
  const IoctlResult r = Call(TASKFS_IOC_VM_REGION,
                             taskfs_vm_region{0x13800, 0, 0, 0, 0, 0}, &out);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.out_size, sizeof(taskfs_vm_region));
  EXPECT_EQ(out.address, 0x12000u);
  EXPECT_EQ(out.size, 0x2000u);
  EXPECT_EQ(out.prot, TASKFS_VM_PROT_READ);
  EXPECT_EQ(out.max_prot, TASKFS_VM_PROT_READ | TASKFS_VM_PROT_EXECUTE);
  EXPECT_EQ(out.inheritance, TASKFS_VM_INHERIT_SHARE);
  EXPECT_EQ(out.pad, 0u);
}

TEST_F(IoctlTest, VmRegionReturnsTheFirstRegionAbove) {
  Allocate(0x10000, kPage);
  taskfs_vm_region out{};
  const IoctlResult r =
      Call(TASKFS_IOC_VM_REGION, taskfs_vm_region{0x2000, 0, 0, 0, 0, 0}, &out);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(out.address, 0x10000u);
  EXPECT_EQ(out.size, 0x1000u);
  EXPECT_EQ(out.prot, 3u);
  EXPECT_EQ(out.max_prot, 7u);
  EXPECT_EQ(out.inheritance, TASKFS_VM_INHERIT_COPY);
}

TEST_F(IoctlTest, VmRegionPastTheLastIsNoSpace) {
  taskfs_vm_region out{};
  IoctlResult r =
      Call(TASKFS_IOC_VM_REGION, taskfs_vm_region{0, 0, 0, 0, 0, 0}, &out);
  EXPECT_EQ(r.error, ENOMEM);
  EXPECT_EQ(r.out_size, 0u);
  Allocate(0x10000, kPage);
  r = Call(TASKFS_IOC_VM_REGION, taskfs_vm_region{0x11000, 0, 0, 0, 0, 0},
           &out);
  EXPECT_EQ(r.error, ENOMEM);
}

TEST_F(IoctlTest, VmMapCopy) {
  std::shared_ptr<vm::Task> src;
  ASSERT_EQ(vm::Take(vm::task_create(*system_, "src"), &src), vm::KERN_SUCCESS);
  Allocate(0x40000, kPage, src.get());
  WritePage(0x40000, 0x99, src.get());
  Allocate(0x10000, kPage);
  EXPECT_EQ(
      CallNoOut(TASKFS_IOC_VM_MAP_COPY,
                taskfs_vm_map_copy{src->id(), 0x40000, kPage, 0x10000, 0, 0}),
      0);
  EXPECT_EQ(ReadByte(0x10000), 0x99);
  EXPECT_EQ(Regions(src.get()),
            std::vector<vm::RegionInfo>{Region(0x40000, 0x1000)});
}

TEST_F(IoctlTest, VmMapCopyAllocDestroy) {
  std::shared_ptr<vm::Task> src;
  ASSERT_EQ(vm::Take(vm::task_create(*system_, "src"), &src), vm::KERN_SUCCESS);
  Allocate(0x40000, kPage, src.get());
  WritePage(0x40000, 0x33, src.get());
  ASSERT_EQ(vm::vm_inherit(*src, 0x40000, kPage, vm::VM_INHERIT_NONE),
            vm::KERN_SUCCESS);
  EXPECT_EQ(CallNoOut(TASKFS_IOC_VM_MAP_COPY,
                      taskfs_vm_map_copy{src->id(), 0x40000, kPage, 0x20000,
                                         TASKFS_VM_MAP_COPY_DST_ALLOC |
                                             TASKFS_VM_MAP_COPY_SRC_DESTROY,
                                         0}),
            0);
  EXPECT_EQ(Regions(), std::vector<vm::RegionInfo>{
                           Region(0x20000, 0x1000, 3, 7, vm::VM_INHERIT_NONE)});
  EXPECT_EQ(ReadByte(0x20000), 0x33);
  EXPECT_TRUE(Regions(src.get()).empty());
}

TEST_F(IoctlTest, VmMapCopyErrors) {
  std::shared_ptr<vm::Task> src;
  ASSERT_EQ(vm::Take(vm::task_create(*system_, "src"), &src), vm::KERN_SUCCESS);
  Allocate(0x40000, kPage, src.get());
  Allocate(0x10000, kPage);
  // Unknown flags.
  for (std::uint32_t flags : {4u, 7u, 0x80000000u}) {
    EXPECT_EQ(CallNoOut(TASKFS_IOC_VM_MAP_COPY,
                        taskfs_vm_map_copy{src->id(), 0x40000, kPage, 0x20000,
                                           flags, 0}),
              EINVAL)
        << flags;
  }
  // No such task id.
  EXPECT_EQ(CallNoOut(TASKFS_IOC_VM_MAP_COPY,
                      taskfs_vm_map_copy{12345, 0x40000, kPage, 0x10000, 0, 0}),
            ESRCH);
  // dst_alloc over an allocated destination.
  EXPECT_EQ(CallNoOut(TASKFS_IOC_VM_MAP_COPY,
                      taskfs_vm_map_copy{src->id(), 0x40000, kPage, 0x10000,
                                         TASKFS_VM_MAP_COPY_DST_ALLOC, 0}),
            ENOMEM);
  // An unallocated source.
  EXPECT_EQ(
      CallNoOut(TASKFS_IOC_VM_MAP_COPY,
                taskfs_vm_map_copy{src->id(), 0x50000, kPage, 0x10000, 0, 0}),
      EFAULT);
  EXPECT_EQ(Regions(), std::vector<vm::RegionInfo>{Region(0x10000, 0x1000)});
  EXPECT_EQ(Regions(src.get()),
            std::vector<vm::RegionInfo>{Region(0x40000, 0x1000)});
}

TEST_F(IoctlTest, VmMapCopyHonoursMayAccess) {
  std::shared_ptr<vm::Task> src;
  ASSERT_EQ(vm::Take(vm::task_create(*system_, "src"), &src), vm::KERN_SUCCESS);
  Allocate(0x40000, kPage, src.get());
  WritePage(0x40000, 0x44, src.get());
  std::vector<bool> wants;
  context_.may_access = [&](vm::Task& other, bool want_write) {
    EXPECT_EQ(&other, src.get());
    wants.push_back(want_write);
    return vm::KERN_PROTECTION_FAILURE;
  };
  EXPECT_EQ(CallNoOut(TASKFS_IOC_VM_MAP_COPY,
                      taskfs_vm_map_copy{src->id(), 0x40000, kPage, 0x20000,
                                         TASKFS_VM_MAP_COPY_DST_ALLOC, 0}),
            EACCES);
  EXPECT_EQ(CallNoOut(TASKFS_IOC_VM_MAP_COPY,
                      taskfs_vm_map_copy{src->id(), 0x40000, kPage, 0x20000,
                                         TASKFS_VM_MAP_COPY_DST_ALLOC |
                                             TASKFS_VM_MAP_COPY_SRC_DESTROY,
                                         0}),
            EACCES);
  EXPECT_EQ(wants, (std::vector<bool>{false, true}));
  EXPECT_TRUE(Regions().empty());
  EXPECT_EQ(ReadByte(0x40000, src.get()), 0x44);
}

TEST_F(IoctlTest, ShortArgumentIsEinval) {
  Allocate(0x10000, 2 * kPage);
  unsigned char in[64] = {};
  unsigned char out[64] = {};
  for (unsigned int cmd : kAllCommands) {
    SCOPED_TRACE(_IOC_NR(cmd));
    const std::size_t size = _IOC_SIZE(cmd);
    IoctlResult r =
        HandleIoctl(cmd, in, size - 1, out, sizeof out, *task_, context_);
    EXPECT_EQ(r.error, EINVAL);
    EXPECT_EQ(r.out_size, 0u);
    r = HandleIoctl(cmd, in, 0, out, sizeof out, *task_, context_);
    EXPECT_EQ(r.error, EINVAL);
    r = HandleIoctl(cmd, nullptr, size, out, sizeof out, *task_, context_);
    EXPECT_EQ(r.error, EINVAL);
  }
  EXPECT_EQ(Regions(), std::vector<vm::RegionInfo>{Region(0x10000, 0x2000)});
}

TEST_F(IoctlTest, LongerArgumentIsAccepted) {
  unsigned char in[64] = {};
  const taskfs_vm_allocate arg{0x10000, kPage, 0, 0};
  std::memcpy(in, &arg, sizeof arg);
  unsigned char out[64] = {};
  const IoctlResult r = HandleIoctl(TASKFS_IOC_VM_ALLOCATE, in, sizeof in, out,
                                    sizeof out, *task_, context_);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.out_size, sizeof(taskfs_vm_allocate));
  EXPECT_EQ(Regions(), std::vector<vm::RegionInfo>{Region(0x10000, 0x1000)});
}

TEST_F(IoctlTest, UnknownCommandIsEnotty) {
  unsigned char in[64] = {};
  unsigned char out[64] = {};
  for (unsigned int cmd : {
           0u,
           0x5401u,  // TCGETS
           static_cast<unsigned int>(_IOW('M', 8, struct taskfs_vm_copy)),
           static_cast<unsigned int>(_IOW('M', 0, struct taskfs_vm_copy)),
           static_cast<unsigned int>(_IOW('N', 1, struct taskfs_vm_copy)),
           static_cast<unsigned int>(_IOR('M', 1, struct taskfs_vm_copy)),
           static_cast<unsigned int>(_IOW('M', 1, struct taskfs_vm_deallocate)),
           static_cast<unsigned int>(_IOW('M', 2, struct taskfs_vm_allocate)),
           static_cast<unsigned int>(_IO('M', 6)),
       }) {
    SCOPED_TRACE(cmd);
    const IoctlResult r =
        HandleIoctl(cmd, in, sizeof in, out, sizeof out, *task_, context_);
    EXPECT_EQ(r.error, ENOTTY);
    EXPECT_EQ(r.out_size, 0u);
    EXPECT_FALSE(IoctlChangesMemory(cmd));
  }
  EXPECT_TRUE(Regions().empty());
}

TEST_F(IoctlTest, TerminatedTaskIsEsrch) {
  ASSERT_EQ(vm::task_terminate(*system_, *task_), vm::KERN_SUCCESS);
  taskfs_vm_allocate out{};
  EXPECT_EQ(Call(TASKFS_IOC_VM_ALLOCATE,
                 taskfs_vm_allocate{0x10000, kPage, 0, 0}, &out)
                .error,
            ESRCH);
}

TEST_F(IoctlTest, RunReturnsTheMachCodeAndItsReason) {
  IoctlRequest flags(TASKFS_IOC_VM_ALLOCATE, nullptr, 0);
  const taskfs_vm_allocate bad{0x10000, kPage, 2, 0};
  IoctlRequest request(TASKFS_IOC_VM_ALLOCATE, &bad, sizeof bad);
  unsigned char out[64];
  std::memset(out, 0xee, sizeof out);
  std::size_t out_size = 99;
  EXPECT_EQ(request.Run({*task_, context_, {}}, out, sizeof out, &out_size),
            vm::KERN_INVALID_ARGUMENT);
  EXPECT_EQ(out_size, 0u);
  EXPECT_EQ(out[0], 0xee);
  EXPECT_EQ(vm::LastFailureReason(), "flags 0x2 has bits beyond anywhere (1)");

  EXPECT_EQ(flags.Run({*task_, context_, {}}, out, sizeof out, &out_size),
            vm::KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm::LastFailureReason(),
            "the argument is 0 bytes, the command takes 24");

  const taskfs_vm_allocate good{0x10000, kPage, 0, 0};
  IoctlRequest no_room(TASKFS_IOC_VM_ALLOCATE, &good, sizeof good);
  EXPECT_EQ(
      no_room.Run({*task_, context_, {}}, out, sizeof good - 1, &out_size),
      vm::KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm::LastFailureReason(), "no room for the result in the argument");
  EXPECT_TRUE(Regions().empty());  // checked before anything ran

  const taskfs_vm_copy copy{0x10000, kPage, 0x20000};
  IoctlRequest unmapped(TASKFS_IOC_VM_COPY, &copy, sizeof copy);
  EXPECT_EQ(unmapped.Run({*task_, context_, {}}, out, sizeof out, &out_size),
            vm::KERN_INVALID_ADDRESS);
  EXPECT_EQ(out_size, 0u);
}

TEST_F(IoctlTest, ARequestIsDecodedOnceFromItsArgument) {
  taskfs_vm_allocate arg{0x10000, kPage, 0, 0};
  IoctlRequest request(TASKFS_IOC_VM_ALLOCATE, &arg, sizeof arg);
  arg.address = 0x20000;  // a later change of the caller's buffer
  taskfs_vm_allocate out{};
  std::size_t out_size = 0;
  EXPECT_EQ(request.Run({*task_, context_, {}}, &out, sizeof out, &out_size),
            vm::KERN_SUCCESS);
  EXPECT_EQ(out_size, sizeof out);
  EXPECT_EQ(out.address, 0x10000u);
  EXPECT_EQ(request.Describe(), "ioctl vm_allocate 0x10000 0x1000 flags 0x0");
}

}  // namespace
}  // namespace taskfs::fs
