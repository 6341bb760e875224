// The XNU flavor of the Mach facade (docs/reference.md §5): vm_read,
// vm_write and vm_copy of any byte range, XNU's edge cases, as exact KERN_*
// codes and bytes.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "vmcore/pinned_pages.h"
#include "vmcore/vm_user.h"

namespace taskfs::vm {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kBase = 0x100000;

class VmUserXnuTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeSystem(Flavor::kXnu, 0); }

  void MakeSystem(Flavor flavor, std::uint64_t page_limit,
                  std::uint64_t memory_limit = 0) {
    task_.reset();
    system_.reset();
    VmConfig config;
    config.page_size = kPage;
    config.address_bits = 32;
    config.page_limit = page_limit;
    config.memory_limit = memory_limit;
    config.max_tasks = 8;
    config.flavor = flavor;
    system_ = std::make_unique<VmSystem>(config);
    KernResult<std::shared_ptr<Task>> task = task_create(*system_, "t");
    ASSERT_EQ(task.code(), KERN_SUCCESS);
    task_ = std::move(task).value();
  }

  KernReturn Alloc(vm_address_t address, vm_size_t size) {
    return vm_allocate(*task_, &address, size, false);
  }
  // Pages [kBase, kBase + pages * kPage) allocated, byte i of the range
  // holding Pattern(i).
  void Patterned(std::uint64_t pages) {
    ASSERT_EQ(Alloc(kBase, pages * kPage), KERN_SUCCESS);
    std::vector<unsigned char> data(pages * kPage);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = Pattern(i);
    ASSERT_EQ(vm_write(*task_, kBase, data.data(), data.size()), KERN_SUCCESS);
  }
  static unsigned char Pattern(std::size_t i) {
    return static_cast<unsigned char>(i * 7 + i / 251 + 1);
  }
  KernReturn Read(vm_address_t address, vm_size_t size,
                  std::vector<unsigned char>* out) {
    out->assign(size, 0xee);
    return vm_read(*task_, address, std::as_writable_bytes(std::span(*out)));
  }
  std::vector<unsigned char> All(std::uint64_t pages) {
    std::vector<unsigned char> out;
    EXPECT_EQ(Read(kBase, pages * kPage, &out), KERN_SUCCESS);
    return out;
  }

  std::unique_ptr<VmSystem> system_;
  std::shared_ptr<Task> task_;
};

TEST_F(VmUserXnuTest, ReadsAnyByteRange) {
  Patterned(4);
  // vm_allocation.c's size classes (1, 4095, 4097 bytes, pages) at offsets
  // 0, 1 and page - 1 within a page.
  for (const vm_size_t size :
       {vm_size_t{1}, kPage - 1, kPage, kPage + 1, 2 * kPage + 3}) {
    for (const vm_size_t offset : {vm_size_t{0}, vm_size_t{1}, kPage - 1}) {
      std::vector<unsigned char> got;
      ASSERT_EQ(Read(kBase + offset, size, &got), KERN_SUCCESS)
          << size << " at +" << offset;
      for (std::size_t i = 0; i < size; ++i) {
        ASSERT_EQ(got[i], Pattern(offset + i)) << size << " at +" << offset;
      }
    }
  }
}

TEST_F(VmUserXnuTest, PinnedReadShowsOnlyTheBytes) {
  Patterned(3);
  PinnedPages pinned;
  ASSERT_EQ(vm_read_pinned(*task_, kBase + kPage - 2, kPage + 5, &pinned),
            KERN_SUCCESS);
  EXPECT_EQ(pinned.size(), kPage + 5);
  const auto gather = [&] {
    std::vector<unsigned char> got;
    for (const iovec& v : pinned.iov()) {
      const unsigned char* p = static_cast<const unsigned char*>(v.iov_base);
      got.insert(got.end(), p, p + v.iov_len);
    }
    return got;
  };
  const std::vector<unsigned char> got = gather();
  ASSERT_EQ(got.size(), kPage + 5);
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i], Pattern(kPage - 2 + i)) << i;
  }
  // A snapshot: a later write does not show.
  const unsigned char x = 0;
  ASSERT_EQ(vm_write(*task_, kBase + kPage, &x, 1), KERN_SUCCESS);
  EXPECT_EQ(gather(), got);
}

TEST_F(VmUserXnuTest, WritesOnlyTheBytesGiven) {
  Patterned(3);
  const std::vector<unsigned char> data(kPage + 2, 0xab);
  ASSERT_EQ(vm_write(*task_, kBase + kPage - 1, data.data(), data.size()),
            KERN_SUCCESS);
  const std::vector<unsigned char> all = All(3);
  for (std::size_t i = 0; i < all.size(); ++i) {
    const bool written = i >= kPage - 1 && i < 2 * kPage + 1;
    ASSERT_EQ(all[i], written ? 0xab : Pattern(i)) << i;
  }
}

