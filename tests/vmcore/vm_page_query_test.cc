// vm_page_query: each page's state, through the Mach facade.
#include "vmcore/vm_page_query.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "vmcore/vm_user.h"

namespace taskfs::vm {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kBase = 0x100000;
constexpr std::uint32_t kAllocated = PageState::kAllocated;
constexpr std::uint32_t kResident = PageState::kResident;
constexpr std::uint32_t kShared = PageState::kShared;

class VmPageQueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VmConfig config;
    config.page_size = kPage;
    config.address_bits = 32;
    config.max_tasks = 8;
    system_ = std::make_unique<VmSystem>(config);
    task_ = Made(task_create(*system_, "t"));
  }

  static std::shared_ptr<Task> Made(KernResult<std::shared_ptr<Task>> r) {
    EXPECT_EQ(r.code(), KERN_SUCCESS);
    return r.ok() ? std::move(r).value() : nullptr;
  }
  void Alloc(Task& task, vm_address_t address, vm_size_t size) {
    ASSERT_EQ(vm_allocate(task, &address, size, false), KERN_SUCCESS);
  }
  void Write(Task& task, vm_address_t address, unsigned char byte,
             vm_size_t size = kPage) {
    std::vector<unsigned char> data(size, byte);
    ASSERT_EQ(vm_write(task, address, data.data(), size), KERN_SUCCESS);
  }
  // The states of pages pages from address; empty if the query failed.
  std::vector<PageState> Query(Task& task, vm_address_t address,
                               std::uint64_t pages) {
    std::vector<PageState> out(pages);
    if (vm_page_query(task, address, pages * kPage, out) != KERN_SUCCESS) {
      return {};
    }
    return out;
  }

  std::unique_ptr<VmSystem> system_;
  std::shared_ptr<Task> task_;
};

TEST_F(VmPageQueryTest, TellsHolesUnwrittenAndWrittenPagesApart) {
  Alloc(*task_, kBase + kPage, 2 * kPage);
  Write(*task_, kBase + 2 * kPage, 'a');
  const std::vector<PageState> s = Query(*task_, kBase, 4);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0], PageState{});
  EXPECT_EQ(s[1].flags, kAllocated);
  EXPECT_EQ(s[1].mappings, 0u);
  EXPECT_EQ(s[1].identity, 0u);
  EXPECT_EQ(s[2].flags, kAllocated | kResident);
  EXPECT_EQ(s[2].mappings, 1u);
  EXPECT_NE(s[2].identity, 0u);
  EXPECT_EQ(s[3], PageState{});
}

TEST_F(VmPageQueryTest, AVirtualCopySharesUntilEitherSideWrites) {
  // 1 MiB: whole leaves of the page table are shared, not pages.
  constexpr std::uint64_t kPages = 256;
  Alloc(*task_, kBase, 2 * kPages * kPage);
  Write(*task_, kBase, 'a', kPages * kPage);
  const vm_address_t copy = kBase + kPages * kPage;
  ASSERT_EQ(vm_copy(*task_, kBase, kPages * kPage, copy), KERN_SUCCESS);

  const std::vector<PageState> s = Query(*task_, kBase, 2 * kPages);
  ASSERT_EQ(s.size(), 2 * kPages);
  for (std::uint64_t i = 0; i < kPages; ++i) {
    EXPECT_EQ(s[i].flags, kAllocated | kResident | kShared) << i;
    EXPECT_EQ(s[i].mappings, 2u) << i;
    EXPECT_EQ(s[i].identity, s[kPages + i].identity) << i;
  }
  for (std::uint64_t i = 0; i < kPages; ++i) {
    EXPECT_NE(s[i].identity, s[(i + 1) % kPages].identity) << i;
  }

  Write(*task_, copy + 7 * kPage, 'b');
  const std::vector<PageState> t = Query(*task_, kBase, 2 * kPages);
  ASSERT_EQ(t.size(), 2 * kPages);
  EXPECT_EQ(t[7].flags, kAllocated | kResident);
  EXPECT_EQ(t[7].mappings, 1u);
  EXPECT_EQ(t[kPages + 7].flags, kAllocated | kResident);
  EXPECT_NE(t[7].identity, t[kPages + 7].identity);
  EXPECT_EQ(t[7].identity, s[7].identity);
  EXPECT_EQ(t[8].identity, t[kPages + 8].identity);
  EXPECT_EQ(t[8].mappings, 2u);
}

