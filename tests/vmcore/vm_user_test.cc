// The Mach facade: every rule of docs/reference.md §1-§2 and §6 as exact KERN_*
// codes.
#include "vmcore/vm_user.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace taskfs::vm {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kBase = 0x100000;

class VmUserTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeSystem(32, 0); }

  void MakeSystem(unsigned address_bits, std::uint64_t limit,
                  std::uint64_t page_size = kPage,
                  std::uint64_t pin_reserve = 0) {
    task_.reset();
    system_.reset();
    VmConfig config;
    config.page_size = page_size;
    config.address_bits = address_bits;
    config.page_limit = limit;
    config.max_tasks = 8;
    config.pin_reserve = pin_reserve;
    system_ = std::make_unique<VmSystem>(config);
    task_ = Created(task_create(*system_, "t"));
    ASSERT_NE(task_, nullptr);
  }

  KernReturn Alloc(vm_address_t address, vm_size_t size, Task* task = nullptr) {
    return vm_allocate(task ? *task : *task_, &address, size, false);
  }
  KernReturn Fill(vm_address_t address, vm_size_t size, unsigned char byte,
                  Task* task = nullptr) {
    std::vector<unsigned char> data(size, byte);
    return vm_write(task ? *task : *task_, address, data.data(), size);
  }
  // The byte at each page of [address, address + pages * kPage), or "" on
  // failure: pages read back as a string like "aa0b".
  std::string Pages(vm_address_t address, std::uint64_t pages,
                    Task* task = nullptr) {
    std::vector<unsigned char> buf(pages * kPage);
    if (vm_read(task ? *task : *task_, address,
                std::as_writable_bytes(std::span(buf))) != KERN_SUCCESS) {
      return "";
    }
    std::string out;
    for (std::uint64_t p = 0; p < pages; ++p) {
      const unsigned char c = buf[p * kPage];
      for (std::uint64_t i = 1; i < kPage; ++i) {
        if (buf[p * kPage + i] != c) return "torn";
      }
      out += c == 0 ? '0' : static_cast<char>(c);
    }
    return out;
  }
  std::vector<RegionInfo> Regions(Task* task = nullptr) {
    KernResult<std::vector<RegionInfo>> regions =
        vm_region_list(task ? *task : *task_);
    EXPECT_EQ(regions.code(), KERN_SUCCESS);
    return regions.ok() ? regions.value() : std::vector<RegionInfo>{};
  }
  TaskStatistics Stats(Task* task = nullptr) {
    KernResult<TaskStatistics> s = task_statistics(task ? *task : *task_);
    EXPECT_EQ(s.code(), KERN_SUCCESS);
    return s.ok() ? s.value() : TaskStatistics{};
  }
  // The task of a task_create or task_fork that must succeed; null (and a
  // failure) if it did not.
  static std::shared_ptr<Task> Created(KernResult<std::shared_ptr<Task>> r) {
    EXPECT_EQ(r.code(), KERN_SUCCESS);
    return r.ok() ? std::move(r).value() : nullptr;
  }

  std::unique_ptr<VmSystem> system_;
  std::shared_ptr<Task> task_;
};

RegionInfo Region(vm_address_t start, vm_size_t size, vm_prot_t prot,
                  vm_prot_t max, vm_inherit_t inheritance) {
  return RegionInfo{start, size, prot, max, inheritance};
}

// --- vm_allocate -----------------------------------------------------------

TEST_F(VmUserTest, AllocateFixedRoundsAddressDownAndSizeUp) {
  // Mach rounds each on its own: one page at kBase, although
  // [kBase + 1, kBase + 1 + kPage) touches two pages.
  vm_address_t address = kBase + 1;
  ASSERT_EQ(vm_allocate(*task_, &address, kPage, false), KERN_SUCCESS);
  EXPECT_EQ(address, kBase);
  EXPECT_EQ(Regions(),
            std::vector<RegionInfo>{Region(kBase, kPage, VM_PROT_DEFAULT,
                                           VM_PROT_ALL, VM_INHERIT_COPY)});
  address = kBase + 2 * kPage - 1;
  ASSERT_EQ(vm_allocate(*task_, &address, 2, false), KERN_SUCCESS);
  EXPECT_EQ(address, kBase + kPage);
  EXPECT_EQ(Regions(),
            std::vector<RegionInfo>{Region(kBase, 2 * kPage, VM_PROT_DEFAULT,
                                           VM_PROT_ALL, VM_INHERIT_COPY)});
}

TEST_F(VmUserTest, AllocateFixedSizeThatCannotBeRoundedIsInvalidAddress) {
  vm_address_t address = kBase;
  EXPECT_EQ(vm_allocate(*task_, &address, ~vm_size_t{0}, false),
            KERN_INVALID_ADDRESS);
  EXPECT_TRUE(Regions().empty());
}

TEST_F(VmUserTest, AllocateDefaultsAreMachs) {
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  vm_address_t address = 0;
  RegionInfo info;
  ASSERT_EQ(vm_region(*task_, &address, &info), KERN_SUCCESS);
  EXPECT_EQ(info.protection, VM_PROT_READ | VM_PROT_WRITE);
  EXPECT_EQ(info.max_protection, VM_PROT_ALL);
  EXPECT_EQ(info.inheritance, VM_INHERIT_COPY);
}

TEST_F(VmUserTest, AllocateZeroSizeIsANoOp) {
  EXPECT_EQ(Alloc(kBase, 0), KERN_SUCCESS);
  EXPECT_EQ(Alloc(~std::uint64_t{0}, 0), KERN_SUCCESS);
  EXPECT_TRUE(Regions().empty());
  vm_address_t address = 1234;
  EXPECT_EQ(vm_allocate(*task_, &address, 0, true), KERN_SUCCESS);
  EXPECT_EQ(address, 0u);
}

TEST_F(VmUserTest, AllocateOverExistingIsNoSpace) {
  ASSERT_EQ(Alloc(kBase, 2 * kPage), KERN_SUCCESS);
  EXPECT_EQ(Alloc(kBase + kPage, 2 * kPage), KERN_NO_SPACE);
  EXPECT_EQ(Alloc(kBase - kPage, 2 * kPage), KERN_NO_SPACE);
  EXPECT_EQ(Regions().size(), 1u);
}

TEST_F(VmUserTest, AllocateAtTheEndOfTheAddressSpace) {
  const vm_address_t limit = std::uint64_t{1} << 32;
  EXPECT_EQ(Alloc(limit - kPage, kPage), KERN_SUCCESS);
  EXPECT_EQ(Alloc(limit, kPage), KERN_INVALID_ADDRESS);
  EXPECT_EQ(Alloc(limit - kPage, 2 * kPage), KERN_INVALID_ADDRESS);
}

