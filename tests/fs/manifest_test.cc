// Manifests (docs/reference.md §8): the embedded demo, "PATH:LINE: message"
// errors, fill and load, and the bounds: a memory limit too small for a
// manifest is an error of its line, a `load` reads nothing that does not fit
// and only regular files, and a manifest is read in pieces with bounded lines.
#include "fs/manifest.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fs/node_table.h"
#include "taskfs/task_name.h"
#include "tests/fs/temp_dir.h"
#include "tests/vmcore/take_result.h"
#include "vmcore/kern_return.h"
#include "vmcore/limit_reached.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_types.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {
namespace {

using ::std::string_literals::operator""s;

constexpr std::string_view kGreeting =
    "Hello from taskfs! This is the data region of task demo.\n";

vm::RegionInfo Region(vm::vm_address_t start, vm::vm_size_t size,
                      vm::vm_prot_t prot, vm::vm_inherit_t inheritance) {
  vm::RegionInfo info;
  info.start = start;
  info.size = size;
  info.protection = prot;
  info.max_protection = vm::VM_PROT_ALL;
  info.inheritance = inheritance;
  return info;
}

// The regions EmbeddedDemoManifest() declares, for both demo and child
// (every demo region but the shared one is inherited as a copy).
std::vector<vm::RegionInfo> DemoRegions() {
  constexpr vm::vm_size_t k64K = 64 * 1024;
  return {
      Region(0x400000, k64K, vm::VM_PROT_READ | vm::VM_PROT_EXECUTE,
             vm::VM_INHERIT_COPY),
      Region(0x600000, k64K, vm::VM_PROT_DEFAULT, vm::VM_INHERIT_COPY),
      Region(0x610000, k64K, vm::VM_PROT_NONE, vm::VM_INHERIT_COPY),
      Region(0x700000, k64K, vm::VM_PROT_DEFAULT, vm::VM_INHERIT_SHARE),
  };
}

// A fresh temporary directory, removed with its contents on destruction.
class TempDir : public testing::TempDir {
 public:
  TempDir() : testing::TempDir("taskfs_manifest_") {}
};

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeSystem(kPage4K); }

  static constexpr std::uint64_t kPage4K = 4096;

  void MakeSystem(std::uint64_t page_size, std::uint64_t memory_limit = 0) {
    vm::VmConfig config;
    config.page_size = page_size;
    config.address_bits = 32;
    config.memory_limit = memory_limit;
    config.max_tasks = 16;
    system_ = std::make_unique<vm::VmSystem>(config);
    created_.clear();
  }

  // Applies text as the manifest at path, recording created tasks.
  std::string Apply(std::string_view path, std::string_view text) {
    return ApplyManifest(*system_, path, text, Recorder());
  }

  std::function<void(const std::shared_ptr<vm::Task>&)> Recorder() {
    return [this](const std::shared_ptr<vm::Task>& task) {
      created_.push_back(task->name());
    };
  }

  std::vector<vm::RegionInfo> Regions(std::string_view name) {
    std::vector<vm::RegionInfo> regions;
    std::shared_ptr<vm::Task> task = system_->FindTask(name);
    EXPECT_NE(task, nullptr) << name;
    if (task != nullptr) {
      EXPECT_EQ(vm::Take(vm::vm_region_list(*task), &regions),
                vm::KERN_SUCCESS);
    }
    return regions;
  }

  // size bytes of task name at address, read with vm_read (so the pages
  // must be readable), or "" on failure.
  std::string Read(std::string_view name, vm::vm_address_t address,
                   vm::vm_size_t size) {
    std::shared_ptr<vm::Task> task = system_->FindTask(name);
    if (task == nullptr) return "";
    std::string out(size, '\0');
    if (vm::vm_read(*task, address,
                    std::as_writable_bytes(std::span(out.data(), size))) !=
        vm::KERN_SUCCESS) {
      return "";
    }
    return out;
  }

  std::vector<std::string> TaskNames() {
    std::vector<std::string> names;
    for (const auto& task : system_->Tasks()) names.push_back(task->name());
    return names;
  }

  std::unique_ptr<vm::VmSystem> system_;
  std::vector<std::string> created_;
};

