// The names of the layout (fs/directory.h): lookup and listings.
#include "fs/directory.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>
#include <vector>

#include "tests/fs/adapter_world.h"

namespace taskfs::fs {
namespace {

using testing::World;

struct Listed {
  std::string name;
  Ino ino;
  mode_t type;
  off_t next;
  friend bool operator==(const Listed&, const Listed&) = default;
};

class DirectoryTest : public ::testing::Test {
 protected:
  DirectoryTest()
      : a_(world_.AddTask("a")),
        b_(world_.AddTask("b")),
        directory_(world_.system, world_.nodes) {}

  // The listing of ino from off, with room for at most max entries.
  std::vector<Listed> List(Ino ino, off_t off, std::size_t max = 100,
                           int* error = nullptr) {
    std::vector<Listed> listed;
    const int e = directory_.List(ino, off, 4096, [&](const DirEntry& entry) {
      if (listed.size() == max) return false;
      listed.push_back({entry.name, entry.ino, entry.type, entry.next});
      return true;
    });
    if (error != nullptr) *error = e;
    return listed;
  }

  Ino DirOf(const vm::Task& task) const {
    return TaskIno(task.id(), NodeKind::kDir);
  }

  World world_;
  std::shared_ptr<vm::Task> a_;
  std::shared_ptr<vm::Task> b_;
  Directory directory_;
};

TEST_F(DirectoryTest, TheRootHoldsHostPageSizeAndTheTasks) {
  Ino ino = 0;
  EXPECT_EQ(directory_.Lookup(kRootIno, "host_page_size", &ino), 0);
  EXPECT_EQ(ino, kHostPageSizeIno);
  EXPECT_EQ(directory_.Lookup(kRootIno, "b", &ino), 0);
  EXPECT_EQ(ino, DirOf(*b_));
  ino = 0;
  EXPECT_EQ(directory_.Lookup(kRootIno, "c", &ino), ENOENT);
  EXPECT_EQ(directory_.Lookup(kRootIno, "mem", &ino), ENOENT);
  EXPECT_EQ(ino, 0u);
}

TEST_F(DirectoryTest, ATaskDirectoryHoldsItsSixFiles) {
  for (unsigned k = 1; k < kNodeKinds; ++k) {
    const NodeKind kind = static_cast<NodeKind>(k);
    SCOPED_TRACE(FileName(kind));
    Ino ino = 0;
    EXPECT_EQ(directory_.Lookup(DirOf(*a_), FileName(kind), &ino), 0);
    EXPECT_EQ(ino, TaskIno(a_->id(), kind));
  }
  Ino ino = 0;
  EXPECT_EQ(directory_.Lookup(DirOf(*a_), "", &ino), ENOENT);
  EXPECT_EQ(directory_.Lookup(DirOf(*a_), "host_page_size", &ino), ENOENT);
  EXPECT_EQ(directory_.Lookup(DirOf(*a_), "b", &ino), ENOENT);
  // A file is no directory; a gone task holds nothing.
  EXPECT_EQ(directory_.Lookup(TaskIno(a_->id(), NodeKind::kMem), "mem", &ino),
            ENOENT);
  EXPECT_EQ(directory_.Lookup(kHostPageSizeIno, "mem", &ino), ENOENT);
  world_.nodes.Remove(a_->id());
  EXPECT_EQ(directory_.Lookup(DirOf(*a_), "mem", &ino), ENOENT);
  EXPECT_EQ(directory_.Lookup(kRootIno, "a", &ino), ENOENT);
}

TEST_F(DirectoryTest, FindTaskSeesOnlyVisibleNodes) {
  TaskNode node;
  EXPECT_TRUE(directory_.FindTask("a", &node));
  EXPECT_EQ(node.task, a_);
  world_.nodes.Remove(a_->id());
  EXPECT_FALSE(directory_.FindTask("a", &node));
  EXPECT_FALSE(directory_.FindTask("nobody", &node));
}

TEST_F(DirectoryTest, TheRootListsItsFixedEntriesThenTasksById) {
  const off_t a = static_cast<off_t>(a_->id()) + kRootFixedEntries;
  const off_t b = static_cast<off_t>(b_->id()) + kRootFixedEntries;
  EXPECT_EQ(
      List(kRootIno, 0),
      (std::vector<Listed>{{".", kRootIno, S_IFDIR, 1},
                           {"..", kRootIno, S_IFDIR, 2},
                           {"host_page_size", kHostPageSizeIno, S_IFREG, 3},
                           {"a", DirOf(*a_), S_IFDIR, a},
                           {"b", DirOf(*b_), S_IFDIR, b}}));
  // Each offset resumes after the entry that gave it.
  EXPECT_EQ(List(kRootIno, 2).front().name, "host_page_size");
  EXPECT_EQ(List(kRootIno, 3).front().name, "a");
  EXPECT_EQ(List(kRootIno, a),
            (std::vector<Listed>{{"b", DirOf(*b_), S_IFDIR, b}}));
  EXPECT_TRUE(List(kRootIno, b).empty());
}

TEST_F(DirectoryTest, AListingStopsWhenTheReplyIsFull) {
  EXPECT_EQ(List(kRootIno, 0, 4).size(), 4u);
  EXPECT_EQ(List(DirOf(*a_), 0, 1).size(), 1u);
}

TEST_F(DirectoryTest, ATaskDirectoryListsItsFiles) {
  const Ino dir = DirOf(*a_);
  EXPECT_EQ(List(dir, 0),
            (std::vector<Listed>{
                {".", dir, S_IFDIR, 1},
                {"..", kRootIno, S_IFDIR, 2},
                {"mem", TaskIno(a_->id(), NodeKind::kMem), S_IFREG, 3},
                {"ctl", TaskIno(a_->id(), NodeKind::kCtl), S_IFREG, 4},
                {"maps", TaskIno(a_->id(), NodeKind::kMaps), S_IFREG, 5},
                {"status", TaskIno(a_->id(), NodeKind::kStatus), S_IFREG, 6},
                {"errors", TaskIno(a_->id(), NodeKind::kErrors), S_IFREG, 7},
                {"core", TaskIno(a_->id(), NodeKind::kCore), S_IFREG, 8}}));
  EXPECT_EQ(List(dir, 5),
            (std::vector<Listed>{
                {"status", TaskIno(a_->id(), NodeKind::kStatus), S_IFREG, 6},
                {"errors", TaskIno(a_->id(), NodeKind::kErrors), S_IFREG, 7},
                {"core", TaskIno(a_->id(), NodeKind::kCore), S_IFREG, 8}}));
  EXPECT_TRUE(List(dir, 8).empty());
}

TEST_F(DirectoryTest, OnlyDirectoriesList) {
  int error = 0;
  EXPECT_TRUE(List(TaskIno(a_->id(), NodeKind::kMem), 0, 100, &error).empty());
  EXPECT_EQ(error, ENOTDIR);
  List(kHostPageSizeIno, 0, 100, &error);
  EXPECT_EQ(error, ENOTDIR);
  List(TaskIno(0, NodeKind::kDir), 0, 100, &error);
  EXPECT_EQ(error, ENOTDIR);
  world_.nodes.Remove(a_->id());
  EXPECT_TRUE(List(DirOf(*a_), 0, 100, &error).empty());
  EXPECT_EQ(error, ENOENT);
}

}  // namespace
}  // namespace taskfs::fs