TEST_F(VmUserTest, AllocateOverflowIsInvalidAddress) {
  EXPECT_EQ(Alloc(~std::uint64_t{0} - kPage, 2 * kPage), KERN_INVALID_ADDRESS);
  EXPECT_EQ(Alloc(kPage, ~std::uint64_t{0}), KERN_INVALID_ADDRESS);
}

TEST_F(VmUserTest, AllocateAnywhereTakesTheLowestFit) {
  ASSERT_EQ(Alloc(0, kPage), KERN_SUCCESS);
  ASSERT_EQ(Alloc(3 * kPage, kPage), KERN_SUCCESS);
  vm_address_t address = 0;
  ASSERT_EQ(vm_allocate(*task_, &address, 2 * kPage, true), KERN_SUCCESS);
  EXPECT_EQ(address, kPage);
  ASSERT_EQ(vm_allocate(*task_, &address, 1, true), KERN_SUCCESS);
  EXPECT_EQ(address, 4 * kPage);  // size rounded up to one page
  ASSERT_EQ(vm_allocate(*task_, &address, kPage, true), KERN_SUCCESS);
  EXPECT_EQ(address, 5 * kPage);
}

TEST_F(VmUserTest, AllocateAnywhereRefillsAFreedHole) {
  vm_address_t a = 0, b = 0, c = 0;
  ASSERT_EQ(vm_allocate(*task_, &a, kPage, true), KERN_SUCCESS);
  ASSERT_EQ(vm_allocate(*task_, &b, kPage, true), KERN_SUCCESS);
  ASSERT_EQ(vm_allocate(*task_, &c, kPage, true), KERN_SUCCESS);
  ASSERT_EQ(vm_deallocate(*task_, b, kPage), KERN_SUCCESS);
  vm_address_t d = 0;
  ASSERT_EQ(vm_allocate(*task_, &d, kPage, true), KERN_SUCCESS);
  EXPECT_EQ(d, b);
}

TEST_F(VmUserTest, AllocateAnywhereWithNoRoomIsNoSpace) {
  vm_address_t address = 0;
  EXPECT_EQ(vm_allocate(*task_, &address, (std::uint64_t{1} << 32) + 1, true),
            KERN_NO_SPACE);
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  EXPECT_EQ(vm_allocate(*task_, &address, std::uint64_t{1} << 32, true),
            KERN_NO_SPACE);
  EXPECT_EQ(vm_allocate(*task_, &address, ~std::uint64_t{0}, true),
            KERN_NO_SPACE);
}

TEST_F(VmUserTest, AllocateOneTebibyteCostsNothingUntilWritten) {
  MakeSystem(47, 0);
  vm_address_t address = 0;
  ASSERT_EQ(vm_allocate(*task_, &address, std::uint64_t{1} << 40, true),
            KERN_SUCCESS);
  EXPECT_EQ(system_->pages().live_pages(), 0u);
  ASSERT_EQ(Fill(address + (std::uint64_t{1} << 39), kPage, 7), KERN_SUCCESS);
  EXPECT_EQ(system_->pages().live_pages(), 1u);
  const TaskStatistics s = Stats();
  EXPECT_EQ(s.virtual_bytes, std::uint64_t{1} << 40);
  EXPECT_EQ(s.resident_bytes, kPage);
}

// --- vm_deallocate ---------------------------------------------------------