// Checks that error is exactly "PATH:LINE: message" with a message that
// contains want.
void ExpectError(const std::string& error, std::string_view path, int line,
                 std::string_view want) {
  const std::string prefix =
      std::string(path) + ":" + std::to_string(line) + ": ";
  EXPECT_EQ(error.substr(0, prefix.size()), prefix) << error;
  EXPECT_GT(error.size(), prefix.size()) << error;
  EXPECT_NE(error.find(want), std::string::npos)
      << "'" << error << "' lacks '" << want << "'";
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

// --- the embedded demo -----------------------------------------------------

TEST_F(ManifestTest, EmbeddedDemoCreatesDemoAndChild) {
  EXPECT_EQ(ApplyEmbeddedDemo(*system_, Recorder()), "");
  EXPECT_EQ(created_, (std::vector<std::string>{"demo", "child"}));
  EXPECT_EQ(TaskNames(), (std::vector<std::string>{"demo", "child"}));
  EXPECT_EQ(Regions("demo"), DemoRegions());
  EXPECT_EQ(Regions("child"), DemoRegions());
}

TEST_F(ManifestTest, EmbeddedDemoTextMatchesTheRegions) {
  const std::string_view text = EmbeddedDemoManifest();
  for (std::string_view line :
       {"task demo", "allocate 0x400000 64K", "fill 0x400000 64K 0xc3",
        "protect 0x400000 64K r-x", "allocate 0x600000 64K",
        "load 0x600000 greeting.txt", "allocate 0x610000 64K",
        "protect 0x610000 64K ---", "allocate 0x700000 64K",
        "inherit 0x700000 64K share", "fork child"}) {
    EXPECT_NE(text.find(line), std::string_view::npos) << line;
  }
}

TEST_F(ManifestTest, EmbeddedDemoContents) {
  ASSERT_EQ(ApplyEmbeddedDemo(*system_, nullptr), "");
  // Text: filled with 0xc3 (ret), readable though not writable.
  EXPECT_EQ(Read("demo", 0x400000, 0x10000), std::string(0x10000, '\xc3'));
  // Data: the greeting, then zeros.
  const std::string data = Read("demo", 0x600000, 0x10000);
  ASSERT_EQ(data.size(), 0x10000u);
  EXPECT_EQ(data.substr(0, kGreeting.size()), kGreeting);
  EXPECT_EQ(data.substr(kGreeting.size()),
            std::string(0x10000 - kGreeting.size(), '\0'));
}

TEST_F(ManifestTest, EmbeddedDemoSharesItsRegionWithChild) {
  ASSERT_EQ(ApplyEmbeddedDemo(*system_, nullptr), "");
  std::shared_ptr<vm::Task> demo = system_->FindTask("demo");
  std::shared_ptr<vm::Task> child = system_->FindTask("child");
  ASSERT_NE(demo, nullptr);
  ASSERT_NE(child, nullptr);
  const std::string one(4096, 'A');
  ASSERT_EQ(vm::vm_write(*demo, 0x700000, one.data(), one.size()),
            vm::KERN_SUCCESS);
  EXPECT_EQ(Read("child", 0x700000, 4096), one);
  const std::string two(4096, 'B');
  ASSERT_EQ(vm::vm_write(*child, 0x70f000, two.data(), two.size()),
            vm::KERN_SUCCESS);
  EXPECT_EQ(Read("demo", 0x70f000, 4096), two);
}

TEST_F(ManifestTest, EmbeddedDemoDataIsACopyInChild) {
  ASSERT_EQ(ApplyEmbeddedDemo(*system_, nullptr), "");
  EXPECT_EQ(Read("child", 0x600000, 4096).substr(0, kGreeting.size()),
            kGreeting);
  std::shared_ptr<vm::Task> demo = system_->FindTask("demo");
  ASSERT_NE(demo, nullptr);
  const std::string page(4096, 'X');
  ASSERT_EQ(vm::vm_write(*demo, 0x600000, page.data(), page.size()),
            vm::KERN_SUCCESS);
  EXPECT_EQ(Read("child", 0x600000, 4096).substr(0, kGreeting.size()),
            kGreeting);
}

// The embedded demo's one home is examples/: demo.tasks from the line after
// its note, and greeting.txt, as the build embedded them.
TEST_F(ManifestTest, EmbeddedDemoIsTheExamplesFiles) {
  const auto read = [](const std::string& leaf) {
    std::ifstream in(std::string(TASKFS_SOURCE_DIR) + "/examples/" + leaf,
                     std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string demo = read("demo.tasks");
  const std::size_t note_end = demo.find("\n#\n");
  ASSERT_NE(note_end, std::string::npos) << demo;
  EXPECT_EQ(EmbeddedDemoManifest(), demo.substr(note_end + 3));
  const std::string greeting = read("greeting.txt");
  ASSERT_FALSE(greeting.empty());
  ASSERT_EQ(ApplyEmbeddedDemo(*system_, nullptr), "");
  EXPECT_EQ(Read("demo", 0x600000, 4096).substr(0, greeting.size()), greeting);
}

TEST_F(ManifestTest, EmbeddedDemoWorksWithTheLargestPageSize) {
  MakeSystem(65536);
  EXPECT_EQ(ApplyEmbeddedDemo(*system_, nullptr), "");
  EXPECT_EQ(Regions("demo"), DemoRegions());
}

// --- errors ----------------------------------------------------------------

TEST_F(ManifestTest, BadCommand) {
  const std::string error =
      Apply("/etc/x.tasks", "# header\ntask a\n\nfrobnicate 1 2\nfork b\n");
  ExpectError(error, "/etc/x.tasks", 4, "unknown command");
  EXPECT_EQ(error, "/etc/x.tasks:4: unknown command 'frobnicate'");
  // The lines before the error stay done, the ones after do not run.
  EXPECT_EQ(TaskNames(), std::vector<std::string>{"a"});
}

// The rule and its words are <taskfs/task_name.h>'s, as for mkdir and fork.
TEST_F(ManifestTest, BadTaskNameStatesTheSharedRule) {
  EXPECT_EQ(Apply("m", "task host_page_size\n"),
            "m:1: bad task name 'host_page_size' (" TASKFS_TASK_NAME_RULE ")");
  EXPECT_TRUE(TaskNames().empty());
}

TEST_F(ManifestTest, MalformedArguments) {
  ExpectError(Apply("m", "task a\nallocate 0 -1\n"), "m", 2, "-1");
  ExpectError(Apply("m2", "task b\nprotect 0 4096 rwz\n"), "m2", 2, "rwz");
}

TEST_F(ManifestTest, CommandBeforeAnyTask) {
  const std::string error =
      Apply("m.tasks", "\n# nothing yet\nallocate 0 4K\n");
  ExpectError(error, "m.tasks", 3, "task");
  EXPECT_TRUE(TaskNames().empty());
}

TEST_F(ManifestTest, DuplicateTaskName) {
  const std::string error = Apply("m.tasks", "task a\ntask b\ntask a\n");
  ExpectError(error, "m.tasks", 3, "'a'");
  EXPECT_NE(error.find("exists"), std::string::npos) << error;
  EXPECT_EQ(TaskNames(), (std::vector<std::string>{"a", "b"}));
}

TEST_F(ManifestTest, InvalidTaskNames) {
  const std::string long_name(65, 'n');
  for (const std::string& name :
       {".hidden"s, "host_page_size"s, "a/b"s, "a:b"s, long_name}) {
    SCOPED_TRACE(name);
    MakeSystem(kPage4K);
    ExpectError(Apply("m", "# c\ntask " + name + "\n"), "m", 2, "task name");
    EXPECT_TRUE(TaskNames().empty());
  }
}

TEST_F(ManifestTest, LongestTaskNameIsValid) {
  const std::string name(64, 'n');
  EXPECT_EQ(Apply("m", "task " + name + "\n"), "");
  EXPECT_EQ(TaskNames(), std::vector<std::string>{name});
}

TEST_F(ManifestTest, FailingAllocateIsNoSpace) {
  const std::string error =
      Apply("m.tasks", "task a\nallocate 0x10000 8K\nallocate 0x11000 4K\n");
  ExpectError(error, "m.tasks", 3, "KERN_NO_SPACE");
  EXPECT_EQ(error, "m.tasks:3: allocate failed: KERN_NO_SPACE");
}

TEST_F(ManifestTest, TooManyTasks) {
  std::string text;
  for (int i = 0; i < 17; ++i) text += "task t" + std::to_string(i) + "\n";
  ExpectError(Apply("m", text), "m", 17, "KERN_RESOURCE_SHORTAGE");
  EXPECT_EQ(TaskNames().size(), 16u);
}

TEST_F(ManifestTest, FailingForkNamesTheCode) {
  ExpectError(Apply("m", "task a\ntask b\nfork a\n"), "m", 3,
              "KERN_NAME_EXISTS");
}

TEST_F(ManifestTest, FillOfUnallocatedIsInvalidAddress) {
  ExpectError(Apply("m", "task a\nfill 0x10000 4K 1\n"), "m", 2,
              "KERN_INVALID_ADDRESS");
}

TEST_F(ManifestTest, LoadOfMissingFile) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/m.tasks";
  const std::string error =
      Apply(path, "task a\nallocate 0 4K\nload 0 missing.bin\n");
  ExpectError(error, path, 3, "missing.bin");
  EXPECT_NE(error.find("No such file or directory"), std::string::npos)
      << error;
}

TEST_F(ManifestTest, LoadOfDirectory) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  ASSERT_TRUE(std::filesystem::create_directory(dir.path() + "/sub"));
  const std::string path = dir.path() + "/m.tasks";
  const std::string error = Apply(path, "task a\nallocate 0 4K\nload 0 sub\n");
  ExpectError(error, path, 3, "sub");
  EXPECT_NE(error.find("Is a directory"), std::string::npos) << error;
}

TEST_F(ManifestTest, LoadIntoUnallocatedIsInvalidAddress) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  dir.Write("data.bin", "abc");
  const std::string path = dir.path() + "/m.tasks";
  ExpectError(Apply(path, "task a\nload 0 data.bin\n"), path, 2,
              "KERN_INVALID_ADDRESS");
}

