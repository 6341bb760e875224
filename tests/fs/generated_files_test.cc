// The generated files as an open file reads them (fs/generated_files.h):
// one snapshot per read from offset 0, continued at later offsets.
#include "fs/generated_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/fs/adapter_world.h"

namespace taskfs::fs {
namespace {

using testing::kPage;
using testing::World;

constexpr char kFirstRegion[] =
    "0000000000010000-0000000000011000 rw-/rwx copy\n";
constexpr char kSecondRegion[] =
    "0000000000020000-0000000000022000 rw-/rwx copy\n";

TEST(TextPartTest, TheBytesAtOffWithinTheText) {
  EXPECT_EQ(TextPart("abcdef", 0, 4), "abcd");
  EXPECT_EQ(TextPart("abcdef", 4, 4), "ef");
  EXPECT_EQ(TextPart("abcdef", 6, 4), "");
  EXPECT_EQ(TextPart("abcdef", 60, 4), "");
  EXPECT_EQ(TextPart("abcdef", -1, 4), "");
  EXPECT_EQ(TextPart("abcdef", 1, 0), "");
}

class GeneratedFilesTest : public ::testing::Test {
 protected:
  GeneratedFilesTest() : task_(world_.AddTask("t")) {}

  vm::KernReturn Read(OpenFile& file, off_t off, std::size_t size,
                      std::string* part) {
    return ReadGenerated(world_.nodes, file, off, size, part);
  }

  std::string ReadAll(OpenFile& file) {
    std::string part;
    EXPECT_EQ(Read(file, 0, 1 << 20, &part), vm::KERN_SUCCESS);
    return part;
  }

