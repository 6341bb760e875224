// Inode numbering (fs/inode.h): fixed numbers, task numbers id * 8 + kind.
#include "fs/inode.h"

#include <gtest/gtest.h>

namespace taskfs::fs {
namespace {

TEST(InodeTest, RootAndHostPageSizeHaveFixedNumbers) {
  const Where root = Decode(kRootIno);
  EXPECT_TRUE(root.root);
  EXPECT_FALSE(root.host_page_size);
  EXPECT_FALSE(ValidTaskPath(root));
  const Where hps = Decode(kHostPageSizeIno);
  EXPECT_FALSE(hps.root);
  EXPECT_TRUE(hps.host_page_size);
  EXPECT_FALSE(ValidTaskPath(hps));
  EXPECT_EQ(kRootIno, 1u);
  EXPECT_EQ(kHostPageSizeIno, 2u);
}

TEST(InodeTest, TaskPathsRoundTrip) {
  for (std::uint64_t id : {1ull, 2ull, 7ull, 1000ull, (1ull << 60) - 1}) {
    for (unsigned k = 0; k < kNodeKinds; ++k) {
      const NodeKind kind = static_cast<NodeKind>(k);
      const Ino ino = TaskIno(id, kind);
      EXPECT_EQ(ino, id * 8 + k);
      const Where w = Decode(ino);
      EXPECT_FALSE(w.root);
      EXPECT_FALSE(w.host_page_size);
      EXPECT_EQ(w.id, id);
      EXPECT_EQ(w.kind, kind);
      EXPECT_TRUE(ValidTaskPath(w));
    }
  }
}

TEST(InodeTest, NumbersThatNameNoPathAreInvalid) {
  // Task id 0 (inodes 0, 3..7) and kind 7 of a task.
  for (Ino ino : {Ino{0}, Ino{3}, Ino{4}, Ino{7}}) {
    EXPECT_FALSE(ValidTaskPath(Decode(ino))) << ino;
  }
  for (unsigned k = kNodeKinds; k < 8; ++k) {
    EXPECT_FALSE(ValidTaskPath(Decode(5 * 8 + k))) << k;
  }
}

TEST(InodeTest, FileNames) {
  EXPECT_EQ(FileName(NodeKind::kDir), "");
  EXPECT_EQ(FileName(NodeKind::kMem), "mem");
  EXPECT_EQ(FileName(NodeKind::kCtl), "ctl");
  EXPECT_EQ(FileName(NodeKind::kMaps), "maps");
  EXPECT_EQ(FileName(NodeKind::kStatus), "status");
  EXPECT_EQ(FileName(NodeKind::kErrors), "errors");
  EXPECT_EQ(FileName(NodeKind::kCore), "core");
  EXPECT_EQ(FileName(static_cast<NodeKind>(7)), "");
  // Readdir passes the name to libfuse as a C string.
  EXPECT_EQ(FileName(NodeKind::kMem).data()[3], '\0');
}

}  // namespace
}  // namespace taskfs::fs
