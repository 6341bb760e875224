// The daemon's command line (docs/reference.md §3).
#include "fs/options.h"

#include <gtest/gtest.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace taskfs::fs {

// Lets gtest print outcomes by name. Internal linkage, found by ADL.
static void PrintTo(ParseOutcome outcome, std::ostream* os) {
  switch (outcome) {
    case ParseOutcome::kRun:
      *os << "kRun";
      return;
    case ParseOutcome::kHelp:
      *os << "kHelp";
      return;
    case ParseOutcome::kVersion:
      *os << "kVersion";
      return;
    case ParseOutcome::kError:
      *os << "kError";
      return;
  }
  *os << static_cast<int>(outcome);
}

namespace {

std::string CurrentDirectory() {
  char cwd[PATH_MAX];
  return ::getcwd(cwd, sizeof cwd) != nullptr ? cwd : "";
}

std::uint64_t HalfOfPhysicalMemory() {
  return static_cast<std::uint64_t>(::sysconf(_SC_PHYS_PAGES)) *
         static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) / 2;
}

class OptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "taskfs_options_XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    mountpoint_ = templ;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(mountpoint_, ignored);
  }

  // Runs ParseOptions on {"taskfs", args...} into a fresh options_.
  ParseOutcome Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "taskfs");
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    options_ = std::make_unique<Options>();
    error_.clear();
    return ParseOptions(static_cast<int>(args.size()), argv.data(),
                        options_.get(), &error_);
  }

  // Parses args, which must be rejected with a one-line error mentioning
  // want.
  void ExpectError(const std::vector<std::string>& args,
                   const std::string& want) {
    EXPECT_EQ(Parse(args), ParseOutcome::kError);
    EXPECT_FALSE(error_.empty());
    EXPECT_EQ(error_.find('\n'), std::string::npos) << error_;
    EXPECT_NE(error_.find(want), std::string::npos)
        << "'" << error_ << "' lacks '" << want << "'";
  }

  // The arguments left for libfuse.
  std::vector<std::string> FuseArgs() const {
    std::vector<std::string> out;
    for (int i = 0; i < options_->fuse.argc; ++i) {
      out.push_back(options_->fuse.argv[i]);
    }
    return out;
  }

  bool HasFuseArg(const std::string& arg) const {
    for (const std::string& a : FuseArgs()) {
      if (a == arg) return true;
    }
    return false;
  }

  std::string mountpoint_;
  std::unique_ptr<Options> options_;
  std::string error_;
};

TEST_F(OptionsTest, Defaults) {
  ASSERT_EQ(Parse({mountpoint_}), ParseOutcome::kRun) << error_;
  EXPECT_EQ(error_, "");
  EXPECT_EQ(options_->vm.page_size, 4096u);
  EXPECT_EQ(options_->vm.address_bits, 47u);
  EXPECT_EQ(options_->vm.max_tasks, 1024u);
  EXPECT_EQ(options_->vm.memory_limit, HalfOfPhysicalMemory());
  EXPECT_EQ(options_->tasks, Options::Tasks::kDemo);
  EXPECT_EQ(options_->log_level, spdlog::level::info);
  EXPECT_EQ(options_->mountpoint, mountpoint_);
  EXPECT_FALSE(options_->foreground);
  EXPECT_FALSE(options_->single_thread);
  EXPECT_EQ(WorkerThreads(*options_), 10u);
}