  World world_;
  std::shared_ptr<vm::Task> task_;
};

TEST_F(GeneratedFilesTest, MapsListsTheRegions) {
  const auto file = world_.Open(task_, NodeKind::kMaps, O_RDONLY);
  EXPECT_EQ(ReadAll(*file), "");
  world_.Allocate(*task_, 0x10000, kPage);
  world_.Allocate(*task_, 0x20000, 2 * kPage);
  EXPECT_EQ(ReadAll(*file), std::string(kFirstRegion) + kSecondRegion);
}

TEST_F(GeneratedFilesTest, LaterOffsetsContinueTheSnapshotOfOffsetZero) {
  world_.Allocate(*task_, 0x10000, kPage);
  const auto file = world_.Open(task_, NodeKind::kMaps, O_RDONLY);
  std::string part;
  ASSERT_EQ(Read(*file, 0, 10, &part), vm::KERN_SUCCESS);
  EXPECT_EQ(part, std::string(kFirstRegion).substr(0, 10));
  // A change after the first read is not in the rest of the text.
  world_.Allocate(*task_, 0x20000, 2 * kPage);
  ASSERT_EQ(Read(*file, 10, 1000, &part), vm::KERN_SUCCESS);
  EXPECT_EQ(part, std::string(kFirstRegion).substr(10));
  ASSERT_EQ(Read(*file, 1000, 10, &part), vm::KERN_SUCCESS);
  EXPECT_EQ(part, "");
  // A new read from the start sees it.
  EXPECT_EQ(ReadAll(*file), std::string(kFirstRegion) + kSecondRegion);
}

TEST_F(GeneratedFilesTest, AReadPastTheStartOfNoSnapshotTakesOne) {
  world_.Allocate(*task_, 0x10000, kPage);
  const auto file = world_.Open(task_, NodeKind::kMaps, O_RDONLY);
  std::string part;
  ASSERT_EQ(Read(*file, 5, 5, &part), vm::KERN_SUCCESS);
  EXPECT_EQ(part, std::string(kFirstRegion).substr(5, 5));
}

TEST_F(GeneratedFilesTest, StatusShowsTheNodesOwnerAndTheSystem) {
  world_.Allocate(*task_, 0x10000, kPage);
  const auto file = world_.Open(task_, NodeKind::kStatus, O_RDONLY);
  EXPECT_EQ(ReadAll(*file),
            "name: t\n"
            "id: " +
                std::to_string(task_->id()) +
                "\n"
                "owner: 1000:100\n"
                "page_size: 4096\n"
                "address_bits: 32\n"
                "regions: 1\n"
                "virtual_bytes: 4096\n"
                "resident_bytes: 0\n"
                "shared_bytes: 0\n"
                "metadata_bytes: " +
                std::to_string([&] {
                  vm::TaskStatistics stats;
                  EXPECT_EQ(vm::Take(vm::task_statistics(*task_), &stats),
                            vm::KERN_SUCCESS);
                  return stats.metadata_bytes;
                }()) +
                "\n"
                "flavor: classic\n");
}

TEST_F(GeneratedFilesTest, ErrorsShowsTheLog) {
  TaskNode node;
  ASSERT_TRUE(world_.nodes.Find(task_->id(), &node));
  node.errors->Record(5, "pread 0 0x1000", vm::KERN_INVALID_ADDRESS, "why");
  const auto file = world_.Open(task_, NodeKind::kErrors, O_RDONLY);
  EXPECT_EQ(ReadAll(*file),
            "1 uid 5 pread 0 0x1000: KERN_INVALID_ADDRESS: why\n");
}

TEST_F(GeneratedFilesTest, ARemovedTaskIsGoneForEveryOffset) {
  world_.Allocate(*task_, 0x10000, kPage);
  for (NodeKind kind :
       {NodeKind::kMaps, NodeKind::kStatus, NodeKind::kErrors}) {
    SCOPED_TRACE(FileName(kind));
    const auto file = world_.Open(task_, kind, O_RDONLY);
    std::string part;
    ASSERT_EQ(Read(*file, 0, 4, &part), vm::KERN_SUCCESS);
    world_.nodes.Remove(task_->id());
    EXPECT_EQ(Read(*file, 4, 4, &part), vm::KERN_INVALID_TASK);
    if (kind != NodeKind::kMaps) {  // maps asks only the core, which has it
      EXPECT_EQ(Read(*file, 0, 4, &part), vm::KERN_INVALID_TASK);
    }
    world_.nodes.Add(task_, testing::kOwner, testing::kGroup);
  }
}

TEST_F(GeneratedFilesTest, ATerminatedTaskIsInvalidTask) {
  const auto file = world_.Open(task_, NodeKind::kMaps, O_RDONLY);
  ASSERT_EQ(vm::task_terminate(world_.system, *task_), vm::KERN_SUCCESS);
  std::string part = "left";
  EXPECT_EQ(Read(*file, 0, 4, &part), vm::KERN_INVALID_TASK);
  EXPECT_TRUE(file->text.empty());
}

TEST_F(GeneratedFilesTest, TheSnapshotIsChargedToTheFile) {
  for (int i = 0; i < 16; ++i) {
    world_.Allocate(*task_, 0x10000 + 2 * i * kPage, kPage);
  }
  const auto file = world_.Open(task_, NodeKind::kMaps, O_RDONLY);
  const std::uint64_t before = file->account.held();
  const std::string text = ReadAll(*file);
  EXPECT_EQ(text.size(), 16 * std::string(kFirstRegion).size());
  // The text, not the list of regions it was made from.
  EXPECT_EQ(file->account.held(), before + file->text_charge);
  EXPECT_GE(file->text_charge, text.size());
}

TEST_F(GeneratedFilesTest, ErrorsReadsTheLogNotASnapshot) {
  TaskNode node;
  ASSERT_TRUE(world_.nodes.Find(task_->id(), &node));
  node.errors->Record(5, "a", vm::KERN_INVALID_ADDRESS, "why");
  const auto file = world_.Open(task_, NodeKind::kErrors, O_RDONLY);
  const std::string one = ReadAll(*file);
  node.errors->Record(5, "b", vm::KERN_INVALID_ADDRESS, "why");
  // The new line is at the offset where the file ended.
  std::string part;
  ASSERT_EQ(Read(*file, static_cast<off_t>(one.size()), 4096, &part),
            vm::KERN_SUCCESS);
  EXPECT_EQ(part, "2 uid 5 b: KERN_INVALID_ADDRESS: why\n");
  EXPECT_EQ(file->text_charge, 0u);
}

TEST_F(GeneratedFilesTest, ErrorsReadsPastForgottenLinesSeeEachKeptLineOnce) {
  TaskNode node;
  ASSERT_TRUE(world_.nodes.Find(task_->id(), &node));
  const auto file = world_.Open(task_, NodeKind::kErrors, O_RDONLY);
  for (int i = 0; i < 300; ++i) {
    node.errors->Record(5, "op", vm::KERN_INVALID_ADDRESS, "why");
  }
  // A sequential reader from 0 gets the kept lines once, in small pieces.
  std::string all;
  for (off_t off = 0;;) {
    std::string part;
    ASSERT_EQ(Read(*file, off, 100, &part), vm::KERN_SUCCESS);
    if (part.empty()) break;
    all += part;
    off += static_cast<off_t>(part.size());
  }
  EXPECT_EQ(all, node.errors->Text());
}

}  // namespace
}  // namespace taskfs::fs
