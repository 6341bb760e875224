// Rights fixed at open (the trust model in the README): a file of a task acts
// with the rights of the process that opened it, for every later write,
// ioctl, flush and release, whoever sends them. A user who opens a file of
// their own task and lets a more privileged process use it (a setuid program
// that inherits it, or any process it is handed to) gets only their own
// rights through it: copy-from, fork, vm_map_copy and destroy reach no task
// the opener could not reach, a forked child belongs to the opener, and the
// errors lines name the opener.
//
// The files are handed to this test (root) over a unix socket with
// SCM_RIGHTS, as an inherited descriptor arrives in a setuid program; one
// test lets a real setuid-root program (fusermount3) inherit and close one.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>

#include "taskfs/ioctl.h"
#include "tests/integration/child_processes.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

const Identity kVictim{42001, 42001, {}};
const Identity kAttacker{42002, 42002, {}};

constexpr std::uint64_t kSecret = 0x600000;  // the victim's page of secrets
constexpr std::uint64_t kHome = 0x0;         // the attacker's 64 KiB region
constexpr std::uint64_t kFree = 0x100000;    // free in the attacker's task

// Receives a descriptor from sock within 20 s: the descriptor, or -1.
int ReceiveFd(int sock) {
  pollfd p{sock, POLLIN, 0};
  char byte = 0;
  int fd = -1;
  return ::poll(&p, 1, 20000) == 1 && ReceiveWithFd(sock, &byte, 1, &fd) ? fd
                                                                         : -1;
}

// A file opened by another user and handed to this process (root) over a
// unix socket, as an inherited descriptor arrives in a setuid program. The
// opener stays alive, holding its own descriptor without using it, until
// the handed file is done with: so the requests the test makes (close's
// flush among them) are root's, not the opener's.
class HandedFile {
 public:
  // Opens path as who with flags and writes `written` to it (a ctl line
  // left cut, say). fd() is -1 if that failed (the reason is added to the
  // test's failures).
  HandedFile(const Identity& who, const std::string& path, int flags,
             const std::string& written = "") {
    int socks[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, socks) != 0) {
      ADD_FAILURE() << "socketpair: " << std::strerror(errno);
      return;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(socks[0]);
      if (::setgroups(who.groups.size(), who.groups.data()) != 0 ||
          ::setgid(who.gid) != 0 || ::setuid(who.uid) != 0) {
        ::_exit(2);
      }
      const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
      if (fd < 0) ::_exit(3);
      if (!written.empty() && ::write(fd, written.data(), written.size()) !=
                                  static_cast<ssize_t>(written.size())) {
        ::_exit(4);
      }
      char byte = 'f';
      if (!SendWithFd(socks[1], &byte, 1, fd)) ::_exit(5);
      while (::read(socks[1], &byte, 1) < 0 && errno == EINTR) {
      }
      ::_exit(0);  // after the test let go of its end
    }
    ::close(socks[1]);
    sock_ = socks[0];
    if (pid_ > 0) fd_ = ReceiveFd(sock_);
    if (fd_ < 0) {
      ADD_FAILURE() << "the child opening " << path << " as uid " << who.uid
                    << " handed nothing over (exit " << Reap() << ")";
    }
  }
  ~HandedFile() {
    if (fd_ >= 0) ::close(fd_);
    Reap();
  }
  HandedFile(const HandedFile&) = delete;
  HandedFile& operator=(const HandedFile&) = delete;

  int fd() const { return fd_; }
  // Closes the handed file as this process: 0 or close's errno.
  int Close() {
    const int fd = fd_;
    fd_ = -1;
    return Err(::close(fd));
  }

 private:
  // Lets the opener go and waits for it (it was told to exit: at most a
  // moment); returns its exit status.
  int Reap() {
    if (sock_ >= 0) ::close(sock_);
    sock_ = -1;
    if (pid_ <= 0) return -1;
    int status = 0;
    if (!PollUntil([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; },
                   std::chrono::milliseconds(20000))) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  pid_t pid_ = -1;
  int sock_ = -1;
  int fd_ = -1;
};

class OpenerRightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mount_.ok()) << mount_.error();
    ASSERT_EQ(RunAs(kVictim,
                    [&] {
                      if (::mkdir((mount_ / "victim").c_str(), 0700) != 0) {
                        return errno;
                      }
                      if (const int e = WriteFile(mount_ / "victim/ctl",
                                                  "allocate 0x600000 8K\n")) {
                        return e;
                      }
                      return WriteMem(mount_ / "victim/mem", kSecret, Secret());
                    }),
              0);
    ASSERT_EQ(RunAs(kAttacker,
                    [&] {
                      if (::mkdir((mount_ / "home").c_str(), 0700) != 0) {
                        return errno;
                      }
                      return WriteFile(mount_ / "home/ctl", "allocate 0 64K\n");
                    }),
              0);
    home_maps_ = ReadFile(mount_ / "home/maps");
    victim_maps_ = ReadFile(mount_ / "victim/maps");
  }

  static std::string Secret() { return Pattern(2 * kPage, 42); }

  // Nothing of the victim reached the attacker, and the victim is whole.
  void ExpectNothingTaken() {
    EXPECT_EQ(ReadFile(mount_ / "home/maps"), home_maps_);
    std::string home;
    ASSERT_EQ(ReadMem(mount_ / "home/mem", kHome, 64 << 10, &home), 0);
    EXPECT_EQ(home, std::string(64 << 10, '\0'));
    EXPECT_EQ(ReadFile(mount_ / "victim/maps"), victim_maps_);
    std::string secret;
    ASSERT_EQ(ReadMem(mount_ / "victim/mem", kSecret, 2 * kPage, &secret), 0);
    EXPECT_TRUE(secret == Secret());
    EXPECT_EQ(ListDir(mount_.path()),
              (std::vector<std::string>{"host_page_size", "victim", "home"}));
  }

  // The victim's errors hold line, written by the daemon in its own words.
  void ExpectVictimLogged(const std::string& line) {
    const std::string errors = ReadFile(mount_ / "victim/errors");
    EXPECT_NE(errors.find(line), std::string::npos) << errors;
  }

  // The victim lets others search its directory and gives path mode: 0 or
  // the errno.
  int VictimOpensUp(const std::string& path, mode_t mode) {
    return RunAs(kVictim, [&] {
      if (::chmod((mount_ / "victim").c_str(), 0711) != 0 ||
          ::chmod((mount_ / path).c_str(), mode) != 0) {
        return errno;
      }
      return 0;
    });
  }

  std::uint64_t VictimId() {
    return std::stoull(StatusValue(ReadFile(mount_ / "victim/status"), "id"));
  }
  std::string HomeId() {
    return StatusValue(ReadFile(mount_ / "home/status"), "id");
  }

  Mount mount_{{"-o", "tasks=none,allow_other"}};
  std::string home_maps_, victim_maps_;
};

const std::string kRefusedRead =
    ": KERN_PROTECTION_FAILURE: uid 42002 may not read task victim's mem";
const std::string kRefusedWrite =
    ": KERN_PROTECTION_FAILURE: uid 42002 may not read and write task "
    "victim's mem";

// The attack of a setuid program's close: a cut line kept by the user's
// write runs at close(2), whose FUSE_FLUSH carries root's uid.
TEST_F(OpenerRightsTest, ACutLineRunAtRootsCloseHasTheOpenersRights) {
  HandedFile file(kAttacker, mount_ / "home/ctl", O_WRONLY,
                  "\ncopy-from victim 0x600000 4K 0");
  ASSERT_GE(file.fd(), 0);
  EXPECT_EQ(file.Close(), EACCES);
  ExpectNothingTaken();
  ExpectVictimLogged("uid 42002 vm_map_copy 0x600000 0x1000 into task id " +
                     HomeId() + " at 0x0" + kRefusedRead);
  const std::string home_errors = ReadFile(mount_ / "home/errors");
  EXPECT_NE(home_errors.find("1 uid 42002 ctl copy-from victim 0x600000 4K 0" +
                             kRefusedRead),
            std::string::npos)
      << home_errors;
  EXPECT_EQ(home_errors.find("uid 0 "), std::string::npos) << home_errors;
}

