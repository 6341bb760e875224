// The FUSE adapter itself (fs/taskfs_fs.h): requests go in through the
// daemon's own operations table and their replies come out to recorders,
// which here replace libfuse's reply calls (definitions in the executable
// take precedence over libfuse's, as in dispatch_test.cc). Each request
// must get exactly one reply, the one docs/reference.md §4-§7 give it.
#include "fs/taskfs_fs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "fs/inode.h"
#include "taskfs/ioctl.h"
#include "vmcore/vm_system.h"

namespace {

// One reply: which call, its number (an errno, a size, an inode, an
// offset, an ioctl's result) and the bytes it carried.
struct Sent {
  std::string call;
  long value = 0;
  std::string data;
};

bool operator==(const Sent& a, const Sent& b) {
  return a.call == b.call && a.value == b.value && a.data == b.data;
}
void PrintTo(const Sent& s, std::ostream* os) {
  *os << s.call << "(" << s.value << ", \"" << s.data << "\")";
}

std::vector<Sent> g_sent;
void* g_userdata = nullptr;
fuse_ctx g_ctx;
fuse_entry_param g_entry;
struct stat g_attr;
fuse_file_info g_open;
struct statvfs g_statfs;

}  // namespace

extern "C" {
void* fuse_req_userdata(fuse_req_t) { return g_userdata; }
const struct fuse_ctx* fuse_req_ctx(fuse_req_t) { return &g_ctx; }
int fuse_reply_err(fuse_req_t, int err) {
  g_sent.push_back({"err", err, ""});
  return 0;
}
void fuse_reply_none(fuse_req_t) { g_sent.push_back({"none", 0, ""}); }
int fuse_reply_entry(fuse_req_t, const struct fuse_entry_param* e) {
  g_entry = *e;
  g_sent.push_back({"entry", static_cast<long>(e->ino), ""});
  return 0;
}
int fuse_reply_attr(fuse_req_t, const struct stat* attr, double) {
  g_attr = *attr;
  g_sent.push_back({"attr", static_cast<long>(attr->st_ino), ""});
  return 0;
}
int fuse_reply_open(fuse_req_t, const struct fuse_file_info* fi) {
  g_open = *fi;
  g_sent.push_back({"open", 0, ""});
  return 0;
}
int fuse_reply_write(fuse_req_t, size_t count) {
  g_sent.push_back({"write", static_cast<long>(count), ""});
  return 0;
}
int fuse_reply_buf(fuse_req_t, const char* buf, size_t size) {
  g_sent.push_back({"buf", static_cast<long>(size),
                    size == 0 ? "" : std::string(buf, size)});
  return 0;
}
int fuse_reply_iov(fuse_req_t, const struct iovec* iov, int count) {
  std::string data;
  for (int i = 0; i < count; ++i) {
    data.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  }
  g_sent.push_back({"buf", static_cast<long>(data.size()), data});
  return 0;
}
int fuse_reply_statfs(fuse_req_t, const struct statvfs* st) {
  g_statfs = *st;
  g_sent.push_back({"statfs", 0, ""});
  return 0;
}
int fuse_reply_lseek(fuse_req_t, off_t off) {
  g_sent.push_back({"lseek", static_cast<long>(off), ""});
  return 0;
}
int fuse_reply_ioctl(fuse_req_t, int result, const void* buf, size_t size) {
  g_sent.push_back(
      {"ioctl", result,
       size == 0 ? "" : std::string(static_cast<const char*>(buf), size)});
  return 0;
}
}

namespace taskfs::fs {
namespace {

constexpr std::uint64_t kPage = 4096;

fuse_req_t FakeRequest() {
  static char request;
  return reinterpret_cast<fuse_req_t>(&request);
}

vm::VmConfig Config() {
  vm::VmConfig config;
  config.page_size = kPage;
  config.address_bits = 32;
  config.memory_limit = 16384 * kPage;
  config.max_tasks = 8;
  return config;
}

// text at the start of a page of zeros: mem's I/O is in whole pages.
std::string Page(const std::string& text) {
  std::string page(kPage, '\0');
  page.replace(0, text.size(), text);
  return page;
}

// The names of a readdir reply, from the kernel's struct fuse_dirent
// (ino, off, namelen, type, then the name, padded to 8 bytes).
std::vector<std::string> DirentNames(const std::string& buf) {
  std::vector<std::string> names;
  std::size_t at = 0;
  while (at + 24 <= buf.size()) {
    std::uint32_t namelen = 0;
    std::memcpy(&namelen, buf.data() + at + 16, sizeof namelen);
    names.emplace_back(buf.substr(at + 24, namelen));
    at += (24 + namelen + 7) & ~std::size_t{7};
  }
  return names;
}

class TaskFsTest : public ::testing::Test {
 protected:
  TaskFsTest()
      : system_(Config()),
        log_(std::make_shared<spdlog::logger>(
            "taskfs_fs_test",
            std::make_shared<spdlog::sinks::ostream_sink_st>(log_text_))),
        fs_(system_, log_, 1u << 20),
        ops_(TaskFs::Operations()) {
    log_->set_pattern("%l: %v");
    log_->set_level(spdlog::level::debug);
    g_sent.clear();
    g_userdata = &fs_;
    // The test's own identity: an opener whose groups and capabilities the
    // adapter can read from /proc (the main thread's id is the pid).
    g_ctx = fuse_ctx{::getuid(), ::getgid(), ::getpid(), 022};
  }
  ~TaskFsTest() override { g_userdata = nullptr; }

