#include "vmcore/kern_return.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace taskfs::vm {
namespace {

TEST(KernReturnTest, ValuesAreMachs) {
  EXPECT_EQ(KERN_SUCCESS, 0);
  EXPECT_EQ(KERN_INVALID_ADDRESS, 1);
  EXPECT_EQ(KERN_PROTECTION_FAILURE, 2);
  EXPECT_EQ(KERN_NO_SPACE, 3);
  EXPECT_EQ(KERN_INVALID_ARGUMENT, 4);
  EXPECT_EQ(KERN_FAILURE, 5);
  EXPECT_EQ(KERN_RESOURCE_SHORTAGE, 6);
  EXPECT_EQ(KERN_NAME_EXISTS, 13);
  EXPECT_EQ(KERN_INVALID_TASK, 16);
}

// The list, the enum and the names come from one X-macro list: every value
// of the list has its own name, and the list holds each value once.
TEST(KernReturnTest, EveryListedCodeHasItsOwnName) {
  std::set<int> values;
  std::set<std::string> names;
  for (KernReturn kr : kAllKernReturns) {
    values.insert(kr);
    const std::string name(KernReturnName(kr));
    EXPECT_EQ(name.rfind("KERN_", 0), 0u) << name;
    EXPECT_NE(name, "KERN_UNKNOWN");
    names.insert(name);
  }
  EXPECT_EQ(values.size(), std::size(kAllKernReturns));
  EXPECT_EQ(names.size(), std::size(kAllKernReturns));
  EXPECT_EQ(std::size(kAllKernReturns), 9u);
}

TEST(KernReturnTest, NamesMatchTheEnumerators) {
  EXPECT_EQ(KernReturnName(KERN_SUCCESS), "KERN_SUCCESS");
  EXPECT_EQ(KernReturnName(KERN_PROTECTION_FAILURE), "KERN_PROTECTION_FAILURE");
  EXPECT_EQ(KernReturnName(KERN_INVALID_TASK), "KERN_INVALID_TASK");
  EXPECT_EQ(KernReturnName(static_cast<KernReturn>(99)), "KERN_UNKNOWN");
}

}  // namespace
}  // namespace taskfs::vm