TEST_F(ManifestTest, BinaryGarbage) {
  const std::string elf =
      "\x7f"
      "ELF\x02\x01\x01\x00\x00\x00"s;
  ExpectError(Apply("bin", elf), "bin", 1, "unexpected byte");
  ExpectError(Apply("bin2", "task a\n\x89PNG\r\n\x1a\n"), "bin2", 2,
              "unexpected byte");
  ExpectError(Apply("bin3", "task b\nfork c\xff\xfe\n"), "bin3", 2,
              "unexpected byte");
  ExpectError(Apply("bin4", "task c\n\0\0\0\0"s), "bin4", 2,
              "unexpected byte 0x00");
  EXPECT_EQ(TaskNames(), (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(ManifestTest, ErrorLineCountsLastLineWithoutNewline) {
  ExpectError(Apply("m", "task a\n\n\nbogus"), "m", 4, "bogus");
}

// --- success ---------------------------------------------------------------

TEST_F(ManifestTest, EmptyManifestSucceedsWithNoTasks) {
  EXPECT_EQ(Apply("m", ""), "");
  EXPECT_EQ(Apply("m", "\n\n# only comments\n   \n"), "");
  EXPECT_TRUE(TaskNames().empty());
  EXPECT_TRUE(created_.empty());
}

TEST_F(ManifestTest, TasksAndForksAreReported) {
  EXPECT_EQ(Apply("m", "task a\nfork a2\ntask b\n"), "");
  EXPECT_EQ(created_, (std::vector<std::string>{"a", "a2", "b"}));
  EXPECT_EQ(TaskNames(), (std::vector<std::string>{"a", "a2", "b"}));
}

TEST_F(ManifestTest, NullCallbackIsAllowed) {
  EXPECT_EQ(ApplyManifest(*system_, "m", "task a\nfork b\n", nullptr), "");
  EXPECT_EQ(TaskNames(), (std::vector<std::string>{"a", "b"}));
}

TEST_F(ManifestTest, CommandsApplyToTheCurrentTask) {
  EXPECT_EQ(Apply("m",
                  "task a\r\n"
                  "allocate 0x10000 4K   # mine\r\n"
                  "task b\n"
                  "allocate anywhere 8K\n"
                  "inherit 0 8K none\n"),
            "");
  EXPECT_EQ(Regions("a"), (std::vector<vm::RegionInfo>{Region(
                              0x10000, 0x1000, 3, vm::VM_INHERIT_COPY)}));
  EXPECT_EQ(
      Regions("b"),
      (std::vector<vm::RegionInfo>{Region(0, 0x2000, 3, vm::VM_INHERIT_NONE)}));
}

TEST_F(ManifestTest, FillIgnoresProtection) {
  EXPECT_EQ(Apply("m",
                  "task a\n"
                  "allocate 0x10000 8K\n"
                  "protect 0x10000 8K ---\n"
                  "fill 0x10800 4K 0x5a\n"
                  "protect 0x10000 8K r--\n"),
            "");
  const std::string bytes = Read("a", 0x10000, 0x2000);
  EXPECT_EQ(bytes, std::string(0x800, '\0') + std::string(0x1000, 'Z') +
                       std::string(0x800, '\0'));
}

TEST_F(ManifestTest, LoadIgnoresProtectionAndIsRelativeToTheManifest) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  ASSERT_TRUE(std::filesystem::create_directory(dir.path() + "/sub"));
  dir.Write("sub/data.bin", "payload");
  const std::string path = dir.path() + "/m.tasks";
  EXPECT_EQ(Apply(path,
                  "task a\n"
                  "allocate 0x10000 4K\n"
                  "protect 0x10000 4K max r--\n"
                  "load 0x10010 sub/data.bin\n"),
            "");
  EXPECT_EQ(Read("a", 0x10000, 0x1000),
            std::string(0x10, '\0') + "payload" +
                std::string(0x1000 - 0x10 - 7, '\0'));
}

TEST_F(ManifestTest, LoadAbsolutePath) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string data = dir.Write("data.bin", "xyz");
  EXPECT_EQ(Apply("/nonexistent/m.tasks",
                  "task a\nallocate 0 4K\nload 0 " + data + "\n"),
            "");
  EXPECT_EQ(Read("a", 0, 4096).substr(0, 4), "xyz"s + '\0');
}

TEST_F(ManifestTest, LoadManifestFileReadsAndAnchorsLoads) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  dir.Write("greeting.txt", "hi\n");
  const std::string path = dir.Write(
      "demo.tasks", "task t\nallocate 0x10000 4K\nload 0x10000 greeting.txt\n");
  EXPECT_EQ(LoadManifestFile(*system_, path, Recorder()), "");
  EXPECT_EQ(created_, std::vector<std::string>{"t"});
  EXPECT_EQ(Read("t", 0x10000, 4096).substr(0, 4), "hi\n"s + '\0');
}

