// state_dir (fs/state_dir.h): the checks of DIR, the attributes a save
// keeps, and a save written and loaded through files.
#include "fs/state_dir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "fs/taskfs_fs.h"
#include "tests/fs/adapter_world.h"
#include "tests/fs/temp_dir.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {
namespace {

using testing::kGroup;
using testing::kOwner;
using testing::WorldConfig;

class TempDir : public testing::TempDir {
 public:
  TempDir() : testing::TempDir("taskfs_state_") {}
};

// A system and the file system over it.
struct Daemon {
  Daemon()
      : system(WorldConfig()),
        fs(system,
           std::make_shared<spdlog::logger>(
               "state_test", std::make_shared<spdlog::sinks::null_sink_st>()),
           1 << 20) {}
  vm::VmSystem system;
  TaskFs fs;
};

// A temporary directory and the StateDir opened on it (null, with error
// set, if it could not be).
struct OpenedStateDir {
  TempDir dir;
  std::string error;
  std::unique_ptr<StateDir> state = StateDir::Open(dir.path(), &error);
};

// OpenStateDir's verdict on dir: "" if it opens.
std::string Check(const std::string& dir) {
  int fd = -1;
  const std::string error = OpenStateDir(dir, &fd);
  if (fd >= 0) ::close(fd);
  return error;
}

TEST(StateDirTest, ChecksOwnerModeAndKind) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
  EXPECT_EQ(Check(dir.path()), "");
  ASSERT_EQ(::chmod(dir.path().c_str(), 0750), 0);
  EXPECT_EQ(Check(dir.path()),
            "state=" + dir.path() +
                ": mode 0750, want 0700; it holds every user's memory");
  ASSERT_EQ(::chmod(dir.path().c_str(), 01700), 0);
  EXPECT_NE(Check(dir.path()).find("mode 1700"), std::string::npos);
  EXPECT_EQ(Check(dir.path() + "/none"),
            "state=" + dir.path() + "/none: No such file or directory");
  const std::string file = dir.path() + "/file";
  std::ofstream(file) << "x";
  EXPECT_EQ(Check(file), "state=" + file + ": not a directory");
  ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
  const std::string link = dir.path() + "/link";
  ASSERT_EQ(::symlink(dir.path().c_str(), link.c_str()), 0);
  EXPECT_EQ(Check(link),
            "state=" + link + ": a symbolic link, not a directory");
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(dir.path().c_str(), 1, 1), 0);
    EXPECT_NE(Check(dir.path()).find("belongs to uid 1, not the"),
              std::string::npos);
  }
}

TEST(StateDirTest, DirectoriesAboveWritableByOthersAreRefused) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string state = dir.path() + "/state";
  ASSERT_EQ(::mkdir(state.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
  EXPECT_EQ(Check(state), "state=" + state + ": " + dir.path() +
                              " above it has mode 0777, writable by other "
                              "users and not sticky; it holds every user's "
                              "memory");
  ASSERT_EQ(::chmod(dir.path().c_str(), 01777), 0);  // as /tmp
  EXPECT_EQ(Check(state), "");
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(dir.path().c_str(), 1, 1), 0);
    EXPECT_NE(Check(state).find(dir.path() + " above it belongs to uid 1"),
              std::string::npos);
  }
}

TEST(StateDirTest, ASecondOpenOfOneDirIsRefused) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string error;
  std::unique_ptr<StateDir> first = StateDir::Open(dir.path(), &error);
  ASSERT_NE(first, nullptr) << error;
  EXPECT_EQ(StateDir::Open(dir.path(), &error), nullptr);
  EXPECT_EQ(error, "state=" + dir.path() + ": in use by another taskfs");
  first.reset();
  EXPECT_NE(StateDir::Open(dir.path(), &error), nullptr) << error;
}

TEST(StateDirTest, NodeAttributesRoundTrip) {
  TaskNode node;
  node.uid = 1234;
  node.gid = 56;
  node.modes = {0750, 0640, 0600, 0444, 0400, 0404, 0440};
  uid_t uid = 0;
  gid_t gid = 0;
  std::array<mode_t, kNodeKinds> modes{};
  ASSERT_TRUE(DecodeNode(EncodeNode(node), &uid, &gid, &modes));
  EXPECT_EQ(uid, 1234u);
  EXPECT_EQ(gid, 56u);
  EXPECT_EQ(modes, node.modes);
  std::string bad = EncodeNode(node);
  EXPECT_FALSE(DecodeNode(bad.substr(1), &uid, &gid, &modes));
  bad[0] = 2;  // another version
  EXPECT_FALSE(DecodeNode(bad, &uid, &gid, &modes));
  node.modes[1] = 0100000;  // a file type, not permission bits
  EXPECT_FALSE(DecodeNode(EncodeNode(node), &uid, &gid, &modes));
}

