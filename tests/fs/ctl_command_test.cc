// The ctl/manifest command grammar (docs/reference.md §6, §8) and its executor.
#include "fs/ctl_command.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/vmcore/take_result.h"
#include "vmcore/kern_return.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_types.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {
namespace {

using Op = Command::Op;
using ::std::string_literals::operator""s;

constexpr std::uint64_t kPage = 4096;

// Parses a line that must be valid and not empty.
Command ParseOk(std::string_view line, Grammar grammar = Grammar::kCtl) {
  const ParseResult r = ParseCommand(line, grammar);
  EXPECT_TRUE(r.ok) << "'" << line << "': " << r.error;
  EXPECT_FALSE(r.empty) << "'" << line << "'";
  return r.command;
}

// Parses a line that must be rejected; returns the error, checked to be one
// non-empty line.
std::string ParseError(std::string_view line, Grammar grammar = Grammar::kCtl) {
  const ParseResult r = ParseCommand(line, grammar);
  EXPECT_FALSE(r.ok) << "'" << line << "' was accepted";
  EXPECT_FALSE(r.empty) << "'" << line << "'";
  EXPECT_FALSE(r.error.empty()) << "'" << line << "'";
  EXPECT_EQ(r.error.find('\n'), std::string::npos) << r.error;
  EXPECT_EQ(r.error.find('\r'), std::string::npos) << r.error;
  return r.error;
}

// --- parsing, command by command -------------------------------------------

TEST(CtlParseTest, AllocateFixed) {
  const Command c = ParseOk("allocate 0x400000 8192");
  EXPECT_EQ(c.op, Op::kAllocate);
  EXPECT_EQ(c.address, 0x400000u);
  EXPECT_EQ(c.size, 8192u);
}

TEST(CtlParseTest, AllocateAnywhere) {
  const Command c = ParseOk("allocate anywhere 64K");
  EXPECT_EQ(c.op, Op::kAllocateAnywhere);
  EXPECT_EQ(c.size, 64u * 1024);
}

TEST(CtlParseTest, Deallocate) {
  const Command c = ParseOk("deallocate 4096 0x2000");
  EXPECT_EQ(c.op, Op::kDeallocate);
  EXPECT_EQ(c.address, 4096u);
  EXPECT_EQ(c.size, 0x2000u);
}

TEST(CtlParseTest, ProtectCurrent) {
  const Command c = ParseOk("protect 0x1000 4K r-x");
  EXPECT_EQ(c.op, Op::kProtect);
  EXPECT_EQ(c.address, 0x1000u);
  EXPECT_EQ(c.size, 4096u);
  EXPECT_FALSE(c.set_maximum);
  EXPECT_EQ(c.prot, vm::VM_PROT_READ | vm::VM_PROT_EXECUTE);
}

TEST(CtlParseTest, ProtectMaximum) {
  const Command c = ParseOk("protect 0x1000 4K max r--");
  EXPECT_EQ(c.op, Op::kProtect);
  EXPECT_TRUE(c.set_maximum);
  EXPECT_EQ(c.prot, vm::VM_PROT_READ);
}

TEST(CtlParseTest, EveryProtection) {
  const struct {
    const char* text;
    vm::vm_prot_t prot;
  } kCases[] = {
      {"---", 0}, {"r--", 1}, {"-w-", 2}, {"rw-", 3},
      {"--x", 4}, {"r-x", 5}, {"-wx", 6}, {"rwx", 7},
  };
  for (const auto& k : kCases) {
    EXPECT_EQ(ParseOk("protect 0 4096 "s + k.text).prot, k.prot) << k.text;
  }
}

TEST(CtlParseTest, Inherit) {
  EXPECT_EQ(ParseOk("inherit 0 4096 share").inheritance, vm::VM_INHERIT_SHARE);
  EXPECT_EQ(ParseOk("inherit 0 4096 copy").inheritance, vm::VM_INHERIT_COPY);
  const Command c = ParseOk("inherit 0x3000 8K none");
  EXPECT_EQ(c.op, Op::kInherit);
  EXPECT_EQ(c.address, 0x3000u);
  EXPECT_EQ(c.size, 8192u);
  EXPECT_EQ(c.inheritance, vm::VM_INHERIT_NONE);
}

TEST(CtlParseTest, Copy) {
  const Command c = ParseOk("copy 0x1000 2M 0x300000");
  EXPECT_EQ(c.op, Op::kCopy);
  EXPECT_EQ(c.address, 0x1000u);
  EXPECT_EQ(c.size, 2u << 20);
  EXPECT_EQ(c.dest, 0x300000u);
}

TEST(CtlParseTest, CopyFromPlain) {
  const Command c = ParseOk("copy-from other 0x1000 4K 0x9000");
  EXPECT_EQ(c.op, Op::kCopyFrom);
  EXPECT_EQ(c.name, "other");
  EXPECT_EQ(c.address, 0x1000u);
  EXPECT_EQ(c.size, 4096u);
  EXPECT_EQ(c.dest, 0x9000u);
  EXPECT_FALSE(c.dst_alloc);
  EXPECT_FALSE(c.src_destroy);
}

TEST(CtlParseTest, CopyFromFlagsInEitherOrder) {
  const Command a = ParseOk("copy-from t 0 4096 0 alloc");
  EXPECT_TRUE(a.dst_alloc);
  EXPECT_FALSE(a.src_destroy);
  const Command d = ParseOk("copy-from t 0 4096 0 destroy");
  EXPECT_FALSE(d.dst_alloc);
  EXPECT_TRUE(d.src_destroy);
  for (const char* line : {"copy-from t 0 4096 0 alloc destroy",
                           "copy-from t 0 4096 0 destroy alloc"}) {
    const Command c = ParseOk(line);
    EXPECT_TRUE(c.dst_alloc) << line;
    EXPECT_TRUE(c.src_destroy) << line;
  }
}

TEST(CtlParseTest, Fork) {
  const Command c = ParseOk("fork child-1");
  EXPECT_EQ(c.op, Op::kFork);
  EXPECT_EQ(c.name, "child-1");
}

// --- numbers ---------------------------------------------------------------

TEST(CtlParseTest, DecimalAndHexNumbers) {
  EXPECT_EQ(ParseOk("allocate 65536 4096").address, 65536u);
  EXPECT_EQ(ParseOk("allocate 0x10000 4096").address, 0x10000u);
  EXPECT_EQ(ParseOk("allocate 0X10000 4096").address, 0x10000u);
  EXPECT_EQ(ParseOk("allocate 0xAbCdEf000 4096").address, 0xabcdef000u);
  EXPECT_EQ(ParseOk("allocate 0 0").size, 0u);
  // No octal: a leading zero is still decimal.
  EXPECT_EQ(ParseOk("allocate 010 08").address, 10u);
  EXPECT_EQ(ParseOk("allocate 010 08").size, 8u);
}

TEST(CtlParseTest, SizeSuffixes) {
  EXPECT_EQ(ParseOk("allocate 0 4K").size, 4096u);
  EXPECT_EQ(ParseOk("allocate 0 3M").size, 3u << 20);
  EXPECT_EQ(ParseOk("allocate 0 2G").size, std::uint64_t{2} << 30);
  EXPECT_EQ(ParseOk("allocate 0 4T").size, std::uint64_t{4} << 40);
  EXPECT_EQ(ParseOk("allocate 0 0x10K").size, 16u * 1024);
  EXPECT_EQ(ParseOk("allocate anywhere 1G").size, std::uint64_t{1} << 30);
  EXPECT_EQ(ParseOk("copy-from t 0 8K 0").size, 8192u);
}

TEST(CtlParseTest, LargestNumbersFit) {
  EXPECT_EQ(ParseOk("allocate 0xffffffffffffffff 18446744073709551615").address,
            UINT64_MAX);
  EXPECT_EQ(ParseOk("allocate 0 18446744073709551615").size, UINT64_MAX);
  // 2^34 G is 2^64; one less fits.
  EXPECT_EQ(ParseOk("allocate 0 17179869183G").size,
            std::uint64_t{17179869183} << 30);
}

TEST(CtlParseTest, SuffixOnlyOnSizes) {
  ParseError("allocate 4K 4096");
  ParseError("deallocate 1M 4096");
  ParseError("protect 1M 4096 rw-");
  ParseError("copy 4K 4096 0");
  ParseError("copy 0 4096 8K");
  ParseError("copy-from t 4K 4096 0");
  ParseError("copy-from t 0 4096 8K");
}

TEST(CtlParseTest, RejectsBadNumbers) {
  for (const char* line : {
           "allocate -4096 4096",
           "allocate 0 -1",
           "allocate +4096 4096",
           "allocate 0x 4096",
           "allocate 0xg 4096",
           "allocate 12a 4096",
           "allocate 0 K",
           "allocate 0 4KK",
           "allocate 0 1.5K",
       }) {
    ParseError(line);
  }
}

TEST(CtlParseTest, RejectsNumbersTooLongFor64Bits) {
  for (const char* line : {
           "allocate 0x10000000000000000 4096",
           "allocate 18446744073709551616 4096",
           "allocate 0 18446744073709551616",
           "allocate 0 0x10000000000000000",
           "allocate 0 17179869184G",
           "allocate 0 16777216T",
           "allocate 0 18014398509481984K",
           "allocate 0 99999999999999999999999999",
           "copy 0 4096 0x10000000000000000",
       }) {
    ParseError(line);
  }
}

// --- malformed lines -------------------------------------------------------

TEST(CtlParseTest, RejectsBadProtections) {
  for (const char* line : {
           "protect 0 4096 rwz",
           "protect 0 4096 rw",
           "protect 0 4096 rwxr",
           "protect 0 4096 wr-",
           "protect 0 4096 RW-",
           "protect 0 4096 7",
           "protect 0 4096 max rw",
           "protect 0 4096 max rwz",
       }) {
    ParseError(line);
  }
}

TEST(CtlParseTest, RejectsBadInheritance) {
  ParseError("inherit 0 4096 shared");
  ParseError("inherit 0 4096 0");
  ParseError("inherit 0 4096 COPY");
}

TEST(CtlParseTest, RejectsUnknownCommands) {
  for (const char* line : {"frobnicate 1 2", "Allocate 0 4096", "alloc 0 4096",
                           "read 0 4096", "copyfrom t 0 4096 0", "max"}) {
    ParseError(line);
  }
}

TEST(CtlParseTest, RejectsWrongArgumentCounts) {
  for (const char* line : {
           "allocate",
           "allocate 0",
           "allocate 0 4096 4096",
           "allocate anywhere",
           "allocate anywhere 4096 4096",
           "deallocate 0",
           "deallocate 0 4096 0",
           "protect 0 4096",
           "protect 0 4096 max",
           "protect 0 4096 rw- rw-",
           "protect 0 4096 min rw-",
           "protect 0 4096 max rw- x",
           "inherit 0 4096",
           "inherit 0 4096 copy copy",
           "copy 0 4096",
           "copy 0 4096 0 0",
           "copy-from t 0 4096",
           "copy-from t 0 4096 0 alloc destroy alloc",
           "copy-from t 0 4096 0 keep",
           "fork",
           "fork a b",
       }) {
    ParseError(line);
  }
}

TEST(CtlParseTest, RejectsDuplicateCopyFromFlags) {
  ParseError("copy-from t 0 4096 0 alloc alloc");
  ParseError("copy-from t 0 4096 0 destroy destroy");
}

TEST(CtlParseTest, RejectsControlBytesNulAndNonAscii) {
  for (const std::string& line : {
           "allocate 0 4096\x01"s,
           "allocate\x1b 0 4096"s,
           "allocate 0\v4096"s,
           "allocate 0 4096\x7f"s,
           "allocate 0 4096\0"s,
           "allocate\0 0 4096"s,
           "fork caf\xc3\xa9"s,
           "fork \xff"s,
           "\x80"s,
       }) {
    SCOPED_TRACE(testing::PrintToString(line));
    ParseError(line);
  }
}

TEST(CtlParseTest, BlankAndCommentLinesAreEmpty) {
  for (const char* line :
       {"", " ", "\t \t", "\r", "# allocate 0 4096", "   # comment", "#"}) {
    const ParseResult r = ParseCommand(line, Grammar::kCtl);
    EXPECT_TRUE(r.ok) << "'" << line << "': " << r.error;
    EXPECT_TRUE(r.empty) << "'" << line << "'";
  }
}

TEST(CtlParseTest, TrailingCommentAndWhitespaceAreIgnored) {
  const Command c = ParseOk("  allocate\t0x1000   4K  # text\r");
  EXPECT_EQ(c.op, Op::kAllocate);
  EXPECT_EQ(c.address, 0x1000u);
  EXPECT_EQ(c.size, 4096u);
}

TEST(CtlParseTest, ErrorsStayOnOneLineForLongTokens) {
  const std::string error = ParseError("frobnicate" + std::string(500, 'x'));
  EXPECT_LT(error.size(), 200u);
}

// --- manifest-only commands ------------------------------------------------

TEST(CtlParseTest, ManifestCommandsAreErrorsInCtlGrammar) {
  ParseError("task demo");
  ParseError("fill 0 4096 0xc3");
  ParseError("load 0 greeting.txt");
}

TEST(CtlParseTest, ManifestTask) {
  const Command c = ParseOk("task demo", Grammar::kManifest);
  EXPECT_EQ(c.op, Op::kTask);
  EXPECT_EQ(c.name, "demo");
  ParseError("task", Grammar::kManifest);
  ParseError("task a b", Grammar::kManifest);
}

TEST(CtlParseTest, ManifestFill) {
  const Command c = ParseOk("fill 0x400000 64K 0xc3", Grammar::kManifest);
  EXPECT_EQ(c.op, Op::kFill);
  EXPECT_EQ(c.address, 0x400000u);
  EXPECT_EQ(c.size, 64u * 1024);
  EXPECT_EQ(c.byte, 0xc3);
  EXPECT_EQ(ParseOk("fill 0 1 255", Grammar::kManifest).byte, 255);
  EXPECT_EQ(ParseOk("fill 0 1 0", Grammar::kManifest).byte, 0);
  ParseError("fill 0 4096 256", Grammar::kManifest);
  ParseError("fill 0 4096 0x100", Grammar::kManifest);
  ParseError("fill 0 4096 1K", Grammar::kManifest);
  ParseError("fill 0 4096", Grammar::kManifest);
  ParseError("fill 0 4096 1 2", Grammar::kManifest);
}

TEST(CtlParseTest, ManifestCore) {
  const Command c = ParseOk("core cores/demo.core", Grammar::kManifest);
  EXPECT_EQ(c.op, Op::kCore);
  EXPECT_EQ(c.name, "cores/demo.core");
  ParseError("core", Grammar::kManifest);
  ParseError("core a b", Grammar::kManifest);
  ParseError("core demo.core", Grammar::kCtl);
}

TEST(CtlParseTest, ManifestLoad) {
  const Command c =
      ParseOk("load 0x600000 data/greeting.txt", Grammar::kManifest);
  EXPECT_EQ(c.op, Op::kLoad);
  EXPECT_EQ(c.address, 0x600000u);
  EXPECT_EQ(c.name, "data/greeting.txt");
  ParseError("load 0x600000", Grammar::kManifest);
  ParseError("load 0x600000 a b", Grammar::kManifest);
  ParseError("load 4K file", Grammar::kManifest);
}

TEST(CtlParseTest, ManifestGrammarAcceptsCtlCommands) {
  EXPECT_EQ(ParseOk("allocate anywhere 4K", Grammar::kManifest).op,
            Op::kAllocateAnywhere);
  EXPECT_EQ(ParseOk("fork child", Grammar::kManifest).op, Op::kFork);
  ParseError("frobnicate", Grammar::kManifest);
}

// --- execution -------------------------------------------------------------

class CtlExecuteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vm::VmConfig config;
    config.page_size = kPage;
    config.address_bits = 32;
    config.memory_limit = 0;
    config.max_tasks = 8;
    system_ = std::make_unique<vm::VmSystem>(config);
    ASSERT_EQ(vm::Take(vm::task_create(*system_, "t"), &task_),
              vm::KERN_SUCCESS);
    context_.system = system_.get();
  }

  // Parses line (ctl grammar) and runs it on task (default task_); returns
  // the result line and sets *kr to the code.
  std::string Run(std::string_view line, vm::KernReturn* kr = nullptr,
                  vm::Task* task = nullptr) {
    const ParseResult parsed = ParseCommand(line, Grammar::kCtl);
    EXPECT_TRUE(parsed.ok) << line << ": " << parsed.error;
    std::string result = "unset";
    const vm::KernReturn code = ExecuteCommand(
        parsed.command, task != nullptr ? *task : *task_, context_, &result);
    if (kr != nullptr) *kr = code;
    return result;
  }

  std::vector<vm::RegionInfo> Regions(vm::Task& task) {
    std::vector<vm::RegionInfo> regions;
    EXPECT_EQ(vm::Take(vm::vm_region_list(task), &regions), vm::KERN_SUCCESS);
    return regions;
  }

  // Writes a page filled with byte at address (which must be writable).
  void WritePage(vm::Task& task, vm::vm_address_t address, unsigned char byte) {
    const std::vector<unsigned char> data(kPage, byte);
    ASSERT_EQ(vm::vm_write(task, address, data.data(), kPage),
              vm::KERN_SUCCESS);
  }

  // The first byte of the page at address, or -1 if it cannot be read.
  int ReadByte(vm::Task& task, vm::vm_address_t address) {
    std::vector<unsigned char> data(kPage);
    if (vm::vm_read(task, address,
                    std::as_writable_bytes(std::span(data.data(), kPage))) !=
        vm::KERN_SUCCESS) {
      return -1;
    }
    return data[0];
  }

  std::shared_ptr<vm::Task> MakeTask(std::string_view name) {
    std::shared_ptr<vm::Task> task;
    EXPECT_EQ(vm::Take(vm::task_create(*system_, name), &task),
              vm::KERN_SUCCESS);
    return task;
  }

  std::unique_ptr<vm::VmSystem> system_;
  std::shared_ptr<vm::Task> task_;
  ExecContext context_;
};

