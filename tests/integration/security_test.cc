// SPEC §3-§6 security: default_permissions is always on, and every path into
// a task (mem read, mem write, ioctl, ctl, copy-from, vm_map_copy, fork,
// rmdir, maps) is decided by the owner/group/other class of the caller and
// the task's modes, tested with users other than the daemon's under
// allow_other; and a non-root user mounts through fusermount3 and uses the
// mount, which root and other users cannot reach.
//
// permissions_test.cc covers the layout, chmod/chown rules and the "other"
// class of copy-from and vm_map_copy; this file fills in the whole table:
// each path for each class, granted and denied by the file's mode and by the
// directory's search bit.
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

#include "fs/taskfs_ioctl.h"
#include "tests/integration/test_util.h"
#include "tests/integration/mount_fixture.h"

namespace taskfs::testing {
namespace {

// The task's group, and the callers. uids and gids need no entry in
// /etc/passwd: a child process simply becomes them.
constexpr gid_t kTaskGroup = 40000;
const Identity kNobody{65534, 65534, {}};  // the owner of the tasks below
const Identity kGroupMember{40001, kTaskGroup, {}};
const Identity kSupplementaryMember{40003, 40003, {kTaskGroup}};
const Identity kOther{40002, 40002, {}};

enum class Class { kOwner, kGroup, kSupplementaryGroup, kOther };
enum class Path {
  kMemRead,
  kMemWrite,
  kIoctl,
  kCtl,
  kFork,
  kCopyFrom,
  kCopyFromDestroy,
  kMapCopy,
  kMapCopyDestroy,
  kMaps,
};
enum class Variant { kGranted, kDeniedByFileMode, kDeniedByDirSearch };

const Identity& Caller(Class c) {
  switch (c) {
    case Class::kOwner:
      return kNobody;
    case Class::kGroup:
      return kGroupMember;
    case Class::kSupplementaryGroup:
      return kSupplementaryMember;
    case Class::kOther:
      return kOther;
  }
  return kOther;
}

// The permission bits' position of a class.
int Shift(Class c) {
  switch (c) {
    case Class::kOwner:
      return 6;
    case Class::kGroup:
    case Class::kSupplementaryGroup:
      return 3;
    case Class::kOther:
      return 0;
  }
  return 0;
}

// The file a path goes through and the access it needs there.
const char* FileOf(Path p) {
  switch (p) {
    case Path::kCtl:
    case Path::kFork:
      return "ctl";
    case Path::kMaps:
      return "maps";
    default:
      return "mem";
  }
}

mode_t Needs(Path p) {
  switch (p) {
    case Path::kMemRead:
    case Path::kCopyFrom:
    case Path::kMapCopy:
    case Path::kMaps:
      return 4;
    case Path::kMemWrite:
    case Path::kCtl:
    case Path::kFork:
      return 2;
    case Path::kIoctl:
    case Path::kCopyFromDestroy:
    case Path::kMapCopyDestroy:
      return 6;
  }
  return 7;
}

struct PathRow {
  std::string name;
  Path path;
  Class who;
  Variant variant;
};

void PrintTo(const PathRow& row, std::ostream* os) { *os << row.name; }

std::vector<PathRow> PathRows() {
  const std::pair<Path, const char*> paths[] = {
      {Path::kMemRead, "MemRead"},
      {Path::kMemWrite, "MemWrite"},
      {Path::kIoctl, "IoctlAllocate"},
      {Path::kCtl, "Ctl"},
      {Path::kFork, "Fork"},
      {Path::kCopyFrom, "CopyFrom"},
      {Path::kCopyFromDestroy, "CopyFromDestroy"},
      {Path::kMapCopy, "MapCopyIoctl"},
      {Path::kMapCopyDestroy, "MapCopyIoctlDestroy"},
      {Path::kMaps, "Maps"},
  };
  const std::pair<Class, const char*> classes[] = {
      {Class::kOwner, "Owner"},
      {Class::kGroup, "Group"},
      {Class::kSupplementaryGroup, "SupplementaryGroup"},
      {Class::kOther, "Other"},
  };
  const std::pair<Variant, const char*> variants[] = {
      {Variant::kGranted, "Granted"},
      {Variant::kDeniedByFileMode, "DeniedByFileMode"},
      {Variant::kDeniedByDirSearch, "DeniedByDirSearch"},
  };
  std::vector<PathRow> rows;
  for (const auto& [path, pname] : paths) {
    for (const auto& [who, cname] : classes) {
      for (const auto& [variant, vname] : variants) {
        rows.push_back({std::string(pname) + "_" + cname + "_" + vname, path,
                        who, variant});
      }
    }
  }
  return rows;
}

constexpr std::uint64_t kData = 0x10000;      // the victim's 8 KiB of data
constexpr std::uint64_t kHomeDst = 0x200000;  // where copies land at home
constexpr char kVictimMaps[] =
    "0000000000010000-0000000000012000 rw-/rwx copy\n";

std::string Home(const Identity& who) {
  return "home" + std::to_string(who.uid);
}

// One mount as root with allow_other; each caller has a task of its own.
class SecurityPathTest : public ::testing::TestWithParam<PathRow> {
 protected:
  static void SetUpTestSuite() {
    mount_ = new Mount({"-o", "tasks=none,allow_other"});
    if (!mount_->ok()) return;
    for (const Identity* who :
         {&kNobody, &kGroupMember, &kSupplementaryMember, &kOther}) {
      const std::string home = *mount_ / Home(*who);
      if (::mkdir(home.c_str(), 0700) != 0 ||
          ::chown(home.c_str(), who->uid, who->gid) != 0) {
        return;
      }
    }
    ready_ = true;
  }
  static void TearDownTestSuite() {
    delete mount_;
    mount_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(mount_->ok()) << mount_->error();
    ASSERT_TRUE(ready_);
    ++counter_;
    victim_ = "v" + std::to_string(counter_);
    child_ = "k" + std::to_string(counter_);
    const std::string v = *mount_ / victim_;
    ASSERT_EQ(Err(::mkdir(v.c_str(), 0700)), 0);
    ASSERT_EQ(WriteFile(v + "/ctl", "allocate 0x10000 8K\n"), 0);
    ASSERT_EQ(WriteMem(v + "/mem", kData, Pattern(2 * kPage, 1)), 0);
    ASSERT_EQ(Err(::chown(v.c_str(), kNobody.uid, kTaskGroup)), 0);
    victim_id_ = StatusValue(ReadFile(v + "/status"), "id");
    ASSERT_NE(victim_id_, "");
  }
  void TearDown() override {
    ::rmdir((*mount_ / victim_).c_str());
    ::rmdir((*mount_ / child_).c_str());
  }

