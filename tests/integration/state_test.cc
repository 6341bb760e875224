// -o state=DIR (docs/reference.md §10) through real mounts: tasks of two
// users, their owners, modes, forks and copies kept across unmount; a save
// killed at many points leaves the previous one; damaged and foreign saves
// and a DIR of the wrong mode or owner refused; DIR pinned and locked, the
// save file only a regular file of the daemon's user; signals during the
// last save; save_interval saves while mounted.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

constexpr std::uint64_t kData = 0x10000;

class StateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.MakeDir("state");
    ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);
    const passwd* pw = ::getpwnam("nobody");
    if (pw == nullptr) GTEST_SKIP() << "no user nobody";
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
  }

  std::vector<std::string> Options(const std::string& more = "") const {
    return {"-o", "allow_other,state=" + dir_ + more};
  }
  std::string SaveFile() const { return dir_ + "/tasks.state"; }

  // A daemon that must not mount: its exit status and its one line.
  void ExpectRefused(const std::vector<std::string>& options,
                     const std::string& want) {
    Mount mount(options);
    EXPECT_FALSE(mount.ok());
    EXPECT_EQ(mount.exit_status(), 1) << mount.DaemonLog();
    const std::string log = mount.DaemonLog();
    EXPECT_NE(log.find(want), std::string::npos) << log;
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
    EXPECT_FALSE(IsMountpoint(mount.path()));
  }

  int AsNobody(const std::function<int()>& fn) {
    return RunAs(Identity{uid_, gid_, {}}, fn);
  }

  TempDir tmp_;
  std::string dir_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

struct Seen {
  uid_t uid;
  gid_t gid;
  mode_t mode;
};

std::map<std::string, Seen> Attributes(const Mount& mount) {
  std::map<std::string, Seen> out;
  for (const std::string& task : ListDir(mount.path())) {
    if (task == "host_page_size") continue;
    for (const char* file :
         {"", "/mem", "/ctl", "/maps", "/status", "/errors"}) {
      struct stat st;
      if (::stat((mount / (task + file)).c_str(), &st) == 0) {
        out[task + file] = {st.st_uid, st.st_gid, st.st_mode};
      }
    }
  }
  return out;
}