TEST_F(VmUserTest, DeallocateRoundsAndSplits) {
  ASSERT_EQ(Alloc(kBase, 4 * kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_deallocate(*task_, kBase + kPage + 5, 10), KERN_SUCCESS);
  EXPECT_EQ(Regions(),
            (std::vector<RegionInfo>{
                Region(kBase, kPage, VM_PROT_DEFAULT, VM_PROT_ALL, 1),
                Region(kBase + 2 * kPage, 2 * kPage, VM_PROT_DEFAULT,
                       VM_PROT_ALL, 1)}));
}

TEST_F(VmUserTest, DeallocateOfUnallocatedPartsIsFine) {
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  EXPECT_EQ(vm_deallocate(*task_, 0, kBase * 2), KERN_SUCCESS);
  EXPECT_TRUE(Regions().empty());
  EXPECT_EQ(vm_deallocate(*task_, kBase, kPage), KERN_SUCCESS);
  EXPECT_EQ(vm_deallocate(*task_, kBase, 0), KERN_SUCCESS);
}

TEST_F(VmUserTest, DeallocateOutsideTheSpaceOrWrappingIsInvalidAddress) {
  EXPECT_EQ(vm_deallocate(*task_, ~std::uint64_t{0} - 10, 20),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(vm_deallocate(*task_, std::uint64_t{1} << 32, kPage),
            KERN_INVALID_ADDRESS);
}

TEST_F(VmUserTest, DeallocateFreesThePages) {
  ASSERT_EQ(Alloc(kBase, 8 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, 8 * kPage, '1'), KERN_SUCCESS);
  EXPECT_EQ(system_->pages().live_pages(), 8u);
  ASSERT_EQ(vm_deallocate(*task_, kBase + 2 * kPage, 3 * kPage), KERN_SUCCESS);
  EXPECT_EQ(system_->pages().live_pages(), 5u);
  // Allocating the hole again gives zeros, not the old bytes.
  ASSERT_EQ(Alloc(kBase + 2 * kPage, 3 * kPage), KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 8), "11000111");
}

// --- vm_protect ------------------------------------------------------------

TEST_F(VmUserTest, ProtectChangesCurrentAndSplits) {
  ASSERT_EQ(Alloc(kBase, 3 * kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(*task_, kBase + kPage, kPage, false, VM_PROT_READ),
            KERN_SUCCESS);
  EXPECT_EQ(Regions(), (std::vector<RegionInfo>{
                           Region(kBase, kPage, 3, 7, 1),
                           Region(kBase + kPage, kPage, 1, 7, 1),
                           Region(kBase + 2 * kPage, kPage, 3, 7, 1)}));
  // Back to rw-: one region again.
  ASSERT_EQ(vm_protect(*task_, kBase + kPage, kPage, false, VM_PROT_DEFAULT),
            KERN_SUCCESS);
  EXPECT_EQ(Regions(),
            (std::vector<RegionInfo>{Region(kBase, 3 * kPage, 3, 7, 1)}));
  EXPECT_EQ(Stats().regions, 1u);
}

TEST_F(VmUserTest, ProtectBadBitsIsInvalidArgument) {
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  EXPECT_EQ(vm_protect(*task_, kBase, kPage, false, 8), KERN_INVALID_ARGUMENT);
  // Argument checks come before bounds and holes.
  EXPECT_EQ(vm_protect(*task_, 0, kPage, true, 0x10), KERN_INVALID_ARGUMENT);
}

TEST_F(VmUserTest, ProtectOfAHoleIsInvalidAddress) {
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  ASSERT_EQ(Alloc(kBase + 2 * kPage, kPage), KERN_SUCCESS);
  EXPECT_EQ(vm_protect(*task_, kBase, 3 * kPage, false, VM_PROT_READ),
            KERN_INVALID_ADDRESS);
  // All or nothing: the first page kept rw-.
  EXPECT_EQ(Regions()[0].protection, VM_PROT_DEFAULT);
}

TEST_F(VmUserTest, ProtectAboveMaximumIsProtectionFailure) {
  ASSERT_EQ(Alloc(kBase, 2 * kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(*task_, kBase + kPage, kPage, true, VM_PROT_READ),
            KERN_SUCCESS);
  EXPECT_EQ(vm_protect(*task_, kBase, 2 * kPage, false, VM_PROT_DEFAULT),
            KERN_PROTECTION_FAILURE);
  EXPECT_EQ(Regions()[1].protection, VM_PROT_READ);
}

TEST_F(VmUserTest, ProtectLowestOffendingPageDecides) {
  // Page 0 rw-/r--, page 1 a hole: the maximum violation comes first.
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(*task_, kBase, kPage, true, VM_PROT_READ), KERN_SUCCESS);
  EXPECT_EQ(vm_protect(*task_, kBase, 2 * kPage, false, VM_PROT_WRITE),
            KERN_PROTECTION_FAILURE);
  // A hole below a maximum violation: the hole comes first.
  ASSERT_EQ(Alloc(kBase + 2 * kPage, kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(*task_, kBase + 2 * kPage, kPage, true, VM_PROT_READ),
            KERN_SUCCESS);
  EXPECT_EQ(vm_protect(*task_, kBase + kPage, 2 * kPage, false, VM_PROT_WRITE),
            KERN_INVALID_ADDRESS);
}

TEST_F(VmUserTest, ProtectMaximumLowersAndIntersectsCurrent) {
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  ASSERT_EQ(
      vm_protect(*task_, kBase, kPage, true, VM_PROT_READ | VM_PROT_EXECUTE),
      KERN_SUCCESS);
  EXPECT_EQ(Regions()[0], Region(kBase, kPage, VM_PROT_READ,
                                 VM_PROT_READ | VM_PROT_EXECUTE, 1));
  // Raising the maximum fails, lowering further works.
  EXPECT_EQ(vm_protect(*task_, kBase, kPage, true, VM_PROT_ALL),
            KERN_PROTECTION_FAILURE);
  EXPECT_EQ(vm_protect(*task_, kBase, kPage, false, VM_PROT_WRITE),
            KERN_PROTECTION_FAILURE);
  EXPECT_EQ(vm_protect(*task_, kBase, kPage, false, VM_PROT_EXECUTE),
            KERN_SUCCESS);
  EXPECT_EQ(vm_protect(*task_, kBase, kPage, true, VM_PROT_NONE), KERN_SUCCESS);
  EXPECT_EQ(Regions()[0], Region(kBase, kPage, 0, 0, 1));
}

TEST_F(VmUserTest, ProtectRoundsItsRange) {
  ASSERT_EQ(Alloc(kBase, 2 * kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(*task_, kBase + 10, 1, false, VM_PROT_READ),
            KERN_SUCCESS);
  EXPECT_EQ(Regions()[0], Region(kBase, kPage, VM_PROT_READ, 7, 1));
}

// --- vm_inherit ------------------------------------------------------------

TEST_F(VmUserTest, InheritChecksValueThenHoles) {
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  EXPECT_EQ(vm_inherit(*task_, kBase, kPage, 3), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_inherit(*task_, kBase, 2 * kPage, VM_INHERIT_SHARE),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(Regions()[0].inheritance, VM_INHERIT_COPY);
  EXPECT_EQ(vm_inherit(*task_, kBase, kPage, VM_INHERIT_NONE), KERN_SUCCESS);
  EXPECT_EQ(Regions()[0].inheritance, VM_INHERIT_NONE);
}

// --- vm_region -------------------------------------------------------------

TEST_F(VmUserTest, RegionFindsHoldingOrNextAndMergesRuns) {
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  ASSERT_EQ(Alloc(kBase + kPage, kPage), KERN_SUCCESS);  // merges: equal attrs
  ASSERT_EQ(Alloc(kBase + 4 * kPage, kPage), KERN_SUCCESS);
  RegionInfo info;
  vm_address_t address = kBase + kPage + 7;
  ASSERT_EQ(vm_region(*task_, &address, &info), KERN_SUCCESS);
  EXPECT_EQ(address, kBase);
  EXPECT_EQ(info.size, 2 * kPage);
  address = kBase + 2 * kPage;
  ASSERT_EQ(vm_region(*task_, &address, &info), KERN_SUCCESS);
  EXPECT_EQ(address, kBase + 4 * kPage);
  address = kBase + 5 * kPage;
  EXPECT_EQ(vm_region(*task_, &address, &info), KERN_NO_SPACE);
}

TEST_F(VmUserTest, RegionMergesPartsOfDifferentObjects) {
  // Two regions with equal attributes that come from different objects (a
  // copy-from with dst_alloc next to an allocation) still show as one run.
  std::shared_ptr<Task> other;
  other = Created(task_create(*system_, "o"));
  ASSERT_NE(other, nullptr);
  ASSERT_EQ(Alloc(kBase, kPage, other.get()), KERN_SUCCESS);
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  ASSERT_EQ(
      vm_map_copy(*task_, kBase + kPage, *other, kBase, kPage, true, false),
      KERN_SUCCESS);
  EXPECT_EQ(Regions(),
            (std::vector<RegionInfo>{Region(kBase, 2 * kPage, 3, 7, 1)}));
}

// --- vm_read / vm_write ----------------------------------------------------

TEST_F(VmUserTest, ReadAndWriteNeedAlignment) {
  ASSERT_EQ(Alloc(kBase, 2 * kPage), KERN_SUCCESS);
  char buf[2 * kPage];
  EXPECT_EQ(
      vm_read(*task_, kBase + 1, std::as_writable_bytes(std::span(buf, kPage))),
      KERN_INVALID_ARGUMENT);
  EXPECT_EQ(
      vm_read(*task_, kBase, std::as_writable_bytes(std::span(buf, kPage - 1))),
      KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_write(*task_, kBase + 512, buf, kPage), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_write(*task_, kBase, buf, 100), KERN_INVALID_ARGUMENT);
  // Alignment is checked before bounds.
  EXPECT_EQ(vm_read(*task_, ~std::uint64_t{0},
                    std::as_writable_bytes(std::span(buf, kPage))),
            KERN_INVALID_ARGUMENT);
}

TEST_F(VmUserTest, ZeroSizeReadAndWriteSucceedAnywhere) {
  char buf[1];
  EXPECT_EQ(vm_read(*task_, 0, std::as_writable_bytes(std::span(buf, 0))),
            KERN_SUCCESS);
  EXPECT_EQ(vm_write(*task_, std::uint64_t{1} << 40, buf, 0), KERN_SUCCESS);
}

TEST_F(VmUserTest, UnwrittenMemoryReadsAsZeros) {
  ASSERT_EQ(Alloc(kBase, 3 * kPage), KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 3), "000");
  EXPECT_EQ(system_->pages().live_pages(), 0u);
}

TEST_F(VmUserTest, ReadOfAHoleOrOutsideIsInvalidAddress) {
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  std::vector<char> buf(2 * kPage);
  EXPECT_EQ(vm_read(*task_, kBase,
                    std::as_writable_bytes(std::span(buf.data(), 2 * kPage))),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(vm_read(*task_, std::uint64_t{1} << 32,
                    std::as_writable_bytes(std::span(buf.data(), kPage))),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(vm_read(*task_, (std::uint64_t{1} << 32) - kPage,
                    std::as_writable_bytes(std::span(buf.data(), 2 * kPage))),
            KERN_INVALID_ADDRESS);
  // address + size wraps past 2^64.
  // (The buffer read takes its size from its buffer, so the pinned read
  // asks for a size no buffer has.)
  PinnedPages pinned;
  EXPECT_EQ(
      vm_read_pinned(*task_, kBase, ~std::uint64_t{0} - kPage + 1, &pinned),
      KERN_INVALID_ADDRESS);
}

TEST_F(VmUserTest, ReadLowestOffendingPageDecides) {
  ASSERT_EQ(Alloc(kBase, 2 * kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(*task_, kBase, kPage, false, VM_PROT_NONE),
            KERN_SUCCESS);
  std::vector<char> buf(3 * kPage);
  // Unreadable page below a hole: protection failure.
  EXPECT_EQ(vm_read(*task_, kBase,
                    std::as_writable_bytes(std::span(buf.data(), 3 * kPage))),
            KERN_PROTECTION_FAILURE);
  // Hole below an unreadable page: invalid address.
  EXPECT_EQ(vm_read(*task_, kBase - kPage,
                    std::as_writable_bytes(std::span(buf.data(), 2 * kPage))),
            KERN_INVALID_ADDRESS);
}

TEST_F(VmUserTest, WriteNeedsWritePermissionAndIsAllOrNothing) {
  ASSERT_EQ(Alloc(kBase, 3 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, 3 * kPage, 'a'), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(*task_, kBase + 2 * kPage, kPage, false, VM_PROT_READ),
            KERN_SUCCESS);
  EXPECT_EQ(Fill(kBase, 3 * kPage, 'b'), KERN_PROTECTION_FAILURE);
  EXPECT_EQ(Pages(kBase, 3), "aaa");
  EXPECT_EQ(Fill(kBase, 4 * kPage, 'b'), KERN_PROTECTION_FAILURE);
  EXPECT_EQ(Fill(kBase + kPage, kPage, 'b'), KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 3), "aba");
}

TEST_F(VmUserTest, ExecuteOnlyIsNotReadable) {
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(*task_, kBase, kPage, false, VM_PROT_EXECUTE),
            KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 1), "");
  EXPECT_EQ(Fill(kBase, kPage, 1), KERN_PROTECTION_FAILURE);
}

TEST_F(VmUserTest, PinnedReadIsASnapshot) {
  ASSERT_EQ(Alloc(kBase, 2 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, 2 * kPage, 'a'), KERN_SUCCESS);
  PinnedPages pinned;
  ASSERT_EQ(vm_read_pinned(*task_, kBase, 2 * kPage, &pinned), KERN_SUCCESS);
  EXPECT_EQ(pinned.size(), 2 * kPage);
  ASSERT_EQ(Fill(kBase, 2 * kPage, 'b'), KERN_SUCCESS);
  ASSERT_EQ(vm_deallocate(*task_, kBase, 2 * kPage), KERN_SUCCESS);
  std::vector<char> copy(2 * kPage);
  pinned.CopyTo(copy.data());
  EXPECT_EQ(copy, std::vector<char>(2 * kPage, 'a'));
  pinned.Release();
  EXPECT_EQ(system_->pages().live_pages(), 0u);
}

TEST_F(VmUserTest, PinnedReadMergesAdjacentPages) {
  ASSERT_EQ(Alloc(kBase, 64 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, 64 * kPage, 'x'), KERN_SUCCESS);
  PinnedPages pinned;
  ASSERT_EQ(vm_read_pinned(*task_, kBase, 64 * kPage, &pinned), KERN_SUCCESS);
  EXPECT_LE(pinned.iov().size(), 2u);
  ASSERT_EQ(Alloc(kBase + 64 * kPage, 64 * kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_read_pinned(*task_, kBase + 64 * kPage, 64 * kPage, &pinned),
            KERN_SUCCESS);
  EXPECT_EQ(pinned.iov().size(), 64u);  // zero page repeated
}

TEST_F(VmUserTest, ProtectionOfAPageNeverDecidesWhatAReadSees) {
  // A write-only page can be written but not read.
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(*task_, kBase, kPage, false, VM_PROT_WRITE),
            KERN_SUCCESS);
  EXPECT_EQ(Fill(kBase, kPage, 'w'), KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 1), "");
  ASSERT_EQ(vm_protect(*task_, kBase, kPage, false, VM_PROT_READ),
            KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 1), "w");
}

// --- vm_copy ---------------------------------------------------------------

TEST_F(VmUserTest, CopyChecksArgumentsThenBoundsThenSourceThenDest) {
  ASSERT_EQ(Alloc(kBase, 2 * kPage), KERN_SUCCESS);
  // Unaligned destination beats an out-of-bounds source.
  EXPECT_EQ(vm_copy(*task_, ~std::uint64_t{0} & ~(kPage - 1), kPage, 1),
            KERN_INVALID_ARGUMENT);
  // Out-of-bounds destination beats a source hole.
  EXPECT_EQ(vm_copy(*task_, 0, kPage, std::uint64_t{1} << 32),
            KERN_INVALID_ADDRESS);
  // A source hole beats an unwritable destination.
  ASSERT_EQ(vm_protect(*task_, kBase + kPage, kPage, false, VM_PROT_READ),
            KERN_SUCCESS);
  EXPECT_EQ(vm_copy(*task_, 0, kPage, kBase + kPage), KERN_INVALID_ADDRESS);
  // An unreadable source beats a destination hole.
  ASSERT_EQ(vm_protect(*task_, kBase, kPage, false, VM_PROT_WRITE),
            KERN_SUCCESS);
  EXPECT_EQ(vm_copy(*task_, kBase, kPage, 0), KERN_PROTECTION_FAILURE);
  // Then the destination.
  ASSERT_EQ(vm_protect(*task_, kBase, kPage, false, VM_PROT_READ),
            KERN_SUCCESS);
  EXPECT_EQ(vm_copy(*task_, kBase, kPage, 0), KERN_INVALID_ADDRESS);
  EXPECT_EQ(vm_copy(*task_, kBase, kPage, kBase + kPage),
            KERN_PROTECTION_FAILURE);
  EXPECT_EQ(vm_copy(*task_, kBase, 0, 0), KERN_SUCCESS);
}

TEST_F(VmUserTest, CopyOverlappingForwardAndBackward) {
  ASSERT_EQ(Alloc(kBase, 6 * kPage), KERN_SUCCESS);
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(Fill(kBase + i * kPage, kPage, 'a' + i), KERN_SUCCESS);
  }
  ASSERT_EQ(vm_copy(*task_, kBase, 4 * kPage, kBase + 2 * kPage), KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 6), "ababcd");
  ASSERT_EQ(vm_copy(*task_, kBase + 2 * kPage, 4 * kPage, kBase), KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 6), "abcdcd");
}