  std::string Logged() {
    log_->flush();
    return log_text_.str();
  }

  // Runs one request; it must get exactly one reply, which is returned.
  template <typename F>
  Sent Request(F&& request) {
    g_sent.clear();
    request();
    EXPECT_EQ(g_sent.size(), 1u);
    return g_sent.empty() ? Sent{"(none)", 0, ""} : g_sent.back();
  }

  Sent Err(int error) { return Sent{"err", error, ""}; }

  fuse_ino_t MkDir(const char* name) {
    const Sent sent =
        Request([&] { ops_.mkdir(FakeRequest(), kRootIno, name, 0700); });
    EXPECT_EQ(sent.call, "entry");
    return static_cast<fuse_ino_t>(sent.value);
  }

  std::uint64_t IdOf(fuse_ino_t dir) const { return Decode(dir).id; }

  fuse_ino_t File(fuse_ino_t dir, NodeKind kind) const {
    return TaskIno(IdOf(dir), kind);
  }

  // Opens ino with flags; the file info of the reply (fh and all).
  fuse_file_info Open(fuse_ino_t ino, int flags) {
    fuse_file_info fi{};
    fi.flags = flags;
    const Sent sent = Request([&] { ops_.open(FakeRequest(), ino, &fi); });
    EXPECT_EQ(sent.call, "open");
    return fi;
  }

  Sent Read(fuse_ino_t ino, fuse_file_info& fi, std::size_t size, off_t off) {
    return Request([&] { ops_.read(FakeRequest(), ino, size, off, &fi); });
  }

  Sent Write(fuse_ino_t ino, fuse_file_info& fi, const std::string& data,
             off_t off) {
    return Request([&] {
      ops_.write(FakeRequest(), ino, data.data(), data.size(), off, &fi);
    });
  }

  template <typename T>
  Sent Ioctl(fuse_ino_t ino, fuse_file_info& fi, unsigned int cmd, const T& in,
             std::size_t in_size = sizeof(T), unsigned flags = 0) {
    return Request([&] {
      ops_.ioctl(FakeRequest(), ino, cmd, nullptr, &fi, flags, &in, in_size,
                 _IOC_DIR(cmd) & _IOC_READ ? sizeof(T) : 0);
    });
  }

  // The whole text of a generated file, read from offset 0.
  std::string ReadText(fuse_ino_t ino) {
    fuse_file_info fi = Open(ino, O_RDONLY);
    const Sent sent = Read(ino, fi, 1 << 16, 0);
    EXPECT_EQ(sent.call, "buf");
    Request([&] { ops_.release(FakeRequest(), ino, &fi); });
    return sent.data;
  }

  // "uid U", the opener of every file here.
  std::string Uid() const { return "uid " + std::to_string(g_ctx.uid); }