TEST_F(StateTest, TasksOwnersModesAndSharingSurviveUnmount) {
  std::map<std::string, Seen> attributes;
  std::map<std::string, std::string> status;
  long long used = 0;
  const std::string mine_bytes = Pattern(32 * kPage, 1);
  const std::string its_bytes = Pattern(16 * kPage, 2);
  {
    Mount mount(Options(",tasks=none"));
    ASSERT_TRUE(mount.ok()) << mount.error();
    ASSERT_EQ(Err(::mkdir((mount / "mine").c_str(), 0700)), 0);
    ASSERT_EQ(WriteFile(mount / "mine/ctl", "allocate 0x10000 128K\n"), 0);
    ASSERT_EQ(WriteMem(mount / "mine/mem", kData, mine_bytes), 0);
    // The first 16 pages shared with the fork, the rest copied.
    ASSERT_EQ(WriteFile(mount / "mine/ctl", "inherit 0x10000 64K share\n"), 0);
    ASSERT_EQ(WriteFile(mount / "mine/ctl", "fork kid\n"), 0);
    // An unreadable page keeps its bytes.
    ASSERT_EQ(WriteFile(mount / "mine/ctl", "protect 0x28000 4K ---\n"), 0);
    ASSERT_EQ(::chmod((mount / "mine/maps").c_str(), 0444), 0);
    ASSERT_EQ(::chmod((mount / "kid/mem").c_str(), 0640), 0);
    const std::string dir = mount / "its";
    ASSERT_EQ(AsNobody([&] {
                int e = Err(::mkdir(dir.c_str(), 0700));
                if (e == 0)
                  e = WriteFile(dir + "/ctl", "allocate 0x10000 64K\n");
                if (e == 0) e = WriteMem(dir + "/mem", kData, its_bytes);
                if (e == 0) e = Err(::chmod((dir + "/status").c_str(), 0440));
                return e;
              }),
              0);
    attributes = Attributes(mount);
    for (const char* task : {"mine", "kid", "its"}) {
      const std::string text =
          ReadFile(mount / (std::string(task) + "/status"));
      status[task] = StatusValue(text, "resident_bytes") + "/" +
                     StatusValue(text, "shared_bytes") + "/" +
                     StatusValue(text, "regions");
    }
    used = StatfsUsedBytes(mount.path());
    EXPECT_EQ(mount.StopWith(SIGTERM), 0) << mount.DaemonLog();
  }
  EXPECT_TRUE(std::filesystem::exists(SaveFile()));

  // No tasks= option: the demo would load, but a save present wins.
  Mount mount(Options());
  ASSERT_TRUE(mount.ok()) << mount.error();
  std::vector<std::string> names = ListDir(mount.path());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names,
            (std::vector<std::string>{"host_page_size", "its", "kid", "mine"}));
  EXPECT_NE(mount.DaemonLog().find("restored 3 tasks"), std::string::npos);
  const std::map<std::string, Seen> now = Attributes(mount);
  ASSERT_EQ(now.size(), attributes.size());
  for (const auto& [path, seen] : attributes) {
    ASSERT_TRUE(now.count(path)) << path;
    EXPECT_EQ(now.at(path).uid, seen.uid) << path;
    EXPECT_EQ(now.at(path).gid, seen.gid) << path;
    EXPECT_EQ(now.at(path).mode, seen.mode) << path;
  }
  EXPECT_EQ(now.at("its").uid, uid_);
  for (const char* task : {"mine", "kid", "its"}) {
    const std::string text = ReadFile(mount / (std::string(task) + "/status"));
    EXPECT_EQ(StatusValue(text, "resident_bytes") + "/" +
                  StatusValue(text, "shared_bytes") + "/" +
                  StatusValue(text, "regions"),
              status[task])
        << task;
  }
  const long long used_now = StatfsUsedBytes(mount.path());
  EXPECT_LE(std::abs(used_now - used), used / 100) << used << " " << used_now;

  std::string got;
  ASSERT_EQ(ReadMem(mount / "kid/mem", kData, 24 * kPage, &got), 0);
  EXPECT_EQ(got, mine_bytes.substr(0, 24 * kPage));
  ASSERT_EQ(ReadMem(mount / "its/mem", kData, 16 * kPage, &got), 0);
  EXPECT_EQ(got, its_bytes);
  ASSERT_EQ(WriteFile(mount / "mine/ctl", "protect 0x28000 4K rw-\n"), 0);
  ASSERT_EQ(ReadMem(mount / "mine/mem", 0x28000, kPage, &got), 0);
  EXPECT_EQ(got, mine_bytes.substr(0x18000, kPage));

  // share: one memory; copy: apart.
  const std::string x(kPage, 'x');
  ASSERT_EQ(WriteMem(mount / "mine/mem", kData, x), 0);
  ASSERT_EQ(ReadMem(mount / "kid/mem", kData, kPage, &got), 0);
  EXPECT_EQ(got, x);
  ASSERT_EQ(WriteMem(mount / "mine/mem", kData + 20 * kPage, x), 0);
  ASSERT_EQ(ReadMem(mount / "kid/mem", kData + 20 * kPage, kPage, &got), 0);
  EXPECT_EQ(got, mine_bytes.substr(20 * kPage, kPage));
}