vm::RegionInfo Region(vm::vm_address_t start, vm::vm_size_t size,
                      vm::vm_prot_t prot = vm::VM_PROT_DEFAULT,
                      vm::vm_prot_t max = vm::VM_PROT_ALL,
                      vm::vm_inherit_t inheritance = vm::VM_INHERIT_COPY) {
  vm::RegionInfo info;
  info.start = start;
  info.size = size;
  info.protection = prot;
  info.max_protection = max;
  info.inheritance = inheritance;
  return info;
}

TEST_F(CtlExecuteTest, AllocateFixedSaysOk) {
  vm::KernReturn kr = vm::KERN_FAILURE;
  EXPECT_EQ(Run("allocate 0x10000 8K", &kr), "ok");
  EXPECT_EQ(kr, vm::KERN_SUCCESS);
  EXPECT_EQ(Regions(*task_),
            std::vector<vm::RegionInfo>{Region(0x10000, 0x2000)});
}

TEST_F(CtlExecuteTest, AllocateRoundsToPages) {
  EXPECT_EQ(Run("allocate 0x10001 100"), "ok");
  EXPECT_EQ(Regions(*task_),
            std::vector<vm::RegionInfo>{Region(0x10000, 0x1000)});
}

TEST_F(CtlExecuteTest, AllocateZeroSizeIsANoOp) {
  EXPECT_EQ(Run("allocate 0x10000 0"), "ok");
  EXPECT_TRUE(Regions(*task_).empty());
}