  std::ostringstream log_text_;
  vm::VmSystem system_;
  std::shared_ptr<spdlog::logger> log_;
  TaskFs fs_;
  const fuse_lowlevel_ops& ops_;
};

TEST_F(TaskFsTest, InitAsksForWholeRequestsAndNoSplicing) {
  fuse_conn_info conn{};
  conn.want = FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
              FUSE_CAP_SPLICE_MOVE | FUSE_CAP_ASYNC_READ;
  conn.max_readahead = 65536;
  ops_.init(&fs_, &conn);
  EXPECT_EQ(conn.max_read, 1u << 20);
  EXPECT_EQ(conn.max_write, 1u << 20);
  EXPECT_EQ(conn.max_readahead, 0u);
  EXPECT_EQ(conn.want, static_cast<unsigned>(FUSE_CAP_ASYNC_READ));
  EXPECT_TRUE(g_sent.empty());
}

TEST_F(TaskFsTest, MkDirMakesATaskOwnedByItsCaller) {
  const fuse_ino_t dir = MkDir("t");
  EXPECT_EQ(Decode(dir).kind, NodeKind::kDir);
  EXPECT_EQ(g_entry.attr.st_mode, S_IFDIR | 0700);
  EXPECT_EQ(g_entry.attr.st_uid, g_ctx.uid);
  EXPECT_EQ(g_entry.attr.st_gid, g_ctx.gid);
  EXPECT_EQ(g_entry.attr_timeout, 0.0);
  EXPECT_EQ(g_entry.entry_timeout, 1.0);
  EXPECT_EQ(fs_.TaskCount(), 1u);
  EXPECT_NE(system_.FindTask("t"), nullptr);
}

TEST_F(TaskFsTest, MkDirRefusals) {
  MkDir("t");
  const fuse_ino_t u = MkDir("u");
  EXPECT_EQ(Request([&] { ops_.mkdir(FakeRequest(), u, "x", 0700); }),
            Err(EPERM));
  EXPECT_EQ(Request([&] { ops_.mkdir(FakeRequest(), kRootIno, ".t", 0700); }),
            Err(EINVAL));
  EXPECT_EQ(Request([&] {
              ops_.mkdir(FakeRequest(), kRootIno, "host_page_size", 0700);
            }),
            Err(EINVAL));
  EXPECT_EQ(Request([&] { ops_.mkdir(FakeRequest(), kRootIno, "t", 0700); }),
            Err(EEXIST));
  EXPECT_EQ(Logged(), "debug: mkdir t: KERN_NAME_EXISTS\n");
}

TEST_F(TaskFsTest, LookupFindsTasksAndTheirFiles) {
  const fuse_ino_t dir = MkDir("t");
  EXPECT_EQ(Request([&] { ops_.lookup(FakeRequest(), kRootIno, "t"); }),
            (Sent{"entry", static_cast<long>(dir), ""}));
  EXPECT_EQ(Request([&] { ops_.lookup(FakeRequest(), dir, "mem"); }),
            (Sent{"entry", static_cast<long>(File(dir, NodeKind::kMem)), ""}));
  EXPECT_EQ(g_entry.attr.st_mode, S_IFREG | 0600);
  EXPECT_EQ(g_entry.attr.st_size, off_t{1} << 32);
  EXPECT_EQ(
      Request([&] { ops_.lookup(FakeRequest(), kRootIno, "host_page_size"); }),
      (Sent{"entry", static_cast<long>(kHostPageSizeIno), ""}));
  EXPECT_EQ(g_entry.attr_timeout, 1.0);
  EXPECT_EQ(Request([&] { ops_.lookup(FakeRequest(), kRootIno, "u"); }),
            Err(ENOENT));
  EXPECT_EQ(Request([&] { ops_.lookup(FakeRequest(), dir, "t"); }),
            Err(ENOENT));
}

TEST_F(TaskFsTest, GetAttrAndSetAttr) {
  const fuse_ino_t dir = MkDir("t");
  const fuse_ino_t mem = File(dir, NodeKind::kMem);
  EXPECT_EQ(Request([&] { ops_.getattr(FakeRequest(), mem, nullptr); }),
            (Sent{"attr", static_cast<long>(mem), ""}));
  EXPECT_EQ(g_attr.st_mode, S_IFREG | 0600);
  struct stat attr {};
  attr.st_mode = S_IFREG | 0640;
  EXPECT_EQ(Request([&] {
              ops_.setattr(FakeRequest(), mem, &attr, FUSE_SET_ATTR_MODE,
                           nullptr);
            }),
            (Sent{"attr", static_cast<long>(mem), ""}));
  EXPECT_EQ(g_attr.st_mode, S_IFREG | 0640);
  // Another user may not; nor may anyone but root give the task away.
  g_ctx.uid = g_ctx.uid + 4242;
  EXPECT_EQ(Request([&] {
              ops_.setattr(FakeRequest(), mem, &attr, FUSE_SET_ATTR_MODE,
                           nullptr);
            }),
            Err(EPERM));
  EXPECT_EQ(Request([&] {
              ops_.setattr(FakeRequest(), mem, &attr, FUSE_SET_ATTR_UID,
                           nullptr);
            }),
            Err(EPERM));
  EXPECT_EQ(Request([&] {
              ops_.setattr(FakeRequest(), dir, &attr, FUSE_SET_ATTR_SIZE,
                           nullptr);
            }),
            Err(EISDIR));
  EXPECT_EQ(Request([&] {
              ops_.setattr(FakeRequest(), kRootIno, &attr, FUSE_SET_ATTR_MODE,
                           nullptr);
            }),
            Err(EPERM));
}

TEST_F(TaskFsTest, ReadDirListsTheRootAndATask) {
  const fuse_ino_t dir = MkDir("t");
  MkDir("u");
  Sent sent =
      Request([&] { ops_.readdir(FakeRequest(), kRootIno, 4096, 0, nullptr); });
  ASSERT_EQ(sent.call, "buf");
  EXPECT_EQ(DirentNames(sent.data),
            (std::vector<std::string>{".", "..", "host_page_size", "t", "u"}));
  sent = Request([&] { ops_.readdir(FakeRequest(), dir, 4096, 2, nullptr); });
  EXPECT_EQ(DirentNames(sent.data),
            (std::vector<std::string>{"mem", "ctl", "maps", "status", "errors",
                                      "core"}));
  // A reply too small for one more entry ends the listing there.
  sent = Request([&] { ops_.readdir(FakeRequest(), dir, 40, 0, nullptr); });
  EXPECT_EQ(DirentNames(sent.data), std::vector<std::string>{"."});
  EXPECT_EQ(Request([&] {
              ops_.readdir(FakeRequest(), File(dir, NodeKind::kMem), 4096, 0,
                           nullptr);
            }),
            Err(ENOTDIR));
}

TEST_F(TaskFsTest, OpenRefusals) {
  const fuse_ino_t dir = MkDir("t");
  fuse_file_info fi{};
  fi.flags = O_RDONLY;
  EXPECT_EQ(Request([&] { ops_.open(FakeRequest(), kRootIno, &fi); }),
            Err(EISDIR));
  EXPECT_EQ(Request([&] { ops_.open(FakeRequest(), dir, &fi); }), Err(EISDIR));
  EXPECT_EQ(Request([&] {
              ops_.open(FakeRequest(), TaskIno(7, NodeKind::kMem), &fi);
            }),
            Err(ENOENT));
  fi.flags = O_RDWR;
  for (NodeKind kind :
       {NodeKind::kMaps, NodeKind::kStatus, NodeKind::kErrors}) {
    EXPECT_EQ(Request([&] { ops_.open(FakeRequest(), File(dir, kind), &fi); }),
              Err(EACCES));
  }
  fi.flags = O_WRONLY;
  EXPECT_EQ(Request([&] { ops_.open(FakeRequest(), kHostPageSizeIno, &fi); }),
            Err(EACCES));
}

TEST_F(TaskFsTest, HostPageSizeIsReadWithoutAnOpenFile) {
  fuse_file_info fi = Open(kHostPageSizeIno, O_RDONLY);
  EXPECT_EQ(fi.fh, 0u);
  EXPECT_EQ(g_open.keep_cache, 1u);
  EXPECT_EQ(Read(kHostPageSizeIno, fi, 100, 0), (Sent{"buf", 5, "4096\n"}));
  EXPECT_EQ(Read(kHostPageSizeIno, fi, 100, 2), (Sent{"buf", 3, "96\n"}));
  EXPECT_EQ(Read(kHostPageSizeIno, fi, 100, 5), (Sent{"buf", 0, ""}));
  EXPECT_EQ(Read(kHostPageSizeIno, fi, 100, -1), Err(EINVAL));
}

TEST_F(TaskFsTest, MemIsWrittenAndReadThroughTheCore) {
  const fuse_ino_t dir = MkDir("t");
  const fuse_ino_t ctl = File(dir, NodeKind::kCtl);
  const fuse_ino_t mem = File(dir, NodeKind::kMem);
  fuse_file_info ctl_fi = Open(ctl, O_RDWR);
  EXPECT_EQ(Write(ctl, ctl_fi, "allocate 0x10000 8K\n", 0),
            (Sent{"write", 20, ""}));
  fuse_file_info fi = Open(mem, O_RDWR);
  EXPECT_EQ(g_open.direct_io, 1u);
  EXPECT_NE(fi.fh, 0u);
  const std::string pages = Page("hello") + Page("world");
  EXPECT_EQ(Write(mem, fi, pages, 0x10000), (Sent{"write", 2 * kPage, ""}));
  EXPECT_EQ(Read(mem, fi, 2 * kPage, 0x10000), (Sent{"buf", 2 * kPage, pages}));
  EXPECT_EQ(Read(mem, fi, kPage, 0x11000), (Sent{"buf", kPage, Page("world")}));
  EXPECT_EQ(Read(mem, fi, 0, 0x10000), (Sent{"buf", 0, ""}));
  EXPECT_EQ(Read(mem, fi, 5, off_t{1} << 32), (Sent{"buf", 0, ""}));
  EXPECT_EQ(Read(mem, fi, 5, -1), Err(EINVAL));
  EXPECT_EQ(Write(mem, fi, Page("x"), -1), Err(EINVAL));
  EXPECT_EQ(ReadText(File(dir, NodeKind::kErrors)), "");
}

TEST_F(TaskFsTest, FailedMemIoIsLoggedAndRecordedBeforeItsReply) {
  const fuse_ino_t dir = MkDir("t");
  const fuse_ino_t mem = File(dir, NodeKind::kMem);
  fuse_file_info fi = Open(mem, O_RDWR);
  EXPECT_EQ(Write(mem, fi, Page("hello"), 0x50000), Err(EFAULT));
  EXPECT_EQ(Read(mem, fi, 4096, 0x60000), Err(EFAULT));
  const std::string errors = ReadText(File(dir, NodeKind::kErrors));
  EXPECT_NE(errors.find("1 " + Uid() +
                        " pwrite 0x50000 0x1000: KERN_INVALID_ADDRESS: "),
            std::string::npos)
      << errors;
  EXPECT_NE(errors.find("2 " + Uid() +
                        " pread 0x60000 0x1000: KERN_INVALID_ADDRESS: "),
            std::string::npos)
      << errors;
  EXPECT_EQ(Logged(),
            "debug: write t 0x50000+0x1000: KERN_INVALID_ADDRESS\n"
            "debug: read t 0x60000+0x1000: KERN_INVALID_ADDRESS\n");
}

TEST_F(TaskFsTest, CtlRunsLinesAndItsResultIsReadFromItsOwnCursor) {
  const fuse_ino_t dir = MkDir("t");
  const fuse_ino_t ctl = File(dir, NodeKind::kCtl);
  fuse_file_info fi = Open(ctl, O_RDWR);
  EXPECT_EQ(Write(ctl, fi, "allocate anywhere 4K\n", 0),
            (Sent{"write", 21, ""}));
  // The file position is past what was written: the offset does not count.
  EXPECT_EQ(Read(ctl, fi, 100, 21), (Sent{"buf", 4, "0x0\n"}));
  EXPECT_EQ(Read(ctl, fi, 100, 25), (Sent{"buf", 0, ""}));
  EXPECT_EQ(Write(ctl, fi, "bogus\n", 21), Err(EINVAL));
  EXPECT_EQ(Read(ctl, fi, 100, 0),
            (Sent{"buf", 28, "error KERN_INVALID_ARGUMENT\n"}));
  EXPECT_EQ(Write(ctl, fi, "allocate 0x0 4K\n", 0), Err(ENOMEM));
}

TEST_F(TaskFsTest, CloseOfCtlRunsTheCutLineAndReportsItsError) {
  const fuse_ino_t dir = MkDir("t");
  const fuse_ino_t ctl = File(dir, NodeKind::kCtl);
  fuse_file_info fi = Open(ctl, O_RDWR);
  EXPECT_EQ(Write(ctl, fi, "allocate 0x10000 4K\nallocate 0x20000 4K", 0),
            (Sent{"write", 39, ""}));
  EXPECT_EQ(Request([&] { ops_.flush(FakeRequest(), ctl, &fi); }), Err(0));
  EXPECT_EQ(ReadText(File(dir, NodeKind::kMaps)),
            "0000000000010000-0000000000011000 rw-/rwx copy\n"
            "0000000000020000-0000000000021000 rw-/rwx copy\n");
  EXPECT_EQ(Write(ctl, fi, "allocate 0x30000 4K\nprotect 0x90000 4K r--", 0),
            (Sent{"write", 42, ""}));
  EXPECT_EQ(Request([&] { ops_.flush(FakeRequest(), ctl, &fi); }), Err(EFAULT));
  EXPECT_EQ(Request([&] { ops_.flush(FakeRequest(), ctl, &fi); }), Err(0));
  fuse_file_info mem_fi = Open(File(dir, NodeKind::kMem), O_RDWR);
  EXPECT_EQ(Request([&] {
              ops_.flush(FakeRequest(), File(dir, NodeKind::kMem), &mem_fi);
            }),
            Err(0));
}

TEST_F(TaskFsTest, OnlyMemAndCtlAreWritten) {
  const fuse_ino_t dir = MkDir("t");
  fuse_file_info fi = Open(File(dir, NodeKind::kMaps), O_RDONLY);
  EXPECT_EQ(Write(File(dir, NodeKind::kMaps), fi, "x", 0), Err(EBADF));
  EXPECT_EQ(Request([&] {
              ops_.write(FakeRequest(), kHostPageSizeIno, "x", 1, 0, nullptr);
            }),
            Err(EBADF));
}

TEST_F(TaskFsTest, GeneratedFilesOfARemovedTaskAreEsrch) {
  const fuse_ino_t dir = MkDir("t");
  const fuse_ino_t status = File(dir, NodeKind::kStatus);
  fuse_file_info fi = Open(status, O_RDONLY);
  Sent sent = Read(status, fi, 8, 0);
  EXPECT_EQ(sent, (Sent{"buf", 8, "name: t\n"}));
  EXPECT_EQ(Request([&] { ops_.rmdir(FakeRequest(), kRootIno, "t"); }), Err(0));
  EXPECT_EQ(Read(status, fi, 8, 8), Err(ESRCH));
  EXPECT_EQ(Read(status, fi, 8, 0), Err(ESRCH));
  // fstat of the open file still has its attributes; a path walk has none.
  EXPECT_EQ(Request([&] { ops_.getattr(FakeRequest(), status, &fi); }),
            (Sent{"attr", static_cast<long>(status), ""}));
  EXPECT_EQ(Request([&] { ops_.lookup(FakeRequest(), kRootIno, "t"); }),
            Err(ENOENT));
  EXPECT_EQ(Request([&] { ops_.release(FakeRequest(), status, &fi); }), Err(0));
  EXPECT_EQ(Request([&] { ops_.getattr(FakeRequest(), status, nullptr); }),
            Err(ENOENT));
}

TEST_F(TaskFsTest, RmDirRefusals) {
  MkDir("t");
  EXPECT_EQ(Request([&] { ops_.rmdir(FakeRequest(), kRootIno, "u"); }),
            Err(ENOENT));
  EXPECT_EQ(
      Request([&] { ops_.rmdir(FakeRequest(), kRootIno, "host_page_size"); }),
      Err(ENOTDIR));
  EXPECT_EQ(Request([&] {
              ops_.rmdir(FakeRequest(), TaskIno(1, NodeKind::kDir), "t");
            }),
            Err(EPERM));
  g_ctx.uid = g_ctx.uid + 4242;
  EXPECT_EQ(Request([&] { ops_.rmdir(FakeRequest(), kRootIno, "t"); }),
            Err(EPERM));
  EXPECT_EQ(fs_.TaskCount(), 1u);
}

TEST_F(TaskFsTest, NamespaceChangesOtherThanMkdirAreRefused) {
  EXPECT_EQ(Request([&] { ops_.unlink(FakeRequest(), kRootIno, "x"); }),
            Err(EPERM));
  EXPECT_EQ(Request([&] { ops_.mknod(FakeRequest(), kRootIno, "x", 0, 0); }),
            Err(EPERM));
  EXPECT_EQ(Request([&] { ops_.symlink(FakeRequest(), "y", kRootIno, "x"); }),
            Err(EPERM));
  EXPECT_EQ(Request([&] { ops_.link(FakeRequest(), 2, kRootIno, "x"); }),
            Err(EPERM));
  EXPECT_EQ(Request([&] {
              ops_.rename(FakeRequest(), kRootIno, "x", kRootIno, "y", 0);
            }),
            Err(EPERM));
  EXPECT_EQ(Request([&] {
              ops_.create(FakeRequest(), kRootIno, "x", 0600, nullptr);
            }),
            Err(EPERM));
}

TEST_F(TaskFsTest, IoctlsRunOnMemAndReturnTheirArgument) {
  const fuse_ino_t dir = MkDir("t");
  const fuse_ino_t mem = File(dir, NodeKind::kMem);
  fuse_file_info fi = Open(mem, O_RDWR);
  const taskfs_vm_allocate in{0x10000, 2 * kPage, 0, 0};
  const Sent sent = Ioctl(mem, fi, TASKFS_IOC_VM_ALLOCATE, in);
  ASSERT_EQ(sent.call, "ioctl");
  EXPECT_EQ(sent.value, 0);
  ASSERT_EQ(sent.data.size(), sizeof(taskfs_vm_allocate));
  taskfs_vm_allocate out;
  std::memcpy(&out, sent.data.data(), sizeof out);
  EXPECT_EQ(out.address, 0x10000u);
  EXPECT_EQ(out.size, 2 * kPage);
  // A command that returns nothing replies with no bytes.
  EXPECT_EQ(Ioctl(mem, fi, TASKFS_IOC_VM_DEALLOCATE,
                  taskfs_vm_deallocate{0x11000, kPage}),
            (Sent{"ioctl", 0, ""}));
  EXPECT_EQ(ReadText(File(dir, NodeKind::kMaps)),
            "0000000000010000-0000000000011000 rw-/rwx copy\n");
}

TEST_F(TaskFsTest, IoctlRefusals) {
  const fuse_ino_t dir = MkDir("t");
  const fuse_ino_t mem = File(dir, NodeKind::kMem);
  const fuse_ino_t ctl = File(dir, NodeKind::kCtl);
  fuse_file_info ro = Open(mem, O_RDONLY);
  const taskfs_vm_allocate allocate{0x10000, kPage, 0, 0};
  // Changing memory needs the file open for writing; vm_region does not.
  EXPECT_EQ(Ioctl(mem, ro, TASKFS_IOC_VM_ALLOCATE, allocate), Err(EBADF));
  EXPECT_EQ(Ioctl(mem, ro, TASKFS_IOC_VM_REGION, taskfs_vm_region{}),
            Err(ENOMEM));
  // Not one of ours, or not on mem.
  EXPECT_EQ(Ioctl(mem, ro, 0x5401u, allocate), Err(ENOTTY));
  fuse_file_info rw = Open(mem, O_RDWR);
  EXPECT_EQ(Ioctl(mem, rw, TASKFS_IOC_VM_ALLOCATE, allocate, sizeof allocate,
                  FUSE_IOCTL_DIR),
            Err(ENOTTY));
  fuse_file_info ctl_fi = Open(ctl, O_RDWR);
  EXPECT_EQ(Ioctl(ctl, ctl_fi, TASKFS_IOC_VM_ALLOCATE, allocate), Err(ENOTTY));
  // Refusals before any decoding are no failure of the task.
  EXPECT_EQ(ReadText(File(dir, NodeKind::kErrors)),
            "1 " + Uid() +
                " ioctl vm_region 0x0: KERN_NO_SPACE: no region at or above "
                "0x0\n");
}

TEST_F(TaskFsTest, AFailedIoctlIsRecordedAsItsDecodedArgument) {
  const fuse_ino_t dir = MkDir("t");
  const fuse_ino_t mem = File(dir, NodeKind::kMem);
  fuse_file_info fi = Open(mem, O_RDWR);
  EXPECT_EQ(Ioctl(mem, fi, TASKFS_IOC_VM_COPY,
                  taskfs_vm_copy{0x90000, kPage, 0x10000}),
            Err(EFAULT));
  // A short argument is named by its number and size.
  EXPECT_EQ(Ioctl(mem, fi, TASKFS_IOC_VM_COPY,
                  taskfs_vm_copy{0x90000, kPage, 0x10000}, 8),
            Err(EINVAL));
  const std::string errors = ReadText(File(dir, NodeKind::kErrors));
  EXPECT_EQ(errors.rfind("1 " + Uid() +
                             " ioctl vm_copy 0x90000 0x1000 0x10000: "
                             "KERN_INVALID_ADDRESS: ",
                         0),
            0u)
      << errors;
  EXPECT_NE(errors.find(fmt::format(
                "2 {} ioctl {:#x} of 8 bytes: KERN_INVALID_ARGUMENT: the "
                "argument is 8 bytes, the command takes 24\n",
                Uid(), TASKFS_IOC_VM_COPY)),
            std::string::npos)
      << errors;
  EXPECT_EQ(Logged(), fmt::format("debug: ioctl t {:#x}+0x18: "
                                  "KERN_INVALID_ADDRESS\n"
                                  "debug: ioctl t {:#x}+0x8: "
                                  "KERN_INVALID_ARGUMENT\n",
                                  TASKFS_IOC_VM_COPY, TASKFS_IOC_VM_COPY));
}

TEST_F(TaskFsTest, VmMapCopyCopiesFromAnotherTaskAndTellsItOfAFailure) {
  const fuse_ino_t t = MkDir("t");
  const fuse_ino_t src = MkDir("src");
  const fuse_ino_t mem = File(t, NodeKind::kMem);
  const fuse_ino_t src_mem = File(src, NodeKind::kMem);
  fuse_file_info fi = Open(mem, O_RDWR);
  fuse_file_info src_fi = Open(src_mem, O_RDWR);
  ASSERT_EQ(Ioctl(src_mem, src_fi, TASKFS_IOC_VM_ALLOCATE,
                  taskfs_vm_allocate{0x40000, kPage, 0, 0})
                .value,
            0);
  EXPECT_EQ(Write(src_mem, src_fi, Page("secret"), 0x40000),
            (Sent{"write", kPage, ""}));
  EXPECT_EQ(Ioctl(mem, fi, TASKFS_IOC_VM_MAP_COPY,
                  taskfs_vm_map_copy{IdOf(src), 0x40000, kPage, 0x10000,
                                     TASKFS_VM_MAP_COPY_DST_ALLOC, 0}),
            (Sent{"ioctl", 0, ""}));
  EXPECT_EQ(Read(mem, fi, kPage, 0x10000),
            (Sent{"buf", kPage, Page("secret")}));
  // A failure once the source was found goes to its errors file too.
  EXPECT_EQ(Ioctl(mem, fi, TASKFS_IOC_VM_MAP_COPY,
                  taskfs_vm_map_copy{IdOf(src), 0x50000, kPage, 0x20000,
                                     TASKFS_VM_MAP_COPY_DST_ALLOC, 0}),
            Err(EFAULT));
  const std::string source_errors = ReadText(File(src, NodeKind::kErrors));
  EXPECT_EQ(source_errors.rfind(
                fmt::format("1 {} vm_map_copy 0x50000 0x1000 into task id {} "
                            "at 0x20000 alloc: KERN_INVALID_ADDRESS: ",
                            Uid(), IdOf(t)),
                0),
            0u)
      << source_errors;
  const std::string errors = ReadText(File(t, NodeKind::kErrors));
  EXPECT_EQ(errors.rfind(fmt::format("1 {} ioctl vm_map_copy task {} 0x50000 "
                                     "0x1000 0x20000 flags 0x1: "
                                     "KERN_INVALID_ADDRESS: ",
                                     Uid(), IdOf(src)),
                         0),
            0u)
      << errors;
  // No such task: nothing to tell.
  EXPECT_EQ(Ioctl(mem, fi, TASKFS_IOC_VM_MAP_COPY,
                  taskfs_vm_map_copy{99, 0x40000, kPage, 0x30000, 0, 0}),
            Err(ESRCH));
  EXPECT_EQ(ReadText(File(src, NodeKind::kErrors)), source_errors);
}

TEST_F(TaskFsTest, LseekFindsDataAndHolesInMemOnly) {
  const fuse_ino_t dir = MkDir("t");
  const fuse_ino_t mem = File(dir, NodeKind::kMem);
  fuse_file_info fi = Open(mem, O_RDWR);
  ASSERT_EQ(Ioctl(mem, fi, TASKFS_IOC_VM_ALLOCATE,
                  taskfs_vm_allocate{0x10000, kPage, 0, 0})
                .value,
            0);
  EXPECT_EQ(Write(mem, fi, Page("data"), 0x10000), (Sent{"write", kPage, ""}));
  EXPECT_EQ(Request([&] { ops_.lseek(FakeRequest(), mem, 0, SEEK_DATA, &fi); }),
            (Sent{"lseek", 0x10000, ""}));
  EXPECT_EQ(
      Request([&] { ops_.lseek(FakeRequest(), mem, 0x10000, SEEK_HOLE, &fi); }),
      (Sent{"lseek", 0x11000, ""}));
  EXPECT_EQ(
      Request([&] { ops_.lseek(FakeRequest(), mem, 0x11000, SEEK_DATA, &fi); }),
      Err(ENXIO));
  EXPECT_EQ(Request([&] { ops_.lseek(FakeRequest(), mem, 0, SEEK_SET, &fi); }),
            Err(EINVAL));
  EXPECT_EQ(
      Request([&] { ops_.lseek(FakeRequest(), mem, -1, SEEK_DATA, &fi); }),
      Err(ENXIO));
  EXPECT_EQ(Request([&] {
              ops_.lseek(FakeRequest(), mem, off_t{1} << 32, SEEK_HOLE, &fi);
            }),
            Err(ENXIO));
  fuse_file_info ctl_fi = Open(File(dir, NodeKind::kCtl), O_RDWR);
  EXPECT_EQ(Request([&] {
              ops_.lseek(FakeRequest(), File(dir, NodeKind::kCtl), 0, SEEK_DATA,
                         &ctl_fi);
            }),
            Err(ENXIO));
}

TEST_F(TaskFsTest, StatFsCountsTheLimitAndTheTasks) {
  MkDir("t");
  EXPECT_EQ(Request([&] { ops_.statfs(FakeRequest(), kRootIno); }),
            (Sent{"statfs", 0, ""}));
  EXPECT_EQ(g_statfs.f_bsize, kPage);
  EXPECT_EQ(g_statfs.f_blocks, 16384u);
  EXPECT_EQ(g_statfs.f_files, 8u);
  EXPECT_EQ(g_statfs.f_ffree, 7u);
  EXPECT_EQ(g_statfs.f_namemax, 64u);
}

TEST_F(TaskFsTest, ReleaseFreesTheFile) {
  const fuse_ino_t dir = MkDir("t");
  const fuse_ino_t mem = File(dir, NodeKind::kMem);
  const std::shared_ptr<vm::Task> task = system_.FindTask("t");
  const long base = task.use_count();
  fuse_file_info fi = Open(mem, O_RDWR);
  EXPECT_EQ(task.use_count(), base + 1);
  EXPECT_EQ(Request([&] { ops_.release(FakeRequest(), mem, &fi); }), Err(0));
  EXPECT_EQ(task.use_count(), base);
  EXPECT_EQ(Request([&] { ops_.fsync(FakeRequest(), mem, 0, nullptr); }),
            Err(0));
}

}  // namespace
}  // namespace taskfs::fs