// A `copy` remap keeps its source's object offset and an allocate then
// extends that region past what the space spans in its object: the save
// of it restores, with the same maps and bytes.
TEST_F(StateTest, RegionGrownHighInItsObjectSurvivesUnmount) {
  const std::string opts = ",tasks=none,address_bits=24";
  const std::string high = Pattern(kPage, 3), mid = Pattern(3 * kPage, 4);
  std::string maps;
  {
    Mount mount(Options(opts));
    ASSERT_TRUE(mount.ok()) << mount.error();
    ASSERT_EQ(Err(::mkdir((mount / "x").c_str(), 0700)), 0);
    for (const char* command :
         {"allocate 0 8K", "deallocate 0 4K", "allocate 0x2000 0xffe000",
          "deallocate 0x1000 0xffe000"}) {
      ASSERT_EQ(WriteFile(mount / "x/ctl", std::string(command) + "\n"), 0)
          << command;
    }
    ASSERT_EQ(WriteMem(mount / "x/mem", 0xfff000, high), 0);
    for (const char* command :
         {"remap x 0xfff000 4K 0 copy", "allocate 0x1000 0xffe000"}) {
      ASSERT_EQ(WriteFile(mount / "x/ctl", std::string(command) + "\n"), 0)
          << command;
    }
    ASSERT_EQ(WriteMem(mount / "x/mem", 0x800000, mid), 0);
    maps = ReadFile(mount / "x/maps");
    EXPECT_EQ(mount.StopWith(SIGTERM), 0) << mount.DaemonLog();
  }
  Mount mount(Options(opts));
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_NE(mount.DaemonLog().find("restored 1 task"), std::string::npos)
      << mount.DaemonLog();
  EXPECT_EQ(ReadFile(mount / "x/maps"), maps);
  std::string got;
  for (std::uint64_t at : {std::uint64_t{0}, std::uint64_t{0xfff000}}) {
    ASSERT_EQ(ReadMem(mount / "x/mem", at, kPage, &got), 0);
    EXPECT_EQ(got, high) << at;
  }
  ASSERT_EQ(ReadMem(mount / "x/mem", 0x800000, 3 * kPage, &got), 0);
  EXPECT_EQ(got, mid);
  ASSERT_EQ(ReadMem(mount / "x/mem", 0x1000, kPage, &got), 0);
  EXPECT_EQ(got, std::string(kPage, '\0'));
}

// Forks of a sparse task share page-table subtrees; the restore shares
// them again: used memory (df) within 1 % of what it was, under a limit
// that a table per fork would exceed (3,000 pages 2 MiB apart, 12 forks:
// about 25 MiB; a table per fork, about 170 MiB).
TEST_F(StateTest, SparseForksRestoreInTheMemoryTheyHeld) {
  const std::string opts = ",tasks=none,address_bits=40,memory_limit=64M";
  constexpr std::uint64_t kStride = 2 << 20;
  constexpr int kPages = 3000;
  long long used = 0;
  {
    Mount mount(Options(opts));
    ASSERT_TRUE(mount.ok()) << mount.error();
    ASSERT_EQ(Err(::mkdir((mount / "a").c_str(), 0700)), 0);
    ASSERT_EQ(WriteFile(mount / "a/ctl", "allocate 0x10000000 6000M\n"), 0);
    const int fd = ::open((mount / "a/mem").c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    const std::string page = Pattern(kPage, 5);
    for (int i = 0; i < kPages; ++i) {
      ASSERT_EQ(::pwrite(fd, page.data(), kPage, 0x10000000 + i * kStride),
                static_cast<ssize_t>(kPage))
          << i;
    }
    ::close(fd);
    for (int i = 0; i < 12; ++i) {
      ASSERT_EQ(WriteFile(mount / "a/ctl", "fork f" + std::to_string(i) + "\n"),
                0);
    }
    ASSERT_EQ(WriteMem(mount / "f3/mem", 0x10000000 + 7 * kStride,
                       std::string(kPage, 'x')),
              0);
    used = StatfsUsedBytes(mount.path());
    EXPECT_EQ(mount.StopWith(SIGTERM), 0) << mount.DaemonLog();
  }
  Mount mount(Options(opts));
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_NE(mount.DaemonLog().find("restored 13 tasks"), std::string::npos)
      << mount.DaemonLog();
  const long long now = StatfsUsedBytes(mount.path());
  EXPECT_LE(std::abs(now - used), used / 100) << used << " " << now;
  std::string got;
  ASSERT_EQ(ReadMem(mount / "f3/mem", 0x10000000 + 7 * kStride, kPage, &got),
            0);
  EXPECT_EQ(got, std::string(kPage, 'x'));
  ASSERT_EQ(ReadMem(mount / "f4/mem", 0x10000000 + 7 * kStride, kPage, &got),
            0);
  EXPECT_EQ(got, Pattern(kPage, 5));
}

TEST_F(StateTest, ManifestLoadsWhenThereIsNoSave) {
  Mount mount(Options());
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_GT(ListDir(mount.path()).size(), 1u);  // the demo
  EXPECT_EQ(mount.StopWith(SIGINT), 0) << mount.DaemonLog();
  EXPECT_TRUE(std::filesystem::exists(SaveFile()));
}

TEST_F(StateTest, DirOfAnotherModeOrOwnerIsRefused) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0750), 0);
  ExpectRefused(Options(), "mode 0750, want 0700");
  ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir_.c_str(), uid_, gid_), 0);
  ExpectRefused(Options(), "belongs to uid " + std::to_string(uid_));
  ExpectRefused({"-o", "state=" + dir_ + "/missing"},
                "No such file or directory");
}