TEST_F(CtlExecuteTest, AllocateOverlapIsNoSpace) {
  ASSERT_EQ(Run("allocate 0x10000 8K"), "ok");
  vm::KernReturn kr = vm::KERN_SUCCESS;
  EXPECT_EQ(Run("allocate 0x11000 8K", &kr), "error KERN_NO_SPACE");
  EXPECT_EQ(kr, vm::KERN_NO_SPACE);
  EXPECT_EQ(Regions(*task_),
            std::vector<vm::RegionInfo>{Region(0x10000, 0x2000)});
}

TEST_F(CtlExecuteTest, AllocateOutsideAddressSpaceIsInvalidAddress) {
  vm::KernReturn kr = vm::KERN_SUCCESS;
  EXPECT_EQ(Run("allocate 0x100000000 4K", &kr), "error KERN_INVALID_ADDRESS");
  EXPECT_EQ(kr, vm::KERN_INVALID_ADDRESS);
}

TEST_F(CtlExecuteTest, AllocateAnywhereReturnsTheAddressInHex) {
  ASSERT_EQ(Run("allocate 0 4K"), "ok");
  ASSERT_EQ(Run("allocate 0x2000 4K"), "ok");
  vm::KernReturn kr = vm::KERN_FAILURE;
  EXPECT_EQ(Run("allocate anywhere 4K", &kr), "0x1000");
  EXPECT_EQ(kr, vm::KERN_SUCCESS);
  EXPECT_EQ(Run("allocate anywhere 8K"), "0x3000");
  EXPECT_EQ(Regions(*task_), std::vector<vm::RegionInfo>{Region(0, 0x5000)});
}