TEST_F(ManifestTest, LoadManifestFileErrorsNameThePathAndLine) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.Write("bad.tasks", "task t\nallocate 0\n");
  ExpectError(LoadManifestFile(*system_, path, nullptr), path, 2, "usage");
}

TEST_F(ManifestTest, LoadManifestFileOfMissingFile) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/missing.tasks";
  EXPECT_EQ(LoadManifestFile(*system_, path, nullptr),
            path + ": No such file or directory");
  EXPECT_TRUE(TaskNames().empty());
}

TEST_F(ManifestTest, LoadManifestFileOfDirectory) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  EXPECT_EQ(LoadManifestFile(*system_, dir.path(), nullptr),
            dir.path() + ": Is a directory");
}

// --- the memory limit ------------------------------------------------------

// What TaskFs::AddTask does for each new task: a node and its errors file,
// charged against the memory limit, throwing vm::LimitReached when refused.
class NodesRecorder {
 public:
  std::function<void(const std::shared_ptr<vm::Task>&)> Callback() {
    return [this](const std::shared_ptr<vm::Task>& task) {
      nodes_.Add(task, 0, 0);
    };
  }

 private:
  NodeTable nodes_;
};

TEST_F(ManifestTest, FillPastTheLimitNamesTheLimit) {
  MakeSystem(kPage4K, 64 * 1024);
  const std::string error = Apply("m", "task a\nallocate 0 1M\nfill 0 1M 1\n");
  ExpectError(error, "m", 3,
              "fill failed: KERN_RESOURCE_SHORTAGE: memory limit 65536 bytes");
}

