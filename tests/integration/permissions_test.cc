// docs/reference.md §4 through a real mount: the layout with its exact modes
// and owners, the root's listing order, mkdir's name rules and errnos, the
// refusal of every other namespace change, chmod and chown; then, with
// allow_other and a second user (nobody), what each user may do to the other's
// tasks, including ctl's copy-from (docs/reference.md §6), which checks the
// caller's access to the source task as a path walk and open would.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "taskfs/ioctl.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

// Runs fn as uid:gid with no supplementary groups (RunAs of test_util.h).
int RunAs(uid_t uid, gid_t gid, const std::function<int()>& fn) {
  return RunAs(Identity{uid, gid, {}}, fn);
}

// The names in a directory, in readdir order, without "." and "..";
// or the errno of opendir in *error.
std::vector<std::string> List(const std::string& dir, int* error = nullptr) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (error != nullptr) *error = errno;
    return names;
  }
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  if (error != nullptr) *error = 0;
  return names;
}

// The value of `key: value` in a status text; "" if absent.
std::string StatusValue(const std::string& status, const std::string& key) {
  const std::string prefix = key + ": ";
  std::size_t at = 0;
  while (at < status.size()) {
    const std::size_t end = status.find('\n', at);
    const std::string line = status.substr(at, end - at);
    if (line.compare(0, prefix.size(), prefix) == 0) {
      return line.substr(prefix.size());
    }
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return "";
}

// Fills a page-aligned buffer with a byte pattern derived from seed.
void Fill(AlignedBuffer& b, unsigned seed) {
  for (std::size_t i = 0; i < b.size; ++i) {
    b.data[i] = static_cast<unsigned char>((i * 31 + seed) % 251);
  }
}

// Writes the pattern of seed at addr of mem: 0 or the errno.
int WritePattern(const std::string& mem, std::uint64_t addr, std::size_t n,
                 unsigned seed) {
  const int fd = ::open(mem.c_str(), O_RDWR);
  if (fd < 0) return errno;
  AlignedBuffer b(n);
  Fill(b, seed);
  const int error = Err(::pwrite(fd, b.data, n, static_cast<off_t>(addr)));
  ::close(fd);
  return error;
}

// Reads n bytes at addr of mem and compares them with the pattern of seed:
// 0, the errno, or kMismatch.
int CheckPattern(const std::string& mem, std::uint64_t addr, std::size_t n,
                 unsigned seed) {
  const int fd = ::open(mem.c_str(), O_RDONLY);
  if (fd < 0) return errno;
  AlignedBuffer got(n);
  AlignedBuffer want(n);
  Fill(want, seed);
  const ssize_t r = ::pread(fd, got.data, n, static_cast<off_t>(addr));
  const int error = Err(r);
  ::close(fd);
  if (error != 0) return error;
  if (static_cast<std::size_t>(r) != n) return kMismatch;
  return std::memcmp(got.data, want.data, n) == 0 ? 0 : kMismatch;
}

// ---------------------------------------------------------------------------
// Layout, names and the namespace, as the mounting user (root).

class LayoutTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(mount_.ok()) << mount_.error(); }

  int MkDir(const std::string& name) {
    return Err(::mkdir((mount_ / name).c_str(), 0700));
  }
  int RmDir(const std::string& name) {
    return Err(::rmdir((mount_ / name).c_str()));
  }

  Mount mount_{{"-o", "tasks=none"}};
};

void ExpectStat(const std::string& path, mode_t type, mode_t mode, uid_t uid,
                gid_t gid) {
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0)
      << path << ": " << std::strerror(errno);
  EXPECT_EQ(st.st_mode & S_IFMT, type) << path;
  EXPECT_EQ(st.st_mode & 07777, mode)
      << path << std::oct << " mode 0" << (st.st_mode & 07777);
  EXPECT_EQ(st.st_uid, uid) << path;
  EXPECT_EQ(st.st_gid, gid) << path;
}