// A save with one task "t" holding pattern seed at kData.
void MakeSave(const std::vector<std::string>& options, unsigned seed,
              std::size_t pages) {
  Mount mount(options);
  ASSERT_TRUE(mount.ok()) << mount.error();
  if (!std::filesystem::exists(mount / "t")) {
    ASSERT_EQ(Err(::mkdir((mount / "t").c_str(), 0700)), 0);
    ASSERT_EQ(
        WriteFile(mount / "t/ctl",
                  "allocate 0x10000 " + std::to_string(pages * kPage) + "\n"),
        0);
  }
  ASSERT_EQ(WriteMem(mount / "t/mem", kData, Pattern(pages * kPage, seed)), 0);
  ASSERT_EQ(mount.StopWith(SIGTERM), 0) << mount.DaemonLog();
}

// A daemon of options mounts, and its task "t" holds pattern seed at kData:
// what MakeSave saved.
void ExpectSave(const std::vector<std::string>& options, unsigned seed,
                std::size_t pages) {
  Mount mount(options);
  ASSERT_TRUE(mount.ok()) << mount.error();
  std::string got;
  ASSERT_EQ(ReadMem(mount / "t/mem", kData, pages * kPage, &got), 0);
  EXPECT_TRUE(got == Pattern(pages * kPage, seed));  // (too long to print)
}

