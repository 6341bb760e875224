// Access checks (fs/access.h), driven over owner, group and other classes,
// supplementary groups, root, and the group list reader.
#include "fs/access.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

namespace taskfs::fs {
namespace {

constexpr uid_t kOwner = 1000;
constexpr gid_t kGroup = 100;
constexpr unsigned kDir = static_cast<unsigned>(NodeKind::kDir);
constexpr unsigned kMem = static_cast<unsigned>(NodeKind::kMem);

TaskNode Node(mode_t dir_mode, mode_t mem_mode) {
  TaskNode node;
  node.uid = kOwner;
  node.gid = kGroup;
  node.modes = kDefaultModes;
  node.modes[kDir] = dir_mode;
  node.modes[kMem] = mem_mode;
  return node;
}

TEST(ModeAllowsTest, EachClassUsesItsOwnBits) {
  const TaskNode node = Node(0700, 0600);
  const Caller owner{kOwner, 1, {}};
  const Caller group{2000, kGroup, {}};
  const Caller other{2000, 2000, {}};
  // 0640: owner rw, group r, other nothing.
  EXPECT_TRUE(ModeAllows(owner, node, 0640, 06));
  EXPECT_FALSE(ModeAllows(owner, node, 0640, 01));
  EXPECT_TRUE(ModeAllows(group, node, 0640, 04));
  EXPECT_FALSE(ModeAllows(group, node, 0640, 06));
  EXPECT_FALSE(ModeAllows(other, node, 0640, 04));
  EXPECT_TRUE(ModeAllows(other, node, 0647, 07));
}

TEST(ModeAllowsTest, TheOwnerClassWinsEvenWithFewerBits) {
  // As in the kernel: an owner without a bit the group has is refused.
  const TaskNode node = Node(0700, 0600);
  const Caller owner{kOwner, kGroup, {}};
  EXPECT_FALSE(ModeAllows(owner, node, 0060, 04));
  const Caller member{2000, kGroup, {}};
  EXPECT_FALSE(ModeAllows(member, node, 0604, 04));
}

TEST(ModeAllowsTest, ASupplementaryGroupCounts) {
  const TaskNode node = Node(0700, 0600);
  const std::vector<gid_t> groups = {5, 6, kGroup, 7};
  const Caller member{2000, 2000, groups};
  EXPECT_TRUE(ModeAllows(member, node, 0040, 04));
  EXPECT_FALSE(ModeAllows(member, node, 0004, 04));
  const std::vector<gid_t> others = {5, 6, 7};
  const Caller outsider{2000, 2000, others};
  EXPECT_FALSE(ModeAllows(outsider, node, 0040, 04));
  EXPECT_TRUE(ModeAllows(outsider, node, 0004, 04));
}

TEST(ModeAllowsTest, AGroupPastTheSixtyFourthCounts) {
  std::vector<gid_t> groups;
  for (gid_t g = 1; g <= 200; ++g) groups.push_back(5000 + g);
  groups.push_back(kGroup);
  const Caller member{2000, 2000, groups};
  EXPECT_TRUE(ModeAllows(member, Node(0700, 0600), 0040, 04));
}

TEST(NeedsGroupsTest, OnlyForNonRootOutsideOwnerAndPrimaryGroup) {
  const TaskNode node = Node(0700, 0600);
  EXPECT_FALSE(NeedsGroups(0, 5, node));
  EXPECT_FALSE(NeedsGroups(kOwner, 5, node));
  EXPECT_FALSE(NeedsGroups(2000, kGroup, node));
  EXPECT_TRUE(NeedsGroups(2000, 5, node));
}

TEST(MayAccessTest, RootMayAlways) {
  const Caller root{0, 0, {}};
  EXPECT_EQ(MayAccess(root, Node(0, 0), false), vm::KERN_SUCCESS);
  EXPECT_EQ(MayAccess(root, Node(0, 0), true), vm::KERN_SUCCESS);
}

TEST(MayAccessTest, NeedsSearchOnTheDirectoryAndReadOrWriteOnMem) {
  const Caller owner{kOwner, kGroup, {}};
  EXPECT_EQ(MayAccess(owner, Node(0700, 0600), false), vm::KERN_SUCCESS);
  EXPECT_EQ(MayAccess(owner, Node(0700, 0600), true), vm::KERN_SUCCESS);
  EXPECT_EQ(MayAccess(owner, Node(0600, 0600), false),
            vm::KERN_PROTECTION_FAILURE);  // no search
  EXPECT_EQ(MayAccess(owner, Node(0100, 0400), false), vm::KERN_SUCCESS);
  EXPECT_EQ(MayAccess(owner, Node(0100, 0400), true),
            vm::KERN_PROTECTION_FAILURE);  // write needs 06
  EXPECT_EQ(MayAccess(owner, Node(0100, 0200), false),
            vm::KERN_PROTECTION_FAILURE);  // read needs 04
  EXPECT_EQ(MayAccess(owner, Node(0100, 0200), true),
            vm::KERN_PROTECTION_FAILURE);  // write access also reads
}

TEST(MayAccessTest, GroupAndOtherClasses) {
  const std::vector<gid_t> groups = {kGroup};
  const Caller member{2000, 2000, groups};
  const Caller other{3000, 3000, {}};
  const TaskNode shared = Node(0710, 0640);
  EXPECT_EQ(MayAccess(member, shared, false), vm::KERN_SUCCESS);
  EXPECT_EQ(MayAccess(member, shared, true), vm::KERN_PROTECTION_FAILURE);
  EXPECT_EQ(MayAccess(other, shared, false), vm::KERN_PROTECTION_FAILURE);
  const TaskNode open = Node(0711, 0666);
  EXPECT_EQ(MayAccess(other, open, true), vm::KERN_SUCCESS);
}

// A fake fuse_req_getgroups over a list of n groups.
struct FakeGroups {
  std::vector<gid_t> all;
  int calls = 0;
  int error = 0;
  int operator()(int size, gid_t* list) {
    ++calls;
    if (error != 0) return -error;
    for (int i = 0; i < size && i < static_cast<int>(all.size()); ++i) {
      list[i] = all[static_cast<std::size_t>(i)];
    }
    return static_cast<int>(all.size());
  }
};

TEST(ReadGroupsTest, AFewGroupsInOneCall) {
  FakeGroups fake{{3, 1, 2}};
  const std::vector<gid_t> groups =
      ReadGroups([&](int size, gid_t* list) { return fake(size, list); });
  EXPECT_EQ(groups, (std::vector<gid_t>{3, 1, 2}));
  EXPECT_EQ(fake.calls, 1);
}

TEST(ReadGroupsTest, GrowsTheBufferForMoreThanItHadRoomFor) {
  FakeGroups fake;
  for (gid_t g = 0; g < 1000; ++g) fake.all.push_back(g * 3);
  const std::vector<gid_t> groups =
      ReadGroups([&](int size, gid_t* list) { return fake(size, list); });
  EXPECT_EQ(groups, fake.all);
  EXPECT_EQ(fake.calls, 2);
}

TEST(ReadGroupsTest, ExactlyTheFirstBufferAndNone) {
  FakeGroups fake;
  for (gid_t g = 0; g < 64; ++g) fake.all.push_back(g);
  EXPECT_EQ(ReadGroups([&](int s, gid_t* l) { return fake(s, l); }), fake.all);
  EXPECT_EQ(fake.calls, 1);
  FakeGroups none;
  EXPECT_TRUE(ReadGroups([&](int s, gid_t* l) { return none(s, l); }).empty());
}

TEST(ReadGroupsTest, AnErrorGivesNoGroups) {
  FakeGroups fake{{1, 2}, 0, ENOSYS};
  EXPECT_TRUE(ReadGroups([&](int s, gid_t* l) { return fake(s, l); }).empty());
}

}  // namespace
}  // namespace taskfs::fs