  // Sets the victim's directory and file modes for a row.
  void SetModes(const PathRow& row) {
    const int shift = Shift(row.who);
    const mode_t need = Needs(row.path);
    mode_t dir = 0;
    mode_t file = 0;
    switch (row.variant) {
      case Variant::kGranted:
        dir = 01 << shift;
        file = need << shift;
        break;
      case Variant::kDeniedByFileMode:
        // Every other class has the bits; this one does not, and Unix
        // checks only the caller's own class.
        dir = 0111;
        file = (need * 0111) & ~(07 << shift);
        break;
      case Variant::kDeniedByDirSearch:
        dir = 0777 & ~(07 << shift);
        file = 0666;
        break;
    }
    const std::string v = *mount_ / victim_;
    ASSERT_EQ(Err(::chmod((v + "/" + FileOf(row.path)).c_str(), file)), 0);
    // fork also takes read permission on mem (SPEC §4): granted, the class
    // has it; the other variants leave mem at its 0600.
    if (row.path == Path::kFork && row.variant == Variant::kGranted) {
      ASSERT_EQ(Err(::chmod((v + "/mem").c_str(), 04 << shift)), 0);
    }
    ASSERT_EQ(Err(::chmod(v.c_str(), dir)), 0);
  }

  // The path itself, run as the caller: 0, an errno, or kMismatch.
  int Attempt(const PathRow& row) {
    const std::string v = *mount_ / victim_;
    const std::string home = *mount_ / Home(Caller(row.who));
    const std::string id = victim_id_;
    const std::string victim = victim_;
    const std::string child = child_;
    return RunAs(Caller(row.who), [&]() -> int {
      switch (row.path) {
        case Path::kMemRead: {
          std::string data;
          const int e = ReadMem(v + "/mem", kData, 2 * kPage, &data);
          if (e != 0) return e;
          return data == Pattern(2 * kPage, 1) ? 0 : kMismatch;
        }
        case Path::kMemWrite:
          return WriteMem(v + "/mem", kData + kPage, std::string(kPage, 'W'));
        case Path::kIoctl: {
          const int fd = ::open((v + "/mem").c_str(), O_RDWR);
          if (fd < 0) return errno;
          taskfs_vm_allocate a{0x40000, kPage, 0, 0};
          const int e = Err(::ioctl(fd, TASKFS_IOC_VM_ALLOCATE, &a));
          ::close(fd);
          return e;
        }
        case Path::kCtl:
          return WriteFile(v + "/ctl", "allocate 0x40000 4K\n");
        case Path::kFork:
          return WriteFile(v + "/ctl", "fork " + child + "\n");
        case Path::kCopyFrom:
        case Path::kCopyFromDestroy:
          return WriteFile(
              home + "/ctl",
              "copy-from " + victim + " 0x10000 4K 0x200000 alloc" +
                  (row.path == Path::kCopyFromDestroy ? " destroy\n" : "\n"));
        case Path::kMapCopy:
        case Path::kMapCopyDestroy: {
          const int fd = ::open((home + "/mem").c_str(), O_RDWR);
          if (fd < 0) return errno;
          taskfs_vm_map_copy m{std::strtoull(id.c_str(), nullptr, 10),
                               kData,
                               kPage,
                               kHomeDst,
                               TASKFS_VM_MAP_COPY_DST_ALLOC |
                                   (row.path == Path::kMapCopyDestroy
                                        ? TASKFS_VM_MAP_COPY_SRC_DESTROY
                                        : 0u),
                               0};
          const int e = Err(::ioctl(fd, TASKFS_IOC_VM_MAP_COPY, &m));
          ::close(fd);
          return e;
        }
        case Path::kMaps: {
          const int fd = ::open((v + "/maps").c_str(), O_RDONLY);
          if (fd < 0) return errno;
          ::close(fd);
          return ReadFile(v + "/maps") == kVictimMaps ? 0 : kMismatch;
        }
      }
      return kMismatch;
    });
  }

