// vm_remap (vm_remap.h, through the Mach facade): share and copy, the
// protections reported, the checks in Mach's order, all or nothing.
#include "vmcore/vm_remap.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "vmcore/failure_reason.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_user.h"

namespace taskfs::vm {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr vm_address_t kSrc = 0x100000;
constexpr vm_address_t kDst = 0x400000;

class VmRemapTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(0); }
  void Make(std::uint64_t limit) {
    VmConfig config = Config();
    config.memory_limit = limit;
    Start(config, /*with_b=*/true);
  }
  // Task a alone, under a limit of `pages` pages.
  void MakeWithPageLimit(std::uint64_t pages) {
    VmConfig config = Config();
    config.page_limit = pages * kPage;
    Start(config, /*with_b=*/false);
  }
  static VmConfig Config() {
    VmConfig config;
    config.page_size = kPage;
    config.address_bits = 32;
    config.max_tasks = 8;
    return config;
  }
  // A fresh system of `config` with task a, and task b when with_b.
  void Start(const VmConfig& config, bool with_b) {
    a_.reset();
    b_.reset();
    system_.reset();
    system_ = std::make_unique<VmSystem>(config);
    a_ = Made(task_create(*system_, "a"));
    if (with_b) {
      b_ = Made(task_create(*system_, "b"));
    }
  }
  static std::shared_ptr<Task> Made(KernResult<std::shared_ptr<Task>> r) {
    EXPECT_EQ(r.code(), KERN_SUCCESS);
    return r.ok() ? std::move(r).value() : nullptr;
  }
  void Alloc(Task& task, vm_address_t address, vm_size_t size) {
    ASSERT_EQ(vm_allocate(task, &address, size, false), KERN_SUCCESS);
  }
  void Write(Task& task, vm_address_t address, char byte,
             vm_size_t size = kPage) {
    std::vector<char> data(size, byte);
    ASSERT_EQ(vm_write(task, address, data.data(), size), KERN_SUCCESS);
  }
  // The first byte of each of n pages from address ('-' where unreadable).
  std::string Bytes(Task& task, vm_address_t address, int n) {
    std::string out;
    std::vector<std::byte> page(kPage);
    for (int i = 0; i < n; ++i) {
      out += vm_read(task, address + i * kPage, page) == KERN_SUCCESS
                 ? static_cast<char>(page[0])
                 : '-';
    }
    return out;
  }
  KernReturn Remap(Task& target, vm_address_t* address, vm_size_t size,
                   bool anywhere, Task& source, vm_address_t src, bool copy,
                   vm_inherit_t inheritance = VM_INHERIT_DEFAULT) {
    return vm_remap(target, address, size, anywhere, source, src, copy, &cur_,
                    &max_, inheritance);
  }
  std::vector<RegionInfo> Regions(Task& task) {
    KernResult<std::vector<RegionInfo>> r = vm_region_list(task);
    EXPECT_TRUE(r.ok());
    return r.ok() ? std::move(r).value() : std::vector<RegionInfo>{};
  }

  std::unique_ptr<VmSystem> system_;
  std::shared_ptr<Task> a_, b_;
  vm_prot_t cur_ = -1, max_ = -1;
};

TEST_F(VmRemapTest, ShareIsTheSameMemoryBothWays) {
  Alloc(*a_, kSrc, 3 * kPage);
  Write(*a_, kSrc, 'a');
  vm_address_t at = kDst;
  ASSERT_EQ(Remap(*b_, &at, 3 * kPage, false, *a_, kSrc, false), KERN_SUCCESS);
  EXPECT_EQ(at, kDst);
  EXPECT_EQ(Bytes(*b_, kDst, 3), std::string("a\0\0", 3));
  Write(*b_, kDst + kPage, 'b');  // a page never written, written here
  Write(*a_, kSrc, 'c');          // a page written, written there
  EXPECT_EQ(Bytes(*a_, kSrc, 3), std::string("cb\0", 3));
  EXPECT_EQ(Bytes(*b_, kDst, 3), std::string("cb\0", 3));
  // The source going leaves the memory to the remapping.
  ASSERT_EQ(vm_deallocate(*a_, kSrc, 3 * kPage), KERN_SUCCESS);
  EXPECT_EQ(Bytes(*b_, kDst, 3), std::string("cb\0", 3));
}