TEST(StateDirTest, SaveAndLoadKeepTasksOwnersAndModes) {
  OpenedStateDir opened;
  ASSERT_NE(opened.state, nullptr) << opened.error;
  StateDir& state = *opened.state;
  {
    Daemon d;
    std::shared_ptr<vm::Task> a, b;
    ASSERT_EQ(vm::Take(vm::task_create(d.system, "alpha"), &a),
              vm::KERN_SUCCESS);
    ASSERT_EQ(vm::Take(vm::task_create(d.system, "beta"), &b),
              vm::KERN_SUCCESS);
    d.fs.AddTask(a, kOwner, kGroup);
    d.fs.AddTask(b, 2000, 200);
    ASSERT_TRUE(
        d.fs.SetModes(b->id(), {0750, 0640, 0600, 0444, 0444, 0400, 0440}));
    vm::vm_address_t at = 0x10000;
    ASSERT_EQ(vm::vm_allocate(*a, &at, 4 * testing::kPage, false),
              vm::KERN_SUCCESS);
    const std::string bytes(4 * testing::kPage, 'q');
    ASSERT_EQ(vm::vm_write(*a, at, bytes.data(), bytes.size()),
              vm::KERN_SUCCESS);
    std::uint64_t size = 0;
    ASSERT_EQ(state.Save(d.fs, &size), "");
    EXPECT_GT(size, 4 * testing::kPage);
    EXPECT_EQ(std::filesystem::file_size(state.path()), size);
  }
  EXPECT_FALSE(
      std::filesystem::exists(opened.dir.path() + "/" + kStateTempFile));

  Daemon d;
  std::size_t tasks = 0;
  bool found = false;
  ASSERT_EQ(state.Load(d.fs, &tasks, &found), "");
  EXPECT_TRUE(found);
  EXPECT_EQ(tasks, 2u);
  const std::vector<TaskNode> nodes = d.fs.Nodes();
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].task->name(), "alpha");
  EXPECT_EQ(nodes[0].uid, kOwner);
  EXPECT_EQ(nodes[0].modes, kDefaultModes);
  EXPECT_EQ(nodes[1].task->name(), "beta");
  EXPECT_EQ(nodes[1].uid, 2000u);
  EXPECT_EQ(nodes[1].gid, 200u);
  EXPECT_EQ((std::array<mode_t, kNodeKinds>{0750, 0640, 0600, 0444, 0444, 0400,
                                            0440}),
            nodes[1].modes);
  std::string got(testing::kPage, '\0');
  ASSERT_EQ(vm::vm_read(*nodes[0].task, 0x10000,
                        std::as_writable_bytes(std::span(got))),
            vm::KERN_SUCCESS);
  EXPECT_EQ(got, std::string(testing::kPage, 'q'));
}

TEST(StateDirTest, DamagedSaveNamesTheFile) {
  OpenedStateDir opened;
  ASSERT_NE(opened.state, nullptr) << opened.error;
  StateDir& state = *opened.state;
  {
    Daemon d;
    std::size_t none = 0;
    bool found = true;
    ASSERT_EQ(state.Load(d.fs, &none, &found), "");
    EXPECT_FALSE(found);
    std::shared_ptr<vm::Task> a;
    ASSERT_EQ(vm::Take(vm::task_create(d.system, "alpha"), &a),
              vm::KERN_SUCCESS);
    d.fs.AddTask(a, kOwner, kGroup);
    ASSERT_EQ(state.Save(d.fs), "");
  }
  ASSERT_EQ(::truncate(state.path().c_str(), 30), 0);
  Daemon d;
  std::size_t tasks = 0;
  bool found = false;
  EXPECT_EQ(state.Load(d.fs, &tasks, &found),
            "state " + state.path() + ": truncated at byte 30");
}

}  // namespace
}  // namespace taskfs::fs