TEST_F(VmUserTest, CopyIsCopyOnWriteBothWays) {
  ASSERT_EQ(Alloc(kBase, 4 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, 2 * kPage, 's'), KERN_SUCCESS);
  ASSERT_EQ(vm_copy(*task_, kBase, 2 * kPage, kBase + 2 * kPage), KERN_SUCCESS);
  // No new memory for the copy; both pages now shared.
  EXPECT_EQ(system_->pages().live_pages(), 2u);
  TaskStatistics s = Stats();
  EXPECT_EQ(s.resident_bytes, 2 * kPage);
  EXPECT_EQ(s.shared_bytes, 2 * kPage);
  ASSERT_EQ(Fill(kBase, kPage, 'x'), KERN_SUCCESS);              // source side
  ASSERT_EQ(Fill(kBase + 3 * kPage, kPage, 'y'), KERN_SUCCESS);  // copy side
  EXPECT_EQ(Pages(kBase, 4), "xssy");
  s = Stats();
  EXPECT_EQ(s.resident_bytes, 4 * kPage);
  EXPECT_EQ(s.shared_bytes, 0u);
}

TEST_F(VmUserTest, CopyOfUnwrittenMemoryClearsTheDestination) {
  ASSERT_EQ(Alloc(kBase, 2 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase + kPage, kPage, 'd'), KERN_SUCCESS);
  ASSERT_EQ(vm_copy(*task_, kBase, kPage, kBase + kPage), KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 2), "00");
  EXPECT_EQ(system_->pages().live_pages(), 0u);
}