TEST_F(VmRemapTest, CopyIsACopyOnWriteCopy) {
  Alloc(*a_, kSrc, 2 * kPage);
  Write(*a_, kSrc, 'a', 2 * kPage);
  vm_address_t at = kDst;
  ASSERT_EQ(Remap(*b_, &at, 2 * kPage, false, *a_, kSrc, true), KERN_SUCCESS);
  const std::uint64_t live = system_->pages().live_pages();
  EXPECT_EQ(Bytes(*b_, kDst, 2), "aa");
  Write(*b_, kDst, 'b');
  Write(*a_, kSrc + kPage, 'c');
  EXPECT_EQ(Bytes(*a_, kSrc, 2), "ac");
  EXPECT_EQ(Bytes(*b_, kDst, 2), "ba");
  EXPECT_EQ(system_->pages().live_pages(), live + 2);
}

TEST_F(VmRemapTest, ShareOfACopyOnWriteSourceStaysCorrect) {
  // a's pages are shared copy-on-write with a fork's; b shares a's.
  Alloc(*a_, kSrc, kPage);
  Write(*a_, kSrc, 'a');
  std::shared_ptr<Task> child = Made(task_fork(*system_, *a_, "child"));
  ASSERT_NE(child, nullptr);
  vm_address_t at = kDst;
  ASSERT_EQ(Remap(*b_, &at, kPage, false, *a_, kSrc, false), KERN_SUCCESS);
  Write(*b_, kDst, 'b');
  EXPECT_EQ(Bytes(*a_, kSrc, 1), "b");
  EXPECT_EQ(Bytes(*child, kSrc, 1), "a");
  Write(*child, kSrc, 'c');
  EXPECT_EQ(Bytes(*a_, kSrc, 1), "b");
  EXPECT_EQ(Bytes(*b_, kDst, 1), "b");
}

TEST_F(VmRemapTest, WithinOneTaskAndAnywhere) {
  Alloc(*a_, kSrc, 2 * kPage);
  Write(*a_, kSrc, 'a');
  vm_address_t at = 0xdead;  // ignored
  ASSERT_EQ(Remap(*a_, &at, 2 * kPage, true, *a_, kSrc, false), KERN_SUCCESS);
  EXPECT_EQ(at, 0u);  // the lowest hole
  Write(*a_, 0, 'z');
  EXPECT_EQ(Bytes(*a_, kSrc, 1), "z");
  // Either mapping keeps the memory.
  ASSERT_EQ(vm_deallocate(*a_, kSrc, 2 * kPage), KERN_SUCCESS);
  EXPECT_EQ(Bytes(*a_, 0, 1), "z");
}

TEST_F(VmRemapTest, ProtectionsAreKeptAndTheLowestReported) {
  Alloc(*a_, kSrc, 3 * kPage);
  ASSERT_EQ(vm_protect(*a_, kSrc, kPage, true, VM_PROT_READ | VM_PROT_WRITE),
            KERN_SUCCESS);
  ASSERT_EQ(vm_protect(*a_, kSrc + kPage, kPage, false, VM_PROT_NONE),
            KERN_SUCCESS);
  vm_address_t at = kDst;
  ASSERT_EQ(
      Remap(*b_, &at, 3 * kPage, false, *a_, kSrc, true, VM_INHERIT_SHARE),
      KERN_SUCCESS);
  EXPECT_EQ(cur_, VM_PROT_NONE);
  EXPECT_EQ(max_, VM_PROT_READ | VM_PROT_WRITE);
  const std::vector<RegionInfo> regions = Regions(*b_);
  ASSERT_EQ(regions.size(), 3u);
  EXPECT_EQ(regions[0].protection, VM_PROT_READ | VM_PROT_WRITE);
  EXPECT_EQ(regions[0].max_protection, VM_PROT_READ | VM_PROT_WRITE);
  EXPECT_EQ(regions[1].protection, VM_PROT_NONE);
  EXPECT_EQ(regions[2].protection, VM_PROT_DEFAULT);
  for (const RegionInfo& r : regions) {
    EXPECT_EQ(r.inheritance, VM_INHERIT_SHARE);
  }
}