  // What the path must have done, or, refused, must not have done.
  void ExpectEffect(const PathRow& row, bool granted) {
    const std::string v = *mount_ / victim_;
    const std::string home = *mount_ / Home(Caller(row.who));
    const bool destroys =
        row.path == Path::kCopyFromDestroy || row.path == Path::kMapCopyDestroy;
    const bool copies =
        row.path == Path::kCopyFrom || row.path == Path::kMapCopy || destroys;
    // The victim's map.
    std::string maps = kVictimMaps;
    if (granted && (row.path == Path::kIoctl || row.path == Path::kCtl)) {
      maps += "0000000000040000-0000000000041000 rw-/rwx copy\n";
    }
    if (granted && destroys) {
      maps = "0000000000011000-0000000000012000 rw-/rwx copy\n";
    }
    EXPECT_EQ(ReadFile(v + "/maps"), maps);
    // The victim's data.
    std::string data;
    if (!(granted && destroys)) {
      ASSERT_EQ(ReadMem(v + "/mem", kData, kPage, &data), 0);
      EXPECT_TRUE(data == Pattern(2 * kPage, 1).substr(0, kPage));
    }
    ASSERT_EQ(ReadMem(v + "/mem", kData + kPage, kPage, &data), 0);
    const std::string second = Pattern(2 * kPage, 1).substr(kPage);
    if (granted && row.path == Path::kMemWrite) {
      EXPECT_EQ(data, std::string(kPage, 'W'));
    } else {
      EXPECT_TRUE(data == second) << "the victim's data changed";
    }
    // The caller's own task got the copy, or nothing.
    const int e = ReadMem(home + "/mem", kHomeDst, kPage, &data);
    if (granted && copies) {
      ASSERT_EQ(e, 0);
      EXPECT_TRUE(data == Pattern(2 * kPage, 1).substr(0, kPage));
      ASSERT_EQ(WriteFile(home + "/ctl", "deallocate 0x200000 4K\n"), 0);
    } else {
      EXPECT_EQ(e, EFAULT) << "a refused copy left a region";
    }
    // A fork child, owned by the caller, or none.
    struct stat st;
    const int s = Err(::stat((*mount_ / child_).c_str(), &st));
    if (granted && row.path == Path::kFork) {
      ASSERT_EQ(s, 0);
      EXPECT_EQ(st.st_uid, Caller(row.who).uid);
      EXPECT_EQ(st.st_gid, Caller(row.who).gid);
      EXPECT_EQ(ReadFile(*mount_ / (child_ + "/maps")), kVictimMaps);
    } else {
      EXPECT_EQ(s, ENOENT);
    }
    EXPECT_TRUE(DaemonAlive(*mount_));
  }

