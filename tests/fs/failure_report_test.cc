// The one report of a failed request (fs/failure_report.h): its log line,
// its line in the task's errors file, and its line in a copy source's.
#include "fs/failure_report.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <new>
#include <string>

#include "tests/fs/adapter_world.h"
#include "vmcore/failure_reason.h"

namespace taskfs::fs {
namespace {

using testing::Opener;
using testing::World;

class FailureReportTest : public ::testing::Test {
 protected:
  FailureReportTest()
      : task_(world_.AddTask("t")), report_(*world_.log, world_.nodes) {}

  World world_;
  std::shared_ptr<vm::Task> task_;
  FailureReport report_;
};

TEST_F(FailureReportTest, ATaskFailureIsLoggedAndRecordedWithTheOpenersUid) {
  const auto file = world_.Open(task_, NodeKind::kMem, O_RDWR, Opener(42, 7));
  vm::SetFailureReason("page 0x1000 is not allocated");
  report_.Task(*file, {"write", vm::KERN_INVALID_ADDRESS, 0x1000, 0x2000},
               [] { return std::string("pwrite 0x1000 0x2000"); });
  EXPECT_EQ(world_.Errors(*task_),
            "1 uid 42 pwrite 0x1000 0x2000: KERN_INVALID_ADDRESS: page 0x1000 "
            "is not allocated\n");
  EXPECT_EQ(world_.Logged(),
            "debug: write t 0x1000+0x2000: KERN_INVALID_ADDRESS\n");
}

TEST_F(FailureReportTest, KernFailureIsAWarning) {
  const auto file = world_.Open(task_, NodeKind::kMem, O_RDWR);
  report_.Task(*file, {"read", vm::KERN_FAILURE, 0, 0x1000},
               [] { return std::string("pread 0 0x1000"); });
  EXPECT_EQ(world_.Logged(), "warning: read t 0x0+0x1000: KERN_FAILURE\n");
}

TEST_F(FailureReportTest, WhyTakesThePlaceOfTheRange) {
  const auto file = world_.Open(task_, NodeKind::kCtl, O_RDWR);
  vm::SetFailureReason("unknown command 'x'");
  report_.Task(*file, {"ctl", vm::KERN_INVALID_ARGUMENT, "unknown command 'x'"},
               [] { return std::string("ctl x"); });
  EXPECT_EQ(world_.Logged(),
            "debug: ctl t: unknown command 'x': KERN_INVALID_ARGUMENT\n");
  EXPECT_EQ(world_.Errors(*task_),
            "1 uid 1000 ctl x: KERN_INVALID_ARGUMENT: unknown command 'x'\n");
}

TEST_F(FailureReportTest, AboveDebugNothingIsLoggedButTheRecordIsMade) {
  world_.log->set_level(spdlog::level::info);
  const auto file = world_.Open(task_, NodeKind::kMem, O_RDWR);
  report_.Task(*file, {"write", vm::KERN_NO_SPACE, 0, 1},
               [] { return std::string("pwrite 0 1"); });
  EXPECT_EQ(world_.Logged(), "");
  EXPECT_NE(world_.Errors(*task_).find("pwrite 0 1: KERN_NO_SPACE"),
            std::string::npos);
}

TEST_F(FailureReportTest, ARecordWithoutMemoryIsDropped) {
  const auto file = world_.Open(task_, NodeKind::kMem, O_RDWR);
  report_.Task(*file, {"write", vm::KERN_NO_SPACE, 0, 1},
               []() -> std::string { throw std::bad_alloc(); });
  EXPECT_EQ(world_.Errors(*task_), "");
  EXPECT_NE(world_.Logged(), "");  // the log line was written first
}

TEST_F(FailureReportTest, ACopySourceGetsTheDaemonsOwnAccount) {
  const auto source = world_.AddTask("src", 2000, 2000);
  const auto file = world_.Open(task_, NodeKind::kMem, O_RDWR, Opener(42, 7));
  vm::SetFailureReason("page 0x600000 is not allocated");
  report_.Source(*file, *source,
                 MapCopyArgs{0x600000, 0x1000, 0x10000, true, true},
                 vm::KERN_INVALID_ADDRESS);
  EXPECT_EQ(world_.Errors(*source),
            "1 uid 42 vm_map_copy 0x600000 0x1000 into task id " +
                std::to_string(task_->id()) +
                " at 0x10000 alloc destroy: KERN_INVALID_ADDRESS: page "
                "0x600000 is not allocated\n");
  EXPECT_EQ(world_.Errors(*task_), "");
  EXPECT_EQ(world_.Logged(), "");  // the request's own report logs it
}

TEST_F(FailureReportTest, ARemapSourceGetsTheDaemonsOwnAccount) {
  const auto source = world_.AddTask("src", 2000, 2000);
  const auto file = world_.Open(task_, NodeKind::kMem, O_RDWR, Opener(42, 7));
  RemapArgs args;
  args.src = 0x600000;
  args.size = 0x2000;
  args.target = 0x10000;
  vm::SetFailureReason("page 0x600000 is not allocated");
  report_.Source(*file, *source, args, vm::KERN_INVALID_ADDRESS);
  args.anywhere = true;
  args.copy = true;
  vm::SetFailureReason("no room");
  report_.Source(*file, *source, args, vm::KERN_NO_SPACE);
  const std::string id = std::to_string(task_->id());
  EXPECT_EQ(world_.Errors(*source),
            "1 uid 42 vm_remap 0x600000 0x2000 into task id " + id +
                " at 0x10000 share: KERN_INVALID_ADDRESS: page 0x600000 is "
                "not allocated\n2 uid 42 vm_remap 0x600000 0x2000 into task "
                "id " +
                id + " anywhere copy: KERN_NO_SPACE: no room\n");
  EXPECT_EQ(world_.Errors(*task_), "");
  report_.Source(*file, *task_, args, vm::KERN_NO_SPACE);
  EXPECT_EQ(world_.Errors(*task_), "");
}

TEST_F(FailureReportTest, NoSourceLineForTheFilesOwnTaskOrAGoneOne) {
  const auto source = world_.AddTask("src");
  const auto file = world_.Open(task_, NodeKind::kMem, O_RDWR);
  report_.Source(*file, *task_, MapCopyArgs{0, 0x1000, 0x1000, false, false},
                 vm::KERN_INVALID_ADDRESS);
  EXPECT_EQ(world_.Errors(*task_), "");
  // A removed task whose files are open keeps its log, but it is gone.
  TaskNode node;
  ASSERT_TRUE(world_.nodes.Pin(source->id(), &node));
  const NodePin pin(world_.nodes, source->id());
  world_.nodes.Remove(source->id());
  report_.Source(*file, *source, MapCopyArgs{0, 0x1000, 0x1000, false, false},
                 vm::KERN_INVALID_ADDRESS);
  EXPECT_EQ(world_.Errors(*source), "");
}

TEST_F(FailureReportTest, AFailureWithoutATaskIsOnlyLogged) {
  report_.Untracked("mkdir", "t", vm::KERN_NAME_EXISTS);
  EXPECT_EQ(world_.Logged(), "debug: mkdir t: KERN_NAME_EXISTS\n");
  EXPECT_EQ(world_.Errors(*task_), "");
}

}  // namespace
}  // namespace taskfs::fs
