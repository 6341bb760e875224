// A real taskfs mount for integration tests: a fresh mkdtemp mountpoint, the
// daemon started in the foreground, the mount awaited by polling
// /proc/self/mountinfo with a deadline, and on destruction always an
// unmount, a reaped daemon and a removed mountpoint.
#ifndef TASKFS_TESTS_INTEGRATION_MOUNT_FIXTURE_H_
#define TASKFS_TESTS_INTEGRATION_MOUNT_FIXTURE_H_

#include <dirent.h>
#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace taskfs::testing {

// The daemon's path (set by CMake).
std::string DaemonPath();
// The source tree (examples/ live there).
std::string SourceDir();

struct RunResult {
  int exit_code = -1;     // -1 if killed by a signal or timed out
  std::string out;        // stdout
  std::string err;        // stderr
  long max_rss_kib = -1;  // its peak resident memory (wait4's ru_maxrss)
};

// Runs argv to completion with a deadline (then SIGKILL), capturing output.
// env_extra entries are added as NAME=VALUE. uid, if not -1, runs it as that
// user (the caller must be root).
RunResult RunCommand(const std::vector<std::string>& argv,
                     std::chrono::seconds deadline = std::chrono::seconds(60),
                     const std::vector<std::string>& env_extra = {},
                     uid_t uid = static_cast<uid_t>(-1),
                     gid_t gid = static_cast<gid_t>(-1));

// Where and as whom a Mount runs the daemon.
struct MountAs {
  // An existing directory to mount on (left in place afterwards); empty for
  // a fresh mkdtemp directory that the Mount removes.
  std::string mountpoint;
  // Runs the daemon as this user (it then mounts through fusermount3); a
  // fresh mountpoint is given to that user. -1: as the caller.
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
};

class Mount {
 public:
  // Starts `taskfs -f OPTIONS... MOUNTPOINT` and waits for the mount.
  // ok() says whether it came up; error() why not (with daemon stderr).
  // The daemon gets SIGTERM when the thread that made this ends (so that a
  // killed test leaves no mount): make it on a thread that outlives it.
  explicit Mount(const std::vector<std::string>& options = {"-o", "tasks=none"},
                 const MountAs& as = {});
  ~Mount();
  Mount(const Mount&) = delete;
  Mount& operator=(const Mount&) = delete;

  bool ok() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return mountpoint_; }
  std::string operator/(const std::string& rel) const {
    return mountpoint_ + "/" + rel;
  }
  pid_t daemon_pid() const { return pid_; }
  // Once the daemon has ended (it exited before mounting, or StopWith):
  // its exit status; -1 while it runs or if a signal ended it.
  int exit_status() const { return exit_status_; }

  // Sends sig to the daemon and waits (with a deadline) for it to exit.
  // Returns its exit status (-1 if it died by a signal or did not exit).
  int StopWith(int sig);
  // The daemon's stderr so far, and the file that holds it (removed by the
  // destructor).
  std::string DaemonLog() const;
  const std::string& log_path() const { return log_path_; }

 private:
  bool IsMounted() const;

  std::string mountpoint_;
  bool own_mountpoint_ = true;  // made by mkdtemp, removed at the end
  std::string log_path_;
  pid_t pid_ = -1;
  bool mounted_ = false;
  bool reaped_ = false;
  int exit_status_ = -1;
  std::string error_;
};

// A fresh directory under /tmp, removed with everything in it. Anything
// still mounted inside it (a daemon that mounted against expectations) is
// detached first, so nothing is ever left mounted.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const {
    return path_ + "/" + rel;
  }
  // Writes a file (creating directories on the way); returns its path.
  std::string Write(const std::string& rel, const std::string& contents) const;
  // Makes a directory (and its parents); returns its path.
  std::string MakeDir(const std::string& rel) const;

 private:
  std::string path_;
};

// True if path is a mountpoint in /proc/self/mountinfo.
bool IsMountpoint(const std::string& path);

// Reads a whole (small) file; "" on error.
std::string ReadFile(const std::string& path);

// The names in a directory, without "." and "..", in readdir order; none if
// it cannot be opened.
inline std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return names;
  while (const dirent* e = ::readdir(dir)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(dir);
  return names;
}
// Writes text to path with one write(2); 0 or errno, EIO if the write was
// short.
int WriteFile(const std::string& path, const std::string& text);

}  // namespace taskfs::testing

#endif  // TASKFS_TESTS_INTEGRATION_MOUNT_FIXTURE_H_