TEST_F(ManifestTest, TaskRecordsPastTheLimitAreAnErrorOfTheLine) {
  // Each task's node and errors file take about 10 KiB: 64 KiB hold a few.
  MakeSystem(kPage4K, 64 * 1024);
  NodesRecorder nodes;
  std::string text;
  for (int i = 0; i < 16; ++i) text += "task t" + std::to_string(i) + "\n";
  std::string error;
  EXPECT_NO_THROW(error = ApplyManifest(*system_, "m", text, nodes.Callback()));
  ASSERT_FALSE(error.empty());
  EXPECT_NE(error.find(": task failed: KERN_RESOURCE_SHORTAGE: memory limit "
                       "65536 bytes: "),
            std::string::npos)
      << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

TEST_F(ManifestTest, ForkWhoseRecordsPassTheLimitIsAnErrorOfTheLine) {
  const auto refuse_b = [](const std::shared_ptr<vm::Task>& task) {
    if (task->name() == "b") throw vm::LimitReached(4096, 4000, 9000);
  };
  std::string error;
  EXPECT_NO_THROW(
      error = ApplyManifest(*system_, "m", "task a\nfork b\n", refuse_b));
  EXPECT_EQ(error,
            "m:2: fork failed: KERN_RESOURCE_SHORTAGE: memory limit 4096 "
            "bytes: 4000 in use, the call needs 9000 more");
}

// Every limit too small for the demo is an error of one line naming the
// limit, never an exception; a large enough one creates the demo.
TEST_F(ManifestTest, EmbeddedDemoUnderEverySmallLimit) {
  std::uint64_t fits = 0;
  for (std::uint64_t limit = 1; limit <= 1024 * 1024 && fits == 0;
       limit += limit < 16 * 1024 ? 1021 : 4093) {
    SCOPED_TRACE(limit);
    MakeSystem(kPage4K, limit);
    NodesRecorder nodes;
    std::string error;
    ASSERT_NO_THROW(error = ApplyEmbeddedDemo(*system_, nodes.Callback()));
    if (error.empty()) {
      fits = limit;
      break;
    }
    EXPECT_EQ(error.rfind("<embedded demo>:", 0), 0u) << error;
    EXPECT_NE(error.find("KERN_RESOURCE_SHORTAGE: memory limit " +
                         std::to_string(limit) + " bytes"),
              std::string::npos)
        << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
  EXPECT_NE(fits, 0u) << "the demo fits in no limit up to 1 MiB";
}

// --- load: what it reads ---------------------------------------------------

TEST_F(ManifestTest, LoadLargerThanItsRegionIsRefusedBeforeReading) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  dir.Sparse("big.bin", off_t{256} << 20);
  const std::string path = dir.path() + "/m.tasks";
  const std::string error =
      Apply(path, "task a\nallocate 0x10000 64K\nload 0x10000 big.bin\n");
  ExpectError(error, path, 3,
              "load failed: KERN_INVALID_ADDRESS: 'big.bin' holds 268435456 "
              "bytes, and 0x10000 is allocated only up to 0x20000");
  // Not a byte was written.
  EXPECT_EQ(Read("a", 0x10000, 0x10000), std::string(0x10000, '\0'));
  ExpectError(Apply(path, "task b\nload 0x10000 big.bin\n"), path, 2,
              "0x10000 is not allocated");
}

TEST_F(ManifestTest, LoadLargerThanTheLimitIsRefusedBeforeReading) {
  MakeSystem(kPage4K, 1 << 20);
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  dir.Sparse("big.bin", off_t{256} << 20);
  const std::string path = dir.path() + "/m.tasks";
  ExpectError(Apply(path, "task a\nallocate 0 1G\nload 0 big.bin\n"), path, 3,
              "load failed: KERN_RESOURCE_SHORTAGE: 'big.bin' holds 268435456 "
              "bytes, 65536 pages of 4096; memory limit 1048576 bytes holds "
              "at most 256");
}

// A file that passes the checks but not the limit (its pages and their
// tables together) stops at the first piece the limit refuses.
TEST_F(ManifestTest, LoadThatPassesTheLimitOnTheWayIsResourceShortage) {
  MakeSystem(kPage4K, 1 << 20);
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  dir.Write("data.bin", std::string(255 * 4096, 'd'));
  const std::string path = dir.path() + "/m.tasks";
  ExpectError(
      Apply(path, "task a\nallocate 0 1M\nload 0 data.bin\n"), path, 3,
      "load failed: KERN_RESOURCE_SHORTAGE: memory limit 1048576 bytes");
}

// Pieces of 1 MiB at an unaligned address: every byte lands where it must.
TEST_F(ManifestTest, LoadInPiecesKeepsEveryByte) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string data(3 * 1024 * 1024 + 12345, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<char>((i * 7 + i / 4096) % 251);
  }
  dir.Write("data.bin", data);
  const std::string path = dir.path() + "/m.tasks";
  ASSERT_EQ(
      Apply(path, "task a\nallocate 0x100000 4M\nload 0x100003 data.bin\n"),
      "");
  const std::string back = Read("a", 0x100000, 4 * 1024 * 1024);
  ASSERT_EQ(back.size(), 4u * 1024 * 1024);
  EXPECT_EQ(back.substr(0, 3), std::string(3, '\0'));
  EXPECT_TRUE(back.substr(3, data.size()) == data);
  EXPECT_EQ(back.substr(3 + data.size()),
            std::string(back.size() - 3 - data.size(), '\0'));
}

