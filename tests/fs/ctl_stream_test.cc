// A ctl file as a stream of commands (fs/ctl_stream.h): lines run as writes
// complete them, a cut line waits for the next write or close, the first
// failure stops the rest, and reads return the last result line.
#include "fs/ctl_stream.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/fs/adapter_world.h"
#include "vmcore/failure_reason.h"

namespace taskfs::fs {
namespace {

using testing::kPage;
using testing::World;

vm::RegionInfo Region(vm::vm_address_t start, vm::vm_size_t size) {
  vm::RegionInfo info;
  info.start = start;
  info.size = size;
  info.protection = vm::VM_PROT_DEFAULT;
  info.max_protection = vm::VM_PROT_ALL;
  info.inheritance = vm::VM_INHERIT_COPY;
  return info;
}

class CtlStreamTest : public ::testing::Test {
 protected:
  CtlStreamTest()
      : task_(world_.AddTask("t")),
        file_(world_.Open(task_, NodeKind::kCtl, O_RDWR)),
        report_(*world_.log, world_.nodes) {
    context_.system = &world_.system;
  }

  vm::KernReturn Write(std::string_view text) {
    return CtlStream(*file_, context_, report_).Write(text);
  }
  vm::KernReturn Flush() {
    return CtlStream(*file_, context_, report_).Flush();
  }
  std::string Result() { return CtlStream::Read(*file_, 4096); }