TEST_F(VmPageQueryTest, ACopyOfOnePageCountsItsMappings) {
  Alloc(*task_, kBase, 8 * kPage);
  Write(*task_, kBase, 'a');
  ASSERT_EQ(vm_copy(*task_, kBase, kPage, kBase + 3 * kPage), KERN_SUCCESS);
  ASSERT_EQ(vm_copy(*task_, kBase, kPage, kBase + 5 * kPage), KERN_SUCCESS);
  const std::vector<PageState> s = Query(*task_, kBase, 8);
  ASSERT_EQ(s.size(), 8u);
  for (std::uint64_t i : {0, 3, 5}) {
    EXPECT_EQ(s[i].flags, kAllocated | kResident | kShared) << i;
    EXPECT_EQ(s[i].mappings, 3u) << i;
    EXPECT_EQ(s[i].identity, s[0].identity) << i;
  }
}

TEST_F(VmPageQueryTest, AForkSharesCopyRegionsUntilAWrite) {
  Alloc(*task_, kBase, 4 * kPage);
  Write(*task_, kBase, 'a', 4 * kPage);
  std::shared_ptr<Task> child = Made(task_fork(*system_, *task_, "c"));
  ASSERT_NE(child, nullptr);
  std::vector<PageState> p = Query(*task_, kBase, 4);
  std::vector<PageState> c = Query(*child, kBase, 4);
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(p, c);
  EXPECT_EQ(c[0].flags, kAllocated | kResident | kShared);
  EXPECT_EQ(c[0].mappings, 2u);

  Write(*child, kBase + kPage, 'b');
  p = Query(*task_, kBase, 4);
  c = Query(*child, kBase, 4);
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(p[0], c[0]);
  EXPECT_NE(p[1].identity, c[1].identity);
  EXPECT_EQ(c[1].flags, kAllocated | kResident);
  EXPECT_EQ(p[1].mappings, 1u);
}

TEST_F(VmPageQueryTest, AShareRegionIsOneMemoryInBothTasks) {
  Alloc(*task_, kBase, 2 * kPage);
  ASSERT_EQ(vm_inherit(*task_, kBase, 2 * kPage, VM_INHERIT_SHARE),
            KERN_SUCCESS);
  Write(*task_, kBase, 'a');
  std::shared_ptr<Task> child = Made(task_fork(*system_, *task_, "c"));
  ASSERT_NE(child, nullptr);
  Write(*child, kBase, 'b');  // the same memory: no copy is made
  const std::vector<PageState> p = Query(*task_, kBase, 2);
  const std::vector<PageState> c = Query(*child, kBase, 2);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(p, c);
  EXPECT_EQ(p[0].flags, kAllocated | kResident | kShared);
  EXPECT_EQ(p[0].mappings, 2u);
  EXPECT_EQ(p[1].flags, kAllocated);
}

TEST_F(VmPageQueryTest, RoundsItsRangeAsMachDoes) {
  Alloc(*task_, kBase, 2 * kPage);
  Write(*task_, kBase + kPage, 'a');
  std::vector<PageState> out(2);
  ASSERT_EQ(vm_page_query(*task_, kBase + kPage - 1, 2, out), KERN_SUCCESS);
  EXPECT_EQ(out[0].flags, kAllocated);
  EXPECT_EQ(out[1].flags, kAllocated | kResident);
}

TEST_F(VmPageQueryTest, ChecksItsArgumentsInMachsOrder) {
  std::vector<PageState> out(2);
  EXPECT_EQ(vm_page_query(*task_, kBase, 3 * kPage, out),
            KERN_INVALID_ARGUMENT);
  // The argument check comes first, even for a range outside the space.
  EXPECT_EQ(vm_page_query(*task_, vm_address_t{1} << 40, 3 * kPage, out),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(
      vm_page_query(*task_, (vm_address_t{1} << 32) - kPage, 2 * kPage, out),
      KERN_INVALID_ADDRESS);
  EXPECT_EQ(vm_page_query(*task_, ~vm_address_t{0} - kPage, 2 * kPage, out),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(vm_page_query(*task_, kBase, 0, std::span<PageState>()),
            KERN_SUCCESS);
  // The whole space's last page is fine.
  EXPECT_EQ(vm_page_query(*task_, (vm_address_t{1} << 32) - kPage, kPage, out),
            KERN_SUCCESS);
  EXPECT_EQ(out[0], PageState{});
}

TEST_F(VmPageQueryTest, ATerminatedTaskIsInvalidTask) {
  ASSERT_EQ(task_terminate(*system_, *task_), KERN_SUCCESS);
  std::vector<PageState> out(1);
  EXPECT_EQ(vm_page_query(*task_, kBase, kPage, out), KERN_INVALID_TASK);
}

TEST(PageIdentityTest, DistinctPagesHaveDistinctIdentities) {
  alignas(64) static char pages[64][64];
  std::vector<std::uint64_t> seen;
  for (auto& page : pages) {
    seen.push_back(PageIdentity(reinterpret_cast<const Page*>(page)));
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end());
}

}  // namespace
}  // namespace taskfs::vm
