// The reasons the core gives for its failures (failure_reason.h), as the
// errors file shows them: one per rule, naming what decided the code.
#include "vmcore/failure_reason.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/vmcore/take_result.h"
#include "vmcore/vm_user.h"

namespace taskfs::vm {
namespace {

constexpr std::uint64_t kPage = 4096;

class FailureReasonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VmConfig config;
    config.address_bits = 32;
    config.page_limit = 4 * kPage;
    config.max_tasks = 2;
    system_ = std::make_unique<VmSystem>(config);
    ASSERT_EQ(Take(task_create(*system_, "t"), &task_), KERN_SUCCESS);
    vm_address_t at = 0x10000;
    ASSERT_EQ(vm_allocate(*task_, &at, 4 * kPage, false), KERN_SUCCESS);
    ASSERT_EQ(vm_protect(*task_, 0x12000, kPage, false, VM_PROT_NONE),
              KERN_SUCCESS);
    ASSERT_EQ(vm_protect(*task_, 0x13000, kPage, true, VM_PROT_READ),
              KERN_SUCCESS);
  }

  // The reason left by a call that must fail with kr.
  std::string ReasonOf(KernReturn got, KernReturn kr) {
    EXPECT_EQ(got, kr);
    return std::string(LastFailureReason());
  }

  std::unique_ptr<VmSystem> system_;
  std::shared_ptr<Task> task_;
  std::vector<unsigned char> page_ = std::vector<unsigned char>(4 * kPage);
};

TEST_F(FailureReasonTest, SetGetAndCount) {
  const std::uint64_t before = FailureReasonCount();
  SetFailureReason("one");
  EXPECT_EQ(LastFailureReason(), "one");
  SetFailureReason(std::string(2000, 'x'));
  EXPECT_EQ(LastFailureReason(), std::string(512, 'x'));
  EXPECT_EQ(FailureReasonCount(), before + 2);
}

TEST_F(FailureReasonTest, EachThreadHasItsOwn) {
  SetFailureReason("main");
  std::thread([] {
    EXPECT_EQ(LastFailureReason(), "");
    SetFailureReason("other");
  }).join();
  EXPECT_EQ(LastFailureReason(), "main");
}

TEST_F(FailureReasonTest, ProtectionText) {
  EXPECT_EQ(ProtectionText(VM_PROT_NONE), "---");
  EXPECT_EQ(ProtectionText(VM_PROT_READ), "r--");
  EXPECT_EQ(ProtectionText(VM_PROT_WRITE), "-w-");
  EXPECT_EQ(ProtectionText(VM_PROT_EXECUTE), "--x");
  EXPECT_EQ(ProtectionText(VM_PROT_READ | VM_PROT_EXECUTE), "r-x");
  EXPECT_EQ(ProtectionText(VM_PROT_ALL), "rwx");
}

TEST_F(FailureReasonTest, ASuccessLeavesTheReasonAsItWas) {
  SetFailureReason("earlier");
  const std::uint64_t before = FailureReasonCount();
  ASSERT_EQ(vm_write(*task_, 0x10000, page_.data(), kPage), KERN_SUCCESS);
  EXPECT_EQ(LastFailureReason(), "earlier");
  EXPECT_EQ(FailureReasonCount(), before);
}

TEST_F(FailureReasonTest, ArgumentsNameTheValue) {
  EXPECT_EQ(ReasonOf(vm_write(*task_, 0x10001, page_.data(), kPage),
                     KERN_INVALID_ARGUMENT),
            "address 0x10001 is not a multiple of the page size 0x1000");
  EXPECT_EQ(
      ReasonOf(vm_copy(*task_, 0x10000, kPage, 0x11010), KERN_INVALID_ARGUMENT),
      "destination 0x11010 is not a multiple of the page size 0x1000");
  EXPECT_EQ(ReasonOf(vm_protect(*task_, 0x10000, kPage, false, 8),
                     KERN_INVALID_ARGUMENT),
            "protection 0x8 has bits beyond rwx");
  EXPECT_EQ(
      ReasonOf(vm_inherit(*task_, 0x10000, kPage, 3), KERN_INVALID_ARGUMENT),
      "inheritance 3 is not share (0), copy (1) or none (2)");
}

