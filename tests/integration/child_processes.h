// Forked child processes for the integration tests that drive a mount from
// several processes at once: memory they share with the parent, and a group
// of children reaped with a deadline, never left running.
#ifndef TASKFS_TESTS_INTEGRATION_CHILD_PROCESSES_H_
#define TASKFS_TESTS_INTEGRATION_CHILD_PROCESSES_H_

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <string>
#include <thread>
#include <vector>

namespace taskfs::testing {

// Sends n bytes of data and the descriptor fd over the unix socket sock,
// as SCM_RIGHTS: true if all of it went.
inline bool SendWithFd(int sock, const void* data, std::size_t n, int fd) {
  iovec iov{const_cast<void*>(data), n};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  return ::sendmsg(sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(n);
}

// Receives n bytes into data and a descriptor (close-on-exec) into *fd
// from sock: false at the end of the stream or without a descriptor.
inline bool ReceiveWithFd(int sock, void* data, std::size_t n, int* fd) {
  iovec iov{data, n};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  if (::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != static_cast<ssize_t>(n)) {
    return false;
  }
  const cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (c == nullptr || c->cmsg_type != SCM_RIGHTS) return false;
  std::memcpy(fd, CMSG_DATA(c), sizeof *fd);
  return true;
}

// A child's exit code: 0, an errno (< kFirstChildCode), or one of these; a
// test numbers its own from kFirstOwnChildCode.
inline constexpr int kFirstChildCode = 200;
inline constexpr int kWrongContent = 200;  // a page did not hold what it must
// A read or write moved too few bytes.
inline constexpr int kShortTransfer = 201;
inline constexpr int kUnexpectedError = 202;  // an exception in the child
inline constexpr int kFirstOwnChildCode = 203;

// Names an exit code of the kinds above (-1: killed).
inline std::string DescribeChildExit(int code) {
  switch (code) {
    case 0:
      return "ok";
    case -1:
      return "killed at the deadline or by a signal";
    case kWrongContent:
      return "wrong content";
    case kShortTransfer:
      return "short transfer";
    case kUnexpectedError:
      return "unexpected error";
    default:
      return code < kFirstChildCode
                 ? std::string("errno ") + std::strerror(code)
                 : "exit " + std::to_string(code);
  }
}

// pread/pwrite of exactly n bytes: 0, an errno, or kShortTransfer.
inline int ReadAll(int fd, unsigned char* buf, std::size_t n,
                   std::uint64_t addr) {
  const ssize_t r = ::pread(fd, buf, n, static_cast<off_t>(addr));
  if (r < 0) return errno;
  return static_cast<std::size_t>(r) == n ? 0 : kShortTransfer;
}
inline int WriteAll(int fd, const unsigned char* buf, std::size_t n,
                    std::uint64_t addr) {
  const ssize_t r = ::pwrite(fd, buf, n, static_cast<off_t>(addr));
  if (r < 0) return errno;
  return static_cast<std::size_t>(r) == n ? 0 : kShortTransfer;
}

// Writes commands to an open ctl with one write(2): 0 or the errno.
inline int Command(int ctl, const std::string& text) {
  const ssize_t r = ::write(ctl, text.data(), text.size());
  return r < 0 ? errno : 0;
}

// A T in memory shared with forked children (MAP_SHARED), so they can report
// what they did; T's atomics must be lock-free to work across processes.
template <typename T>
class Shared {
 public:
  Shared() {
    void* p = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    value_ = new (p) T();
  }
  ~Shared() {
    value_->~T();
    ::munmap(value_, sizeof(T));
  }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;
  T* operator->() { return value_; }
  T& operator*() { return *value_; }

 private:
  T* value_;
};

// Forked children, each running one function whose result is its exit code
// (kUnexpectedError if it threw). Describe names an exit code in failure
// messages. Whatever has not exited when this is destroyed is killed and
// reaped.
template <std::string (*Describe)(int)>
class ChildProcesses {
 public:
  ChildProcesses() = default;
  ChildProcesses(const ChildProcesses&) = delete;
  ChildProcesses& operator=(const ChildProcesses&) = delete;
  ~ChildProcesses() {
    for (Child& c : children_) {
      if (!c.done) {
        ::kill(c.pid, SIGKILL);
        ::waitpid(c.pid, nullptr, 0);
      }
    }
  }

  void Spawn(const std::string& name, const std::function<int()>& fn) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      int code = kUnexpectedError;
      try {
        code = fn();
      } catch (...) {
      }
      ::_exit(code);
    }
    children_.push_back({name, pid, pid < 0, pid < 0 ? kUnexpectedError : -1});
  }

  // Reaps the children that have exited; true when all have.
  bool Poll() {
    bool all = true;
    for (Child& c : children_) {
      if (c.done) continue;
      int status = 0;
      if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.done = true;
        c.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      } else {
        all = false;
      }
    }
    return all;
  }

  // Waits for every child until the deadline, then kills the rest (their
  // code stays -1). True if all exited by themselves.
  bool WaitAll(std::chrono::steady_clock::time_point deadline) {
    while (!Poll()) {
      if (std::chrono::steady_clock::now() >= deadline) {
        for (Child& c : children_) {
          if (c.done) continue;
          ::kill(c.pid, SIGKILL);
          ::waitpid(c.pid, nullptr, 0);
          c.done = true;
        }
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  // Adds a failure for each child that did not exit with 0; true if all did.
  bool ExpectAllSucceeded() const {
    bool all = true;
    for (const Child& c : children_) {
      EXPECT_EQ(c.code, 0) << c.name << ": " << Describe(c.code);
      all = all && c.code == 0;
    }
    return all;
  }

 private:
  struct Child {
    std::string name;
    pid_t pid;
    bool done;
    int code;
  };
  std::vector<Child> children_;
};

}  // namespace taskfs::testing

#endif  // TASKFS_TESTS_INTEGRATION_CHILD_PROCESSES_H_