  static Mount* mount_;
  static bool ready_;
  static int counter_;
  std::string victim_;
  std::string child_;
  std::string victim_id_;
};

Mount* SecurityPathTest::mount_ = nullptr;
bool SecurityPathTest::ready_ = false;
int SecurityPathTest::counter_ = 0;

TEST_P(SecurityPathTest, Row) {
  const PathRow& row = GetParam();
  SetModes(row);
  const bool granted = row.variant == Variant::kGranted;
  EXPECT_EQ(Attempt(row), granted ? 0 : EACCES);
  ExpectEffect(row, granted);
}

INSTANTIATE_TEST_SUITE_P(Paths, SecurityPathTest,
                         ::testing::ValuesIn(PathRows()),
                         [](const ::testing::TestParamInfo<PathRow>& info) {
                           return info.param.name;
                         });

// Write permission on ctl does not turn into the task's memory (SPEC §4):
// a root-owned task with its directory 0711, ctl 0622 and mem 0600, under
// allow_other. Another user may control it through ctl, but fork, whose
// child would hold the parent's bytes (and write its share regions), is
// EACCES and makes no child; the victim's bytes stay out of reach.
TEST(SecurityEscalationTest, CtlWriteDoesNotYieldMemThroughFork) {
  Mount mount({"-o", "tasks=none,allow_other"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  const std::string v = mount / "victim";
  ASSERT_EQ(Err(::mkdir(v.c_str(), 0700)), 0);
  ASSERT_EQ(WriteFile(v + "/ctl", "allocate 0x10000 4K\n"), 0);
  ASSERT_EQ(WriteMem(v + "/mem", 0x10000, Pattern(kPage, 3)), 0);
  ASSERT_EQ(Err(::chmod(v.c_str(), 0711)), 0);
  ASSERT_EQ(Err(::chmod((v + "/ctl").c_str(), 0622)), 0);
  const Identity& attacker = kOther;
  // The mem file itself is closed to the attacker.
  EXPECT_EQ(RunAs(attacker,
                  [&] {
                    std::string data;
                    return ReadMem(v + "/mem", 0x10000, kPage, &data);
                  }),
            EACCES);
  // ctl's own commands work: the attacker controls the task.
  EXPECT_EQ(RunAs(attacker,
                  [&] {
                    return WriteFile(v + "/ctl", "inherit 0x10000 4K share\n");
                  }),
            0);
  // fork does not.
  EXPECT_EQ(RunAs(attacker,
                  [&] { return WriteFile(v + "/ctl", "fork mine\n"); }),
            EACCES);
  struct stat st;
  EXPECT_EQ(Err(::stat((mount / "mine").c_str(), &st)), ENOENT);
  // The refusal is in the victim's errors file, with who and why.
  const std::string errors = ReadFile(v + "/errors");
  EXPECT_NE(errors.find("uid " + std::to_string(attacker.uid) +
                        " ctl fork mine: KERN_PROTECTION_FAILURE: uid " +
                        std::to_string(attacker.uid) +
                        " may not read task victim's mem"),
            std::string::npos)
      << errors;
}

// rmdir: the root directory is 1777, so only the task's owner (and root)
// may remove it, whatever the task's own mode (README "rmdir of someone
// else's task is EPERM").
struct RmdirRow {
  std::string name;
  Class who;
  mode_t dir_mode;
  int expect;
};

void PrintTo(const RmdirRow& row, std::ostream* os) { *os << row.name; }

class SecurityRmdirTest : public ::testing::TestWithParam<RmdirRow> {};

TEST_P(SecurityRmdirTest, Row) {
  Mount mount({"-o", "tasks=none,allow_other"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  const std::string v = mount / "v";
  ASSERT_EQ(Err(::mkdir(v.c_str(), 0700)), 0);
  ASSERT_EQ(WriteFile(v + "/ctl", "allocate 0x10000 4K\n"), 0);
  ASSERT_EQ(Err(::chown(v.c_str(), kNobody.uid, kTaskGroup)), 0);
  ASSERT_EQ(Err(::chmod(v.c_str(), GetParam().dir_mode)), 0);
  EXPECT_EQ(
      RunAs(Caller(GetParam().who), [&] { return Err(::rmdir(v.c_str())); }),
      GetParam().expect);
  struct stat st;
  EXPECT_EQ(Err(::stat(v.c_str(), &st)), GetParam().expect == 0 ? ENOENT : 0);
  if (GetParam().expect != 0) {
    EXPECT_EQ(ReadFile(v + "/maps"),
              "0000000000010000-0000000000011000 rw-/rwx copy\n");
  }
  EXPECT_TRUE(DaemonAlive(mount));
}

INSTANTIATE_TEST_SUITE_P(
    Rmdir, SecurityRmdirTest,
    ::testing::Values(RmdirRow{"OwnerEvenWithMode0000", Class::kOwner, 0000, 0},
                      RmdirRow{"GroupWithMode0777", Class::kGroup, 0777, EPERM},
                      RmdirRow{"SupplementaryGroupWithMode0777",
                               Class::kSupplementaryGroup, 0777, EPERM},
                      RmdirRow{"OtherWithMode0777", Class::kOther, 0777,
                               EPERM}),
    [](const ::testing::TestParamInfo<RmdirRow>& info) {
      return info.param.name;
    });

// A caller who may only read mem opens it read-only; the ioctls that change
// memory then fail with EBADF (README), vm_region works.
void PrintTo(Class c, std::ostream* os) {
  const char* names[] = {"owner", "group", "supplementary group", "other"};
  *os << names[static_cast<int>(c)];
}

class SecurityReadOnlyIoctlTest : public ::testing::TestWithParam<Class> {};

TEST_P(SecurityReadOnlyIoctlTest, ChangingIoctlsNeedWriteAccess) {
  Mount mount({"-o", "tasks=none,allow_other"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  const std::string v = mount / "v";
  ASSERT_EQ(Err(::mkdir(v.c_str(), 0700)), 0);
  ASSERT_EQ(WriteFile(v + "/ctl", "allocate 0x10000 8K\n"), 0);
  ASSERT_EQ(Err(::chown(v.c_str(), kNobody.uid, kTaskGroup)), 0);
  const int shift = Shift(GetParam());
  ASSERT_EQ(Err(::chmod((v + "/mem").c_str(), 04 << shift)), 0);
  ASSERT_EQ(Err(::chmod(v.c_str(), 01 << shift)), 0);
  const std::string mem = v + "/mem";
  EXPECT_EQ(RunAs(Caller(GetParam()),
                  [&] { return Err(::open(mem.c_str(), O_RDWR)); }),
            EACCES);
  // Each changing ioctl on the read-only descriptor; step codes tell which.
  EXPECT_EQ(RunAs(Caller(GetParam()),
                  [&]() -> int {
                    const int fd = ::open(mem.c_str(), O_RDONLY);
                    if (fd < 0) return errno;
                    taskfs_vm_region r{0, 0, 0, 0, 0, 0};
                    if (::ioctl(fd, TASKFS_IOC_VM_REGION, &r) != 0 ||
                        r.address != kData) {
                      return kMismatch;
                    }
                    taskfs_vm_allocate a{0x40000, kPage, 0, 0};
                    taskfs_vm_deallocate d{kData, 2 * kPage};
                    taskfs_vm_protect p{kData, kPage, 0, 0};
                    taskfs_vm_inherit i{kData, kPage, 2, 0};
                    taskfs_vm_copy c{kData, kPage, kData + kPage};
                    taskfs_vm_map_copy m{1, kData, kPage, 0x40000, 1, 0};
                    const int results[] = {
                        Err(::ioctl(fd, TASKFS_IOC_VM_ALLOCATE, &a)),
                        Err(::ioctl(fd, TASKFS_IOC_VM_DEALLOCATE, &d)),
                        Err(::ioctl(fd, TASKFS_IOC_VM_PROTECT, &p)),
                        Err(::ioctl(fd, TASKFS_IOC_VM_INHERIT, &i)),
                        Err(::ioctl(fd, TASKFS_IOC_VM_COPY, &c)),
                        Err(::ioctl(fd, TASKFS_IOC_VM_MAP_COPY, &m)),
                    };
                    ::close(fd);
                    for (int e : results) {
                      if (e != EBADF) return e == 0 ? kMismatch : e;
                    }
                    return EBADF;
                  }),
            EBADF);
  EXPECT_EQ(ReadFile(v + "/maps"),
            "0000000000010000-0000000000012000 rw-/rwx copy\n");
  EXPECT_TRUE(DaemonAlive(mount));
}

std::string ClassName(const ::testing::TestParamInfo<Class>& info) {
  const char* names[] = {"Owner", "Group", "SupplementaryGroup", "Other"};
  return names[static_cast<int>(info.param)];
}

INSTANTIATE_TEST_SUITE_P(Classes, SecurityReadOnlyIoctlTest,
                         ::testing::Values(Class::kOwner, Class::kGroup,
                                           Class::kOther),
                         ClassName);

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