TEST_F(FailureReasonTest, BoundsNameTheRange) {
  EXPECT_EQ(
      ReasonOf(vm_write(*task_, 0xfffffffffffff000, page_.data(), 2 * kPage),
               KERN_INVALID_ADDRESS),
      "0xfffffffffffff000 + 0x2000 wraps past 2^64");
  EXPECT_EQ(ReasonOf(vm_deallocate(*task_, 0xfffff000, 2 * kPage),
                     KERN_INVALID_ADDRESS),
            "0xfffff000-0x100001000 is not inside the address space [0, "
            "0x100000000)");
}

TEST_F(FailureReasonTest, RangesNameTheLowestOffendingPage) {
  std::vector<std::byte> buf(3 * kPage);
  EXPECT_EQ(ReasonOf(vm_read(*task_, 0x11000, std::span(buf)),
                     KERN_PROTECTION_FAILURE),
            "page 0x12000 is ---/rwx, read needs r");
  EXPECT_EQ(ReasonOf(vm_write(*task_, 0x13000, page_.data(), kPage),
                     KERN_PROTECTION_FAILURE),
            "page 0x13000 is r--/r--, write needs w");
  EXPECT_EQ(
      ReasonOf(vm_read(*task_, 0xf000, std::span(buf)), KERN_INVALID_ADDRESS),
      "page 0xf000 is not allocated");
  PinnedPages pinned;
  EXPECT_EQ(ReasonOf(vm_read_pinned(*task_, 0x13000, 2 * kPage, &pinned),
                     KERN_INVALID_ADDRESS),
            "page 0x14000 is not allocated");
  // vm_copy: the source is judged before the destination.
  EXPECT_EQ(ReasonOf(vm_copy(*task_, 0x12000, kPage, 0x40000),
                     KERN_PROTECTION_FAILURE),
            "page 0x12000 is ---/rwx, read needs r");
  EXPECT_EQ(
      ReasonOf(vm_copy(*task_, 0x10000, kPage, 0x40000), KERN_INVALID_ADDRESS),
      "page 0x40000 is not allocated");
  EXPECT_EQ(ReasonOf(vm_protect(*task_, 0x13000, kPage, false,
                                VM_PROT_READ | VM_PROT_WRITE),
                     KERN_PROTECTION_FAILURE),
            "page 0x13000 has maximum r--, rw- goes beyond it");
  EXPECT_EQ(ReasonOf(vm_inherit(*task_, 0x13000, 2 * kPage, VM_INHERIT_NONE),
                     KERN_INVALID_ADDRESS),
            "page 0x14000 is not allocated");
}

TEST_F(FailureReasonTest, NoSpaceNamesTheRegionInTheWay) {
  vm_address_t at = 0x11800;
  EXPECT_EQ(ReasonOf(vm_allocate(*task_, &at, kPage, false), KERN_NO_SPACE),
            "overlaps region 0x10000-0x12000");
  at = 0;
  EXPECT_EQ(ReasonOf(vm_allocate(*task_, &at, vm_size_t{1} << 33, true),
                     KERN_NO_SPACE),
            "no free range of 0x200000000 bytes in the address space");
  RegionInfo info;
  at = 0x20000;
  EXPECT_EQ(ReasonOf(vm_region(*task_, &at, &info), KERN_NO_SPACE),
            "no region at or above 0x20000");
}

TEST_F(FailureReasonTest, ThePageLimitNamesLimitUseAndNeed) {
  ASSERT_EQ(vm_write(*task_, 0x10000, page_.data(), 2 * kPage), KERN_SUCCESS);
  vm_address_t at = 0x20000;
  ASSERT_EQ(vm_allocate(*task_, &at, 4 * kPage, false), KERN_SUCCESS);
  EXPECT_EQ(ReasonOf(vm_write(*task_, 0x20000, page_.data(), 3 * kPage),
                     KERN_RESOURCE_SHORTAGE),
            "page limit 16384 bytes: 8192 in pages, the write needs 12288 "
            "more");
}

