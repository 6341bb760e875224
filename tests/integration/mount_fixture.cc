#include "tests/integration/mount_fixture.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace taskfs::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPoll = std::chrono::milliseconds(10);
constexpr auto kMountDeadline = std::chrono::seconds(20);
constexpr auto kExitDeadline = std::chrono::seconds(20);

std::vector<char*> CArgv(const std::vector<std::string>& v) {
  std::vector<char*> out;
  for (const std::string& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

std::string TempFile(const char* stem) {
  std::string path = std::string("/tmp/") + stem + "-XXXXXX";
  const int fd = ::mkstemp(path.data());
  if (fd >= 0) ::close(fd);
  return path;
}

// Waits for pid with a deadline; kills it when the deadline passes.
// Returns the wait status, or -1 if it had to be killed. usage, if given,
// gets the child's resource usage.
int WaitWithDeadline(pid_t pid, std::chrono::steady_clock::duration deadline,
                     bool* killed, rusage* usage = nullptr) {
  const auto until = Clock::now() + deadline;
  int status = 0;
  *killed = false;
  while (true) {
    const pid_t r = ::wait4(pid, &status, WNOHANG, usage);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return -1;
    if (Clock::now() >= until) {
      ::kill(pid, SIGKILL);
      ::wait4(pid, &status, 0, usage);
      *killed = true;
      return status;
    }
    std::this_thread::sleep_for(kPoll);
  }
}

}  // namespace

std::string DaemonPath() { return TASKFS_DAEMON_PATH; }
std::string SourceDir() { return TASKFS_SOURCE_DIR; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int WriteFile(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY);
  if (fd < 0) return errno;
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int error = n < 0 ? errno : 0;
  ::close(fd);
  // A short write left part of the text unwritten: a failure too.
  if (error == 0 && static_cast<std::size_t>(n) != text.size()) return EIO;
  return error;
}

bool IsMountpoint(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // Field 5 is the mount point.
    std::istringstream fields(line);
    std::string f;
    for (int i = 0; i < 5 && fields >> f; ++i) {
    }
    if (f == path) return true;
  }
  return false;
}

RunResult RunCommand(const std::vector<std::string>& argv,
                     std::chrono::seconds deadline,
                     const std::vector<std::string>& env_extra, uid_t uid,
                     gid_t gid) {
  RunResult result;
  const std::string out_path = TempFile("taskfs-out");
  const std::string err_path = TempFile("taskfs-err");
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(out_path.c_str(), O_WRONLY | O_TRUNC);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_TRUNC);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    for (const std::string& e : env_extra) ::putenv(strdup(e.c_str()));
    if (gid != static_cast<gid_t>(-1) && ::setgid(gid) != 0) ::_exit(126);
    if (uid != static_cast<uid_t>(-1)) {
      if (::setgroups(0, nullptr) != 0 || ::setuid(uid) != 0) ::_exit(126);
    }
    std::vector<char*> args = CArgv(argv);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  bool killed = false;
  rusage usage{};
  const int status = WaitWithDeadline(pid, deadline, &killed, &usage);
  if (!killed && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.max_rss_kib = usage.ru_maxrss;
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  ::unlink(out_path.c_str());
  ::unlink(err_path.c_str());
  return result;
}

