#include "vmcore/vm_user.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace taskfs::vm {
namespace {

constexpr std::uint64_t kPage = 4096;

class VmUserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VmConfig config;
    config.address_bits = 32;
    config.memory_limit = 64 * 1024 * 1024;
    system_ = std::make_unique<VmSystem>(config);
    ASSERT_EQ(task_create(*system_, "t", &task_), KERN_SUCCESS);
  }

  std::vector<unsigned char> Read(vm_address_t address, vm_size_t size) {
    std::vector<unsigned char> buf(size);
    EXPECT_EQ(vm_read(*task_, address, size, buf.data()), KERN_SUCCESS);
    return buf;
  }

  std::unique_ptr<VmSystem> system_;
  std::shared_ptr<Task> task_;
};

TEST_F(VmUserTest, SmokeAllocateWriteReadCopy) {
  vm_address_t a = 0x10000;
  ASSERT_EQ(vm_allocate(*task_, &a, 4 * kPage, false), KERN_SUCCESS);
  std::vector<unsigned char> data(kPage, 0xab);
  ASSERT_EQ(vm_write(*task_, a, data.data(), kPage), KERN_SUCCESS);
  EXPECT_EQ(Read(a, kPage), data);
  EXPECT_EQ(Read(a + kPage, kPage), std::vector<unsigned char>(kPage, 0));
  ASSERT_EQ(vm_copy(*task_, a, kPage, a + 2 * kPage), KERN_SUCCESS);
  EXPECT_EQ(Read(a + 2 * kPage, kPage), data);
  std::vector<unsigned char> other(kPage, 0x11);
  ASSERT_EQ(vm_write(*task_, a, other.data(), kPage), KERN_SUCCESS);
  EXPECT_EQ(Read(a + 2 * kPage, kPage), data);
  EXPECT_EQ(Read(a, kPage), other);
  TaskStatistics s;
  ASSERT_EQ(task_statistics(*task_, &s), KERN_SUCCESS);
  EXPECT_EQ(s.regions, 1u);
  EXPECT_EQ(s.virtual_bytes, 4 * kPage);
  EXPECT_EQ(s.resident_bytes, 2 * kPage);
  EXPECT_EQ(s.shared_bytes, 0u);
}

}  // namespace
}  // namespace taskfs::vm