// The memory limit counts metadata too, so the use it names is the
// budget's: what the pages and the task's records hold together.
TEST_F(FailureReasonTest, TheMemoryLimitNamesLimitUseAndNeed) {
  VmConfig config;
  config.address_bits = 32;
  config.memory_limit = 64 * kPage;
  VmSystem system(config);
  std::shared_ptr<Task> task;
  ASSERT_EQ(Take(task_create(system, "m"), &task), KERN_SUCCESS);
  vm_address_t at = 0;
  ASSERT_EQ(vm_allocate(*task, &at, 128 * kPage, false), KERN_SUCCESS);
  ASSERT_EQ(vm_write(*task, 0, page_.data(), 4 * kPage), KERN_SUCCESS);
  std::vector<unsigned char> big(64 * kPage);
  const std::uint64_t used = system.budget().used();
  EXPECT_EQ(ReasonOf(vm_write(*task, 64 * kPage, big.data(), big.size()),
                     KERN_RESOURCE_SHORTAGE),
            "memory limit 262144 bytes: " + std::to_string(used) +
                " in use, the write needs 262144 more");
  EXPECT_EQ(system.budget().used(), used);  // the refusal left nothing
}

// A rewrite that only a reader's pin turns into a copy, refused because
// the pin reserve cannot hold it, says so.
TEST_F(FailureReasonTest, APinnedCopyPastThePinReserveNamesIt) {
  VmConfig config;
  config.address_bits = 32;
  config.memory_limit = 64 * kPage;
  config.pin_reserve = 0;
  VmSystem system(config);
  std::shared_ptr<Task> task;
  ASSERT_EQ(Take(task_create(system, "m"), &task), KERN_SUCCESS);
  vm_address_t at = 0;
  ASSERT_EQ(vm_allocate(*task, &at, 64 * kPage, false), KERN_SUCCESS);
  std::uint64_t written = 0;
  while (vm_write(*task, written * kPage, page_.data(), kPage) ==
         KERN_SUCCESS) {
    ++written;
  }
  ASSERT_GT(written, 0u);
  PinnedPages pinned;
  ASSERT_EQ(vm_read_pinned(*task, 0, kPage, &pinned), KERN_SUCCESS);
  const std::uint64_t used = system.budget().used();
  EXPECT_EQ(
      ReasonOf(vm_write(*task, 0, page_.data(), kPage), KERN_RESOURCE_SHORTAGE),
      "memory limit 262144 bytes: " + std::to_string(used) +
          " in use, the write needs 4096 more (4096 of them copies of "
          "pinned pages; the pin reserve has 0 of 0 in use)");
}

TEST_F(FailureReasonTest, TasksNameWhatIsWrong) {
  std::shared_ptr<Task> other;
  EXPECT_EQ(
      ReasonOf(Take(task_create(*system_, "t"), &other), KERN_NAME_EXISTS),
      "a task named t exists");
  EXPECT_EQ(ReasonOf(Take(task_create(*system_, ".x"), &other),
                     KERN_INVALID_ARGUMENT),
            "bad task name '.x' (1 to 64 of A-Z a-z 0-9 . _ -, not starting "
            "with '.', not host_page_size)");
  ASSERT_EQ(Take(task_create(*system_, "u"), &other), KERN_SUCCESS);
  EXPECT_EQ(ReasonOf(Take(task_fork(*system_, *task_, "v"), &other),
                     KERN_RESOURCE_SHORTAGE),
            "max_tasks 2 tasks are alive");
  ASSERT_EQ(task_terminate(*system_, *task_), KERN_SUCCESS);
  EXPECT_EQ(ReasonOf(vm_write(*task_, 0x10000, page_.data(), kPage),
                     KERN_INVALID_TASK),
            "task t was terminated");
}

}  // namespace
}  // namespace taskfs::vm
