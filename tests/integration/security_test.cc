// docs/reference.md §3-§4 security: default_permissions is always on, and a
// non-root user mounts through fusermount3 and uses the mount, which root and
// other users cannot reach without allow_other.
//
// What each permission grants on every path, for each class of caller, and
// that no permission turns into another, is permission_model_test.cc's
// table; permissions_test.cc covers the layout and the chmod/chown rules.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "taskfs/ioctl.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

// The users. uids need no entry in /etc/passwd: a child process simply
// becomes them.
const Identity kNobody{65534, 65534, {}};
const Identity kOther{40002, 40002, {}};

// --- default_permissions ----------------------------------------------------

// The super options of the mount at path in /proc/self/mountinfo.
std::string SuperOptions(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string f;
    std::vector<std::string> v;
    while (fields >> f) v.push_back(f);
    if (v.size() > 4 && v[4] == path) return v.back();
  }
  return "";
}

bool HasOption(const std::string& options, const std::string& option) {
  return ("," + options + ",").find("," + option + ",") != std::string::npos;
}

TEST(SecurityMountTest, DefaultPermissionsIsOnWithoutBeingAsked) {
  Mount mount({"-o", "tasks=none,allow_other"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_TRUE(HasOption(SuperOptions(mount.path()), "default_permissions"))
      << SuperOptions(mount.path());
  EXPECT_TRUE(HasOption(SuperOptions(mount.path()), "allow_other"));
}

TEST(SecurityMountTest, AskingForDefaultPermissionsToo) {
  Mount mount({"-o", "tasks=none,default_permissions"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_TRUE(HasOption(SuperOptions(mount.path()), "default_permissions"));
}

// --- a mount by a user other than root --------------------------------------

// nobody mounts through fusermount3, which opens /dev/fuse as the user. A
// stock Debian gives /dev/fuse mode 0666 (udev); where it is 0600 (a
// machine without udev) the suite gives
// its own process a private mount namespace with a 0666 node of the same
// device on /dev/fuse, so the host is not touched and every mount of the
// suite lives and dies with this process.
//
// The daemon must be executable by nobody. If the build tree is not
// reachable for nobody (e.g. under /root), a copy in a 0755 temporary
// directory is run in the background instead of the fixture's daemon.
class SecurityNonRootMountTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const bool can_open =
        RunAs(kNobody, [] { return Err(::open("/dev/fuse", O_RDWR)); }) == 0;
    if (!can_open) {
      dev_ = new TempDir;
      const std::string node = *dev_ / "fuse";
      if (::unshare(CLONE_NEWNS) != 0 ||
          ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          ::mknod(node.c_str(), S_IFCHR | 0666, ::makedev(10, 229)) != 0 ||
          ::chmod(node.c_str(), 0666) != 0 ||
          ::mount(node.c_str(), "/dev/fuse", nullptr, MS_BIND, nullptr) != 0) {
        setup_error_ =
            std::string("private /dev/fuse: ") + std::strerror(errno);
        return;
      }
    }
    const std::string daemon = DaemonPath();
    copied_ = std::getenv("TASKFS_TEST_COPY_DAEMON") != nullptr ||
              RunAs(kNobody,
                    [&] { return Err(::access(daemon.c_str(), X_OK)); }) != 0;
    if (copied_) {
      bin_ = new TempDir;
      ::chmod(bin_->path().c_str(), 0755);
      std::error_code ec;
      std::filesystem::copy_file(daemon, *bin_ / "taskfs", ec);
      ::chmod((*bin_ / "taskfs").c_str(), 0755);
      if (ec) setup_error_ = "copying the daemon: " + ec.message();
    }
  }
  static void TearDownTestSuite() {
    delete bin_;
    bin_ = nullptr;
    if (dev_ != nullptr) {
      ::umount2("/dev/fuse", MNT_DETACH);
      delete dev_;
      dev_ = nullptr;
    }
  }
  void SetUp() override { ASSERT_EQ(setup_error_, ""); }

  // A mount of taskfs by nobody, through the fixture (daemon in the
  // foreground, reaped) or, with a copied daemon, in the background.
  class NobodyMount {
   public:
    explicit NobodyMount(const std::string& options) {
      if (!copied_) {
        fixture_ =
            std::make_unique<Mount>(std::vector<std::string>{"-o", options},
                                    MountAs{"", kNobody.uid, kNobody.gid});
        ok_ = fixture_->ok();
        error_ = fixture_->error();
        path_ = fixture_->path();
        return;
      }
      char dir[] = "/tmp/taskfs-mnt-XXXXXX";
      if (::mkdtemp(dir) == nullptr) return;
      path_ = dir;
      ::chmod(dir, 0755);
      ::chown(dir, kNobody.uid, kNobody.gid);
      // Without -f the daemon returns once mounted, its child serving.
      const RunResult r =
          RunCommand({*bin_ / "taskfs", "-o", options, path_},
                     std::chrono::seconds(20), {}, kNobody.uid, kNobody.gid);
      ok_ = r.exit_code == 0 && IsMountpoint(path_);
      error_ = r.err;
    }
    ~NobodyMount() {
      if (fixture_ != nullptr) return;
      if (IsMountpoint(path_)) {
        RunCommand({"fusermount3", "-u", "-z", path_},
                   std::chrono::seconds(20));
      }
      if (IsMountpoint(path_)) {
        RunCommand({"umount", "-l", path_}, std::chrono::seconds(20));
      }
      if (!path_.empty()) ::rmdir(path_.c_str());
    }
    bool ok() const { return ok_; }
    const std::string& error() const { return error_; }
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& rel) const {
      return path_ + "/" + rel;
    }
    Mount* fixture() { return fixture_.get(); }

   private:
    std::unique_ptr<Mount> fixture_;
    bool ok_ = false;
    std::string error_;
    std::string path_;
  };

  static TempDir* dev_;
  static TempDir* bin_;
  static bool copied_;
  static std::string setup_error_;
};

TempDir* SecurityNonRootMountTest::dev_ = nullptr;
TempDir* SecurityNonRootMountTest::bin_ = nullptr;
bool SecurityNonRootMountTest::copied_ = false;
std::string SecurityNonRootMountTest::setup_error_;

TEST_F(SecurityNonRootMountTest, NobodyMountsThroughFusermount3AndUsesIt) {
  NobodyMount mount("tasks=none");
  ASSERT_TRUE(mount.ok()) << mount.error();
  const std::string options = SuperOptions(mount.path());
  EXPECT_TRUE(HasOption(options, "user_id=65534")) << options;
  EXPECT_TRUE(HasOption(options, "default_permissions")) << options;
  EXPECT_FALSE(HasOption(options, "allow_other")) << options;
  const std::string root = mount.path();
  // Every step as nobody; the step number says which failed.
  EXPECT_EQ(
      RunAs(kNobody,
            [&]() -> int {
              struct stat st;
              if (::stat(root.c_str(), &st) != 0) return 1;
              if (st.st_uid != kNobody.uid || (st.st_mode & 07777) != 01777) {
                return 2;
              }
              if (::mkdir((root + "/t").c_str(), 0700) != 0) return 3;
              if (::stat((root + "/t/mem").c_str(), &st) != 0 ||
                  st.st_uid != kNobody.uid) {
                return 4;
              }
              if (WriteFile(root + "/t/ctl", "allocate 0x10000 16K\n") != 0) {
                return 5;
              }
              if (WriteMem(root + "/t/mem", 0x10000, Pattern(kPage, 3)) != 0) {
                return 6;
              }
              const int fd = ::open((root + "/t/mem").c_str(), O_RDWR);
              taskfs_vm_copy c{0x10000, kPage, 0x11000};
              if (fd < 0 || ::ioctl(fd, TASKFS_IOC_VM_COPY, &c) != 0) return 7;
              ::close(fd);
              std::string data;
              if (ReadMem(root + "/t/mem", 0x11000, kPage, &data) != 0 ||
                  data != Pattern(kPage, 3)) {
                return 8;
              }
              if (WriteFile(root + "/t/ctl", "fork kid\n") != 0) return 9;
              if (WriteFile(root + "/kid/ctl",
                            "copy-from t 0x10000 4K 0x40000 alloc\n") != 0) {
                return 10;
              }
              if (ReadMem(root + "/kid/mem", 0x40000, kPage, &data) != 0 ||
                  data != Pattern(kPage, 3)) {
                return 11;
              }
              if (ReadFile(root + "/kid/maps").find("0000000000040000-") ==
                  std::string::npos) {
                return 12;
              }
              if (::rmdir((root + "/kid").c_str()) != 0) return 13;
              if (::rmdir((root + "/t").c_str()) != 0) return 14;
              return 0;
            }),
      0);
}

// Without allow_other only the mounting user reaches the mount: root too is
// refused (the kernel's rule for FUSE), and so is any other user.
TEST_F(SecurityNonRootMountTest, RootAndOthersAreShutOutWithoutAllowOther) {
  NobodyMount mount("tasks=none");
  ASSERT_TRUE(mount.ok()) << mount.error();
  const std::string root = mount.path();
  ASSERT_EQ(RunAs(kNobody,
                  [&] {
                    const int e = Err(::mkdir((root + "/t").c_str(), 0700));
                    return e != 0 ? e
                                  : WriteFile(root + "/t/ctl",
                                              "allocate 0x10000 4K\n");
                  }),
            0);
  struct stat st;
  EXPECT_EQ(Err(::stat(root.c_str(), &st)), EACCES);
  EXPECT_EQ(Err(::stat((root + "/t/mem").c_str(), &st)), EACCES);
  EXPECT_EQ(Err(::open((root + "/t/mem").c_str(), O_RDONLY)), EACCES);
  EXPECT_EQ(Err(::mkdir((root + "/mine").c_str(), 0700)), EACCES);
  EXPECT_EQ(Err(::rmdir((root + "/t").c_str())), EACCES);
  EXPECT_EQ(RunAs(kOther,
                  [&] {
                    struct stat s;
                    return Err(::stat(root.c_str(), &s));
                  }),
            EACCES);
  EXPECT_EQ(
      RunAs(kOther, [&] { return WriteFile(root + "/t/ctl", "fork x\n"); }),
      EACCES);
  // nobody's task is untouched and still works.
  EXPECT_EQ(RunAs(kNobody,
                  [&] {
                    if (ReadFile(root + "/t/maps") !=
                        "0000000000010000-0000000000011000 rw-/rwx copy\n") {
                      return kMismatch;
                    }
                    return WriteMem(root + "/t/mem", 0x10000,
                                    Pattern(kPage, 4));
                  }),
            0);
}

// default_permissions holds the mounting user to the modes as well, and only
// root may chown (root, here, cannot even reach the mount).
TEST_F(SecurityNonRootMountTest, ModesBindTheMountingUserToo) {
  NobodyMount mount("tasks=none");
  ASSERT_TRUE(mount.ok()) << mount.error();
  const std::string t = mount / "t";
  EXPECT_EQ(RunAs(kNobody,
                  [&]() -> int {
                    if (::mkdir(t.c_str(), 0700) != 0) return 1;
                    if (::chmod((t + "/mem").c_str(), 0) != 0) return 2;
                    if (Err(::open((t + "/mem").c_str(), O_RDONLY)) != EACCES) {
                      return 3;
                    }
                    if (::chmod((t + "/mem").c_str(), 0400) != 0) return 4;
                    if (Err(::open((t + "/mem").c_str(), O_RDWR)) != EACCES)
                      return 5;
                    if (::chmod((t + "/ctl").c_str(), 0400) != 0) return 6;
                    if (WriteFile(t + "/ctl", "allocate 0 4K\n") != EACCES)
                      return 7;
                    if (::chmod(t.c_str(), 0600) != 0) return 8;
                    struct stat st;
                    if (Err(::stat((t + "/status").c_str(), &st)) != EACCES)
                      return 9;
                    if (::chmod(t.c_str(), 0700) != 0) return 10;
                    if (Err(::chown(t.c_str(), 40002, 40002)) != EPERM)
                      return 11;
                    return 0;
                  }),
            0);
}

// Only the mounting user (or root) may unmount; then the daemon exits 0.
TEST_F(SecurityNonRootMountTest, OnlyTheMountingUserUnmounts) {
  NobodyMount mount("tasks=none");
  ASSERT_TRUE(mount.ok()) << mount.error();
  const RunResult other =
      RunCommand({"fusermount3", "-u", mount.path()}, std::chrono::seconds(20),
                 {}, kOther.uid, kOther.gid);
  EXPECT_NE(other.exit_code, 0);
  EXPECT_TRUE(IsMountpoint(mount.path()));
  const RunResult owner =
      RunCommand({"fusermount3", "-u", mount.path()}, std::chrono::seconds(20),
                 {}, kNobody.uid, kNobody.gid);
  EXPECT_EQ(owner.exit_code, 0) << owner.err;
  EXPECT_FALSE(IsMountpoint(mount.path()));
  if (mount.fixture() != nullptr) {
    EXPECT_EQ(mount.fixture()->StopWith(0), 0);  // signal 0: just wait
  }
}

// A manifest is read with the daemon's user's rights: nobody cannot load a
// file only root may read.
TEST_F(SecurityNonRootMountTest, ManifestLoadHasOnlyTheUsersRights) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  const std::string secret = dir.Write("secret.bin", "root's secret\n");
  ASSERT_EQ(::chmod(secret.c_str(), 0600), 0);
  const std::string manifest = dir.Write(
      "m.tasks", "task a\nallocate 0x10000 4K\nload 0x10000 secret.bin\n");
  ASSERT_EQ(::chmod(manifest.c_str(), 0644), 0);
  const std::string mountpoint = dir.MakeDir("mnt");
  ASSERT_EQ(::chown(mountpoint.c_str(), kNobody.uid, kNobody.gid), 0);
  const std::string daemon = copied_ ? *bin_ / "taskfs" : DaemonPath();
  const RunResult r =
      RunCommand({daemon, "-f", "-o", "tasks=" + manifest, mountpoint},
                 std::chrono::seconds(20), {}, kNobody.uid, kNobody.gid);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_FALSE(IsMountpoint(mountpoint));
  EXPECT_EQ(r.err.rfind("taskfs: " + manifest + ":3: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(std::strerror(EACCES)), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("secret\n"), std::string::npos);
}

// allow_other for a user's mount is fusermount3's to allow, through
// user_allow_other in /etc/fuse.conf.
TEST_F(SecurityNonRootMountTest, AllowOtherFollowsFuseConf) {
  bool user_allow_other = false;
  std::ifstream conf("/etc/fuse.conf");
  std::string line;
  while (std::getline(conf, line)) {
    const std::size_t start = line.find_first_not_of(" \t");
    if (start != std::string::npos &&
        line.compare(start, 16, "user_allow_other") == 0) {
      user_allow_other = true;
    }
  }
  NobodyMount mount("tasks=none,allow_other");
  if (!user_allow_other) {
    EXPECT_FALSE(mount.ok());
    EXPECT_NE(mount.error().find("user_allow_other"), std::string::npos)
        << mount.error();
    EXPECT_FALSE(IsMountpoint(mount.path()));
    return;
  }
  ASSERT_TRUE(mount.ok()) << mount.error();
  const std::string root = mount.path();
  ASSERT_EQ(
      RunAs(kNobody, [&] { return Err(::mkdir((root + "/t").c_str(), 0700)); }),
      0);
  // Others reach the root, and the task only through its modes.
  EXPECT_EQ(RunAs(kOther,
                  [&] {
                    return ReadFile(root + "/host_page_size") == "4096\n"
                               ? 0
                               : kMismatch;
                  }),
            0);
  EXPECT_EQ(
      RunAs(kOther,
            [&] { return Err(::open((root + "/t/mem").c_str(), O_RDONLY)); }),
      EACCES);
}

}  // namespace
}  // namespace taskfs::testing