TEST_F(StateTest, SymlinkedDirAndOpenParentsAreRefused) {
  const std::string link = tmp_ / "link";
  ASSERT_EQ(::symlink(dir_.c_str(), link.c_str()), 0);
  ExpectRefused({"-o", "state=" + link},
                "state=" + link + ": a symbolic link, not a directory");
  // A directory above DIR that others may write and is not sticky: they
  // could move DIR away and put theirs in its place.
  const std::string open = tmp_.MakeDir("open");
  const std::string inside = open + "/state";
  ASSERT_EQ(::mkdir(inside.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(open.c_str(), 0777), 0);
  ExpectRefused({"-o", "state=" + inside},
                open + " above it has mode 0777, writable by other users");
  ASSERT_EQ(::chmod(open.c_str(), 01777), 0);
  Mount mount({"-o", "tasks=none,state=" + inside});
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_EQ(mount.StopWith(SIGTERM), 0) << mount.DaemonLog();
  EXPECT_TRUE(std::filesystem::exists(inside + "/tasks.state"));
}

TEST_F(StateTest, AStaleTempFileOfAnotherUserDoesNotBecomeTheSave) {
  const std::string temp = dir_ + "/tasks.state.tmp";
  std::ofstream(temp) << "stale";
  ASSERT_EQ(::chown(temp.c_str(), uid_, gid_), 0);
  ASSERT_EQ(::chmod(temp.c_str(), 0666), 0);
  Mount mount(Options(",tasks=none"));
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_EQ(mount.StopWith(SIGTERM), 0) << mount.DaemonLog();
  struct stat st;
  ASSERT_EQ(::lstat(SaveFile().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_FALSE(std::filesystem::exists(temp));
}

TEST_F(StateTest, ATempSymlinkIsNotFollowed) {
  const std::string victim = tmp_.Write("victim", "victim's bytes");
  const std::string temp = dir_ + "/tasks.state.tmp";
  ASSERT_EQ(::symlink(victim.c_str(), temp.c_str()), 0);
  Mount mount(Options(",tasks=none"));
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_EQ(mount.StopWith(SIGTERM), 0) << mount.DaemonLog();
  EXPECT_EQ(ReadFile(victim), "victim's bytes");
  struct stat st;
  ASSERT_EQ(::lstat(SaveFile().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_FALSE(std::filesystem::exists(temp));
  EXPECT_FALSE(std::filesystem::is_symlink(temp));
}

TEST_F(StateTest, ASecondDaemonOnOneDirIsRefused) {
  MakeSave(Options(",tasks=none"), 1, 4);
  Mount first(Options());
  ASSERT_TRUE(first.ok()) << first.error();
  ExpectRefused(Options(), "state=" + dir_ + ": in use by another taskfs");
  ExpectRefused(Options(",tasks=none"),
                "state=" + dir_ + ": in use by another taskfs");
  // The first goes on, and saves.
  ASSERT_EQ(WriteMem(first / "t/mem", kData, Pattern(4 * kPage, 2)), 0);
  EXPECT_EQ(first.StopWith(SIGTERM), 0) << first.DaemonLog();
  ExpectSave(Options(), 2, 4);
}

TEST_F(StateTest, ASaveThatIsNotARegularFileOfTheDaemonIsRefused) {
  // A dangling link is not "no save": the demo does not load over it.
  ASSERT_EQ(::symlink((dir_ + "/gone").c_str(), SaveFile().c_str()), 0);
  ExpectRefused(Options(),
                "state " + SaveFile() + ": a symbolic link, not a save");
  EXPECT_TRUE(std::filesystem::is_symlink(SaveFile()));
  ASSERT_EQ(::unlink(SaveFile().c_str()), 0);
  // A FIFO: refused at once, not waited on (ExpectRefused's mount has a
  // deadline).
  ASSERT_EQ(::mkfifo(SaveFile().c_str(), 0600), 0);
  const auto began = std::chrono::steady_clock::now();
  ExpectRefused(Options(), "state " + SaveFile() + ": not a regular file");
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(10));
  ASSERT_EQ(::unlink(SaveFile().c_str()), 0);
  ASSERT_EQ(::mkdir(SaveFile().c_str(), 0700), 0);
  ExpectRefused(Options(), "state " + SaveFile() + ": not a regular file");
  ASSERT_EQ(::rmdir(SaveFile().c_str()), 0);
  // Another user's file.
  MakeSave(Options(",tasks=none"), 1, 4);
  ASSERT_EQ(::chown(SaveFile().c_str(), uid_, gid_), 0);
  ExpectRefused(Options(), "state " + SaveFile() + ": belongs to uid " +
                               std::to_string(uid_));
}

TEST_F(StateTest, SignalsDuringTheLastSaveDoNotStopIt) {
  constexpr std::size_t kPages = 1024;  // 4 MiB
  MakeSave(Options(",tasks=none"), 1, kPages);
  // The last save pauses two seconds once its first byte is written.
  ::setenv("TASKFS_TEST_SAVE_PAUSE_AFTER", "1", 1);
  Mount mount(Options());
  ::unsetenv("TASKFS_TEST_SAVE_PAUSE_AFTER");
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(WriteMem(mount / "t/mem", kData, Pattern(kPages * kPage, 2)), 0);
  ASSERT_EQ(::kill(mount.daemon_pid(), SIGTERM), 0);
  ASSERT_TRUE(PollUntil(
      [&] {
        return mount.DaemonLog().find(
                   "saving; a signal now does not stop it") !=
               std::string::npos;
      },
      std::chrono::seconds(10)))
      << mount.DaemonLog();
  ASSERT_TRUE(PollUntil(
      [&] { return std::filesystem::exists(dir_ + "/tasks.state.tmp"); },
      std::chrono::seconds(10)));
  ASSERT_EQ(::kill(mount.daemon_pid(), SIGTERM), 0);
  ASSERT_EQ(::kill(mount.daemon_pid(), SIGINT), 0);
  EXPECT_EQ(mount.StopWith(SIGTERM), 0) << mount.DaemonLog();
  EXPECT_NE(mount.DaemonLog().find("saved 1 tasks"), std::string::npos)
      << mount.DaemonLog();
  ExpectSave(Options(), 2, kPages);
}

TEST_F(StateTest, DamagedAndForeignSavesAreRefused) {
  MakeSave(Options(",tasks=none"), 1, 64);
  std::string good;
  {
    std::ifstream in(SaveFile(), std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(good.size(), 64 * kPage);
  const auto put = [&](const std::string& bytes) {
    std::ofstream(SaveFile(), std::ios::binary | std::ios::trunc) << bytes;
  };
  std::string flipped = good;
  flipped[good.size() / 2] ^= 1;
  put(flipped);
  ExpectRefused(Options(), "state " + SaveFile() + ": checksum mismatch");
  put(good.substr(0, good.size() - 100));
  ExpectRefused(Options(), "state " + SaveFile() + ": truncated at byte");
  std::string version = good;
  version[8] = 7;
  put(version);
  ExpectRefused(Options(), "state " + SaveFile() +
                               ": format version 7; this taskfs reads "
                               "versions 1 to 2");
  put(good);
  ExpectRefused({"-o", "state=" + dir_ + ",page_size=8192"},
                "saved with page size 4096");
  ExpectSave(Options(), 1, 64);
}

TEST_F(StateTest, KillDuringSaveLeavesThePreviousSave) {
  constexpr std::size_t kPages = 1024;  // 4 MiB
  MakeSave(Options(",tasks=none"), 1, kPages);
  const std::uint64_t size = std::filesystem::file_size(SaveFile());
  // Each round's daemon kills itself (SIGKILL, as kill -9) once that many
  // bytes of its save are in the file: before the first record, inside the
  // header, inside a page, at a buffer's end, halfway, inside the last
  // record, and with every byte written but before the rename.
  for (const std::uint64_t kill_after :
       {std::uint64_t{1}, std::uint64_t{11}, std::uint64_t{100},
        std::uint64_t{5000}, std::uint64_t{1} << 20, size / 2, size - 4,
        size}) {
    SCOPED_TRACE(kill_after);
    ::setenv("TASKFS_TEST_SAVE_KILL_AFTER", std::to_string(kill_after).c_str(),
             1);
    Mount mount(Options());
    ::unsetenv("TASKFS_TEST_SAVE_KILL_AFTER");
    ASSERT_TRUE(mount.ok()) << mount.error();
    std::string got;
    ASSERT_EQ(ReadMem(mount / "t/mem", kData, kPages * kPage, &got), 0);
    ASSERT_TRUE(got == Pattern(kPages * kPage, 1));
    ASSERT_EQ(WriteMem(mount / "t/mem", kData, Pattern(kPages * kPage, 2)), 0);
    EXPECT_EQ(mount.StopWith(SIGTERM), -1) << mount.DaemonLog();
  }
  // A save that completes replaces it.
  MakeSave(Options(), 3, kPages);
  ExpectSave(Options(), 3, kPages);
}

TEST_F(StateTest, SavesAtTheMemoryLimit) {
  std::string bytes;
  {
    Mount mount(Options(",tasks=none,memory_limit=16M"));
    ASSERT_TRUE(mount.ok()) << mount.error();
    ASSERT_EQ(Err(::mkdir((mount / "t").c_str(), 0700)), 0);
    ASSERT_EQ(WriteFile(mount / "t/ctl", "allocate 0x10000 32M\n"), 0);
    // Page after page until the limit refuses one.
    int error = 0;
    for (std::size_t i = 0; error == 0; ++i) {
      const std::string page = Pattern(kPage, static_cast<unsigned>(i));
      error = WriteMem(mount / "t/mem", kData + i * kPage, page);
      if (error == 0) bytes += page;
    }
    ASSERT_EQ(error, ENOSPC);
    ASSERT_GT(bytes.size(), 8u << 20);
    EXPECT_EQ(mount.StopWith(SIGTERM), 0) << mount.DaemonLog();
  }
  Mount mount(Options(",memory_limit=16M"));
  ASSERT_TRUE(mount.ok()) << mount.error();
  std::string got;
  ASSERT_EQ(ReadMem(mount / "t/mem", kData, bytes.size(), &got), 0);
  EXPECT_TRUE(got == bytes);
}

TEST_F(StateTest, SaveIntervalSavesWhileMounted) {
  Mount mount(Options(",tasks=none,save_interval=1"));
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(Err(::mkdir((mount / "t").c_str(), 0700)), 0);
  ASSERT_EQ(WriteFile(mount / "t/ctl", "allocate 0x10000 16K\n"), 0);
  ASSERT_EQ(WriteMem(mount / "t/mem", kData, Pattern(4 * kPage, 3)), 0);
  // Another task changes all the while: saves hold it consistent, and it
  // goes on once each save ends.
  ASSERT_EQ(Err(::mkdir((mount / "w").c_str(), 0700)), 0);
  ASSERT_EQ(WriteFile(mount / "w/ctl", "allocate 0x10000 64K\n"), 0);
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  std::thread writer([&] {
    for (unsigned i = 0; !stop; ++i) {
      if (WriteMem(mount / "w/mem", kData + (i % 16) * kPage,
                   Pattern(kPage, i)) == 0) {
        ++writes;
      }
    }
  });
  // A save holding t appears while the mount is up.
  TempDir other;
  const std::string copy_dir = other.MakeDir("state");
  ASSERT_EQ(::chmod(copy_dir.c_str(), 0700), 0);
  bool loaded = false;
  ASSERT_TRUE(PollUntil(
      [&] {
        std::error_code ec;
        std::filesystem::copy_file(
            SaveFile(), copy_dir + "/tasks.state",
            std::filesystem::copy_options::overwrite_existing, ec);
        if (ec) return false;
        Mount second({"-o", "state=" + copy_dir});
        if (!second.ok()) return false;
        std::string got;
        loaded = ReadMem(second / "t/mem", kData, 4 * kPage, &got) == 0 &&
                 got == Pattern(4 * kPage, 3);
        return loaded;
      },
      std::chrono::seconds(20)));
  // Saves of both tasks go on, every second, while the writer runs: wait
  // for two of them (a loaded machine may space them out).
  const auto saves_of_both = [&] {
    const std::string log = mount.DaemonLog();
    std::size_t saves = 0;
    for (std::size_t at = log.find("saved 2 tasks"); at != std::string::npos;
         at = log.find("saved 2 tasks", at + 1)) {
      ++saves;
    }
    return saves;
  };
  const bool two_saves =
      PollUntil([&] { return saves_of_both() >= 2; }, std::chrono::seconds(20));
  stop = true;
  writer.join();
  EXPECT_TRUE(two_saves) << mount.DaemonLog();
  EXPECT_GT(writes.load(), 0);
  EXPECT_TRUE(IsMountpoint(mount.path()));
  EXPECT_EQ(mount.StopWith(SIGTERM), 0) << mount.DaemonLog();
}

}  // namespace
}  // namespace taskfs::testing