// The same with a real setuid-root program: fusermount3 inherits the
// descriptor, fails, and its exit closes the file as root.
TEST_F(OpenerRightsTest,
       ASetuidProgramThatInheritsTheFileGetsOnlyItsOpenersRights) {
  struct stat st;
  ASSERT_EQ(::stat("/usr/bin/fusermount3", &st), 0);
  ASSERT_TRUE((st.st_mode & S_ISUID) != 0 && st.st_uid == 0)
      << "fusermount3 is not setuid root here";
  const std::string ctl = mount_ / "home/ctl";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kAttacker.gid) != 0 ||
        ::setuid(kAttacker.uid) != 0) {
      ::_exit(2);
    }
    const int fd = ::open(ctl.c_str(), O_WRONLY);  // inherited by exec
    const std::string cut = "\ncopy-from victim 0x600000 4K 0x1000 destroy";
    if (fd < 0 || ::write(fd, cut.data(), cut.size()) !=
                      static_cast<ssize_t>(cut.size())) {
      ::_exit(3);
    }
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execl("/usr/bin/fusermount3", "fusermount3", "-u",
            "/nonexistent/taskfs-opener-rights", nullptr);
    ::_exit(4);
  }
  int status = 0;
  ASSERT_TRUE(PollUntil([&] { return ::waitpid(pid, &status, WNOHANG) == pid; },
                        std::chrono::milliseconds(20000)))
      << "fusermount3 did not exit";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 2);
  EXPECT_NE(WEXITSTATUS(status), 3);
  EXPECT_NE(WEXITSTATUS(status), 4);
  ExpectNothingTaken();
  ExpectVictimLogged("uid 42002 vm_map_copy 0x600000 0x1000 into task id " +
                     HomeId() + " at 0x1000 destroy" + kRefusedWrite);
}

// Writes by root through the user's ctl: copy-from (with alloc, with
// destroy) is refused as it would be for the user.
TEST_F(OpenerRightsTest, RootsWritesThroughTheFileHaveTheOpenersRights) {
  HandedFile file(kAttacker, mount_ / "home/ctl", O_WRONLY);
  const int fd = file.fd();
  ASSERT_GE(fd, 0);
  for (const std::string line :
       {"copy-from victim 0x600000 4K 0\n",
        "copy-from victim 0x600000 8K 0x100000 alloc\n",
        "copy-from victim 0x600000 4K 0x100000 alloc destroy\n"}) {
    EXPECT_EQ(Err(::write(fd, line.data(), line.size())), EACCES) << line;
  }
  EXPECT_EQ(file.Close(), 0);
  ExpectNothingTaken();
  ExpectVictimLogged("uid 42002 vm_map_copy 0x600000 0x1000 into task id " +
                     HomeId() + " at 0x100000 alloc destroy" + kRefusedWrite);
}

// ioctls by root on the user's mem: vm_map_copy from the victim, with and
// without destroy, is refused as it would be for the user.
TEST_F(OpenerRightsTest, RootsIoctlsOnTheFileHaveTheOpenersRights) {
  HandedFile file(kAttacker, mount_ / "home/mem", O_RDWR);
  const int fd = file.fd();
  ASSERT_GE(fd, 0);
  const std::uint64_t victim = VictimId();
  for (const std::uint32_t flags :
       {0u, TASKFS_VM_MAP_COPY_DST_ALLOC,
        TASKFS_VM_MAP_COPY_DST_ALLOC | TASKFS_VM_MAP_COPY_SRC_DESTROY}) {
    taskfs_vm_map_copy m{
        victim, kSecret,
        kPage,  (flags & TASKFS_VM_MAP_COPY_DST_ALLOC) ? kFree : kHome,
        flags,  0};
    EXPECT_EQ(Err(::ioctl(fd, TASKFS_IOC_VM_MAP_COPY, &m)), EACCES)
        << "flags " << flags;
  }
  EXPECT_EQ(file.Close(), 0);
  ExpectNothingTaken();
  ExpectVictimLogged("uid 42002 vm_map_copy 0x600000 0x1000 into task id " +
                     HomeId() + " at 0x100000 alloc destroy" + kRefusedWrite);
}