TEST_F(VmUserXnuTest, PartialWriteOfAnUnwrittenPageKeepsItsZeros) {
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  const unsigned char x = 9;
  ASSERT_EQ(vm_write(*task_, kBase + 100, &x, 1), KERN_SUCCESS);
  std::vector<unsigned char> want(kPage, 0);
  want[100] = 9;
  EXPECT_EQ(All(1), want);
}

TEST_F(VmUserXnuTest, PartialWriteOfACopyLeavesTheSourceAlone) {
  Patterned(2);
  ASSERT_EQ(Alloc(kBase + 4 * kPage, 2 * kPage), KERN_SUCCESS);
  // Whole pages: a virtual copy, as in the classic flavor.
  ASSERT_EQ(vm_copy(*task_, kBase, 2 * kPage, kBase + 4 * kPage), KERN_SUCCESS);
  const unsigned char x = 0;
  ASSERT_EQ(vm_write(*task_, kBase + 4 * kPage + 5, &x, 1), KERN_SUCCESS);
  std::vector<unsigned char> source, copy;
  ASSERT_EQ(Read(kBase, 2 * kPage, &source), KERN_SUCCESS);
  ASSERT_EQ(Read(kBase + 4 * kPage, 2 * kPage, &copy), KERN_SUCCESS);
  for (std::size_t i = 0; i < source.size(); ++i) {
    ASSERT_EQ(source[i], Pattern(i)) << i;
    ASSERT_EQ(copy[i], i == 5 ? 0 : Pattern(i)) << i;
  }
}

TEST_F(VmUserXnuTest, CopiesAnyByteRangeAsIfReadWholeFirst) {
  for (const std::int64_t shift :
       {std::int64_t{3}, std::int64_t{-3}, std::int64_t{kPage + 1}}) {
    SCOPED_TRACE(shift);
    MakeSystem(Flavor::kXnu, 0);
    Patterned(4);
    const vm_address_t source = kBase + kPage - 1;
    const vm_size_t size = kPage + 2;
    const vm_address_t dest = source + shift;
    ASSERT_EQ(vm_copy(*task_, source, size, dest), KERN_SUCCESS);
    std::vector<unsigned char> want(4 * kPage);
    for (std::size_t i = 0; i < want.size(); ++i) want[i] = Pattern(i);
    std::vector<unsigned char> before = want;
    std::memmove(want.data() + (dest - kBase), before.data() + (source - kBase),
                 size);
    EXPECT_EQ(All(4), want);
  }
}

TEST_F(VmUserXnuTest, ZeroSizeSucceedsAtAnyAddress) {
  std::vector<unsigned char> none;
  for (const vm_address_t a :
       {vm_address_t{0}, vm_address_t{1}, kPage - 1, kPage, kPage + 1,
        vm_address_t{UINT32_MAX}, ~vm_address_t{0} - kPage + 1,
        ~vm_address_t{0}}) {
    EXPECT_EQ(Read(a, 0, &none), KERN_SUCCESS) << a;
    EXPECT_EQ(vm_write(*task_, a, nullptr, 0), KERN_SUCCESS) << a;
    EXPECT_EQ(vm_copy(*task_, a, 0, kBase + 1), KERN_SUCCESS) << a;
    EXPECT_EQ(vm_copy(*task_, kBase + 1, 0, a), KERN_SUCCESS) << a;
  }
}

TEST_F(VmUserXnuTest, ReadOfFourGigabytesOrMoreIsInvalidArgument) {
  PinnedPages pinned;
  for (const vm_address_t a :
       {kPage - 1, kPage, vm_address_t{UINT32_MAX}, ~vm_address_t{0}}) {
    EXPECT_EQ(vm_read_pinned(*task_, a, vm_size_t{UINT32_MAX} + 1, &pinned),
              KERN_INVALID_ARGUMENT)
        << a;
  }
  // vm_copy has no such limit: it fails on the range.
  EXPECT_EQ(vm_copy(*task_, 1, vm_size_t{UINT32_MAX} - 1, kBase),
            KERN_INVALID_ADDRESS);
}

TEST_F(VmUserXnuTest, WrappedRangesAreInvalidAddress) {
  ASSERT_EQ(Alloc(kBase, kPage), KERN_SUCCESS);
  const vm_address_t top = ~vm_address_t{0};
  struct {
    vm_address_t address;
    vm_size_t size;
  } ranges[] = {
      {top - UINT32_MAX + 1, UINT32_MAX},
      {top - UINT32_MAX + kPage, UINT32_MAX - kPage + 1},
      {top - kPage + 1, kPage},
      {top, 1},
  };
  std::vector<unsigned char> buf;
  PinnedPages pinned;
  for (const auto& r : ranges) {
    EXPECT_EQ(vm_read_pinned(*task_, r.address, r.size, &pinned),
              KERN_INVALID_ADDRESS)
        << r.address;
    EXPECT_EQ(vm_copy(*task_, r.address, r.size, kBase), KERN_INVALID_ADDRESS)
        << r.address;
  }
  const unsigned char x = 1;
  EXPECT_EQ(vm_write(*task_, top, &x, 1), KERN_INVALID_ADDRESS);
  EXPECT_EQ(Read(vm_address_t{1} << 32, 1, &buf), KERN_INVALID_ADDRESS);
}