TEST_F(CtlExecuteTest, AllocateAnywhereWithoutRoomIsNoSpace) {
  vm::KernReturn kr = vm::KERN_SUCCESS;
  EXPECT_EQ(Run("allocate anywhere 8G", &kr), "error KERN_NO_SPACE");
  EXPECT_EQ(kr, vm::KERN_NO_SPACE);
  EXPECT_TRUE(Regions(*task_).empty());
}

TEST_F(CtlExecuteTest, Deallocate) {
  ASSERT_EQ(Run("allocate 0x10000 16K"), "ok");
  EXPECT_EQ(Run("deallocate 0x11000 4K"), "ok");
  EXPECT_EQ(Regions(*task_),
            (std::vector<vm::RegionInfo>{Region(0x10000, 0x1000),
                                         Region(0x12000, 0x2000)}));
  // Unallocated parts are fine (Mach).
  EXPECT_EQ(Run("deallocate 0 1M"), "ok");
  EXPECT_TRUE(Regions(*task_).empty());
}

TEST_F(CtlExecuteTest, ProtectCurrent) {
  ASSERT_EQ(Run("allocate 0x10000 8K"), "ok");
  EXPECT_EQ(Run("protect 0x10000 4K r--"), "ok");
  EXPECT_EQ(Regions(*task_),
            (std::vector<vm::RegionInfo>{Region(0x10000, 0x1000, 1),
                                         Region(0x11000, 0x1000)}));
}