// Files that are no regular files: refused as such, without blocking and
// without taking /proc's st_size of 0 for an empty file.
TEST_F(ManifestTest, LoadOfWhatIsNoRegularFile) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  ASSERT_EQ(::mkfifo((dir.path() + "/fifo").c_str(), 0600), 0);
  const std::string path = dir.path() + "/m.tasks";
  for (const std::string& name :
       {"/proc/self/mem"s, "/proc/self/status"s, "/dev/zero"s, "fifo"s}) {
    SCOPED_TRACE(name);
    MakeSystem(kPage4K);
    const std::string error =
        Apply(path, "task a\nallocate 0 64K\nload 0 " + name + "\n");
    ExpectError(error, path, 3, "load: " + name + ": not a regular file");
  }
}

TEST_F(ManifestTest, LoadOfAnEmptyFileLoadsNothing) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  dir.Write("empty.bin", "");
  const std::string path = dir.path() + "/m.tasks";
  EXPECT_EQ(Apply(path, "task a\nload 0x10000 empty.bin\n"), "");
}

// --- reading the manifest --------------------------------------------------

TEST_F(ManifestTest, LoadManifestFileOfWhatIsNoRegularFile) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string fifo = dir.path() + "/fifo.tasks";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& path :
       {"/proc/self/mem"s, "/proc/self/status"s, "/dev/zero"s, fifo}) {
    SCOPED_TRACE(path);
    const std::string error = LoadManifestFile(*system_, path, nullptr);
    EXPECT_EQ(error.rfind(path + ": not a regular file", 0), 0u) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
  EXPECT_TRUE(TaskNames().empty());
}

