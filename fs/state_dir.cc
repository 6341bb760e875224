#include "fs/state_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <thread>

#include "fs/taskfs_fs.h"
#include "vmcore/limit_reached.h"
#include "vmcore/saved_state.h"

namespace taskfs::fs {
namespace {

// Large writes and reads: a save streams at the disk's speed through one
// buffer of this size, whatever its size.
constexpr std::size_t kBufferBytes = 1 << 20;

constexpr std::uint32_t kNodeVersion = 1;

void Put32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>(v >> (8 * i));
}
std::uint32_t Get32(std::string_view in, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) {
    v = v << 8 | static_cast<unsigned char>(in[at + static_cast<unsigned>(i)]);
  }
  return v;
}

// Closes a descriptor when it goes.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = other.Release();
    }
    return *this;
  }
  int get() const { return fd_; }
  // The descriptor, no longer closed here.
  int Release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // close(2)'s result, once.
  int Close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

std::string Errno(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// Writes through a buffer to a file. The test hooks: with
// TASKFS_TEST_SAVE_KILL_AFTER=N in the environment, the daemon kills itself
// (SIGKILL, as kill -9 would) once N bytes of a save are in the file, so
// that a test can stop a save at a point of its choosing; with
// TASKFS_TEST_SAVE_PAUSE_AFTER=N, a save pauses two seconds once N bytes
// are in the file, so that a test can act while it is under way.
class FileSink : public vm::StateSink {
 public:
  explicit FileSink(int fd)
      : fd_(fd), buffer_(new (std::nothrow) char[kBufferBytes]) {
    if (const char* kill = std::getenv("TASKFS_TEST_SAVE_KILL_AFTER")) {
      kill_after_ = std::strtoull(kill, nullptr, 10);
    }
    if (const char* pause = std::getenv("TASKFS_TEST_SAVE_PAUSE_AFTER")) {
      pause_after_ = std::strtoull(pause, nullptr, 10);
    }
  }

  bool Write(const void* data, std::size_t size) override {
    if (buffer_ == nullptr) {
      error_ = "out of memory";
      return false;
    }
    const auto* p = static_cast<const char*>(data);
    while (size > 0) {
      const std::size_t n = std::min(size, kBufferBytes - used_);
      std::memcpy(buffer_.get() + used_, p, n);
      used_ += n;
      p += n;
      size -= n;
      if (used_ == kBufferBytes && !Flush()) return false;
    }
    return true;
  }

  bool Flush() {
    if (kill_after_ != 0 && written_ + used_ >= kill_after_) {
      used_ = static_cast<std::size_t>(kill_after_ - written_);
      Drain();
      ::raise(SIGKILL);
    }
    if (pause_after_ != 0 && written_ + used_ >= pause_after_) {
      pause_after_ = 0;
      if (!Drain()) return false;
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
    return Drain();
  }

  std::uint64_t written() const { return written_; }
  const std::string& error() const { return error_; }

 private:
  bool Drain() {
    std::size_t done = 0;
    while (done < used_) {
      const ssize_t n = ::write(fd_, buffer_.get() + done, used_ - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error_ = std::strerror(errno);
        return false;
      }
      done += static_cast<std::size_t>(n);
    }
    written_ += used_;
    used_ = 0;
    return true;
  }

  const int fd_;
  std::unique_ptr<char[]> buffer_;
  std::size_t used_ = 0;
  std::uint64_t written_ = 0;
  std::uint64_t kill_after_ = 0;
  std::uint64_t pause_after_ = 0;
  std::string error_;
};

// Reads through a buffer from a file.
class FileSource : public vm::StateSource {
 public:
  explicit FileSource(int fd)
      : fd_(fd), buffer_(new (std::nothrow) char[kBufferBytes]) {}

  std::ptrdiff_t Read(void* data, std::size_t size) override {
    if (buffer_ == nullptr) {
      error_ = "out of memory";
      return -1;
    }
    auto* p = static_cast<char*>(data);
    std::size_t got = 0;
    while (got < size) {
      if (at_ == end_) {
        // A large read goes straight to its place.
        if (size - got >= kBufferBytes) {
          const ssize_t n = ReadSome(p + got, size - got);
          if (n < 0) return -1;
          if (n == 0) break;
          got += static_cast<std::size_t>(n);
          continue;
        }
        const ssize_t n = ReadSome(buffer_.get(), kBufferBytes);
        if (n < 0) return -1;
        if (n == 0) break;
        at_ = 0;
        end_ = static_cast<std::size_t>(n);
      }
      const std::size_t n = std::min(size - got, end_ - at_);
      std::memcpy(p + got, buffer_.get() + at_, n);
      at_ += n;
      got += n;
    }
    return static_cast<std::ptrdiff_t>(got);
  }

  const std::string& error() const { return error_; }

 private:
  ssize_t ReadSome(char* to, std::size_t size) {
    for (;;) {
      const ssize_t n = ::read(fd_, to, size);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      error_ = std::strerror(errno);
      return -1;
    }
  }

  const int fd_;
  std::unique_ptr<char[]> buffer_;
  std::size_t at_ = 0, end_ = 0;
  std::string error_;
};

}  // namespace

std::string OpenStateDir(const std::string& dir, int* fd) {
  const std::string name = "state=" + dir;
  // O_NOFOLLOW: DIR itself must not be a link another user could turn.
  Fd dir_fd(
      ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dir_fd.get() < 0) {
    if (errno == ELOOP) return name + ": a symbolic link, not a directory";
    if (errno == ENOTDIR) {
      struct stat st;
      if (::lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
        return name + ": a symbolic link, not a directory";
      }
      return name + ": not a directory";
    }
    return Errno(name);
  }
  struct stat st;
  if (::fstat(dir_fd.get(), &st) != 0) return Errno(name);
  if (st.st_uid != ::geteuid()) {
    return name + ": belongs to uid " + std::to_string(st.st_uid) +
           ", not the daemon's (" + std::to_string(::geteuid()) +
           "); it holds every user's memory";
  }
  if ((st.st_mode & 07777) != 0700) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return name + ": mode " + mode +
           ", want 0700; it holds every user's memory";
  }
  // Every directory above DIR, as it is now: another user who may rename
  // entries in one of them could move DIR away and put their own in its
  // place. A sticky directory (/tmp) lets no one rename another's entries.
  Fd at(::dup(dir_fd.get()));
  for (unsigned depth = 0; at.get() >= 0 && depth < 4096; ++depth) {
    Fd up(::openat(at.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat here, above;
    if (up.get() < 0 || ::fstat(at.get(), &here) != 0 ||
        ::fstat(up.get(), &above) != 0) {
      return Errno(name + ": a directory above it");
    }
    if (above.st_dev == here.st_dev && above.st_ino == here.st_ino) break;
    const bool others_write = (above.st_mode & 022) != 0;
    const bool sticky = (above.st_mode & S_ISVTX) != 0;
    if ((above.st_uid != 0 && above.st_uid != ::geteuid()) ||
        (others_write && !sticky)) {
      char link[64], where[4096];
      std::snprintf(link, sizeof link, "/proc/self/fd/%d", up.get());
      const ssize_t n = ::readlink(link, where, sizeof where - 1);
      const std::string parent =
          n > 0 ? std::string(where, static_cast<std::size_t>(n)) : "..";
      if (above.st_uid != 0 && above.st_uid != ::geteuid()) {
        return name + ": " + parent + " above it belongs to uid " +
               std::to_string(above.st_uid) +
               ", who could move it; it holds every user's memory";
      }
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", above.st_mode & 07777);
      return name + ": " + parent + " above it has mode " + mode +
             ", writable by other users and not sticky; it holds every "
             "user's memory";
    }
    at = std::move(up);
  }
  *fd = dir_fd.Release();
  return "";
}

std::string EncodeNode(const TaskNode& node) {
  std::string out;
  Put32(out, kNodeVersion);
  Put32(out, node.uid);
  Put32(out, node.gid);
  for (const mode_t mode : node.modes) Put32(out, mode);
  return out;
}

bool DecodeNode(std::string_view bytes, uid_t* uid, gid_t* gid,
                std::array<mode_t, kNodeKinds>* modes) {
  if (bytes.size() != 4 * (3 + kNodeKinds) || Get32(bytes, 0) != kNodeVersion) {
    return false;
  }
  *uid = Get32(bytes, 4);
  *gid = Get32(bytes, 8);
  for (unsigned i = 0; i < kNodeKinds; ++i) {
    const std::uint32_t mode = Get32(bytes, 12 + 4 * i);
    if ((mode & ~07777u) != 0) return false;
    (*modes)[i] = mode;
  }
  return true;
}

std::unique_ptr<StateDir> StateDir::Open(const std::string& dir,
                                         std::string* error) {
  int fd = -1;
  *error = OpenStateDir(dir, &fd);
  if (!error->empty()) return nullptr;
  // The lock goes with the descriptor: it lasts the daemon's life, across
  // fuse_daemonize's fork, and ends with it however the daemon ends.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    *error = errno == EWOULDBLOCK
                 ? "state=" + dir + ": in use by another taskfs"
                 : Errno("state=" + dir + ": lock");
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<StateDir>(new StateDir(dir, fd));
}

StateDir::~StateDir() { ::close(fd_); }

std::string StateDir::Load(TaskFs& fs, std::size_t* tasks, bool* found) {
  *tasks = 0;
  *found = false;
  const std::string file = path();
  // O_NONBLOCK: a FIFO opens at once instead of waiting for a writer, and
  // is refused below like any file that is not a save.
  Fd fd(::openat(fd_, kStateFile,
                 O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return "";  // no save: the only such case
    *found = true;
    if (errno == ELOOP)
      return "state " + file + ": a symbolic link, not a save";
    return Errno("state " + file);
  }
  *found = true;
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Errno("state " + file);
  if (!S_ISREG(st.st_mode)) return "state " + file + ": not a regular file";
  if (st.st_uid != ::geteuid()) {
    return "state " + file + ": belongs to uid " + std::to_string(st.st_uid) +
           ", not the daemon's (" + std::to_string(::geteuid()) + ")";
  }
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return Errno("state " + file);
  }
  FileSource source(fd.get());
  std::string bad_node;
  const std::string error = vm::RestoreState(
      fs.system(), source,
      [&](const std::shared_ptr<vm::Task>& task, std::string_view extra) {
        uid_t uid = 0;
        gid_t gid = 0;
        std::array<mode_t, kNodeKinds> modes{};
        if (!DecodeNode(extra, &uid, &gid, &modes)) {
          if (bad_node.empty()) bad_node = task->name();
          uid = fs.daemon_uid();
          gid = fs.daemon_gid();
          modes = kDefaultModes;
        }
        fs.AddTask(task, uid, gid);
        fs.SetModes(task->id(), modes);
        ++*tasks;
      });
  if (!error.empty()) {
    return "state " + file + ": " +
           (source.error().empty() ? error : "read error: " + source.error());
  }
  if (!bad_node.empty()) {
    return "state " + file + ": damaged attributes of task '" + bad_node + "'";
  }
  return "";
}

std::string StateDir::Save(TaskFs& fs, std::uint64_t* bytes,
                           std::string* warning) {
  if (warning != nullptr) warning->clear();
  std::lock_guard lock(mu_);
  std::vector<vm::SavedTask> tasks;
  for (const TaskNode& node : fs.Nodes()) {
    tasks.push_back({node.task, EncodeNode(node)});
  }
  const std::string temp = dir_ + "/" + kStateTempFile;
  const std::string file = path();
  // Whatever is at the temporary name (a save a crash left, or anything
  // else) goes: the save is written to a file this daemon creates, never
  // through a link, never into another's file.
  if (::unlinkat(fd_, kStateTempFile, 0) != 0 && errno != ENOENT) {
    return Errno("save to " + temp + ": remove the old one");
  }
  Fd fd(::openat(fd_, kStateTempFile,
                 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) return Errno("save to " + temp);
  FileSink sink(fd.get());
  std::string error = vm::SaveState(fs.system(), tasks, sink);
  tasks.clear();  // the tasks may go now
  if (error.empty() && !sink.Flush()) error = "write failed";
  if (!error.empty()) {
    ::unlinkat(fd_, kStateTempFile, 0);
    return "save to " + temp + ": " +
           (sink.error().empty() ? error : sink.error());
  }
  if (::fsync(fd.get()) != 0 || fd.Close() != 0) {
    const std::string why = Errno("save to " + temp);
    ::unlinkat(fd_, kStateTempFile, 0);
    return why;
  }
  if (::renameat(fd_, kStateTempFile, fd_, kStateFile) != 0) {
    const std::string why = Errno("save to " + file);
    ::unlinkat(fd_, kStateTempFile, 0);
    return why;
  }
  if (bytes != nullptr) *bytes = sink.written();
  // The new save is in place: a failed sync of DIR only means a crash soon
  // could bring the previous one back.
  if (::fsync(fd_) != 0 && warning != nullptr) {
    *warning =
        Errno("saved to " + file + ", but the sync of " + dir_ + " failed") +
        "; a crash soon may bring back the previous save";
  }
  return "";
}

}  // namespace taskfs::fs