// A fork run by root through the user's ctl makes a child that belongs to
// the user; a fork of a task whose ctl the user may write but whose mem it
// may not read is refused, whoever runs it.
TEST_F(OpenerRightsTest, AForkThroughTheFileBelongsToTheOpener) {
  {
    HandedFile file(kAttacker, mount_ / "home/ctl", O_WRONLY);
    ASSERT_GE(file.fd(), 0);
    const std::string fork = "fork kid\n";
    EXPECT_EQ(Err(::write(file.fd(), fork.data(), fork.size())), 0);
  }
  for (const char* path : {"kid", "kid/mem", "kid/ctl", "kid/errors"}) {
    struct stat st;
    ASSERT_EQ(::stat((mount_ / path).c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_uid, kAttacker.uid) << path;
    EXPECT_EQ(st.st_gid, kAttacker.gid) << path;
  }
  ASSERT_EQ(::rmdir((mount_ / "kid").c_str()), 0);

  // The victim lets others write its ctl, not read its mem.
  ASSERT_EQ(VictimOpensUp("victim/ctl", 0622), 0);
  {
    HandedFile file(kAttacker, mount_ / "victim/ctl", O_WRONLY);
    ASSERT_GE(file.fd(), 0);
    const std::string steal = "fork stolen\n";
    EXPECT_EQ(Err(::write(file.fd(), steal.data(), steal.size())), EACCES);
  }
  ExpectNothingTaken();
  ExpectVictimLogged("uid 42002 ctl fork stolen" + kRefusedRead);
}

// What the opener may do, the file does for whoever uses it: a victim that
// lets others read its mem can be copied from through the user's file.
TEST_F(OpenerRightsTest, TheOpenersOwnRightsWorkThroughTheFile) {
  ASSERT_EQ(VictimOpensUp("victim/mem", 0644), 0);
  {
    HandedFile file(kAttacker, mount_ / "home/ctl", O_WRONLY);
    ASSERT_GE(file.fd(), 0);
    const std::string copy = "copy-from victim 0x600000 4K 0\n";
    EXPECT_EQ(Err(::write(file.fd(), copy.data(), copy.size())), 0);
    // destroy needs write on the victim's mem, which the user lacks.
    const std::string destroy =
        "copy-from victim 0x600000 4K 0x100000 alloc destroy\n";
    EXPECT_EQ(Err(::write(file.fd(), destroy.data(), destroy.size())), EACCES);
  }
  std::string got;
  ASSERT_EQ(ReadMem(mount_ / "home/mem", kHome, kPage, &got), 0);
  EXPECT_TRUE(got == Secret().substr(0, kPage));
}

// Root's rights over other tasks are its capabilities, as in the kernel's
// own checks: a uid 0 process that dropped them all (a container's root, a
// sandboxed service) is held to the modes through its own task's files too.
TEST_F(OpenerRightsTest, ARootWithoutCapabilitiesIsHeldToTheModes) {
  const std::string ctl = mount_ / "capless/ctl";
  const int result = RunAs(Identity{0, 0, {}}, [&] {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capset, &header, data) != 0) return kMismatch;
    if (::mkdir((mount_ / "capless").c_str(), 0700) != 0) return errno;
    for (const std::string line :
         {"allocate 0 64K\n", "copy-from victim 0x600000 4K 0\n",
          "copy-from victim 0x600000 4K 0x100000 alloc destroy\n"}) {
      const int e = WriteFile(ctl, line);
      if (e != (line[0] == 'a' ? 0 : EACCES)) return e == 0 ? kMismatch : e;
    }
    // The kernel refuses it the victim's mem directly, as taskfs does
    // through copy-from.
    std::string bytes;
    return ReadMem(mount_ / "victim/mem", kSecret, kPage, &bytes) == EACCES
               ? 0
               : kMismatch;
  });
  EXPECT_EQ(result, 0);
  EXPECT_EQ(ReadFile(mount_ / "victim/maps"), victim_maps_);
  std::string copied;
  ASSERT_EQ(ReadMem(mount_ / "capless/mem", 0, kPage, &copied), 0);
  EXPECT_EQ(copied, std::string(kPage, '\0'));
  ExpectVictimLogged(
      ": KERN_PROTECTION_FAILURE: uid 0 may not read and "
      "write task victim's mem");
}

}  // namespace
}  // namespace taskfs::testing