Mount::Mount(const std::vector<std::string>& options, const MountAs& as) {
  if (as.mountpoint.empty()) {
    char dir[] = "/tmp/taskfs-mnt-XXXXXX";
    if (::mkdtemp(dir) == nullptr) {
      error_ = std::string("mkdtemp: ") + std::strerror(errno);
      return;
    }
    // Other users must reach the mountpoint in the permission tests.
    ::chmod(dir, 0755);
    if (as.uid != static_cast<uid_t>(-1) && ::chown(dir, as.uid, as.gid) != 0) {
      error_ = std::string("chown: ") + std::strerror(errno);
      ::rmdir(dir);
      return;
    }
    mountpoint_ = dir;
  } else {
    mountpoint_ = as.mountpoint;
    own_mountpoint_ = false;
  }
  log_path_ = TempFile("taskfs-log");
  if (as.uid != static_cast<uid_t>(-1))
    ::chown(log_path_.c_str(), as.uid, as.gid);
  std::vector<std::string> argv = {DaemonPath(), "-f"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back(mountpoint_);
  const pid_t test = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {
    const int in = ::open("/dev/null", O_RDONLY);
    const int log = ::open(log_path_.c_str(), O_WRONLY | O_TRUNC);
    ::dup2(in, 0);
    ::dup2(log, 1);
    ::dup2(log, 2);
    if (as.gid != static_cast<gid_t>(-1) && ::setgid(as.gid) != 0) ::_exit(126);
    if (as.uid != static_cast<uid_t>(-1)) {
      if (::setgroups(0, nullptr) != 0 || ::setuid(as.uid) != 0) ::_exit(126);
    }
    // The daemon ends with the test: a test killed before its destructors
    // ran (SIGKILL, a ctest timeout) sends it SIGTERM, a clean unmount, so
    // no mount outlives its test. Set after the user changes, which clear
    // it; a test already gone by then ends the daemon here.
    if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != test) {
      ::_exit(126);
    }
    std::vector<char*> args = CArgv(argv);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  const auto until = Clock::now() + kMountDeadline;
  while (Clock::now() < until) {
    if (IsMountpoint(mountpoint_)) {
      mounted_ = true;
      return;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      error_ = "taskfs exited (" + std::to_string(exit_status_) +
               ") before mounting: " + DaemonLog();
      return;
    }
    std::this_thread::sleep_for(kPoll);
  }
  error_ = "mount did not appear within the deadline: " + DaemonLog();
}

Mount::~Mount() {
  if (!mountpoint_.empty() && IsMountpoint(mountpoint_)) {
    RunCommand({"fusermount3", "-u", "-z", mountpoint_},
               std::chrono::seconds(20));
  }
  if (pid_ > 0 && !reaped_) {
    bool killed = false;
    WaitWithDeadline(pid_, kExitDeadline, &killed);
    reaped_ = true;
  }
  // A daemon killed with SIGKILL leaves the mount behind: detach it.
  if (!mountpoint_.empty() && IsMountpoint(mountpoint_)) {
    RunCommand({"umount", "-l", mountpoint_}, std::chrono::seconds(20));
  }
  if (!mountpoint_.empty() && own_mountpoint_) ::rmdir(mountpoint_.c_str());
  // A sanitizer build of the daemon reports to its stderr: any report fails
  // the test that ran it.
  const std::string log = DaemonLog();
  if (log.find("Sanitizer") != std::string::npos ||
      log.find("runtime error:") != std::string::npos) {
    ADD_FAILURE() << "the daemon's sanitizer reported:\n" << log;
  }
  if (!log_path_.empty()) ::unlink(log_path_.c_str());
}

int Mount::StopWith(int sig) {
  if (pid_ <= 0 || reaped_) return exit_status_;
  ::kill(pid_, sig);
  bool killed = false;
  const int status = WaitWithDeadline(pid_, kExitDeadline, &killed);
  reaped_ = true;
  exit_status_ = (!killed && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  return exit_status_;
}

std::string Mount::DaemonLog() const { return ReadFile(log_path_); }

TempDir::TempDir() {
  char dir[] = "/tmp/taskfs-test-XXXXXX";
  if (::mkdtemp(dir) != nullptr) path_ = dir;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(path_, ec)) {
    const std::string p = e.path().string();
    if (IsMountpoint(p)) {
      RunCommand({"fusermount3", "-u", "-z", p}, std::chrono::seconds(20));
    }
    if (IsMountpoint(p)) {
      RunCommand({"umount", "-l", p}, std::chrono::seconds(20));
    }
  }
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& rel,
                           const std::string& contents) const {
  const std::string full = *this / rel;
  std::filesystem::create_directories(
      std::filesystem::path(full).parent_path());
  std::ofstream out(full, std::ios::binary | std::ios::trunc);
  out << contents;
  return full;
}

std::string TempDir::MakeDir(const std::string& rel) const {
  const std::string full = *this / rel;
  std::filesystem::create_directories(full);
  return full;
}

}  // namespace taskfs::testing
