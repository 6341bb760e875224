// The KernReturn -> errno table of docs/reference.md §2, checked for every
// value.
#include "fs/errno_map.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <iterator>
#include <set>

#include "vmcore/kern_return.h"

namespace taskfs::fs {
namespace {

struct Row {
  vm::KernReturn kr;
  int error;
};

// docs/reference.md §2, written out independently of fs/errno_map.cc.
constexpr Row kSpecTable[] = {
    {vm::KERN_SUCCESS, 0},
    {vm::KERN_INVALID_ARGUMENT, EINVAL},
    {vm::KERN_INVALID_ADDRESS, EFAULT},
    {vm::KERN_PROTECTION_FAILURE, EACCES},
    {vm::KERN_NO_SPACE, ENOMEM},
    {vm::KERN_RESOURCE_SHORTAGE, ENOSPC},
    {vm::KERN_INVALID_TASK, ESRCH},
    {vm::KERN_NAME_EXISTS, EEXIST},
    {vm::KERN_FAILURE, EIO},
};

// The errno docs/reference.md §2 gives kr, or -1 if the table above lacks it.
int SpecErrno(vm::KernReturn kr) {
  for (const Row& row : kSpecTable) {
    if (row.kr == kr) return row.error;
  }
  return -1;
}

TEST(ErrnoMapTest, EveryKernReturnMapsToItsSpecErrno) {
  for (vm::KernReturn kr : vm::kAllKernReturns) {
    SCOPED_TRACE(vm::KernReturnName(kr));
    const int expected = SpecErrno(kr);
    ASSERT_NE(expected, -1) << "no reference row for this code";
    EXPECT_EQ(ErrnoFromKern(kr), expected);
  }
}

TEST(ErrnoMapTest, SpecTableCoversEveryKernReturn) {
  EXPECT_EQ(std::size(vm::kAllKernReturns), std::size(kSpecTable));
}

TEST(ErrnoMapTest, OnlySuccessMapsToZero) {
  for (vm::KernReturn kr : vm::kAllKernReturns) {
    SCOPED_TRACE(vm::KernReturnName(kr));
    if (kr == vm::KERN_SUCCESS) {
      EXPECT_EQ(ErrnoFromKern(kr), 0);
    } else {
      EXPECT_GT(ErrnoFromKern(kr), 0);
    }
  }
}

TEST(ErrnoMapTest, MappingIsOneToOne) {
  std::set<int> seen;
  for (vm::KernReturn kr : vm::kAllKernReturns) {
    EXPECT_TRUE(seen.insert(ErrnoFromKern(kr)).second)
        << vm::KernReturnName(kr) << " shares errno " << ErrnoFromKern(kr);
  }
}

TEST(ErrnoMapTest, KernFromErrnoInvertsEveryRow) {
  for (vm::KernReturn kr : vm::kAllKernReturns) {
    SCOPED_TRACE(vm::KernReturnName(kr));
    EXPECT_EQ(KernFromErrno(ErrnoFromKern(kr)), kr);
  }
  for (const Row& row : kSpecTable) {
    EXPECT_EQ(KernFromErrno(row.error), row.kr) << row.error;
  }
}

TEST(ErrnoMapTest, ValueOutsideTheEnumIsEio) {
  EXPECT_EQ(ErrnoFromKern(static_cast<vm::KernReturn>(42)), EIO);
  EXPECT_EQ(ErrnoFromKern(static_cast<vm::KernReturn>(-1)), EIO);
}

TEST(ErrnoMapTest, ErrnoOutsideTheTableIsKernFailure) {
  EXPECT_EQ(KernFromErrno(EPERM), vm::KERN_FAILURE);
  EXPECT_EQ(KernFromErrno(ENOTTY), vm::KERN_FAILURE);
  EXPECT_EQ(KernFromErrno(-1), vm::KERN_FAILURE);
}

}  // namespace
}  // namespace taskfs::fs
