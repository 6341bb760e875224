#include "fs/mount_table.h"

#include <gtest/gtest.h>

namespace taskfs::fs {
namespace {

constexpr char kMountinfo[] =
    "22 27 0:21 / /proc rw,relatime shared:12 - proc proc rw\n"
    "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "40 27 0:40 / /mnt/t rw,nosuid,nodev - fuse.taskfs taskfs rw,user_id=0\n"
    "41 27 0:41 / /mnt/with\\040space rw - tmpfs none rw\n"
    "42 40 0:42 / /mnt/t rw - fuse.other other rw\n"
    "garbage line\n"
    "43 27 0:43 / /mnt/x rw\n";

TEST(MountTableTest, FindsTheTypeOfAMountPoint) {
  EXPECT_EQ(MountTypeAt(kMountinfo, "/proc"), "proc");
  EXPECT_EQ(MountTypeAt(kMountinfo, "/"), "ext4");
}

TEST(MountTableTest, TheMountOnTopWins) {
  EXPECT_EQ(MountTypeAt(kMountinfo, "/mnt/t"), "fuse.other");
}

TEST(MountTableTest, UnescapesOctalInPaths) {
  EXPECT_EQ(MountTypeAt(kMountinfo, "/mnt/with space"), "tmpfs");
  EXPECT_EQ(MountTypeAt(kMountinfo, "/mnt/with\\040space"), std::nullopt);
}

TEST(MountTableTest, NoMountPointNoType) {
  EXPECT_EQ(MountTypeAt(kMountinfo, "/mnt"), std::nullopt);
  EXPECT_EQ(MountTypeAt(kMountinfo, "/mnt/t/sub"), std::nullopt);
  EXPECT_EQ(MountTypeAt(kMountinfo, "/mn"), std::nullopt);
  EXPECT_EQ(MountTypeAt("", "/"), std::nullopt);
}

TEST(MountTableTest, PassesOverMalformedLines) {
  // /mnt/x's line has no "- TYPE" part.
  EXPECT_EQ(MountTypeAt(kMountinfo, "/mnt/x"), std::nullopt);
  EXPECT_EQ(MountTypeAt("1 2 3 4 /a b - \n", "/a"), std::nullopt);
}

TEST(MountTableTest, ReadsThisProcessesMountinfo) {
  // / is always a mount point; a fresh path under it never is.
  EXPECT_NE(CurrentMountTypeAt("/"), std::nullopt);
  EXPECT_EQ(CurrentMountTypeAt("/no/such/mount/point"), std::nullopt);
}

}  // namespace
}  // namespace taskfs::fs