TEST_F(VmUserTest, CopyAcrossRegionsKeepsDestinationAttributes) {
  ASSERT_EQ(Alloc(kBase, 2 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Alloc(kBase + 4 * kPage, 2 * kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(*task_, kBase, 2 * kPage, false, VM_PROT_ALL),
            KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, 2 * kPage, 'q'), KERN_SUCCESS);
  ASSERT_EQ(vm_copy(*task_, kBase, 2 * kPage, kBase + 4 * kPage), KERN_SUCCESS);
  EXPECT_EQ(Regions()[1].protection, VM_PROT_DEFAULT);
  EXPECT_EQ(Pages(kBase + 4 * kPage, 2), "qq");
}

// --- vm_map_copy -----------------------------------------------------------

class MapCopyTest : public VmUserTest {
 protected:
  void SetUp() override {
    VmUserTest::SetUp();
    src_ = Created(task_create(*system_, "src"));
    ASSERT_NE(src_, nullptr);
    ASSERT_EQ(Alloc(kBase, 3 * kPage, src_.get()), KERN_SUCCESS);
    ASSERT_EQ(Fill(kBase, 3 * kPage, 'm', src_.get()), KERN_SUCCESS);
    ASSERT_EQ(vm_protect(*src_, kBase + 2 * kPage, kPage, false, VM_PROT_READ),
              KERN_SUCCESS);
  }
  std::shared_ptr<Task> src_;
};

TEST_F(MapCopyTest, CopiesIntoAllocatedWritableMemory) {
  ASSERT_EQ(Alloc(kBase, 3 * kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_map_copy(*task_, kBase, *src_, kBase, 3 * kPage, false, false),
            KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 3), "mmm");
  // Copy-on-write across tasks, both ways.
  ASSERT_EQ(Fill(kBase, kPage, 'd'), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase + kPage, kPage, 's', src_.get()), KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 3), "dmm");
  EXPECT_EQ(Pages(kBase, 3, src_.get()), "msm");
}

TEST_F(MapCopyTest, WithoutAllocTheDestinationMustBeAllocatedAndWritable) {
  EXPECT_EQ(vm_map_copy(*task_, kBase, *src_, kBase, kPage, false, false),
            KERN_INVALID_ADDRESS);
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(*task_, kBase, kPage, false, VM_PROT_READ),
            KERN_SUCCESS);
  EXPECT_EQ(vm_map_copy(*task_, kBase, *src_, kBase, kPage, false, false),
            KERN_PROTECTION_FAILURE);
}

TEST_F(MapCopyTest, DstAllocMakesRegionsWithTheSourcesAttributes) {
  ASSERT_EQ(
      vm_map_copy(*task_, 2 * kBase, *src_, kBase, 3 * kPage, true, false),
      KERN_SUCCESS);
  EXPECT_EQ(Regions(), (std::vector<RegionInfo>{
                           Region(2 * kBase, 2 * kPage, 3, 7, 1),
                           Region(2 * kBase + 2 * kPage, kPage, 1, 7, 1)}));
  EXPECT_EQ(Pages(2 * kBase, 3), "mmm");
}

TEST_F(MapCopyTest, DstAllocOntoAUsedRangeIsNoSpace) {
  ASSERT_EQ(Alloc(2 * kBase + 2 * kPage, kPage), KERN_SUCCESS);
  EXPECT_EQ(
      vm_map_copy(*task_, 2 * kBase, *src_, kBase, 3 * kPage, true, false),
      KERN_NO_SPACE);
  EXPECT_EQ(Regions().size(), 1u);
  // The source is checked first.
  EXPECT_EQ(vm_map_copy(*task_, 2 * kBase, *src_, 0, kPage, true, false),
            KERN_INVALID_ADDRESS);
}

TEST_F(MapCopyTest, SrcDestroyDeallocatesTheSource) {
  ASSERT_EQ(vm_map_copy(*task_, kBase, *src_, kBase, 2 * kPage, true, true),
            KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 2), "mm");
  EXPECT_EQ(
      Regions(src_.get()),
      (std::vector<RegionInfo>{Region(kBase + 2 * kPage, kPage, 1, 7, 1)}));
  // The pages moved: nothing was copied.
  EXPECT_EQ(system_->pages().live_pages(), 3u);
  EXPECT_EQ(Stats().shared_bytes, 0u);
}