TEST_F(CtlExecuteTest, ProtectMaximumIntersectsCurrent) {
  ASSERT_EQ(Run("allocate 0x10000 4K"), "ok");
  EXPECT_EQ(Run("protect 0x10000 4K max r-x"), "ok");
  EXPECT_EQ(Regions(*task_), std::vector<vm::RegionInfo>{Region(
                                 0x10000, 0x1000, vm::VM_PROT_READ,
                                 vm::VM_PROT_READ | vm::VM_PROT_EXECUTE)});
  vm::KernReturn kr = vm::KERN_SUCCESS;
  EXPECT_EQ(Run("protect 0x10000 4K rw-", &kr),
            "error KERN_PROTECTION_FAILURE");
  EXPECT_EQ(kr, vm::KERN_PROTECTION_FAILURE);
  EXPECT_EQ(Run("protect 0x10000 4K max rwx", &kr),
            "error KERN_PROTECTION_FAILURE");
  EXPECT_EQ(kr, vm::KERN_PROTECTION_FAILURE);
}

TEST_F(CtlExecuteTest, ProtectOverAHoleIsInvalidAddress) {
  ASSERT_EQ(Run("allocate 0x10000 4K"), "ok");
  vm::KernReturn kr = vm::KERN_SUCCESS;
  EXPECT_EQ(Run("protect 0x10000 8K r--", &kr), "error KERN_INVALID_ADDRESS");
  EXPECT_EQ(kr, vm::KERN_INVALID_ADDRESS);
  EXPECT_EQ(Regions(*task_),
            std::vector<vm::RegionInfo>{Region(0x10000, 0x1000)});
}