TEST_F(ManifestTest, CommandPartLongerThanTheLineLimitIsAnError) {
  const std::string spaces(kMaxManifestLine, ' ');
  ExpectError(Apply("m", "task a\nallocate" + spaces + "0 4K\ntask b\n"), "m",
              2, "line too long");
  EXPECT_EQ(TaskNames(), std::vector<std::string>{"a"});
  // At the limit it is a line like any other.
  MakeSystem(kPage4K);
  EXPECT_EQ(Apply("m", "task a\nallocate" +
                           std::string(kMaxManifestLine - 12, ' ') + "0 4K\n"),
            "");
}

TEST_F(ManifestTest, CommentsMayBeAnyLength) {
  const std::string comment(4 * kMaxManifestLine, 'c');
  EXPECT_EQ(Apply("m", "#" + comment + "\ntask a # " + comment + "\n"), "");
  EXPECT_EQ(TaskNames(), std::vector<std::string>{"a"});
  // A NUL byte is still an error, in a comment too.
  ExpectError(Apply("m2", "task b # x\0y\n"s), "m2", 1, "0x00");
}

// A manifest read in pieces: lines cut between two pieces, comments longer
// than a piece, and line numbers counted across them.
TEST_F(ManifestTest, LoadManifestFileReadsAcrossPieces) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string text =
      "# " + std::string(65536 - 2 - 3, 'c') + "\ntask straddle\n";
  text += "#" + std::string(200000, 'x') + "\n";
  for (int i = 0; i < 20000; ++i) text += "allocate anywhere 4K\n";
  text += "task last\nbogus";
  const std::string path = dir.Write("m.tasks", text);
  ExpectError(LoadManifestFile(*system_, path, Recorder()), path, 20005,
              "unknown command 'bogus'");
  EXPECT_EQ(created_, (std::vector<std::string>{"straddle", "last"}));
  EXPECT_EQ(Regions("straddle").size(), 1u);  // 20,000 pages, one region
}

}  // namespace
}  // namespace taskfs::fs