TEST_F(MapCopyTest, FailureChangesNothing) {
  EXPECT_EQ(vm_map_copy(*task_, kBase, *src_, kBase, 4 * kPage, true, true),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(Regions().size(), 0u);
  EXPECT_EQ(Regions(src_.get()).size(), 2u);
}

TEST_F(MapCopyTest, WithinOneTask) {
  ASSERT_EQ(vm_map_copy(*src_, 2 * kBase, *src_, kBase, kPage, true, false),
            KERN_SUCCESS);
  EXPECT_EQ(Pages(2 * kBase, 1, src_.get()), "m");
}

// [0,2P) onto [P,3P) with src_destroy in one task: [P,3P) holds what [0,2P)
// held, and [0,P) is deallocated.
TEST_F(MapCopyTest, SrcDestroyOntoAnOverlappingRangeIsAMove) {
  ASSERT_EQ(Alloc(kBase, 3 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, kPage, 'a'), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase + kPage, kPage, 'b'), KERN_SUCCESS);
  ASSERT_EQ(
      vm_map_copy(*task_, kBase + kPage, *task_, kBase, 2 * kPage, false, true),
      KERN_SUCCESS);
  EXPECT_EQ(
      Regions(),
      (std::vector<RegionInfo>{Region(kBase + kPage, 2 * kPage, 3, 7, 1)}));
  EXPECT_EQ(Pages(kBase + kPage, 2), "ab");
}

// --- fork ------------------------------------------------------------------

TEST_F(VmUserTest, ForkFollowsEachInheritance) {
  ASSERT_EQ(Alloc(kBase, 3 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, 3 * kPage, 'p'), KERN_SUCCESS);
  ASSERT_EQ(vm_inherit(*task_, kBase, kPage, VM_INHERIT_SHARE), KERN_SUCCESS);
  ASSERT_EQ(vm_inherit(*task_, kBase + 2 * kPage, kPage, VM_INHERIT_NONE),
            KERN_SUCCESS);
  std::shared_ptr<Task> child;
  child = Created(task_fork(*system_, *task_, "child"));
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(Regions(child.get()),
            (std::vector<RegionInfo>{Region(kBase, kPage, 3, 7, 0),
                                     Region(kBase + kPage, kPage, 3, 7, 1)}));
  EXPECT_EQ(Pages(kBase, 2, child.get()), "pp");
  // share: the same memory, both ways.
  ASSERT_EQ(Fill(kBase, kPage, 'c', child.get()), KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 1), "c");
  ASSERT_EQ(Fill(kBase, kPage, 'P'), KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 1, child.get()), "P");
  // copy: isolated both ways.
  ASSERT_EQ(Fill(kBase + kPage, kPage, 'c', child.get()), KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase + kPage, 1), "p");
  ASSERT_EQ(Fill(kBase + kPage, kPage, 'q'), KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase + kPage, 1, child.get()), "c");
}

TEST_F(VmUserTest, ShareRegionsStayShareAfterCopyOnWrite) {
  // A shared region whose page is also a copy-on-write source: a write
  // through either sharer replaces the page for both, never the copy.
  ASSERT_EQ(Alloc(kBase, 2 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, kPage, 'o'), KERN_SUCCESS);
  ASSERT_EQ(vm_inherit(*task_, kBase, kPage, VM_INHERIT_SHARE), KERN_SUCCESS);
  std::shared_ptr<Task> child;
  child = Created(task_fork(*system_, *task_, "child"));
  ASSERT_NE(child, nullptr);
  ASSERT_EQ(vm_copy(*task_, kBase, kPage, kBase + kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, kPage, 'n', child.get()), KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 2), "no");
  EXPECT_EQ(Pages(kBase, 1, child.get()), "n");
}

TEST_F(VmUserTest, ShareRegionZeroPagesAreSharedToo) {
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_inherit(*task_, kBase, kPage, VM_INHERIT_SHARE), KERN_SUCCESS);
  std::shared_ptr<Task> child;
  child = Created(task_fork(*system_, *task_, "child"));
  ASSERT_NE(child, nullptr);
  ASSERT_EQ(Fill(kBase, kPage, 'z', child.get()), KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 1), "z");
  TaskStatistics s = Stats();
  EXPECT_EQ(s.resident_bytes, kPage);
  EXPECT_EQ(s.shared_bytes, kPage);
  // After the child leaves, the page is no longer shared.
  ASSERT_EQ(task_terminate(*system_, *child), KERN_SUCCESS);
  EXPECT_EQ(Stats().shared_bytes, 0u);
  EXPECT_EQ(Pages(kBase, 1), "z");
}

TEST_F(VmUserTest, ForkOfAForkKeepsSnapshots) {
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, kPage, '1'), KERN_SUCCESS);
  std::shared_ptr<Task> a, b;
  a = Created(task_fork(*system_, *task_, "a"));
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(Fill(kBase, kPage, '2'), KERN_SUCCESS);
  b = Created(task_fork(*system_, *a, "b"));
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(Fill(kBase, kPage, '3', a.get()), KERN_SUCCESS);
  EXPECT_EQ(Pages(kBase, 1), "2");
  EXPECT_EQ(Pages(kBase, 1, a.get()), "3");
  EXPECT_EQ(Pages(kBase, 1, b.get()), "1");
  EXPECT_EQ(system_->pages().live_pages(), 3u);
}

// --- tasks -----------------------------------------------------------------

