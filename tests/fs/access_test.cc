// Access checks (fs/access.h), driven over owner, group and other classes,
// supplementary groups, root's capabilities, and the reading of an
// opener's credentials from /proc.
#include "fs/access.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "tests/vmcore/take_result.h"
#include "vmcore/failure_reason.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_user.h"

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

TEST(MayAccessTest, RootPassesTheModesOnlyWithItsCapabilities) {
  Caller root{0, 0, {}};
  root.dac_override = true;
  EXPECT_EQ(MayAccess(root, Node(0, 0), false), vm::KERN_SUCCESS);
  EXPECT_EQ(MayAccess(root, Node(0, 0), true), vm::KERN_SUCCESS);
  // CAP_DAC_READ_SEARCH reads, and does not write.
  Caller reader{0, 0, {}};
  reader.dac_read_search = true;
  EXPECT_EQ(MayAccess(reader, Node(0, 0), false), vm::KERN_SUCCESS);
  EXPECT_EQ(MayAccess(reader, Node(0, 0), true), vm::KERN_PROTECTION_FAILURE);
  EXPECT_EQ(MayAccess(reader, Node(0700, 0622), true), vm::KERN_SUCCESS);
  // A uid 0 without them is held to the modes, as "other" here.
  const Caller capless{0, 0, {}};
  EXPECT_EQ(MayAccess(capless, Node(0700, 0600), false),
            vm::KERN_PROTECTION_FAILURE);
  EXPECT_EQ(MayAccess(capless, Node(0711, 0604), false), vm::KERN_SUCCESS);
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

// The lines of a /proc status text that ParseProcStatus reads.
std::string Status(const std::string& uid, const std::string& gid,
                   const std::string& groups, const std::string& cap_eff) {
  return "Name:\tsh\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t" + uid +
         "\nGid:\t" + gid + "\nFDSize:\t64\nGroups:\t" + groups +
         "\nCapInh:\t0000000000000000\nCapEff:\t" + cap_eff + "\n";
}

TEST(ParseProcStatusTest, ReadsTheGroups) {
  Credentials c;
  ParseProcStatus(Status("1000\t1000\t1000\t1000", "100\t100\t100\t100",
                         "4 24 27 100 ", "0000000000000000"),
                  1000, 100, &c);
  EXPECT_TRUE(c.known);
  EXPECT_EQ(c.uid, 1000u);
  EXPECT_EQ(c.gid, 100u);
  EXPECT_EQ(c.groups, (std::vector<gid_t>{4, 24, 27, 100}));
  EXPECT_FALSE(c.dac_override);
  // None is a known empty list.
  ParseProcStatus(Status("7\t7\t7\t7", "7\t7\t7\t7", "", "0000000000000000"), 7,
                  7, &c);
  EXPECT_TRUE(c.known);
  EXPECT_TRUE(c.groups.empty());
}

TEST(ParseProcStatusTest, AGroupPastTheSixtyFourthIsRead) {
  std::string groups;
  for (int g = 1; g <= 300; ++g) groups += std::to_string(5000 + g) + " ";
  Credentials c;
  ParseProcStatus(
      Status("9\t9\t9\t9", "9\t9\t9\t9", groups, "0000000000000000"), 9, 9, &c);
  ASSERT_TRUE(c.known);
  ASSERT_EQ(c.groups.size(), 300u);
  EXPECT_EQ(c.groups.back(), 5300u);
}

TEST(ParseProcStatusTest, RootsCapabilitiesCountAndOnlyRoots) {
  Credentials c;
  const std::string all = "000001ffffffffff";
  ParseProcStatus(Status("0\t0\t0\t0", "0\t0\t0\t0", "0", all), 0, 0, &c);
  EXPECT_TRUE(c.known && c.dac_override && c.dac_read_search);
  // CAP_DAC_READ_SEARCH (bit 2) alone.
  ParseProcStatus(Status("0\t0\t0\t0", "0\t0\t0\t0", "0", "0000000000000004"),
                  0, 0, &c);
  EXPECT_TRUE(c.known && !c.dac_override && c.dac_read_search);
  // Dropped.
  ParseProcStatus(Status("0\t0\t0\t0", "0\t0\t0\t0", "0", "0000000000000000"),
                  0, 0, &c);
  EXPECT_TRUE(c.known && !c.dac_override && !c.dac_read_search);
  // A file capability on another uid's program is not honoured.
  ParseProcStatus(Status("5\t5\t5\t5", "5\t5\t5\t5", "", all), 5, 5, &c);
  EXPECT_TRUE(c.known && !c.dac_override && !c.dac_read_search);
}

TEST(ParseProcStatusTest, WhatItCannotTrustIsUnknown) {
  Credentials c;
  // The filesystem ids (the fourth) are not the request's: another process,
  // or credentials the kernel swapped for the open.
  ParseProcStatus(Status("1000\t1000\t1000\t2000", "100\t100\t100\t100", "5",
                         "0000000000000000"),
                  1000, 100, &c);
  EXPECT_FALSE(c.known);
  EXPECT_TRUE(c.groups.empty());
  ParseProcStatus(Status("0\t0\t0\t0", "0\t0\t0\t0", "", "0"), 0, 7, &c);
  EXPECT_FALSE(c.known);
  // Malformed or missing lines.
  ParseProcStatus(Status("1\t1\t1\t1", "1\t1\t1\t1", "5 x", "0"), 1, 1, &c);
  EXPECT_FALSE(c.known);
  ParseProcStatus("Uid:\t1\t1\t1\t1\nGid:\t1\t1\t1\t1\n", 1, 1, &c);
  EXPECT_FALSE(c.known);
  ParseProcStatus(Status("0\t0\t0\t0", "0\t0\t0\t0", "", "zz"), 0, 0, &c);
  EXPECT_FALSE(c.known);
  EXPECT_FALSE(c.dac_override);
  ParseProcStatus("", 0, 0, &c);
  EXPECT_FALSE(c.known);
}

TEST(ReadCredentialsTest, ReadsThisThread) {
  const Credentials c =
      ReadCredentials(static_cast<pid_t>(::gettid()), ::getuid(), ::getgid());
  EXPECT_TRUE(c.known);
  std::vector<gid_t> groups(static_cast<std::size_t>(::getgroups(0, nullptr)));
  ASSERT_EQ(::getgroups(static_cast<int>(groups.size()), groups.data()),
            static_cast<int>(groups.size()));
  EXPECT_EQ(c.groups, groups);
  // Ids that are not the thread's, and no pid, are unknown.
  EXPECT_FALSE(ReadCredentials(static_cast<pid_t>(::gettid()), ::getuid() + 1,
                               ::getgid())
                   .known);
  EXPECT_FALSE(ReadCredentials(0, ::getuid(), ::getgid()).known);
}

// --- an opener reaching another task ---------------------------------------

class OpenerMayAccessTest : public ::testing::Test {
 protected:
  OpenerMayAccessTest() : system_(Config()) {
    EXPECT_EQ(vm::Take(vm::task_create(system_, "victim"), &victim_),
              vm::KERN_SUCCESS);
    nodes_.Add(victim_, kOwner, kGroup);
  }

  static vm::VmConfig Config() {
    vm::VmConfig config;
    config.page_size = 4096;
    config.address_bits = 24;
    config.max_tasks = 4;
    return config;
  }

  static Credentials Known(uid_t uid, gid_t gid) {
    return Credentials{uid, gid, {}, false, false, true};
  }

  vm::VmSystem system_;
  NodeTable nodes_;
  std::shared_ptr<vm::Task> victim_;
};

TEST_F(OpenerMayAccessTest, TheModesOfTheTasksNodeDecide) {
  EXPECT_EQ(OpenerMayAccess(Known(kOwner, 1), nodes_, *victim_, true),
            vm::KERN_SUCCESS);
  EXPECT_EQ(OpenerMayAccess(Known(2000, 2000), nodes_, *victim_, false),
            vm::KERN_PROTECTION_FAILURE);
  EXPECT_EQ(vm::LastFailureReason(),
            "uid 2000 may not read task victim's mem (directory 0700, mem "
            "0600, owner 1000:100)");
  ASSERT_TRUE(nodes_.Update(victim_->id(), [](TaskNode& n) {
    n.modes[kDir] = 0711;
    n.modes[kMem] = 0604;
  }));
  EXPECT_EQ(OpenerMayAccess(Known(2000, 2000), nodes_, *victim_, false),
            vm::KERN_SUCCESS);
  EXPECT_EQ(OpenerMayAccess(Known(2000, 2000), nodes_, *victim_, true),
            vm::KERN_PROTECTION_FAILURE);
  EXPECT_EQ(vm::LastFailureReason(),
            "uid 2000 may not read and write task victim's mem (directory "
            "0711, mem 0604, owner 1000:100)");
}

TEST_F(OpenerMayAccessTest, AnOpenerWhoseGroupsAreUnknownReachesNothing) {
  Credentials unknown = Known(kOwner, kGroup);
  unknown.known = false;
  EXPECT_EQ(OpenerMayAccess(unknown, nodes_, *victim_, false),
            vm::KERN_PROTECTION_FAILURE);
  EXPECT_EQ(vm::LastFailureReason(),
            "the groups and capabilities of uid 1000, who opened this file, "
            "could not be read when it was opened");
}

TEST_F(OpenerMayAccessTest, AGoneTaskIsInvalidTask) {
  nodes_.Remove(victim_->id());
  EXPECT_EQ(OpenerMayAccess(Known(kOwner, kGroup), nodes_, *victim_, false),
            vm::KERN_INVALID_TASK);
  EXPECT_EQ(vm::LastFailureReason(), "task victim is gone");
}

}  // namespace
}  // namespace taskfs::fs