TEST_F(CtlExecuteTest, Inherit) {
  ASSERT_EQ(Run("allocate 0x10000 12K"), "ok");
  EXPECT_EQ(Run("inherit 0x10000 4K share"), "ok");
  EXPECT_EQ(Run("inherit 0x12000 4K none"), "ok");
  EXPECT_EQ(Regions(*task_),
            (std::vector<vm::RegionInfo>{
                Region(0x10000, 0x1000, 3, 7, vm::VM_INHERIT_SHARE),
                Region(0x11000, 0x1000, 3, 7, vm::VM_INHERIT_COPY),
                Region(0x12000, 0x1000, 3, 7, vm::VM_INHERIT_NONE)}));
  vm::KernReturn kr = vm::KERN_SUCCESS;
  EXPECT_EQ(Run("inherit 0x20000 4K copy", &kr), "error KERN_INVALID_ADDRESS");
  EXPECT_EQ(kr, vm::KERN_INVALID_ADDRESS);
}

TEST_F(CtlExecuteTest, Copy) {
  ASSERT_EQ(Run("allocate 0x10000 8K"), "ok");
  WritePage(*task_, 0x10000, 0xab);
  EXPECT_EQ(Run("copy 0x10000 4K 0x11000"), "ok");
  EXPECT_EQ(ReadByte(*task_, 0x11000), 0xab);
  // A later write to the source does not show through.
  WritePage(*task_, 0x10000, 0xcd);
  EXPECT_EQ(ReadByte(*task_, 0x11000), 0xab);
}

TEST_F(CtlExecuteTest, CopyErrors) {
  ASSERT_EQ(Run("allocate 0x10000 8K"), "ok");
  vm::KernReturn kr = vm::KERN_SUCCESS;
  EXPECT_EQ(Run("copy 0x10001 4K 0x11000", &kr), "error KERN_INVALID_ARGUMENT");
  EXPECT_EQ(kr, vm::KERN_INVALID_ARGUMENT);
  EXPECT_EQ(Run("copy 0x10000 4K 0x20000", &kr), "error KERN_INVALID_ADDRESS");
  EXPECT_EQ(kr, vm::KERN_INVALID_ADDRESS);
}