TEST_F(VmUserTest, TaskNamesAreChecked) {
  EXPECT_EQ(task_create(*system_, "").code(), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(task_create(*system_, ".hidden").code(), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(task_create(*system_, "host_page_size").code(),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(task_create(*system_, "a/b").code(), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(task_create(*system_, std::string(65, 'n')).code(),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(task_create(*system_, std::string(64, 'n')).code(), KERN_SUCCESS);
  EXPECT_EQ(task_create(*system_, "t").code(), KERN_NAME_EXISTS);
  EXPECT_EQ(task_fork(*system_, *task_, "t").code(), KERN_NAME_EXISTS);
}

TEST_F(VmUserTest, TaskIdsCountUpAndAreNotReused) {
  std::shared_ptr<Task> a, b;
  a = Created(task_create(*system_, "a"));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->id(), task_->id() + 1);
  ASSERT_EQ(task_terminate(*system_, *a), KERN_SUCCESS);
  b = Created(task_create(*system_, "a"));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->id(), task_->id() + 2);
  EXPECT_EQ(system_->FindTask("a"), b);
  EXPECT_EQ(system_->FindTask(a->id()), nullptr);
}

TEST_F(VmUserTest, MaxTasksIsResourceShortage) {
  std::shared_ptr<Task> t;
  for (int i = 1; i < 8; ++i) {
    std::string name = "t";
    name += std::to_string(i);
    t = Created(task_create(*system_, name));
    ASSERT_NE(t, nullptr);
  }
  EXPECT_EQ(task_create(*system_, "one-too-many").code(),
            KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(task_fork(*system_, *task_, "one-too-many").code(),
            KERN_RESOURCE_SHORTAGE);
}

TEST_F(VmUserTest, TerminatedTaskIsInvalidTaskAndFreesMemory) {
  ASSERT_EQ(Alloc(kBase, 4 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, 4 * kPage, 'x'), KERN_SUCCESS);
  ASSERT_EQ(task_terminate(*system_, *task_), KERN_SUCCESS);
  EXPECT_EQ(system_->pages().live_pages(), 0u);
  char buf[kPage];
  vm_address_t address = kBase;
  RegionInfo info;
  EXPECT_EQ(
      vm_read(*task_, kBase, std::as_writable_bytes(std::span(buf, kPage))),
      KERN_INVALID_TASK);
  EXPECT_EQ(vm_write(*task_, kBase, buf, kPage), KERN_INVALID_TASK);
  EXPECT_EQ(vm_allocate(*task_, &address, kPage, true), KERN_INVALID_TASK);
  EXPECT_EQ(vm_region(*task_, &address, &info), KERN_INVALID_TASK);
  EXPECT_EQ(task_statistics(*task_).code(), KERN_INVALID_TASK);
  EXPECT_EQ(task_fork(*system_, *task_, "child").code(), KERN_INVALID_TASK);
  EXPECT_EQ(task_terminate(*system_, *task_), KERN_INVALID_TASK);
  EXPECT_EQ(system_->FindTask("t"), nullptr);
}

// --- memory limit ----------------------------------------------------------

TEST_F(VmUserTest, MemoryLimitRefusesWritesAndChangesNothing) {
  MakeSystem(32, 4 * kPage);
  ASSERT_EQ(Alloc(kBase, 8 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, 3 * kPage, 'a'), KERN_SUCCESS);
  EXPECT_EQ(Fill(kBase + 2 * kPage, 3 * kPage, 'b'), KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(Pages(kBase, 5), "aaa00");
  // Rewriting written pages needs no memory.
  EXPECT_EQ(Fill(kBase, 3 * kPage, 'c'), KERN_SUCCESS);
  EXPECT_EQ(Fill(kBase + 3 * kPage, kPage, 'd'), KERN_SUCCESS);
  EXPECT_EQ(Fill(kBase + 4 * kPage, kPage, 'e'), KERN_RESOURCE_SHORTAGE);
  // Freeing makes room again.
  ASSERT_EQ(vm_deallocate(*task_, kBase, kPage), KERN_SUCCESS);
  EXPECT_EQ(Fill(kBase + 4 * kPage, kPage, 'e'), KERN_SUCCESS);
}

TEST_F(VmUserTest, MemoryLimitCountsCopyOnWriteBreaks) {
  MakeSystem(32, 2 * kPage);
  ASSERT_EQ(Alloc(kBase, 4 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, 2 * kPage, 'a'), KERN_SUCCESS);
  // A virtual copy needs no memory even at the limit...
  ASSERT_EQ(vm_copy(*task_, kBase, 2 * kPage, kBase + 2 * kPage), KERN_SUCCESS);
  // ...but breaking the sharing does.
  EXPECT_EQ(Fill(kBase + 2 * kPage, kPage, 'b'), KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(Pages(kBase, 4), "aaaa");
}

// At the limit, a page whose only other reference is a reader's pin is
// copied from the pin reserve: the write neither waits for the pin nor is
// refused, and the reader keeps the old bytes.
TEST_F(VmUserTest, MemoryLimitCopiesAReadersPinnedPageFromThePinReserve) {
  MakeSystem(32, 2 * kPage, kPage, /*pin_reserve=*/kPage);
  ASSERT_EQ(Alloc(kBase, 4 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, 2 * kPage, 'a'), KERN_SUCCESS);
  PinnedPages pinned;
  ASSERT_EQ(vm_read_pinned(*task_, kBase, kPage, &pinned), KERN_SUCCESS);
  // Still refused when the pin is not all that is in the way: a new page,
  // or a rewrite of the pinned page that also needs a new page.
  EXPECT_EQ(Fill(kBase + 2 * kPage, kPage, 'x'), KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(Fill(kBase, 3 * kPage, 'x'), KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(Pages(kBase, 3), "aa0");
  EXPECT_EQ(system_->budget().pin_reserve_used(), 0u);

  EXPECT_EQ(Fill(kBase, kPage, 'b'), KERN_SUCCESS);
  EXPECT_EQ(system_->pages().live_pages(), 3u);  // past the page limit
  EXPECT_EQ(system_->budget().pin_reserve_used(), kPage);
  std::vector<char> view(kPage);
  pinned.CopyTo(view.data());
  EXPECT_EQ(std::string(view.data(), kPage), std::string(kPage, 'a'));
  EXPECT_EQ(Pages(kBase, 3), "ba0");
  pinned.Release();
  EXPECT_EQ(system_->pages().live_pages(), 2u);
  EXPECT_EQ(system_->budget().pin_reserve_used(), 0u);
  EXPECT_EQ(Fill(kBase + 2 * kPage, kPage, 'x'), KERN_RESOURCE_SHORTAGE);
}

TEST_F(VmUserTest, MemoryLimitRefusesAPinnedCopyWithoutAPinReserve) {
  MakeSystem(32, 2 * kPage, kPage, /*pin_reserve=*/0);
  ASSERT_EQ(Alloc(kBase, 4 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, 2 * kPage, 'a'), KERN_SUCCESS);
  PinnedPages pinned;
  ASSERT_EQ(vm_read_pinned(*task_, kBase, kPage, &pinned), KERN_SUCCESS);
  EXPECT_EQ(Fill(kBase, kPage, 'b'), KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(Pages(kBase, 2), "aa");
  std::vector<char> view(kPage);
  pinned.CopyTo(view.data());
  EXPECT_EQ(view[0], 'a');
  pinned.Release();
  EXPECT_EQ(Fill(kBase, kPage, 'b'), KERN_SUCCESS);
}

// --- vm_load / vm_fill -----------------------------------------------------

TEST_F(VmUserTest, LoadIgnoresProtectionAndAlignment) {
  ASSERT_EQ(Alloc(kBase, 2 * kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(*task_, kBase, 2 * kPage, true, VM_PROT_READ),
            KERN_SUCCESS);
  const char text[] = "hello";
  ASSERT_EQ(vm_load(*task_, kBase + kPage - 2, text, 5), KERN_SUCCESS);
  std::vector<char> buf(2 * kPage);
  ASSERT_EQ(vm_read(*task_, kBase,
                    std::as_writable_bytes(std::span(buf.data(), 2 * kPage))),
            KERN_SUCCESS);
  EXPECT_EQ(std::string(buf.data() + kPage - 2, 5), "hello");
  EXPECT_EQ(buf[0], 0);
  EXPECT_EQ(vm_fill(*task_, kBase + kPage, 2 * kPage, 1), KERN_INVALID_ADDRESS);
  EXPECT_EQ(vm_fill(*task_, kBase + 1, 10, 'f'), KERN_SUCCESS);
  ASSERT_EQ(vm_read(*task_, kBase,
                    std::as_writable_bytes(std::span(buf.data(), kPage))),
            KERN_SUCCESS);
  EXPECT_EQ(std::string(buf.data(), 12), std::string("\0ffffffffff\0", 12));
}

// --- SEEK_DATA / SEEK_HOLE -------------------------------------------------

TEST_F(VmUserTest, FindDataAndHole) {
  ASSERT_EQ(Alloc(kBase, 2 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Alloc(kBase + 2 * kPage, kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(*task_, kBase + 2 * kPage, kPage, false, 0),
            KERN_SUCCESS);
  auto found = [](KernResult<vm_address_t> r) {
    EXPECT_EQ(r.code(), KERN_SUCCESS);
    return r.ok() ? r.value() : ~vm_address_t{0};
  };
  EXPECT_EQ(found(vm_find_data(*task_, 0)), kBase);
  EXPECT_EQ(found(vm_find_data(*task_, kBase + 5)), kBase + 5);
  EXPECT_EQ(vm_find_data(*task_, kBase + 3 * kPage).code(), KERN_NO_SPACE);
  // Across regions of other attributes.
  EXPECT_EQ(found(vm_find_hole(*task_, kBase)), kBase + 3 * kPage);
  EXPECT_EQ(found(vm_find_hole(*task_, 7)), 7u);
  const vm_address_t limit = std::uint64_t{1} << 32;
  ASSERT_EQ(Alloc(limit - kPage, kPage), KERN_SUCCESS);
  EXPECT_EQ(found(vm_find_hole(*task_, limit - kPage)), limit);
}

// --- page sizes ------------------------------------------------------------

TEST_F(VmUserTest, SixtyFourKibPages) {
  MakeSystem(32, 0, 65536);
  vm_address_t address = 0;
  ASSERT_EQ(vm_allocate(*task_, &address, 1, true), KERN_SUCCESS);
  std::vector<char> buf(65536, 'k');
  EXPECT_EQ(vm_write(*task_, address, buf.data(), kPage),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_write(*task_, address, buf.data(), 65536), KERN_SUCCESS);
  EXPECT_EQ(Stats().virtual_bytes, 65536u);
}

// --- the change time (Task::changed) --------------------------------------

bool Later(const timespec& a, const timespec& b) {
  return a.tv_sec != b.tv_sec ? a.tv_sec > b.tv_sec : a.tv_nsec > b.tv_nsec;
}
bool Same(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}
// Waits until the real-time clock is past t, so that a change noted after
// it is later than t (the clock's resolution may be coarse).
void PassClock(const timespec& t) {
  timespec now;
  do {
    clock_gettime(CLOCK_REALTIME, &now);
  } while (!Later(now, t));
}

TEST_F(VmUserTest, EveryChangingCallMovesTheChangeTime) {
  auto other = Created(task_create(*system_, "other"));
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(Same(task_->changed(), task_->created()));
  const auto expect_moves = [&](Task& task, const char* call, auto&& body) {
    const timespec before = task.changed();
    PassClock(before);
    ASSERT_EQ(body(), KERN_SUCCESS) << call;
    EXPECT_TRUE(Later(task.changed(), before)) << call;
  };
  expect_moves(*task_, "allocate", [&] { return Alloc(kBase, 4 * kPage); });
  vm_address_t anywhere = 0;
  expect_moves(*task_, "allocate anywhere",
               [&] { return vm_allocate(*task_, &anywhere, kPage, true); });
  expect_moves(*task_, "write", [&] { return Fill(kBase, kPage, 'a'); });
  expect_moves(*task_, "copy",
               [&] { return vm_copy(*task_, kBase, kPage, kBase + kPage); });
  expect_moves(*task_, "fill",
               [&] { return vm_fill(*task_, kBase + 3, 10, 'b'); });
  const char data[] = "loaded";
  expect_moves(*task_, "load",
               [&] { return vm_load(*task_, kBase + 5, data, sizeof data); });
  expect_moves(*task_, "protect", [&] {
    return vm_protect(*task_, kBase, kPage, false, VM_PROT_READ);
  });
  expect_moves(*task_, "inherit", [&] {
    return vm_inherit(*task_, kBase, kPage, VM_INHERIT_SHARE);
  });
  expect_moves(*task_, "deallocate",
               [&] { return vm_deallocate(*task_, kBase + 3 * kPage, kPage); });
  expect_moves(*other, "map_copy into the destination", [&] {
    return vm_map_copy(*other, kBase, *task_, kBase, kPage, true, false);
  });
  expect_moves(*task_, "map_copy with src_destroy, in the source", [&] {
    return vm_map_copy(*other, kBase + kPage, *task_, kBase + kPage, kPage,
                       true, true);
  });
}

TEST_F(VmUserTest, ReadsFailuresAndNoOpsLeaveTheChangeTime) {
  ASSERT_EQ(Alloc(kBase, 2 * kPage), KERN_SUCCESS);
  ASSERT_EQ(Fill(kBase, kPage, 'a'), KERN_SUCCESS);
  const timespec before = task_->changed();
  PassClock(before);
  std::vector<std::byte> buf(kPage);
  EXPECT_EQ(vm_read(*task_, kBase, buf), KERN_SUCCESS);
  vm_address_t address = kBase;
  RegionInfo info;
  EXPECT_EQ(vm_region(*task_, &address, &info), KERN_SUCCESS);
  EXPECT_EQ(Fill(kBase + kPage, 2 * kPage, 'b'), KERN_INVALID_ADDRESS);
  EXPECT_EQ(Alloc(kBase, kPage), KERN_NO_SPACE);
  EXPECT_EQ(vm_copy(*task_, kBase, kPage, kBase + 4 * kPage),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(Alloc(kBase + 8 * kPage, 0), KERN_SUCCESS);  // size 0: a no-op
  EXPECT_EQ(vm_deallocate(*task_, kBase, 0), KERN_SUCCESS);
  auto child = Created(task_fork(*system_, *task_, "child"));
  ASSERT_NE(child, nullptr);
  EXPECT_TRUE(Same(task_->changed(), before));
  // A fork's child was made now: that is its change time.
  EXPECT_TRUE(Same(child->changed(), child->created()));
  EXPECT_TRUE(Later(child->created(), before));
}

}  // namespace
}  // namespace taskfs::vm