TEST_F(VmUserXnuTest, LowestOffendingPageDecides) {
  Patterned(3);
  // Page 1 unreadable, page 2 deallocated.
  ASSERT_EQ(vm_protect(*task_, kBase + kPage, kPage, false, VM_PROT_WRITE),
            KERN_SUCCESS);
  ASSERT_EQ(vm_deallocate(*task_, kBase + 2 * kPage, kPage), KERN_SUCCESS);
  std::vector<unsigned char> buf;
  EXPECT_EQ(Read(kBase + kPage - 1, 2, &buf), KERN_PROTECTION_FAILURE);
  EXPECT_EQ(Read(kBase + 2 * kPage - 1, 2, &buf), KERN_PROTECTION_FAILURE);
  EXPECT_EQ(Read(kBase + 2 * kPage, 1, &buf), KERN_INVALID_ADDRESS);
  EXPECT_EQ(Read(kBase + kPage - 1, 1, &buf), KERN_SUCCESS);
  // A write into page 0 and the read-only page changes nothing.
  ASSERT_EQ(vm_protect(*task_, kBase + kPage, kPage, false, VM_PROT_READ),
            KERN_SUCCESS);
  const std::vector<unsigned char> data(3, 0);
  EXPECT_EQ(vm_write(*task_, kBase + kPage - 1, data.data(), 3),
            KERN_PROTECTION_FAILURE);
  EXPECT_EQ(vm_write(*task_, kBase + 2 * kPage - 1, data.data(), 3),
            KERN_PROTECTION_FAILURE);
  EXPECT_EQ(vm_write(*task_, kBase + 2 * kPage, data.data(), 3),
            KERN_INVALID_ADDRESS);
  // vm_copy: the source first, then the destination.
  EXPECT_EQ(vm_copy(*task_, kBase + 2 * kPage - 1, 2, kBase + kPage),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(vm_copy(*task_, kBase + 1, 2, kBase + kPage + 1),
            KERN_PROTECTION_FAILURE);
  std::vector<unsigned char> page0;
  ASSERT_EQ(Read(kBase, kPage, &page0), KERN_SUCCESS);
  for (std::size_t i = 0; i < kPage; ++i) ASSERT_EQ(page0[i], Pattern(i)) << i;
}

TEST_F(VmUserXnuTest, ByteCopyIsChargedToTheMemoryLimit) {
  MakeSystem(Flavor::kXnu, 0, 1 << 20);
  ASSERT_EQ(Alloc(kBase, 1 << 20), KERN_SUCCESS);
  // Written pages until the limit refuses one: less than a page is left.
  const std::vector<unsigned char> page(kPage, 5);
  vm_address_t next = kBase;
  while (vm_write(*task_, next, page.data(), kPage) == KERN_SUCCESS) {
    next += kPage;
  }
  ASSERT_GE(next, kBase + 4 * kPage);
  // Between written pages, in place: only the buffer needs memory.
  const unsigned char x = 7;
  ASSERT_EQ(vm_write(*task_, kBase + kPage + 1, &x, 1), KERN_SUCCESS);
  EXPECT_EQ(vm_copy(*task_, kBase + 1, 2 * kPage - 1, kBase + 2 * kPage + 1),
            KERN_RESOURCE_SHORTAGE);
  std::vector<unsigned char> dest;
  ASSERT_EQ(Read(kBase + 2 * kPage, 2 * kPage, &dest), KERN_SUCCESS);
  EXPECT_EQ(dest, std::vector<unsigned char>(2 * kPage, 5));
  // Whole pages are a virtual copy: no buffer, no refusal.
  EXPECT_EQ(vm_copy(*task_, kBase, 2 * kPage, kBase + 2 * kPage), KERN_SUCCESS);
}

TEST_F(VmUserXnuTest, ClassicFlavorStillWantsPages) {
  MakeSystem(Flavor::kClassic, 0);
  Patterned(2);
  std::vector<unsigned char> buf;
  EXPECT_EQ(Read(kBase + 1, kPage, &buf), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(Read(kBase + 1, 0, &buf), KERN_INVALID_ARGUMENT);
  const unsigned char x = 0;
  EXPECT_EQ(vm_write(*task_, kBase, &x, 1), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_copy(*task_, kBase, 1, kBase + kPage), KERN_INVALID_ARGUMENT);
}

}  // namespace
}  // namespace taskfs::vm