TEST_F(LayoutTest, ModesAndOwnersAreTheSpecs) {
  const uid_t uid = ::getuid();
  const gid_t gid = ::getgid();
  // The mode given to mkdir does not matter: a task directory is 0700.
  ASSERT_EQ(Err(::mkdir((mount_ / "t").c_str(), 0755)), 0);
  ExpectStat(mount_.path(), S_IFDIR, 01777, uid, gid);
  ExpectStat(mount_ / "host_page_size", S_IFREG, 0444, uid, gid);
  ExpectStat(mount_ / "t", S_IFDIR, 0700, uid, gid);
  ExpectStat(mount_ / "t/mem", S_IFREG, 0600, uid, gid);
  ExpectStat(mount_ / "t/ctl", S_IFREG, 0600, uid, gid);
  ExpectStat(mount_ / "t/maps", S_IFREG, 0400, uid, gid);
  ExpectStat(mount_ / "t/status", S_IFREG, 0444, uid, gid);
  ExpectStat(mount_ / "t/errors", S_IFREG, 0400, uid, gid);
  EXPECT_EQ(ReadFile(mount_ / "host_page_size"), "4096\n");
  const std::vector<std::string> files = List(mount_ / "t");
  EXPECT_EQ(std::set<std::string>(files.begin(), files.end()),
            (std::set<std::string>{"mem", "ctl", "maps", "status", "errors"}));
  EXPECT_EQ(files.size(), 5u);
  const std::string status = ReadFile(mount_ / "t/status");
  EXPECT_EQ(StatusValue(status, "name"), "t");
  EXPECT_EQ(StatusValue(status, "owner"),
            std::to_string(uid) + ":" + std::to_string(gid));
  struct stat st;
  EXPECT_NE(::stat((mount_ / "t/other").c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(LayoutTest, RootListsHostPageSizeThenTasksInCreationOrder) {
  EXPECT_EQ(List(mount_.path()), std::vector<std::string>{"host_page_size"});
  for (const char* name : {"c", "a", "b", "d"})
    ASSERT_EQ(MkDir(name), 0) << name;
  ASSERT_EQ(RmDir("a"), 0);
  ASSERT_EQ(MkDir("e"), 0);
  ASSERT_EQ(MkDir("a"), 0);  // a new task: it comes last
  EXPECT_EQ(
      List(mount_.path()),
      (std::vector<std::string>{"host_page_size", "c", "b", "d", "e", "a"}));
}

TEST_F(LayoutTest, LongListingsKeepTheOrderAcrossReaddirRequests) {
  // 64-byte names: a few dozen fill one readdir request, so the listing
  // takes several requests and continues from their offsets.
  std::vector<std::string> want = {"host_page_size"};
  for (int i = 0; i < 150; ++i) {
    char prefix[16];
    std::snprintf(prefix, sizeof prefix, "%03d-", 149 - i);
    const std::string name = prefix + std::string(60, 'x');
    ASSERT_EQ(MkDir(name), 0) << name;
    if (i % 3 == 1) {
      ASSERT_EQ(RmDir(name), 0);
    } else {
      want.push_back(name);
    }
  }
  EXPECT_EQ(List(mount_.path()), want);
}

TEST_F(LayoutTest, MkdirNameRules) {
  const std::string max(64, 'n');
  for (const std::string& good : {std::string("A-Z_a.z-0.9"), std::string("a."),
                                  std::string("-"), std::string("_x"), max}) {
    EXPECT_EQ(MkDir(good), 0) << good;
    struct stat st;
    EXPECT_EQ(::stat((mount_ / good + "/mem").c_str(), &st), 0) << good;
  }
  // Each of these reaches the daemon, which must refuse it with EINVAL.
  for (const std::string& bad :
       {std::string(".hidden"), std::string("..x"),
        std::string("a\x01"
                    "b"),
        std::string("a b"), std::string("a*b"), std::string("a:b"),
        std::string("caf\xc3\xa9"), std::string("tab\t"), std::string(65, 'n'),
        std::string(255, 'n')}) {
    EXPECT_EQ(MkDir(bad), EINVAL) << "'" << bad << "'";
  }
  // FUSE passes names up to 1024 bytes to the daemon, past NAME_MAX too.
  EXPECT_EQ(MkDir(std::string(256, 'n')), EINVAL);
  EXPECT_EQ(MkDir(std::string(1024, 'n')), EINVAL);
  // Longer ones some kernels refuse before the daemon sees them.
  const int too_long = MkDir(std::string(1025, 'n'));
  EXPECT_TRUE(too_long == EINVAL || too_long == ENAMETOOLONG)
      << std::strerror(too_long);
  // host_page_size exists, so the kernel may answer EEXIST before asking
  // the daemon, which would say EINVAL; it never becomes a task.
  const int e = MkDir("host_page_size");
  EXPECT_TRUE(e == EEXIST || e == EINVAL) << std::strerror(e);
  EXPECT_EQ(ReadFile(mount_ / "host_page_size"), "4096\n");
  // Nothing but the good names became tasks.
  EXPECT_EQ(List(mount_.path()),
            (std::vector<std::string>{"host_page_size", "A-Z_a.z-0.9", "a.",
                                      "-", "_x", max}));
}

TEST_F(LayoutTest, ExistingNameIsEexist) {
  ASSERT_EQ(MkDir("t"), 0);
  EXPECT_EQ(MkDir("t"), EEXIST);
  EXPECT_EQ(List(mount_.path()),
            (std::vector<std::string>{"host_page_size", "t"}));
  ASSERT_EQ(RmDir("t"), 0);
  EXPECT_EQ(MkDir("t"), 0);  // a removed name is free again
}

TEST_F(LayoutTest, RmdirOfWhatIsNotATask) {
  EXPECT_EQ(RmDir("nothing"), ENOENT);
  EXPECT_EQ(RmDir("host_page_size"), ENOTDIR);
  ASSERT_EQ(MkDir("t"), 0);
  EXPECT_EQ(RmDir("t/mem"), ENOTDIR);
  EXPECT_EQ(RmDir("t"), 0);
  EXPECT_EQ(RmDir("t"), ENOENT);
}

TEST_F(LayoutTest, CreatingRemovingOrRenamingAnythingElseIsEperm) {
  ASSERT_EQ(MkDir("t"), 0);
  const std::string t = mount_ / "t";
  EXPECT_EQ(Err(::open((mount_ / "new").c_str(), O_CREAT | O_WRONLY, 0600)),
            EPERM);
  EXPECT_EQ(Err(::open((t + "/new").c_str(), O_CREAT | O_WRONLY, 0600)), EPERM);
  EXPECT_EQ(Err(::mkdir((t + "/sub").c_str(), 0700)), EPERM);
  EXPECT_EQ(Err(::mknod((mount_ / "fifo").c_str(), S_IFIFO | 0600, 0)), EPERM);
  EXPECT_EQ(Err(::mknod((t + "/node").c_str(), S_IFREG | 0600, 0)), EPERM);
  EXPECT_EQ(Err(::symlink("t", (mount_ / "link").c_str())), EPERM);
  EXPECT_EQ(Err(::symlink("mem", (t + "/link").c_str())), EPERM);
  EXPECT_EQ(Err(::link((t + "/mem").c_str(), (mount_ / "hard").c_str())),
            EPERM);
  EXPECT_EQ(Err(::link((t + "/mem").c_str(), (t + "/hard").c_str())), EPERM);
  EXPECT_EQ(Err(::unlink((t + "/mem").c_str())), EPERM);
  EXPECT_EQ(Err(::unlink((t + "/status").c_str())), EPERM);
  EXPECT_EQ(Err(::unlink((mount_ / "host_page_size").c_str())), EPERM);
  EXPECT_EQ(Err(::rename(t.c_str(), (mount_ / "u").c_str())), EPERM);
  EXPECT_EQ(Err(::rename((t + "/mem").c_str(), (t + "/mem2").c_str())), EPERM);
  EXPECT_EQ(Err(::rename((mount_ / "host_page_size").c_str(),
                         (mount_ / "hps").c_str())),
            EPERM);
  // Nothing changed.
  EXPECT_EQ(List(mount_.path()),
            (std::vector<std::string>{"host_page_size", "t"}));
  const std::vector<std::string> files = List(t);
  EXPECT_EQ(std::set<std::string>(files.begin(), files.end()),
            (std::set<std::string>{"mem", "ctl", "maps", "status", "errors"}));
}

TEST_F(LayoutTest, ChmodByTheOwnerChownByRoot) {
  ASSERT_EQ(MkDir("t"), 0);
  const std::string t = mount_ / "t";
  ASSERT_EQ(Err(::chmod(t.c_str(), 0750)), 0);
  ASSERT_EQ(Err(::chmod((t + "/mem").c_str(), 0640)), 0);
  ASSERT_EQ(Err(::chmod((t + "/status").c_str(), 0400)), 0);
  ExpectStat(t, S_IFDIR, 0750, 0, 0);
  ExpectStat(t + "/mem", S_IFREG, 0640, 0, 0);
  ExpectStat(t + "/status", S_IFREG, 0400, 0, 0);
  ExpectStat(t + "/ctl", S_IFREG, 0600, 0, 0);  // each file has its own mode
  ASSERT_EQ(Err(::chown(t.c_str(), 65534, 65534)), 0);
  ExpectStat(t, S_IFDIR, 0750, 65534, 65534);  // the mode stays
  EXPECT_EQ(StatusValue(ReadFile(t + "/status"), "owner"), "65534:65534");
  // Root may still chmod and chown what it no longer owns.
  ASSERT_EQ(Err(::chmod(t.c_str(), 0700)), 0);
  ExpectStat(t, S_IFDIR, 0700, 65534, 65534);
  ASSERT_EQ(Err(::chown(t.c_str(), 0, static_cast<gid_t>(-1))), 0);
  ExpectStat(t, S_IFDIR, 0700, 0, 65534);
  EXPECT_EQ(StatusValue(ReadFile(t + "/status"), "owner"), "0:65534");
}

TEST(LayoutMaxTasksTest, MaxTasksReachedIsEnospc) {
  Mount mount({"-o", "tasks=none,max_tasks=3"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  for (const char* name : {"a", "b", "c"}) {
    ASSERT_EQ(Err(::mkdir((mount / name).c_str(), 0700)), 0) << name;
  }
  EXPECT_EQ(Err(::mkdir((mount / "d").c_str(), 0700)), ENOSPC);
  // ctl's fork creates a task too.
  EXPECT_EQ(WriteFile(mount / "a/ctl", "fork d\n"), ENOSPC);
  ASSERT_EQ(Err(::rmdir((mount / "b").c_str())), 0);
  EXPECT_EQ(Err(::mkdir((mount / "d").c_str(), 0700)), 0);
  EXPECT_EQ(Err(::mkdir((mount / "e").c_str(), 0700)), ENOSPC);
  EXPECT_EQ(List(mount.path()),
            (std::vector<std::string>{"host_page_size", "a", "c", "d"}));
}

// ---------------------------------------------------------------------------
// Two users: root (the daemon's user) and nobody, with allow_other.

class PermissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mount_.ok()) << mount_.error();
    const passwd* pw = ::getpwnam("nobody");
    if (pw == nullptr) GTEST_SKIP() << "no user nobody";
    ASSERT_NE(pw->pw_uid, 0u);
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
    // Root's task, with data at 0x10000.
    ASSERT_EQ(Err(::mkdir((mount_ / "mine").c_str(), 0700)), 0);
    ASSERT_EQ(WriteFile(mount_ / "mine/ctl", "allocate 0x10000 8K\n"), 0);
    ASSERT_EQ(WritePattern(mount_ / "mine/mem", 0x10000, 2 * kPage, 1), 0);
  }

  // Runs fn as nobody.
  int AsNobody(const std::function<int()>& fn) { return RunAs(uid_, gid_, fn); }

  // The task id in a task's status.
  std::uint64_t TaskId(const std::string& task) {
    return std::strtoull(
        StatusValue(ReadFile(mount_ / (task + "/status")), "id").c_str(),
        nullptr, 10);
  }

  // Makes nobody's task "its" with 16 KiB at 0x40000, as nobody.
  void MakeNobodysTask() {
    const std::string dir = mount_ / "its";
    const std::string ctl = mount_ / "its/ctl";
    ASSERT_EQ(AsNobody([&] {
                const int e = Err(::mkdir(dir.c_str(), 0700));
                return e != 0 ? e : WriteFile(ctl, "allocate 0x40000 16K\n");
              }),
              0);
  }

  Mount mount_{{"-o", "tasks=none,allow_other"}};
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

TEST_F(PermissionTest, NobodyListsTheRootButCannotReachRootsTask) {
  const std::string root = mount_.path();
  const std::string mine = mount_ / "mine";
  EXPECT_EQ(AsNobody([&] {
              int error = 0;
              const std::vector<std::string> names = List(root, &error);
              if (error != 0) return error;
              return names == std::vector<std::string>{"host_page_size", "mine"}
                         ? 0
                         : kMismatch;
            }),
            0);
  EXPECT_EQ(AsNobody([&] {
              return ReadFile(root + "/host_page_size") == "4096\n" ? 0
                                                                    : kMismatch;
            }),
            0);
  // stat of the directory itself needs only search on the root.
  EXPECT_EQ(AsNobody([&] {
              struct stat st;
              return Err(::stat(mine.c_str(), &st));
            }),
            0);
  // Everything inside needs search on the 0700 directory.
  for (const char* file : {"/mem", "/ctl", "/maps", "/status"}) {
    const std::string path = mine + file;
    EXPECT_EQ(AsNobody([&] { return Err(::open(path.c_str(), O_RDONLY)); }),
              EACCES)
        << file;
  }
  EXPECT_EQ(AsNobody([&] {
              int error = 0;
              List(mine, &error);
              return error;
            }),
            EACCES);
  // Not the owner: the sticky root keeps nobody from removing it, and only
  // the owner may chmod, only root chown.
  EXPECT_EQ(AsNobody([&] { return Err(::rmdir(mine.c_str())); }), EPERM);
  EXPECT_EQ(AsNobody([&] { return Err(::chmod(mine.c_str(), 0777)); }), EPERM);
  EXPECT_EQ(AsNobody([&] { return Err(::chown(mine.c_str(), uid_, gid_)); }),
            EPERM);
  // Nor may nobody change the root.
  EXPECT_EQ(AsNobody([&] { return Err(::chmod(root.c_str(), 0777)); }), EPERM);
  // Root's task is untouched.
  ExpectStat(mine, S_IFDIR, 0700, 0, 0);
  EXPECT_EQ(CheckPattern(mine + "/mem", 0x10000, 2 * kPage, 1), 0);
}

TEST_F(PermissionTest, NobodyCannotOpenFilesRootOpenedUpToOthers) {
  // Search on the directory alone is not enough: each file has its mode.
  const std::string mine = mount_ / "mine";
  ASSERT_EQ(Err(::chmod(mine.c_str(), 0711)), 0);
  EXPECT_EQ(
      AsNobody([&] { return Err(::open((mine + "/mem").c_str(), O_RDONLY)); }),
      EACCES);
  EXPECT_EQ(
      AsNobody([&] { return Err(::open((mine + "/maps").c_str(), O_RDONLY)); }),
      EACCES);
  // status is 0444: readable by everyone who can reach it.
  EXPECT_EQ(AsNobody([&] {
              return StatusValue(ReadFile(mine + "/status"), "name") == "mine"
                         ? 0
                         : kMismatch;
            }),
            0);
  EXPECT_EQ(AsNobody([&] {
              return Err(::open((mine + "/status").c_str(), O_WRONLY));
            }),
            EACCES);
  EXPECT_EQ(AsNobody([&] { return WriteFile(mine + "/ctl", "fork x\n"); }),
            EACCES);
}

TEST_F(PermissionTest, NobodyOwnsAndFullyUsesTheTaskItCreates) {
  MakeNobodysTask();
  const std::string its = mount_ / "its";
  ExpectStat(its, S_IFDIR, 0700, uid_, gid_);
  ExpectStat(its + "/mem", S_IFREG, 0600, uid_, gid_);
  ExpectStat(its + "/ctl", S_IFREG, 0600, uid_, gid_);
  ExpectStat(its + "/maps", S_IFREG, 0400, uid_, gid_);
  ExpectStat(its + "/status", S_IFREG, 0444, uid_, gid_);
  EXPECT_EQ(StatusValue(ReadFile(its + "/status"), "owner"),
            std::to_string(uid_) + ":" + std::to_string(gid_));
  // mem: writes, reads and a changing ioctl; ctl; maps.
  EXPECT_EQ(AsNobody([&] {
              int e = WritePattern(its + "/mem", 0x40000, 2 * kPage, 7);
              if (e != 0) return e;
              const int fd = ::open((its + "/mem").c_str(), O_RDWR);
              if (fd < 0) return errno;
              taskfs_vm_copy c{0x40000, 2 * kPage, 0x42000};
              e = Err(::ioctl(fd, TASKFS_IOC_VM_COPY, &c));
              ::close(fd);
              if (e != 0) return e;
              e = CheckPattern(its + "/mem", 0x42000, 2 * kPage, 7);
              if (e != 0) return e;
              e = WriteFile(its + "/ctl", "protect 0x40000 4K r--\n");
              if (e != 0) return e;
              return ReadFile(its + "/maps").find(" r--/rwx copy\n") !=
                             std::string::npos
                         ? 0
                         : kMismatch;
            }),
            0);
  // The owner may chmod, even to lock itself out, and back.
  EXPECT_EQ(AsNobody([&] {
              int e = Err(::chmod((its + "/mem").c_str(), 0400));
              if (e != 0) return e;
              if (Err(::open((its + "/mem").c_str(), O_RDWR)) != EACCES) {
                return kMismatch;
              }
              e = Err(::chmod((its + "/mem").c_str(), 0600));
              return e != 0 ? e : Err(::chmod(its.c_str(), 0755));
            }),
            0);
  ExpectStat(its, S_IFDIR, 0755, uid_, gid_);
  ExpectStat(its + "/mem", S_IFREG, 0600, uid_, gid_);
  // A task nobody forks is nobody's too.
  EXPECT_EQ(AsNobody([&] { return WriteFile(its + "/ctl", "fork kid\n"); }), 0);
  ExpectStat(mount_ / "kid", S_IFDIR, 0700, uid_, gid_);
  ExpectStat(mount_ / "kid/mem", S_IFREG, 0600, uid_, gid_);
  EXPECT_EQ(AsNobody([&] {
              return CheckPattern(mount_ / "kid/mem", 0x42000, 2 * kPage, 7);
            }),
            0);
  EXPECT_EQ(AsNobody([&] { return Err(::rmdir((mount_ / "kid").c_str())); }),
            0);
  // But may not give it away; and may remove it.
  EXPECT_EQ(AsNobody([&] { return Err(::chown(its.c_str(), 0, 0)); }), EPERM);
  EXPECT_EQ(AsNobody([&] { return Err(::rmdir(its.c_str())); }), 0);
  EXPECT_EQ(List(mount_.path()),
            (std::vector<std::string>{"host_page_size", "mine"}));
}

TEST_F(PermissionTest, CopyFromNeedsSearchAndReadOnTheSourceTask) {
  MakeNobodysTask();
  const std::string mine = mount_ / "mine";
  const std::string its = mount_ / "its";
  const std::string copy = "copy-from mine 0x10000 8K 0x40000\n";
  auto nobody_copies = [&] {
    return AsNobody([&] { return WriteFile(its + "/ctl", copy); });
  };
  // 0700 / 0600: no access.
  EXPECT_EQ(nobody_copies(), EACCES);
  // Read on mem without search on the directory: still none.
  ASSERT_EQ(Err(::chmod((mine + "/mem").c_str(), 0644)), 0);
  EXPECT_EQ(nobody_copies(), EACCES);
  // Search without read: none.
  ASSERT_EQ(Err(::chmod(mine.c_str(), 0711)), 0);
  ASSERT_EQ(Err(::chmod((mine + "/mem").c_str(), 0600)), 0);
  EXPECT_EQ(nobody_copies(), EACCES);
  // The refused copies changed nothing in nobody's task.
  {
    AlignedBuffer zero(2 * kPage);
    AlignedBuffer got(2 * kPage);
    const int fd = ::open((its + "/mem").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pread(fd, got.data, got.size, 0x40000),
              static_cast<ssize_t>(got.size));
    ::close(fd);
    EXPECT_EQ(std::memcmp(got.data, zero.data, got.size), 0);
  }
  // Search and read: the copy works, and nobody reads the data it copied.
  ASSERT_EQ(Err(::chmod((mine + "/mem").c_str(), 0644)), 0);
  EXPECT_EQ(nobody_copies(), 0);
  EXPECT_EQ(AsNobody([&] {
              return CheckPattern(its + "/mem", 0x40000, 2 * kPage, 1);
            }),
            0);
  // destroy needs write as well: refused, and the source stays.
  EXPECT_EQ(AsNobody([&] {
              return WriteFile(its + "/ctl",
                               "copy-from mine 0x10000 4K 0x100000 alloc "
                               "destroy\n");
            }),
            EACCES);
  EXPECT_EQ(CheckPattern(mine + "/mem", 0x10000, 2 * kPage, 1), 0);
  EXPECT_EQ(ReadFile(its + "/maps").find("0000000000100000"),
            std::string::npos);
  // With write on mem, destroy works: the source range is gone.
  ASSERT_EQ(Err(::chmod((mine + "/mem").c_str(), 0666)), 0);
  EXPECT_EQ(AsNobody([&] {
              return WriteFile(its + "/ctl",
                               "copy-from mine 0x10000 4K 0x100000 alloc "
                               "destroy\n");
            }),
            0);
  EXPECT_EQ(CheckPattern(mine + "/mem", 0x10000, kPage, 1), EFAULT);
  EXPECT_EQ(CheckPattern(its + "/mem", 0x100000, kPage, 1), 0);
}

// remap … copy by a user who may read a task but not change it yields no
// more than vm_read would: a page of the source without read stays out of
// reach (in its own copy the caller could raise the protection up to the
// maximum). share needs write access, as destroy does.
TEST_F(PermissionTest, RemapChecksAccessAndKeepsUnreadablePagesOutOfReach) {
  MakeNobodysTask();
  const std::string mine = mount_ / "mine";
  const std::string its = mount_ / "its";
  ASSERT_EQ(Err(::chmod(mine.c_str(), 0711)), 0);
  ASSERT_EQ(Err(::chmod((mine + "/mem").c_str(), 0644)), 0);
  // The second page of root's data: no access now, read still allowed by
  // the maximum.
  ASSERT_EQ(WriteFile(mine + "/ctl", "protect 0x11000 4K ---\n"), 0);
  auto nobody = [&](const std::string& command) {
    return AsNobody([&] { return WriteFile(its + "/ctl", command); });
  };
  EXPECT_EQ(nobody("remap mine 0x10000 8K anywhere copy\n"), EACCES);
  EXPECT_EQ(nobody("remap mine 0x11000 4K 0x200000 copy\n"), EACCES);
  EXPECT_EQ(nobody("remap mine 0x10000 4K 0x100000 share\n"), EACCES);
  // Nothing was mapped by the refusals.
  EXPECT_EQ(ReadFile(its + "/maps").find("0000000000100000"),
            std::string::npos);
  EXPECT_EQ(ReadFile(its + "/maps").find("0000000000200000"),
            std::string::npos);
  // The readable page copies, and nobody reads it.
  EXPECT_EQ(nobody("remap mine 0x10000 4K 0x100000 copy\n"), 0);
  EXPECT_EQ(
      AsNobody([&] { return CheckPattern(its + "/mem", 0x100000, kPage, 1); }),
      0);
  // With write on mem (vm_protect on the source is then nobody's to make),
  // the unreadable page may be copied and shared too.
  ASSERT_EQ(Err(::chmod((mine + "/mem").c_str(), 0666)), 0);
  EXPECT_EQ(nobody("remap mine 0x10000 8K 0x200000 copy\n"), 0);
  EXPECT_EQ(nobody("remap mine 0x10000 4K 0x300000 share\n"), 0);
  // Root, the owner, remaps its own unreadable page.
  EXPECT_EQ(WriteFile(mine + "/ctl", "remap mine 0x11000 4K 0x400000 copy\n"),
            0);
}

TEST_F(PermissionTest, MapCopyIoctlChecksAccessLikeCopyFrom) {
  MakeNobodysTask();
  const std::string mine = mount_ / "mine";
  const std::string its_mem = mount_ / "its/mem";
  const std::uint64_t mine_id = TaskId("mine");
  ASSERT_NE(mine_id, 0u);
  auto nobody_map_copies = [&](std::uint32_t flags) {
    return AsNobody([&] {
      const int fd = ::open(its_mem.c_str(), O_RDWR);
      if (fd < 0) return errno;
      taskfs_vm_map_copy m{mine_id,
                           0x10000,
                           kPage,
                           0x200000,
                           TASKFS_VM_MAP_COPY_DST_ALLOC | flags,
                           0};
      const int e = Err(::ioctl(fd, TASKFS_IOC_VM_MAP_COPY, &m));
      ::close(fd);
      return e;
    });
  };
  EXPECT_EQ(nobody_map_copies(0), EACCES);
  ASSERT_EQ(Err(::chmod(mine.c_str(), 0711)), 0);
  ASSERT_EQ(Err(::chmod((mine + "/mem").c_str(), 0644)), 0);
  EXPECT_EQ(nobody_map_copies(TASKFS_VM_MAP_COPY_SRC_DESTROY), EACCES);
  EXPECT_EQ(CheckPattern(mine + "/mem", 0x10000, 2 * kPage, 1), 0);
  EXPECT_EQ(nobody_map_copies(0), 0);
  EXPECT_EQ(CheckPattern(its_mem, 0x200000, kPage, 1), 0);
}

TEST_F(PermissionTest, GroupClassDecidesForGroupMembers) {
  MakeNobodysTask();
  const std::string mine = mount_ / "mine";
  const std::string its = mount_ / "its";
  // Root's task in nobody's group: the group bits apply to nobody, not the
  // other bits, as in any Unix permission check.
  ASSERT_EQ(Err(::chown(mine.c_str(), 0, gid_)), 0);
  ASSERT_EQ(Err(::chmod(mine.c_str(), 0710)), 0);
  ASSERT_EQ(Err(::chmod((mine + "/mem").c_str(), 0604)), 0);
  const std::string copy = "copy-from mine 0x10000 8K 0x40000\n";
  EXPECT_EQ(AsNobody([&] { return WriteFile(its + "/ctl", copy); }), EACCES);
  EXPECT_EQ(
      AsNobody([&] { return Err(::open((mine + "/mem").c_str(), O_RDONLY)); }),
      EACCES);
  ASSERT_EQ(Err(::chmod((mine + "/mem").c_str(), 0640)), 0);
  EXPECT_EQ(AsNobody([&] { return WriteFile(its + "/ctl", copy); }), 0);
  EXPECT_EQ(AsNobody([&] {
              return CheckPattern(mine + "/mem", 0x10000, 2 * kPage, 1);
            }),
            0);
  EXPECT_EQ(CheckPattern(its + "/mem", 0x40000, 2 * kPage, 1), 0);
}

TEST_F(PermissionTest, RootDoesEverythingToNobodysTask) {
  MakeNobodysTask();
  const std::string its = mount_ / "its";
  ASSERT_EQ(AsNobody([&] {
              return WritePattern(its + "/mem", 0x40000, 4 * kPage, 9);
            }),
            0);
  // Root reads and writes nobody's 0600 mem and runs its ctl.
  EXPECT_EQ(CheckPattern(its + "/mem", 0x40000, 4 * kPage, 9), 0);
  EXPECT_EQ(WritePattern(its + "/mem", 0x40000, kPage, 10), 0);
  EXPECT_EQ(WriteFile(its + "/ctl", "allocate 0x80000 4K\n"), 0);
  // Root copies from nobody's task into its own, even with destroy.
  EXPECT_EQ(WriteFile(mount_ / "mine/ctl",
                      "copy-from its 0x41000 12K 0x60000 alloc destroy\n"),
            0);
  EXPECT_EQ(CheckPattern(its + "/mem", 0x41000, kPage, 9), EFAULT);
  // chmod and chown what it does not own.
  EXPECT_EQ(Err(::chmod(its.c_str(), 0500)), 0);
  ExpectStat(its, S_IFDIR, 0500, uid_, gid_);
  EXPECT_EQ(Err(::chown(its.c_str(), 0, 0)), 0);
  ExpectStat(its, S_IFDIR, 0500, 0, 0);
  EXPECT_EQ(
      AsNobody([&] { return Err(::open((its + "/mem").c_str(), O_RDONLY)); }),
      EACCES);
  EXPECT_EQ(Err(::chown(its.c_str(), uid_, gid_)), 0);
  // And removes it, though nobody owns it.
  EXPECT_EQ(Err(::rmdir(its.c_str())), 0);
  EXPECT_EQ(List(mount_.path()),
            (std::vector<std::string>{"host_page_size", "mine"}));
}

TEST_F(PermissionTest, ChownOfAnyPathTakesTheWholeTaskAtOnce) {
  // The owner is the task's: chown of one of its files changes it for all
  // of them at once, in what stat says and so in what the kernel's
  // permission checks (made on those attributes) allow.
  MakeNobodysTask();
  const std::string its = mount_ / "its";
  // nobody uses its task, so the kernel holds its attributes.
  ASSERT_EQ(AsNobody([&] {
              const int e = WritePattern(its + "/mem", 0x40000, kPage, 3);
              return e != 0 ? e
                            : Err(::open((its + "/maps").c_str(), O_RDONLY));
            }),
            0);
  ASSERT_EQ(Err(::chown((its + "/status").c_str(), 0, 0)), 0);
  EXPECT_EQ(StatusValue(ReadFile(its + "/status"), "owner"), "0:0");
  for (const char* path : {"", "/mem", "/ctl", "/maps", "/status"}) {
    struct stat st;
    ASSERT_EQ(::stat((its + path).c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_uid, 0u) << "its" << path;
    EXPECT_EQ(st.st_gid, 0u) << "its" << path;
  }
  // The task is root's now, 0700: nobody can no longer reach it.
  for (const char* file : {"/maps", "/mem"}) {
    EXPECT_EQ(
        AsNobody([&] { return Err(::open((its + file).c_str(), O_RDONLY)); }),
        EACCES)
        << file;
  }
  EXPECT_EQ(AsNobody([&] { return WriteFile(its + "/ctl", "fork x\n"); }),
            EACCES);
  EXPECT_EQ(List(mount_.path()),
            (std::vector<std::string>{"host_page_size", "mine", "its"}));
}

TEST_F(PermissionTest, NobodyCannotRemoveRootsTaskEvenWithOpenModes) {
  const std::string mine = mount_ / "mine";
  ASSERT_EQ(Err(::chmod(mine.c_str(), 0777)), 0);
  EXPECT_EQ(AsNobody([&] { return Err(::rmdir(mine.c_str())); }), EPERM);
  EXPECT_EQ(AsNobody([&] {
              return Err(::rename(mine.c_str(), (mine + "2").c_str()));
            }),
            EPERM);
  // A task nobody makes cannot take a name root's task has.
  EXPECT_EQ(AsNobody([&] { return Err(::mkdir(mine.c_str(), 0700)); }), EEXIST);
  ExpectStat(mine, S_IFDIR, 0777, 0, 0);
}

}  // namespace
}  // namespace taskfs::testing