TEST_F(CtlExecuteTest, CopyFromAnotherTask) {
  std::shared_ptr<vm::Task> src = MakeTask("src");
  ASSERT_EQ(Run("allocate 0x40000 4K", nullptr, src.get()), "ok");
  WritePage(*src, 0x40000, 0x5a);
  ASSERT_EQ(Run("allocate 0x10000 4K"), "ok");
  EXPECT_EQ(Run("copy-from src 0x40000 4K 0x10000"), "ok");
  EXPECT_EQ(ReadByte(*task_, 0x10000), 0x5a);
  EXPECT_EQ(ReadByte(*src, 0x40000), 0x5a);
}

TEST_F(CtlExecuteTest, CopyFromWithoutAllocNeedsAllocatedDestination) {
  std::shared_ptr<vm::Task> src = MakeTask("src");
  ASSERT_EQ(Run("allocate 0x40000 4K", nullptr, src.get()), "ok");
  vm::KernReturn kr = vm::KERN_SUCCESS;
  EXPECT_EQ(Run("copy-from src 0x40000 4K 0x10000", &kr),
            "error KERN_INVALID_ADDRESS");
  EXPECT_EQ(kr, vm::KERN_INVALID_ADDRESS);
}

TEST_F(CtlExecuteTest, CopyFromAllocDestroy) {
  std::shared_ptr<vm::Task> src = MakeTask("src");
  ASSERT_EQ(Run("allocate 0x40000 4K", nullptr, src.get()), "ok");
  WritePage(*src, 0x40000, 0x77);
  ASSERT_EQ(Run("protect 0x40000 4K r--", nullptr, src.get()), "ok");
  EXPECT_EQ(Run("copy-from src 0x40000 4K 0x10000 destroy alloc"), "ok");
  EXPECT_EQ(Regions(*task_), std::vector<vm::RegionInfo>{
                                 Region(0x10000, 0x1000, vm::VM_PROT_READ)});
  EXPECT_EQ(ReadByte(*task_, 0x10000), 0x77);
  EXPECT_TRUE(Regions(*src).empty());
}

TEST_F(CtlExecuteTest, CopyFromAllocOverAllocatedIsNoSpace) {
  std::shared_ptr<vm::Task> src = MakeTask("src");
  ASSERT_EQ(Run("allocate 0x40000 4K", nullptr, src.get()), "ok");
  ASSERT_EQ(Run("allocate 0x10000 4K"), "ok");
  vm::KernReturn kr = vm::KERN_SUCCESS;
  EXPECT_EQ(Run("copy-from src 0x40000 4K 0x10000 alloc", &kr),
            "error KERN_NO_SPACE");
  EXPECT_EQ(kr, vm::KERN_NO_SPACE);
}

TEST_F(CtlExecuteTest, CopyFromMissingTaskIsInvalidTask) {
  ASSERT_EQ(Run("allocate 0x10000 4K"), "ok");
  vm::KernReturn kr = vm::KERN_SUCCESS;
  EXPECT_EQ(Run("copy-from nobody 0 4K 0x10000", &kr),
            "error KERN_INVALID_TASK");
  EXPECT_EQ(kr, vm::KERN_INVALID_TASK);
}

TEST_F(CtlExecuteTest, CopyFromHonoursMayAccessDenial) {
  std::shared_ptr<vm::Task> src = MakeTask("src");
  ASSERT_EQ(Run("allocate 0x40000 4K", nullptr, src.get()), "ok");
  WritePage(*src, 0x40000, 0x11);
  ASSERT_EQ(Run("allocate 0x10000 4K"), "ok");
  std::vector<std::string> asked;
  std::vector<bool> wants;
  context_.may_access = [&](vm::Task& other, bool want_write) {
    asked.push_back(other.name());
    wants.push_back(want_write);
    return vm::KERN_PROTECTION_FAILURE;
  };
  vm::KernReturn kr = vm::KERN_SUCCESS;
  EXPECT_EQ(Run("copy-from src 0x40000 4K 0x10000", &kr),
            "error KERN_PROTECTION_FAILURE");
  EXPECT_EQ(kr, vm::KERN_PROTECTION_FAILURE);
  EXPECT_EQ(Run("copy-from src 0x40000 4K 0x20000 alloc destroy", &kr),
            "error KERN_PROTECTION_FAILURE");
  EXPECT_EQ(asked, (std::vector<std::string>{"src", "src"}));
  EXPECT_EQ(wants, (std::vector<bool>{false, true}));
  // Nothing copied, nothing allocated, nothing destroyed.
  EXPECT_EQ(ReadByte(*task_, 0x10000), 0);
  EXPECT_EQ(Regions(*task_),
            std::vector<vm::RegionInfo>{Region(0x10000, 0x1000)});
  EXPECT_EQ(Regions(*src),
            std::vector<vm::RegionInfo>{Region(0x40000, 0x1000)});
  EXPECT_EQ(ReadByte(*src, 0x40000), 0x11);
}

