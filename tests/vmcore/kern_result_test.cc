#include "vmcore/kern_result.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

namespace taskfs::vm {
namespace {

KernResult<std::uint64_t> Half(std::uint64_t n) {
  if (n % 2 != 0) return KERN_INVALID_ARGUMENT;
  return n / 2;
}

TEST(KernResultTest, SuccessHoldsTheValue) {
  KernResult<std::uint64_t> r = Half(10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.code(), KERN_SUCCESS);
  EXPECT_EQ(r.value(), 5u);
}

TEST(KernResultTest, FailureHoldsTheCode) {
  KernResult<std::uint64_t> r = Half(3);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.code(), KERN_INVALID_ARGUMENT);
}

// An integer value of 0 is a success, never mistaken for KERN_SUCCESS's
// code: the KernReturn constructor wins only for KernReturn arguments.
TEST(KernResultTest, ZeroValueIsASuccess) {
  KernResult<std::uint64_t> r = Half(0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), 0u);
}

TEST(KernResultTest, MovesOutMoveOnlyValues) {
  KernResult<std::unique_ptr<std::string>> r =
      std::make_unique<std::string>("task");
  ASSERT_TRUE(r.ok());
  std::unique_ptr<std::string> owned = std::move(r).value();
  ASSERT_NE(owned, nullptr);
  EXPECT_EQ(*owned, "task");
}

TEST(KernResultTest, ValueCanBeChangedInPlace) {
  KernResult<std::string> r = std::string("a");
  r.value() += "b";
  EXPECT_EQ(r.value(), "ab");
}

}  // namespace
}  // namespace taskfs::vm
