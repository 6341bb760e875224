// The attributes of the layout's paths (fs/attributes.h): stat of each
// kind of path, cache times, who may change what, and statfs.
#include "fs/attributes.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "tests/fs/adapter_world.h"

namespace taskfs::fs {
namespace {

using testing::kGroup;
using testing::kOwner;
using testing::kPage;
using testing::World;

constexpr uid_t kDaemonUid = 7;
constexpr gid_t kDaemonGid = 8;
constexpr timespec kMountedAt = {1700000000, 5};

class AttributesTest : public ::testing::Test {
 protected:
  AttributesTest()
      : task_(world_.AddTask("t")),
        attributes_(world_.system, world_.nodes, kDaemonUid, kDaemonGid,
                    kMountedAt) {}

  struct stat Stat(Ino ino, bool last = false) {
    struct stat st;
    std::memset(&st, 0xee, sizeof st);
    EXPECT_EQ(attributes_.Get(ino, &st, last), 0);
    return st;
  }

  Ino TaskPath(NodeKind kind) const { return TaskIno(task_->id(), kind); }

  World world_;
  std::shared_ptr<vm::Task> task_;
  Attributes attributes_;
};

TEST_F(AttributesTest, TheRootIsTheDaemonsWithALinkPerTask) {
  struct stat st = Stat(kRootIno);
  EXPECT_EQ(st.st_ino, kRootIno);
  EXPECT_EQ(st.st_mode, S_IFDIR | 01777);
  EXPECT_EQ(st.st_nlink, 3u);
  EXPECT_EQ(st.st_uid, kDaemonUid);
  EXPECT_EQ(st.st_gid, kDaemonGid);
  EXPECT_EQ(st.st_mtim.tv_sec, kMountedAt.tv_sec);
  EXPECT_EQ(st.st_ctim.tv_nsec, kMountedAt.tv_nsec);
  world_.AddTask("u");
  EXPECT_EQ(Stat(kRootIno).st_nlink, 4u);
}

TEST_F(AttributesTest, HostPageSizeIsAReadOnlyFileOfItsTextsSize) {
  const struct stat st = Stat(kHostPageSizeIno);
  EXPECT_EQ(st.st_ino, kHostPageSizeIno);
  EXPECT_EQ(st.st_mode, S_IFREG | 0444);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(st.st_size, 5);  // "4096\n"
  EXPECT_EQ(st.st_uid, kDaemonUid);
  EXPECT_EQ(st.st_atim.tv_sec, kMountedAt.tv_sec);
}

TEST_F(AttributesTest, TaskPathsHaveTheirNodesOwnerAndModes) {
  TaskNode node;
  ASSERT_TRUE(world_.nodes.Find(task_->id(), &node));
  const struct {
    NodeKind kind;
    mode_t mode;
    nlink_t links;
    off_t size;
  } kCases[] = {
      {NodeKind::kDir, S_IFDIR | 0700, 2, 0},
      {NodeKind::kMem, S_IFREG | 0600, 1, off_t{1} << 32},
      {NodeKind::kCtl, S_IFREG | 0600, 1, 0},
      {NodeKind::kMaps, S_IFREG | 0400, 1, 0},
      {NodeKind::kStatus, S_IFREG | 0444, 1, 0},
      {NodeKind::kErrors, S_IFREG | 0400, 1, 0},
      {NodeKind::kCore, S_IFREG | 0400, 1,
       static_cast<off_t>(sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + 44)},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(FileName(c.kind));
    const struct stat st = Stat(TaskPath(c.kind));
    EXPECT_EQ(st.st_ino, TaskPath(c.kind));
    EXPECT_EQ(st.st_mode, c.mode);
    EXPECT_EQ(st.st_nlink, c.links);
    EXPECT_EQ(st.st_size, c.size);
    EXPECT_EQ(st.st_uid, kOwner);
    EXPECT_EQ(st.st_gid, kGroup);
    EXPECT_EQ(st.st_blksize, static_cast<blksize_t>(kPage));
    EXPECT_EQ(st.st_mtim.tv_sec, node.created.tv_sec);
    EXPECT_EQ(st.st_mtim.tv_nsec, node.created.tv_nsec);
  }
}

TEST_F(AttributesTest, NumbersThatNameNothingAreEnoent) {
  struct stat st;
  EXPECT_EQ(attributes_.Get(TaskIno(99, NodeKind::kDir), &st), ENOENT);
  EXPECT_EQ(attributes_.Get(TaskIno(task_->id(), NodeKind::kDir) + 7, &st),
            ENOENT);  // kind 7
  EXPECT_EQ(attributes_.Get(0, &st), ENOENT);
}

TEST_F(AttributesTest, ARemovedTaskHasItsLastAttributesWhileAFileIsOpen) {
  TaskNode node;
  ASSERT_TRUE(world_.nodes.Pin(task_->id(), &node));
  {
    const NodePin pin(world_.nodes, task_->id());
    world_.nodes.Remove(task_->id());
    struct stat st;
    EXPECT_EQ(attributes_.Get(TaskPath(NodeKind::kMem), &st), ENOENT);
    EXPECT_EQ(Stat(TaskPath(NodeKind::kMem), /*last=*/true).st_mode,
              S_IFREG | 0600);
  }
  struct stat st;
  EXPECT_EQ(attributes_.Get(TaskPath(NodeKind::kMem), &st, /*last=*/true),
            ENOENT);
}

TEST_F(AttributesTest, AnEntryCarriesItsCacheTimes) {
  fuse_entry_param e;
  ASSERT_EQ(attributes_.Entry(TaskPath(NodeKind::kDir), &e), 0);
  EXPECT_EQ(e.ino, TaskPath(NodeKind::kDir));
  EXPECT_EQ(e.attr.st_mode, S_IFDIR | 0700);
  EXPECT_EQ(e.attr_timeout, kTaskAttrSeconds);
  EXPECT_EQ(e.entry_timeout, kCacheSeconds);
  ASSERT_EQ(attributes_.Entry(kHostPageSizeIno, &e), 0);
  EXPECT_EQ(e.attr_timeout, kCacheSeconds);
  EXPECT_EQ(attributes_.Entry(TaskIno(99, NodeKind::kDir), &e), ENOENT);
}

TEST_F(AttributesTest, OnlyTheFixedPathsAttributesAreCached) {
  EXPECT_EQ(Attributes::Seconds(kRootIno), kCacheSeconds);
  EXPECT_EQ(Attributes::Seconds(kHostPageSizeIno), kCacheSeconds);
  EXPECT_EQ(Attributes::Seconds(TaskPath(NodeKind::kMem)), kTaskAttrSeconds);
}

TEST_F(AttributesTest, TheOwnerAndRootChangeModes) {
  struct stat attr {};
  attr.st_mode = S_IFREG | 0640;
  EXPECT_EQ(
      attributes_.Set(TaskPath(NodeKind::kMem), 2000, attr, FUSE_SET_ATTR_MODE),
      EPERM);
  EXPECT_EQ(attributes_.Set(TaskPath(NodeKind::kMem), kOwner, attr,
                            FUSE_SET_ATTR_MODE),
            0);
  EXPECT_EQ(Stat(TaskPath(NodeKind::kMem)).st_mode, S_IFREG | 0640);
  attr.st_mode = S_IFDIR | 0750;
  EXPECT_EQ(
      attributes_.Set(TaskPath(NodeKind::kDir), 0, attr, FUSE_SET_ATTR_MODE),
      0);
  EXPECT_EQ(Stat(TaskPath(NodeKind::kDir)).st_mode, S_IFDIR | 0750);
  // The other paths keep theirs.
  EXPECT_EQ(Stat(TaskPath(NodeKind::kCtl)).st_mode, S_IFREG | 0600);
}

TEST_F(AttributesTest, CoresModeIsMemsReadBitsAndCannotBeChanged) {
  struct stat attr {};
  attr.st_mode = S_IFREG | 0644;
  EXPECT_EQ(attributes_.Set(TaskPath(NodeKind::kMem), kOwner, attr,
                            FUSE_SET_ATTR_MODE),
            0);
  EXPECT_EQ(Stat(TaskPath(NodeKind::kCore)).st_mode, S_IFREG | 0444);
  attr.st_mode = S_IFREG | 0200;
  EXPECT_EQ(attributes_.Set(TaskPath(NodeKind::kMem), kOwner, attr,
                            FUSE_SET_ATTR_MODE),
            0);
  EXPECT_EQ(Stat(TaskPath(NodeKind::kCore)).st_mode, S_IFREG | 0);
  attr.st_mode = S_IFREG | 0400;
  EXPECT_EQ(attributes_.Set(TaskPath(NodeKind::kCore), kOwner, attr,
                            FUSE_SET_ATTR_MODE),
            EPERM);
  EXPECT_EQ(
      attributes_.Set(TaskPath(NodeKind::kCore), 0, attr, FUSE_SET_ATTR_MODE),
      EPERM);
}

TEST_F(AttributesTest, CoresSizeAndBlocksAreItsWrittenMemory) {
  vm::vm_address_t address = 0x10000;
  ASSERT_EQ(vm::vm_allocate(*task_, &address, 16 * kPage, false),
            vm::KERN_SUCCESS);
  const std::vector<char> data(2 * kPage, 'x');
  ASSERT_EQ(vm::vm_write(*task_, address + kPage, data.data(), data.size()),
            vm::KERN_SUCCESS);
  const struct stat st = Stat(TaskPath(NodeKind::kCore));
  EXPECT_EQ(st.st_size, static_cast<off_t>(kPage + 16 * kPage));
  EXPECT_EQ(st.st_blocks, static_cast<blkcnt_t>(2 * kPage / 512));
}

TEST_F(AttributesTest, OnlyRootChangesTheOwnerOfAllPathsAtOnce) {
  struct stat attr {};
  attr.st_uid = 3000;
  attr.st_gid = 300;
  EXPECT_EQ(attributes_.Set(TaskPath(NodeKind::kMem), kOwner, attr,
                            FUSE_SET_ATTR_UID),
            EPERM);
  EXPECT_EQ(attributes_.Set(TaskPath(NodeKind::kMem), kOwner, attr,
                            FUSE_SET_ATTR_GID),
            EPERM);
  EXPECT_EQ(attributes_.Set(TaskPath(NodeKind::kMem), 0, attr,
                            FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID),
            0);
  for (unsigned k = 0; k < kNodeKinds; ++k) {
    const struct stat st = Stat(TaskPath(static_cast<NodeKind>(k)));
    EXPECT_EQ(st.st_uid, 3000u);
    EXPECT_EQ(st.st_gid, 300u);
  }
}

TEST_F(AttributesTest, TruncateChangesNothingAndOnlyMemAndCtlTakeIt) {
  struct stat attr {};
  attr.st_size = 0;
  EXPECT_EQ(attributes_.Set(TaskPath(NodeKind::kMem), kOwner, attr,
                            FUSE_SET_ATTR_SIZE),
            0);
  EXPECT_EQ(Stat(TaskPath(NodeKind::kMem)).st_size, off_t{1} << 32);
  EXPECT_EQ(attributes_.Set(TaskPath(NodeKind::kCtl), kOwner, attr,
                            FUSE_SET_ATTR_SIZE),
            0);
  EXPECT_EQ(attributes_.Set(TaskPath(NodeKind::kMaps), kOwner, attr,
                            FUSE_SET_ATTR_SIZE),
            EPERM);
  EXPECT_EQ(attributes_.Set(TaskPath(NodeKind::kDir), kOwner, attr,
                            FUSE_SET_ATTR_SIZE),
            EISDIR);
}

TEST_F(AttributesTest, TheFixedPathsTakeTimesAndNothingElse) {
  struct stat attr {};
  for (Ino ino : {kRootIno, kHostPageSizeIno}) {
    SCOPED_TRACE(ino);
    EXPECT_EQ(attributes_.Set(ino, 0, attr,
                              FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME_NOW),
              0);
    EXPECT_EQ(attributes_.Set(ino, 0, attr, FUSE_SET_ATTR_MODE), EPERM);
  }
  EXPECT_EQ(Stat(kRootIno).st_mtim.tv_sec, kMountedAt.tv_sec);
}

TEST_F(AttributesTest, AGoneTasksAttributesCannotBeSet) {
  struct stat attr {};
  world_.nodes.Remove(task_->id());
  EXPECT_EQ(
      attributes_.Set(TaskPath(NodeKind::kMem), 0, attr, FUSE_SET_ATTR_MODE),
      ENOENT);
  EXPECT_EQ(attributes_.Set(TaskIno(0, NodeKind::kMaps), 0, attr, 0), ENOENT);
}

TEST_F(AttributesTest, StatfsCountsPagesOfTheLimitAndTasksAsInodes) {
  struct statvfs st;
  attributes_.FileSystem(&st);
  EXPECT_EQ(st.f_bsize, kPage);
  EXPECT_EQ(st.f_frsize, kPage);
  EXPECT_EQ(st.f_blocks, 1024u);
  EXPECT_LE(st.f_bfree, st.f_blocks);
  EXPECT_EQ(st.f_bavail, st.f_bfree);
  EXPECT_EQ(st.f_files, 8u);
  EXPECT_EQ(st.f_ffree, 7u);
  EXPECT_EQ(st.f_favail, 7u);
  EXPECT_EQ(st.f_namemax, 64u);
  // Written pages are used blocks.
  world_.Allocate(*task_, 0x10000, 16 * kPage);
  ASSERT_EQ(vm::vm_fill(*task_, 0x10000, 16 * kPage, 0x5a), vm::KERN_SUCCESS);
  struct statvfs after;
  attributes_.FileSystem(&after);
  EXPECT_LE(after.f_bfree + 16, st.f_bfree);
}

}  // namespace
}  // namespace taskfs::fs
