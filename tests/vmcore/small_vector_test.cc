#include "vmcore/small_vector.h"

#include <gtest/gtest.h>

namespace taskfs::vm {
namespace {

TEST(SmallVectorTest, StaysInlineUpToItsCapacity) {
  SmallVector<int, 4> v;
  EXPECT_TRUE(v.empty());
  for (int i = 0; i < 4; ++i) v.push_back(i);
  EXPECT_TRUE(v.is_inline());
  EXPECT_EQ(v.size(), 4u);
  EXPECT_EQ(v[3], 3);
}

TEST(SmallVectorTest, GrowsToTheHeapKeepingItsElements) {
  SmallVector<int, 2> v;
  for (int i = 0; i < 100; ++i) v.push_back(i * 3);
  EXPECT_FALSE(v.is_inline());
  ASSERT_EQ(v.size(), 100u);
  int expected = 0;
  for (int x : v) {
    EXPECT_EQ(x, expected);
    expected += 3;
  }
}

TEST(SmallVectorTest, TruncateKeepsThePrefix) {
  SmallVector<int, 2> v;
  for (int i = 0; i < 5; ++i) v.push_back(i);
  v.truncate(2);
  EXPECT_EQ(v.size(), 2u);
  EXPECT_EQ(v[1], 1);
  v.push_back(9);
  EXPECT_EQ(v[2], 9);
  v.truncate(0);
  EXPECT_TRUE(v.empty());
}

}  // namespace
}  // namespace taskfs::vm