TEST_F(CtlExecuteTest, CopyFromRunsWhenMayAccessAllows) {
  std::shared_ptr<vm::Task> src = MakeTask("src");
  ASSERT_EQ(Run("allocate 0x40000 4K", nullptr, src.get()), "ok");
  WritePage(*src, 0x40000, 0x22);
  int calls = 0;
  context_.may_access = [&](vm::Task&, bool) {
    ++calls;
    return vm::KERN_SUCCESS;
  };
  EXPECT_EQ(Run("copy-from src 0x40000 4K 0x10000 alloc"), "ok");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(ReadByte(*task_, 0x10000), 0x22);
}

TEST_F(CtlExecuteTest, ForkCallsOnTaskCreatedWithTheChild) {
  ASSERT_EQ(Run("allocate 0x10000 12K"), "ok");
  ASSERT_EQ(Run("inherit 0x10000 4K share"), "ok");
  ASSERT_EQ(Run("inherit 0x12000 4K none"), "ok");
  WritePage(*task_, 0x10000, 0x01);
  WritePage(*task_, 0x11000, 0x02);
  std::vector<std::shared_ptr<vm::Task>> created;
  context_.on_task_created = [&](const std::shared_ptr<vm::Task>& t) {
    created.push_back(t);
  };
  vm::KernReturn kr = vm::KERN_FAILURE;
  EXPECT_EQ(Run("fork kid", &kr), "ok");
  EXPECT_EQ(kr, vm::KERN_SUCCESS);
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(created[0]->name(), "kid");
  EXPECT_EQ(created[0], system_->FindTask("kid"));
  vm::Task& kid = *created[0];
  EXPECT_EQ(Regions(kid),
            (std::vector<vm::RegionInfo>{
                Region(0x10000, 0x1000, 3, 7, vm::VM_INHERIT_SHARE),
                Region(0x11000, 0x1000, 3, 7, vm::VM_INHERIT_COPY)}));
  // share: the same memory; copy: a virtual copy.
  WritePage(kid, 0x10000, 0x03);
  WritePage(kid, 0x11000, 0x04);
  EXPECT_EQ(ReadByte(*task_, 0x10000), 0x03);
  EXPECT_EQ(ReadByte(*task_, 0x11000), 0x02);
}

TEST_F(CtlExecuteTest, ForkErrorsDoNotCallOnTaskCreated) {
  int calls = 0;
  context_.on_task_created = [&](const std::shared_ptr<vm::Task>&) { ++calls; };
  MakeTask("taken");
  vm::KernReturn kr = vm::KERN_SUCCESS;
  EXPECT_EQ(Run("fork taken", &kr), "error KERN_NAME_EXISTS");
  EXPECT_EQ(kr, vm::KERN_NAME_EXISTS);
  EXPECT_EQ(Run("fork .hidden", &kr), "error KERN_INVALID_ARGUMENT");
  EXPECT_EQ(kr, vm::KERN_INVALID_ARGUMENT);
  EXPECT_EQ(calls, 0);
}

TEST_F(CtlExecuteTest, ForkWithoutCallbackWorks) {
  EXPECT_EQ(Run("fork kid"), "ok");
  EXPECT_NE(system_->FindTask("kid"), nullptr);
}

TEST_F(CtlExecuteTest, TerminatedTaskIsInvalidTask) {
  ASSERT_EQ(vm::task_terminate(*system_, *task_), vm::KERN_SUCCESS);
  vm::KernReturn kr = vm::KERN_SUCCESS;
  EXPECT_EQ(Run("allocate 0x10000 4K", &kr), "error KERN_INVALID_TASK");
  EXPECT_EQ(kr, vm::KERN_INVALID_TASK);
}

TEST_F(CtlExecuteTest, ManifestOnlyCommandIsInvalidArgument) {
  const Command fill = ParseOk("fill 0 4096 1", Grammar::kManifest);
  std::string result;
  EXPECT_EQ(ExecuteCommand(fill, *task_, context_, &result),
            vm::KERN_INVALID_ARGUMENT);
  EXPECT_EQ(result, "error KERN_INVALID_ARGUMENT");
}

}  // namespace
}  // namespace taskfs::fs
