// Small helpers of the integration tests that act as other users: page-aligned
// buffers, byte patterns, errno-returning wrappers and a way to run a piece
// of a test as another user with a deadline.
#ifndef TASKFS_TESTS_INTEGRATION_TEST_UTIL_H_
#define TASKFS_TESTS_INTEGRATION_TEST_UTIL_H_

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace taskfs::testing {

inline constexpr std::size_t kPage = 4096;

// A page-aligned buffer, as direct I/O wants.
struct AlignedBuffer {
  explicit AlignedBuffer(std::size_t n) : size(n) {
    void* p = nullptr;
    if (posix_memalign(&p, kPage, n == 0 ? kPage : n) != 0) std::abort();
    data = static_cast<unsigned char*>(p);
    std::memset(data, 0, n);
  }
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  unsigned char* page(std::size_t i) { return data + i * kPage; }
  std::string str() const {
    return std::string(reinterpret_cast<const char*>(data), size);
  }
  unsigned char* data;
  std::size_t size;
};

// Bytes the whole mount holds against its memory limit, from statfs: the
// written pages and the metadata charged with them (docs/reference.md §3;
// README "statfs"); -1 on error.
inline long long StatfsUsedBytes(const std::string& mountpoint) {
  struct statvfs vfs;
  if (::statvfs(mountpoint.c_str(), &vfs) != 0) return -1;
  return static_cast<long long>((vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize);
}

// Polls pred every 5 ms until it holds or the deadline passes.
inline bool PollUntil(const std::function<bool()>& pred,
                      std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// A process's resident memory (VmRSS) in bytes; -1 if it cannot be read.
inline long long DaemonRss(pid_t pid) {
  const std::string status =
      ReadFile("/proc/" + std::to_string(pid) + "/status");
  const std::size_t at = status.find("\nVmRSS:");
  if (at == std::string::npos) return -1;
  return std::strtoll(status.c_str() + at + 7, nullptr, 10) * 1024;
}

// 0 if a system call returned r >= 0, else its errno.
inline int Err(long r) { return r < 0 ? errno : 0; }

// n bytes of a pattern derived from seed.
inline std::string Pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>((i * 131 + seed * 7 + i / kPage) % 251);
  }
  return s;
}

// Reads n bytes at addr of a mem file: 0 or the errno; the bytes in *out.
inline int ReadMem(const std::string& mem, std::uint64_t addr, std::size_t n,
                   std::string* out) {
  const int fd = ::open(mem.c_str(), O_RDONLY);
  if (fd < 0) return errno;
  AlignedBuffer b(n);
  const ssize_t r = ::pread(fd, b.data, n, static_cast<off_t>(addr));
  const int error = r < 0 ? errno : 0;
  ::close(fd);
  if (r >= 0) {
    out->assign(reinterpret_cast<const char*>(b.data),
                static_cast<std::size_t>(r));
  }
  return error;
}

// Writes data (whole pages) at addr of a mem file: 0 or the errno.
inline int WriteMem(const std::string& mem, std::uint64_t addr,
                    const std::string& data) {
  const int fd = ::open(mem.c_str(), O_WRONLY);
  if (fd < 0) return errno;
  AlignedBuffer b(data.size());
  std::memcpy(b.data, data.data(), data.size());
  const ssize_t r = ::pwrite(fd, b.data, data.size(), static_cast<off_t>(addr));
  const int error = r < 0 ? errno : 0;
  ::close(fd);
  if (error == 0 && static_cast<std::size_t>(r) != data.size()) return EIO;
  return error;
}

// Whether the daemon process still runs and its mount is still there.
inline bool DaemonAlive(const Mount& mount) {
  return ::kill(mount.daemon_pid(), 0) == 0 && IsMountpoint(mount.path());
}

// Who a piece of a test runs as.
struct Identity {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;  // supplementary groups
};

// Results of RunAs that are not errnos.
inline constexpr int kChildCouldNotSwitch = 1000;
inline constexpr int kChildHung = 1001;
inline constexpr int kChildDied = 1002;
inline constexpr int kMismatch = 1003;

// Runs fn in a forked child that has become `who`, and returns what fn
// returned (0 or an errno by convention), or kChildCouldNotSwitch /
// kChildHung / kChildDied. The child is killed when it does not answer
// within the deadline, so a hung mount fails the test instead of blocking it.
inline int RunAs(const Identity& who, const std::function<int()>& fn,
                 int deadline_ms = 20000) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return kChildDied;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return kChildDied;
  }
  if (pid == 0) {
    ::close(fds[0]);
    int result = kChildCouldNotSwitch;
    if (::setgroups(who.groups.size(), who.groups.data()) == 0 &&
        ::setgid(who.gid) == 0 && ::setuid(who.uid) == 0) {
      result = fn();
    }
    const ssize_t n = ::write(fds[1], &result, sizeof result);
    ::_exit(n == sizeof result ? 0 : 1);
  }
  ::close(fds[1]);
  pollfd p{fds[0], POLLIN, 0};
  int result = kChildHung;
  int ready = 0;
  do {
    ready = ::poll(&p, 1, deadline_ms);
  } while (ready < 0 && errno == EINTR);
  if (ready > 0) {
    int value = 0;
    result = ::read(fds[0], &value, sizeof value) == sizeof value ? value
                                                                  : kChildDied;
  } else {
    ::kill(pid, SIGKILL);
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return result;
}

// The value of `key: value` in a status text; "" if absent.
inline std::string StatusValue(const std::string& status,
                               const std::string& key) {
  const std::string prefix = "\n" + key + ": ";
  const std::string text = "\n" + status;
  const std::size_t at = text.find(prefix);
  if (at == std::string::npos) return "";
  const std::size_t start = at + prefix.size();
  return text.substr(start, text.find('\n', start) - start);
}

// What statfs counts beside the written pages, for the tasks of a mount:
// at least every task's metadata_bytes (its map and page tables,
// docs/reference.md §7), and at most that plus what else is charged: each
// task's errors file (its record, ErrorLog's 256 slots and node, under 12 KiB,
// and each kept line at most twice its text) and 64 KiB for files closed a
// moment ago whose release has not arrived.
struct MountCharges {
  long long metadata = 0;  // the sum of metadata_bytes
  long long ceiling = 0;   // metadata + what else may be charged
};
inline MountCharges ChargesOf(const std::string& mountpoint) {
  MountCharges c;
  c.ceiling = 64 * 1024;
  for (const std::string& name : ListDir(mountpoint)) {
    if (name == "host_page_size") continue;
    const std::string dir = mountpoint + "/" + name;
    const std::string meta =
        StatusValue(ReadFile(dir + "/status"), "metadata_bytes");
    if (meta.empty()) continue;  // removed meanwhile
    c.metadata += std::stoll(meta);
    c.ceiling += 12 * 1024 +
                 2 * static_cast<long long>(ReadFile(dir + "/errors").size());
  }
  c.ceiling += c.metadata;
  return c;
}

// resident_bytes from a task's status file; -1 if it cannot be read.
inline long long ResidentBytes(const std::string& status_path) {
  const std::string status = ReadFile(status_path);
  const std::string key = "\nresident_bytes: ";
  const std::size_t at = status.find(key);
  if (at == std::string::npos) return -1;
  return std::strtoll(status.c_str() + at + key.size(), nullptr, 10);
}

}  // namespace taskfs::testing

#endif  // TASKFS_TESTS_INTEGRATION_TEST_UTIL_H_