  World world_;
  std::shared_ptr<vm::Task> task_;
  std::unique_ptr<OpenFile> file_;
  ExecContext context_;
  FailureReport report_;
};

TEST_F(CtlStreamTest, ALineRunsAndItsResultIsReadOnce) {
  EXPECT_EQ(Write("allocate 0x10000 4K\n"), vm::KERN_SUCCESS);
  EXPECT_EQ(world_.Regions(*task_),
            std::vector<vm::RegionInfo>{Region(0x10000, kPage)});
  EXPECT_EQ(CtlStream::Read(*file_, 2), "ok");
  EXPECT_EQ(CtlStream::Read(*file_, 2), "\n");
  EXPECT_EQ(Result(), "");
  EXPECT_EQ(world_.Errors(*task_), "");
}

TEST_F(CtlStreamTest, AllocateAnywhereReturnsTheAddress) {
  EXPECT_EQ(Write("allocate anywhere 8K\n"), vm::KERN_SUCCESS);
  EXPECT_EQ(Result(), "0x0\n");
}

TEST_F(CtlStreamTest, AWriteWithoutANewlineIsAWholeCommand) {
  EXPECT_EQ(Write("allocate 0x10000 4K"), vm::KERN_SUCCESS);
  EXPECT_EQ(world_.Regions(*task_).size(), 1u);
  EXPECT_TRUE(file_->ctl_lines.pending().empty());
}

TEST_F(CtlStreamTest, ACutLineWaitsForTheNextWrite) {
  EXPECT_EQ(Write("allocate 0x10000 4K\nallocate 0x20"), vm::KERN_SUCCESS);
  EXPECT_EQ(world_.Regions(*task_).size(), 1u);
  EXPECT_EQ(file_->ctl_lines.pending(), "allocate 0x20");
  EXPECT_EQ(Write("000 4K\n"), vm::KERN_SUCCESS);
  EXPECT_EQ(world_.Regions(*task_),
            (std::vector<vm::RegionInfo>{Region(0x10000, kPage),
                                         Region(0x20000, kPage)}));
}

TEST_F(CtlStreamTest, CloseRunsTheCutLine) {
  EXPECT_EQ(Write("allocate 0x10000 4K\nallocate 0x20000 4K"),
            vm::KERN_SUCCESS);
  EXPECT_EQ(Result(), "ok\n");
  EXPECT_EQ(world_.Regions(*task_).size(), 1u);
  EXPECT_EQ(Flush(), vm::KERN_SUCCESS);
  EXPECT_EQ(world_.Regions(*task_).size(), 2u);
  EXPECT_EQ(Result(), "ok\n");
  // Nothing is kept for a second close.
  EXPECT_EQ(Flush(), vm::KERN_SUCCESS);
  EXPECT_EQ(Result(), "");
}

TEST_F(CtlStreamTest, CloseReportsTheCutLinesFailure) {
  EXPECT_EQ(Write("allocate 0x10000 4K\nprotect 0x30000 4K r--"),
            vm::KERN_SUCCESS);
  EXPECT_EQ(Flush(), vm::KERN_INVALID_ADDRESS);
  EXPECT_EQ(Result(), "error KERN_INVALID_ADDRESS\n");
}

TEST_F(CtlStreamTest, TheFirstFailureStopsTheRestAndDropsTheCutLine) {
  EXPECT_EQ(Write("allocate 0x10000 4K\nallocate 0x10000 4K\n"
                  "allocate 0x30000 4K\nallocate 0x4"),
            vm::KERN_NO_SPACE);
  EXPECT_EQ(world_.Regions(*task_),
            std::vector<vm::RegionInfo>{Region(0x10000, kPage)});
  EXPECT_EQ(Result(), "error KERN_NO_SPACE\n");
  EXPECT_EQ(Flush(), vm::KERN_SUCCESS);
  EXPECT_EQ(world_.Regions(*task_).size(), 1u);
  const std::string errors = world_.Errors(*task_);
  EXPECT_EQ(
      errors.rfind("1 uid 1000 ctl allocate 0x10000 4K: KERN_NO_SPACE: ", 0),
      0u)
      << errors;
  EXPECT_EQ(errors.find("\n"), errors.size() - 1) << errors;
  EXPECT_EQ(world_.Logged(), "debug: ctl t 0x10000+0x1000: KERN_NO_SPACE\n");
}

TEST_F(CtlStreamTest, AMalformedLineIsInvalidArgumentWithTheParsersWords) {
  EXPECT_EQ(Write("allocate 0x10000 4K\nbogus 1\n"), vm::KERN_INVALID_ARGUMENT);
  EXPECT_EQ(Result(), "error KERN_INVALID_ARGUMENT\n");
  EXPECT_EQ(world_.Errors(*task_),
            "1 uid 1000 ctl bogus 1: KERN_INVALID_ARGUMENT: unknown command "
            "'bogus'\n");
  EXPECT_EQ(world_.Logged(),
            "debug: ctl t: unknown command 'bogus': KERN_INVALID_ARGUMENT\n");
}

TEST_F(CtlStreamTest, ALineWithANulByteIsMalformed) {
  EXPECT_EQ(Write(std::string_view("allocate\0 0x10000 4K\n", 21)),
            vm::KERN_INVALID_ARGUMENT);
  EXPECT_TRUE(world_.Regions(*task_).empty());
  EXPECT_NE(world_.Errors(*task_).find("KERN_INVALID_ARGUMENT"),
            std::string::npos);
}

TEST_F(CtlStreamTest, BlankLinesAndCommentsRunNothing) {
  EXPECT_EQ(Write("allocate 0x10000 4K\n"), vm::KERN_SUCCESS);
  EXPECT_EQ(Write("\n# nothing\n   \n"), vm::KERN_SUCCESS);
  EXPECT_EQ(Result(), "ok\n");  // the last result is still the allocate's
}

TEST_F(CtlStreamTest, EachWriteResetsTheReadCursor) {
  EXPECT_EQ(Write("allocate 0x10000 4K\n"), vm::KERN_SUCCESS);
  EXPECT_EQ(Result(), "ok\n");
  EXPECT_EQ(Write("allocate anywhere 4K\n"), vm::KERN_SUCCESS);
  EXPECT_EQ(Result(), "0x0\n");
}

TEST_F(CtlStreamTest, CommandsRunWithTheStreamsContext) {
  const auto source = world_.AddTask("src");
  world_.Allocate(*source, 0x40000, kPage);
  std::vector<std::string> asked;
  context_.may_access = [&](vm::Task& other, bool want_write) {
    asked.push_back(other.name() + (want_write ? " rw" : " r"));
    vm::SetFailureReason("refused by the test");
    return vm::KERN_PROTECTION_FAILURE;
  };
  context_.on_source_failure = [&](vm::Task& s, const MapCopyArgs& args,
                                   vm::KernReturn kr) {
    report_.Source(*file_, s, args, kr);
  };
  EXPECT_EQ(Write("copy-from src 0x40000 4K 0x10000 alloc destroy\n"),
            vm::KERN_PROTECTION_FAILURE);
  EXPECT_EQ(asked, std::vector<std::string>{"src rw"});
  EXPECT_EQ(world_.Errors(*source),
            "1 uid 1000 vm_map_copy 0x40000 0x1000 into task id " +
                std::to_string(task_->id()) +
                " at 0x10000 alloc destroy: KERN_PROTECTION_FAILURE: refused "
                "by the test\n");
  EXPECT_EQ(world_.Errors(*task_),
            "1 uid 1000 ctl copy-from src 0x40000 4K 0x10000 alloc destroy: "
            "KERN_PROTECTION_FAILURE: refused by the test\n");
}

}  // namespace
}  // namespace taskfs::fs