TEST_F(VmRemapTest, RoundsAsXnuDoes) {
  Alloc(*a_, kSrc, 2 * kPage);
  Write(*a_, kSrc + kPage, 'a');
  vm_address_t at = kDst + 5;
  // [kSrc + P + 1, +1) is the page kSrc + P; the target rounds down.
  ASSERT_EQ(Remap(*b_, &at, 1, false, *a_, kSrc + kPage + 1, false),
            KERN_SUCCESS);
  EXPECT_EQ(at, kDst);
  EXPECT_EQ(Bytes(*b_, kDst, 2), "a-");
}

TEST_F(VmRemapTest, ChecksItsArgumentsInMachsOrder) {
  Alloc(*a_, kSrc, 2 * kPage);
  Alloc(*b_, kDst, kPage);
  vm_address_t at = kDst + kPage;
  EXPECT_EQ(Remap(*b_, &at, kPage, false, *a_, kSrc, false, 7),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(LastFailureReason()),
            "inheritance 7 is not share (0), copy (1) or none (2)");
  EXPECT_EQ(Remap(*b_, &at, 0, false, *a_, kSrc, false), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(LastFailureReason()), "size is 0");
  EXPECT_EQ(Remap(*b_, &at, kPage, false, *a_, 0xfffff000, true),
            KERN_INVALID_ADDRESS);
  vm_address_t outside = 0xfffff000;
  EXPECT_EQ(Remap(*b_, &outside, 2 * kPage, false, *a_, kSrc, true),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(outside, 0xfffff000u);
  // The source must be allocated, every page, whatever the destination.
  vm_address_t taken = kDst;
  EXPECT_EQ(Remap(*b_, &taken, 3 * kPage, false, *a_, kSrc, false),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(std::string(LastFailureReason()), "page 0x102000 is not allocated");
  EXPECT_EQ(Remap(*b_, &taken, kPage, false, *a_, kSrc, false), KERN_NO_SPACE);
  EXPECT_EQ(std::string(LastFailureReason()),
            "overlaps region 0x400000-0x401000");
  // Nothing changed in either task.
  EXPECT_EQ(Regions(*b_).size(), 1u);
  EXPECT_EQ(Regions(*a_).size(), 1u);
  EXPECT_EQ(cur_, -1);
}

TEST_F(VmRemapTest, AtTheMemoryLimitNothingChanges) {
  Make(1 << 20);
  Alloc(*a_, kSrc, 64 * kPage);
  // Many small entries, each needing one of its own in the target.
  for (int i = 0; i < 64; i += 2) {
    ASSERT_EQ(vm_protect(*a_, kSrc + i * kPage, kPage, false, VM_PROT_READ),
              KERN_SUCCESS);
  }
  // Fill the limit with remappings (shares, which need the least) until
  // one is refused; then a copy and a share are refused alike, and change
  // nothing.
  KernReturn kr = KERN_SUCCESS;
  for (int made = 0; kr == KERN_SUCCESS && made < 100000; ++made) {
    vm_address_t at = 0;
    kr = Remap(*b_, &at, 64 * kPage, true, *a_, kSrc, false);
  }
  EXPECT_EQ(kr, KERN_RESOURCE_SHORTAGE);
  const std::size_t regions = Regions(*b_).size();
  for (const bool copy : {true, false}) {
    vm_address_t at = 0;
    EXPECT_EQ(Remap(*b_, &at, 64 * kPage, true, *a_, kSrc, copy),
              KERN_RESOURCE_SHORTAGE);
    EXPECT_EQ(Regions(*b_).size(), regions);
  }
}

// A write through both mappings of a share remap within one task needs one
// fresh page per unwritten page of memory, not one per mapping: at the page
// limit it takes exactly what remains.
TEST_F(VmRemapTest, AWriteThroughBothMappingsNeedsEachPageOnce) {
  MakeWithPageLimit(3);
  Alloc(*a_, kSrc, kPage);
  vm_address_t target = kSrc + kPage;
  ASSERT_EQ(Remap(*a_, &target, kPage, false, *a_, kSrc, false), KERN_SUCCESS);
  Alloc(*a_, kSrc + 2 * kPage, 2 * kPage);
  // Four pages of the task, three pages of memory: the limit.
  Write(*a_, kSrc, 'w', 4 * kPage);
  EXPECT_EQ(Bytes(*a_, kSrc, 4), "wwww");
  EXPECT_EQ(system_->pages().live_pages(), 3u);
  // One more is refused.
  Alloc(*a_, kSrc + 4 * kPage, kPage);
  std::vector<char> data(kPage, 'x');
  EXPECT_EQ(vm_write(*a_, kSrc + 4 * kPage, data.data(), kPage),
            KERN_RESOURCE_SHORTAGE);
}

// The same for a written page: both mappings of a share remap hold it in one
// slot, which a write copies once however many times the range meets it.
// Two forks keep the old page (three slots hold it), so the write needs
// exactly one fresh page: at the page limit it takes what remains.
TEST_F(VmRemapTest, AWriteThroughBothMappingsCopiesASharedPageOnce) {
  MakeWithPageLimit(2);
  Alloc(*a_, kSrc, kPage);
  Write(*a_, kSrc, 'a');
  vm_address_t target = kSrc + kPage;
  ASSERT_EQ(Remap(*a_, &target, kPage, false, *a_, kSrc, false), KERN_SUCCESS);
  std::shared_ptr<Task> c = Made(task_fork(*system_, *a_, "c"));
  std::shared_ptr<Task> d = Made(task_fork(*system_, *a_, "d"));
  ASSERT_NE(c, nullptr);
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(system_->pages().live_pages(), 1u);
  Write(*a_, kSrc, 'w', 2 * kPage);
  EXPECT_EQ(Bytes(*a_, kSrc, 2), "ww");
  EXPECT_EQ(Bytes(*c, kSrc, 2), "aa");
  EXPECT_EQ(Bytes(*d, kSrc, 2), "aa");
  EXPECT_EQ(system_->pages().live_pages(), 2u);
}

// A page whose every slot lies in the range is written in place, also when
// the range meets one of its slots twice: a share remap of the page and a
// copy-on-write copy of it, three pages of the task, need one fresh page.
TEST_F(VmRemapTest, AWriteOverEverySlotOfAPageMetTwiceWritesItInPlace) {
  MakeWithPageLimit(2);
  Alloc(*a_, kSrc, 3 * kPage);
  Write(*a_, kSrc, 'a');
  ASSERT_EQ(vm_copy(*a_, kSrc, kPage, kSrc + 2 * kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_deallocate(*a_, kSrc + kPage, kPage), KERN_SUCCESS);
  vm_address_t target = kSrc + kPage;
  ASSERT_EQ(Remap(*a_, &target, kPage, false, *a_, kSrc, false), KERN_SUCCESS);
  ASSERT_EQ(system_->pages().live_pages(), 1u);
  Write(*a_, kSrc, 'w', 3 * kPage);
  EXPECT_EQ(Bytes(*a_, kSrc, 3), "www");
  EXPECT_EQ(system_->pages().live_pages(), 2u);
}

TEST_F(VmRemapTest, ATerminatedTaskIsInvalidTask) {
  Alloc(*a_, kSrc, kPage);
  ASSERT_EQ(task_terminate(*system_, *b_), KERN_SUCCESS);
  vm_address_t at = kDst;
  EXPECT_EQ(Remap(*b_, &at, kPage, false, *a_, kSrc, false), KERN_INVALID_TASK);
  EXPECT_EQ(Remap(*a_, &at, kPage, false, *b_, kSrc, false), KERN_INVALID_TASK);
}

}  // namespace
}  // namespace taskfs::vm
