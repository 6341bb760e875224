#include "fs/state_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

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
  int get() const { return fd_; }
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

// Writes through a buffer to a file. The test hook: with
// TASKFS_TEST_SAVE_KILL_AFTER=N in the environment, the daemon kills itself
// (SIGKILL, as kill -9 would) once N bytes of a save are in the file, so
// that a test can stop a save at a point of its choosing.
class FileSink : public vm::StateSink {
 public:
  explicit FileSink(int fd)
      : fd_(fd), buffer_(new (std::nothrow) char[kBufferBytes]) {
    if (const char* kill = std::getenv("TASKFS_TEST_SAVE_KILL_AFTER")) {
      kill_after_ = std::strtoull(kill, nullptr, 10);
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

std::string CheckStateDir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return Errno("state=" + dir);
  if (!S_ISDIR(st.st_mode)) return "state=" + dir + ": not a directory";
  if (st.st_uid != ::geteuid()) {
    return "state=" + dir + ": belongs to uid " + std::to_string(st.st_uid) +
           ", not the daemon's (" + std::to_string(::geteuid()) +
           "); it holds every user's memory";
  }
  if ((st.st_mode & 07777) != 0700) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return "state=" + dir + ": mode " + mode +
           ", want 0700; it holds every user's memory";
  }
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

bool StateDir::HasSave() const {
  struct stat st;
  return ::stat(path().c_str(), &st) == 0;
}

std::string StateDir::Load(TaskFs& fs, std::size_t* tasks) {
  *tasks = 0;
  const std::string file = path();
  Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Errno("state " + file);
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

std::string StateDir::Save(TaskFs& fs, std::uint64_t* bytes) {
  std::lock_guard lock(mu_);
  std::vector<vm::SavedTask> tasks;
  for (const TaskNode& node : fs.Nodes()) {
    tasks.push_back({node.task, EncodeNode(node)});
  }
  const std::string temp = dir_ + "/" + kStateTempFile;
  const std::string file = path();
  Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) return Errno("save to " + temp);
  FileSink sink(fd.get());
  std::string error = vm::SaveState(fs.system(), tasks, sink);
  tasks.clear();  // the tasks may go now
  if (error.empty() && !sink.Flush()) error = "write failed";
  if (!error.empty()) {
    ::unlink(temp.c_str());
    return "save to " + temp + ": " +
           (sink.error().empty() ? error : sink.error());
  }
  if (::fsync(fd.get()) != 0 || fd.Close() != 0) {
    const std::string why = Errno("save to " + temp);
    ::unlink(temp.c_str());
    return why;
  }
  if (::rename(temp.c_str(), file.c_str()) != 0) {
    const std::string why = Errno("save to " + file);
    ::unlink(temp.c_str());
    return why;
  }
  Fd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0 || ::fsync(dir.get()) != 0) {
    return Errno("save to " + file + ": sync of " + dir_);
  }
  if (bytes != nullptr) *bytes = sink.written();
  return "";
}

}  // namespace taskfs::fs