// The threads that may each hold a read reply's pins: what the daemon sizes
// its pin reserve by.
TEST_F(OptionsTest, WorkerThreads) {
  ASSERT_EQ(Parse({"-s", mountpoint_}), ParseOutcome::kRun) << error_;
  EXPECT_EQ(WorkerThreads(*options_), 1u);
  ASSERT_EQ(Parse({"-o", "max_threads=3", mountpoint_}), ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(WorkerThreads(*options_), 3u);
  ASSERT_EQ(Parse({"-o", "max_threads=0", mountpoint_}), ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(WorkerThreads(*options_), 10u);
}

TEST_F(OptionsTest, DefaultPermissionsIsAlwaysOn) {
  ASSERT_EQ(Parse({mountpoint_}), ParseOutcome::kRun) << error_;
  EXPECT_TRUE(HasFuseArg("-odefault_permissions"));
  EXPECT_TRUE(HasFuseArg("-osubtype=taskfs"));
}

TEST_F(OptionsTest, PageSize) {
  ASSERT_EQ(Parse({"-o", "page_size=16384", mountpoint_}), ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->vm.page_size, 16384u);
  ASSERT_EQ(Parse({"-o", "page_size=65536", mountpoint_}), ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->vm.page_size, 65536u);
}

TEST_F(OptionsTest, AddressBits) {
  ASSERT_EQ(Parse({"-o", "address_bits=30", mountpoint_}), ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->vm.address_bits, 30u);
  ASSERT_EQ(Parse({"-oaddress_bits=62", mountpoint_}), ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->vm.address_bits, 62u);
  ASSERT_EQ(Parse({"-oaddress_bits=24", mountpoint_}), ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->vm.address_bits, 24u);
}

TEST_F(OptionsTest, NumbersWithLeadingZerosAreDecimal) {
  ASSERT_EQ(Parse({"-o", "max_tasks=010,memory_limit=010M", mountpoint_}),
            ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->vm.max_tasks, 10u);
  EXPECT_EQ(options_->vm.memory_limit, std::uint64_t{10} << 20);
}

TEST_F(OptionsTest, TasksNone) {
  ASSERT_EQ(Parse({"-o", "tasks=none", mountpoint_}), ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->tasks, Options::Tasks::kNone);
}

TEST_F(OptionsTest, TasksFileIsMadeAbsolute) {
  ASSERT_EQ(Parse({"-o", "tasks=demo.tasks", mountpoint_}), ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->tasks, Options::Tasks::kManifest);
  EXPECT_EQ(options_->manifest, CurrentDirectory() + "/demo.tasks");
  ASSERT_EQ(Parse({"-o", "tasks=/etc/demo.tasks", mountpoint_}),
            ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->tasks, Options::Tasks::kManifest);
  EXPECT_EQ(options_->manifest, "/etc/demo.tasks");
}

TEST_F(OptionsTest, MemoryLimit) {
  ASSERT_EQ(Parse({"-o", "memory_limit=64M", mountpoint_}), ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->vm.memory_limit, std::uint64_t{64} << 20);
  ASSERT_EQ(Parse({"-o", "memory_limit=1G", mountpoint_}), ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->vm.memory_limit, std::uint64_t{1} << 30);
  ASSERT_EQ(Parse({"-o", "memory_limit=12345", mountpoint_}),
            ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->vm.memory_limit, 12345u);
}

TEST_F(OptionsTest, MaxTasks) {
  ASSERT_EQ(Parse({"-o", "max_tasks=5", mountpoint_}), ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->vm.max_tasks, 5u);
}

TEST_F(OptionsTest, LogLevels) {
  const struct {
    const char* name;
    spdlog::level::level_enum level;
  } kCases[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"off", spdlog::level::off},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    ASSERT_EQ(Parse({"-o", std::string("log_level=") + c.name, mountpoint_}),
              ParseOutcome::kRun)
        << error_;
    EXPECT_EQ(options_->log_level, c.level);
  }
}

// spdlog::level::from_str's other names are taken too.
TEST_F(OptionsTest, Flavor) {
  ASSERT_EQ(Parse({mountpoint_}), ParseOutcome::kRun) << error_;
  EXPECT_EQ(options_->vm.flavor, vm::Flavor::kClassic);
  ASSERT_EQ(Parse({"-o", "flavor=xnu", mountpoint_}), ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->vm.flavor, vm::Flavor::kXnu);
  ASSERT_EQ(Parse({"-o", "flavor=classic", mountpoint_}), ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->vm.flavor, vm::Flavor::kClassic);
}

TEST_F(OptionsTest, BadFlavor) {
  ExpectError({"-o", "flavor=XNU", mountpoint_},
              "bad flavor 'XNU' (want classic or xnu)");
  ExpectError({"-o", "flavor=", mountpoint_}, "flavor");
}

TEST_F(OptionsTest, StateAndSaveInterval) {
  ASSERT_EQ(Parse({mountpoint_}), ParseOutcome::kRun) << error_;
  EXPECT_EQ(options_->state_dir, "");
  EXPECT_EQ(options_->save_interval, 0u);
  ASSERT_EQ(Parse({"-o", "state=/var/keep,save_interval=30", mountpoint_}),
            ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->state_dir, "/var/keep");
  EXPECT_EQ(options_->save_interval, 30u);
  ASSERT_EQ(Parse({"-o", "state=keep", mountpoint_}), ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->state_dir[0], '/');
}

TEST_F(OptionsTest, BadStateAndSaveInterval) {
  ExpectError({"-o", "state=", mountpoint_}, "bad state='': want a directory");
  ExpectError({"-o", "state=/k,save_interval=0", mountpoint_},
              "bad save_interval '0' (want a positive number of seconds)");
  ExpectError({"-o", "state=/k,save_interval=x", mountpoint_},
              "bad save_interval 'x'");
  ExpectError({"-o", "save_interval=5", mountpoint_},
              "save_interval= needs state=DIR");
}

TEST_F(OptionsTest, SpdlogsOtherLogLevelNames) {
  const struct {
    const char* name;
    spdlog::level::level_enum level;
  } kCases[] = {
      {"warning", spdlog::level::warn},
      {"err", spdlog::level::err},
      {"critical", spdlog::level::critical},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    ASSERT_EQ(Parse({"-o", std::string("log_level=") + c.name, mountpoint_}),
              ParseOutcome::kRun)
        << error_;
    EXPECT_EQ(options_->log_level, c.level);
  }
  ExpectError({"-o", "log_level=", mountpoint_},
              "bad log_level '' (want trace, debug, info, warn, error or off)");
}

TEST_F(OptionsTest, SeveralOptionsInOneList) {
  ASSERT_EQ(Parse({mountpoint_, "-o",
                   "page_size=16384,address_bits=30,tasks=none,"
                   "memory_limit=64M,max_tasks=5,log_level=debug"}),
            ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->vm.page_size, 16384u);
  EXPECT_EQ(options_->vm.address_bits, 30u);
  EXPECT_EQ(options_->tasks, Options::Tasks::kNone);
  EXPECT_EQ(options_->vm.memory_limit, std::uint64_t{64} << 20);
  EXPECT_EQ(options_->vm.max_tasks, 5u);
  EXPECT_EQ(options_->log_level, spdlog::level::debug);
}

TEST_F(OptionsTest, StandardFuseOptionsPassThrough) {
  ASSERT_EQ(
      Parse({"-f", "-s", "-o", "allow_other,page_size=8192", mountpoint_}),
      ParseOutcome::kRun)
      << error_;
  EXPECT_TRUE(options_->foreground);
  EXPECT_TRUE(options_->single_thread);
  EXPECT_EQ(options_->vm.page_size, 8192u);
  bool allow_other = false;
  for (const std::string& arg : FuseArgs()) {
    if (arg.find("allow_other") != std::string::npos) allow_other = true;
    EXPECT_EQ(arg.find("page_size"), std::string::npos) << arg;
  }
  EXPECT_TRUE(allow_other);
}

TEST_F(OptionsTest, DebugImpliesForeground) {
  ASSERT_EQ(Parse({"-d", mountpoint_}), ParseOutcome::kRun) << error_;
  EXPECT_TRUE(options_->foreground);
}

TEST_F(OptionsTest, MountFormWithNoneSource) {
  ASSERT_EQ(Parse({"none", mountpoint_, "-o", "page_size=16384"}),
            ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->tasks, Options::Tasks::kNone);
  EXPECT_EQ(options_->mountpoint, mountpoint_);
  EXPECT_EQ(options_->vm.page_size, 16384u);
}

TEST_F(OptionsTest, MountFormWithManifestSource) {
  ASSERT_EQ(Parse({"/etc/demo.tasks", mountpoint_, "-o", "rw,page_size=4096"}),
            ParseOutcome::kRun)
      << error_;
  EXPECT_EQ(options_->tasks, Options::Tasks::kManifest);
  EXPECT_EQ(options_->manifest, "/etc/demo.tasks");
  EXPECT_EQ(options_->mountpoint, mountpoint_);
  ASSERT_EQ(Parse({"my.tasks", mountpoint_}), ParseOutcome::kRun) << error_;
  EXPECT_EQ(options_->tasks, Options::Tasks::kManifest);
  EXPECT_EQ(options_->manifest, CurrentDirectory() + "/my.tasks");
}

TEST_F(OptionsTest, RelativeMountpointIsMadeAbsolute) {
  const std::filesystem::path saved = std::filesystem::current_path();
  std::filesystem::current_path(mountpoint_);
  ASSERT_TRUE(std::filesystem::create_directory("mnt"));
  const ParseOutcome outcome = Parse({"mnt"});
  const std::string cwd = CurrentDirectory();
  std::filesystem::current_path(saved);
  ASSERT_EQ(outcome, ParseOutcome::kRun) << error_;
  EXPECT_EQ(options_->mountpoint, cwd + "/mnt");
}

// --- errors ----------------------------------------------------------------

TEST_F(OptionsTest, BadPageSize) {
  ExpectError({"-o", "page_size=5000", mountpoint_}, "page_size");
  ExpectError({"-o", "page_size=2048", mountpoint_}, "page_size");
  ExpectError({"-o", "page_size=131072", mountpoint_}, "page_size");
  ExpectError({"-o", "page_size=abc", mountpoint_}, "page_size");
  ExpectError({"-o", "page_size=-4096", mountpoint_}, "page_size");
}

TEST_F(OptionsTest, BadAddressBits) {
  ExpectError({"-o", "address_bits=70", mountpoint_}, "address_bits");
  ExpectError({"-o", "address_bits=12", mountpoint_}, "address_bits");
  ExpectError({"-o", "address_bits=63", mountpoint_}, "address_bits");
  ExpectError({"-o", "address_bits=23", mountpoint_}, "address_bits");
  ExpectError({"-o", "address_bits=", mountpoint_}, "address_bits");
}

TEST_F(OptionsTest, BadMemoryLimit) {
  ExpectError({"-o", "memory_limit=abc", mountpoint_}, "memory_limit");
  ExpectError({"-o", "memory_limit=0", mountpoint_}, "memory_limit");
  ExpectError({"-o", "memory_limit=-1M", mountpoint_}, "memory_limit");
}

TEST_F(OptionsTest, BadMaxTasks) {
  ExpectError({"-o", "max_tasks=0", mountpoint_}, "max_tasks");
  ExpectError({"-o", "max_tasks=many", mountpoint_}, "max_tasks");
}

TEST_F(OptionsTest, BadLogLevel) {
  ExpectError({"-o", "log_level=loud", mountpoint_}, "log_level");
  ExpectError({"-o", "log_level=INFO", mountpoint_}, "log_level");
}

TEST_F(OptionsTest, NegativeNumberAfterBlankIsRejected) {
  // strtoull skips leading blanks and then accepts a sign.
  ExpectError({"-o", "max_tasks= -1", mountpoint_}, "max_tasks");
  ExpectError({"-o", "memory_limit= -1", mountpoint_}, "memory_limit");
}

TEST_F(OptionsTest, EmptyTasks) {
  ExpectError({"-o", "tasks=", mountpoint_}, "tasks");
}

TEST_F(OptionsTest, MissingMountpoint) {
  const std::string missing = mountpoint_ + "/nope";
  ExpectError({missing}, "mountpoint");
  EXPECT_NE(error_.find(missing), std::string::npos) << error_;
  EXPECT_NE(error_.find("No such file or directory"), std::string::npos)
      << error_;
}

TEST_F(OptionsTest, MountpointThatIsAFile) {
  const std::string file = mountpoint_ + "/file";
  std::ofstream(file) << "x";
  ExpectError({file}, "mountpoint");
  EXPECT_NE(error_.find(file), std::string::npos) << error_;
  EXPECT_NE(error_.find("Not a directory"), std::string::npos) << error_;
}

TEST_F(OptionsTest, NoMountpoint) {
  ExpectError({}, "mountpoint");
  ExpectError({"-o", "page_size=4096"}, "mountpoint");
}

TEST_F(OptionsTest, ThreePositionalArguments) {
  ExpectError({"none", mountpoint_, "extra"}, "extra");
}

// Only the first three are kept, whatever argv holds.
TEST_F(OptionsTest, ManyPositionalArguments) {
  std::vector<std::string> args = {"none", mountpoint_, "extra"};
  args.resize(args.size() + 1000, "more");
  ExpectError(args, "too many arguments: 'extra' and 1000 more");
}

// A bad value is quoted cut short, its unprintable bytes as \xNN: the
// error stays one short line.
TEST_F(OptionsTest, BadValueIsQuotedOnOneShortLine) {
  ExpectError({"-o", "page_size=4\n096", mountpoint_},
              "bad page_size '4\\x0a096'");
  ExpectError({"-o", "log_level=" + std::string(100000, 'x'), mountpoint_},
              "bad log_level '" + std::string(64, 'x') + "...'");
  EXPECT_LT(error_.size(), 200u) << error_;
  ExpectError({"-o", "memory_limit=\xff\x01", mountpoint_},
              "bad memory_limit '\\xff\\x01'");
}

TEST_F(OptionsTest, SourceAndTasksOption) {
  ExpectError({"/etc/demo.tasks", mountpoint_, "-o", "tasks=none"}, "tasks");
  EXPECT_NE(error_.find("/etc/demo.tasks"), std::string::npos) << error_;
}

TEST_F(OptionsTest, Help) {
  EXPECT_EQ(Parse({"-h"}), ParseOutcome::kHelp);
  EXPECT_EQ(Parse({"--help"}), ParseOutcome::kHelp);
  EXPECT_EQ(Parse({"--help", mountpoint_}), ParseOutcome::kHelp);
}

TEST_F(OptionsTest, Version) {
  EXPECT_EQ(Parse({"-V"}), ParseOutcome::kVersion);
  EXPECT_EQ(Parse({"--version"}), ParseOutcome::kVersion);
}

}  // namespace
}  // namespace taskfs::fs
