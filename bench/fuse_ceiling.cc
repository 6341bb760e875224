// fuse_ceiling: the fastest a taskfs-shaped FUSE file can be on this machine.
//
// A minimal low-level FUSE server with taskfs's settings (docs/reference.md
// §5): one regular file `mem` of 2^40 bytes, opened with direct_io, served by
// the multithreaded loop with taskfs's request size (fs/fuse_channel.h: the
// mount's max_read, max_write and the INIT reply's max_pages, 512 KiB under
// the kernel's default fs.fuse.max_pages_limit), no readahead, no splice,
// default_permissions. A read replies from a static buffer of zeros
// with fuse_reply_buf; a write is discarded and replies its size. No state,
// no locks: whatever time a request takes here is the cost of FUSE itself
// (kernel, /dev/fuse, libfuse), which bench/perf_compare.py divides taskfs's
// figures by.
//
// With -o store_mib=N (N >= 1) it is instead the least a server that keeps
// data can do: a read replies with fuse_reply_buf from an N MiB buffer, all
// written at startup, at the request's offset modulo N MiB, and a write
// copies its bytes there with one memcpy. A 1 MiB static buffer stays in the
// CPU cache; N MiB of distinct memory, like a task's pages, does not. The
// contents are never checked, so concurrent writes are not ordered.
//
// With -o splice, writes arrive through a pipe (FUSE_CAP_SPLICE_READ) and a
// write_buf handler reads them straight into the store (or drains them):
// one copy of each written byte instead of two, for the price of a splice
// and a read system call on every request. It measures what taskfs would
// gain and lose with the same path.
//
// With -o land (and store_mib), a request is read from /dev/fuse with
// readv: its first 80 bytes (a write's headers) into libfuse's buffer, the
// rest straight into the store's next request-sized slot, round robin. A
// write's bytes then are copied once, by the kernel, into memory that is not
// in the cache, as a server whose request reads land in fresh pages that
// become the file's would copy them; other requests' rest is copied back.
//
//   fuse_ceiling MOUNTPOINT [-f] [-s] [-d] [-o clone_fd] [-o
//   max_idle_threads=N]
//                [-o store_mib=N] [-o splice] [-o land]
//
// SIGINT, SIGTERM or `fusermount3 -u MOUNTPOINT` unmounts; the exit status is
// 0 then, 1 if the session could not start.
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>

#include "fs/fuse_channel.h"

namespace {

constexpr fuse_ino_t kRootIno = FUSE_ROOT_ID;
constexpr fuse_ino_t kMemIno = 2;
constexpr const char* kMemName = "mem";
constexpr off_t kMemSize = off_t{1} << 40;
constexpr std::size_t kMaxRequest = std::size_t{1} << 20;
constexpr double kCacheSeconds = 1.0;

// What every read replies with; never written.
alignas(4096) const char kZeros[kMaxRequest] = {};

// Constant after main starts the session.
timespec g_started;
char* g_store = nullptr;       // -o store_mib: the buffer, or null
std::size_t g_store_size = 0;  // its size, a multiple of kMaxRequest
bool g_splice = false;         // -o splice
std::uint32_t g_max_request = kMaxRequest;  // taskfs's request size
bool g_land = false;                        // -o land

// Where a request of n <= kMaxRequest bytes at off lands in the store.
char* StoreAt(off_t off, std::size_t n) {
  std::size_t at = static_cast<std::size_t>(off) % g_store_size;
  if (at + n > g_store_size) at = g_store_size - n;
  return g_store + at;
}

bool Attr(fuse_ino_t ino, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
  st->st_atim = st->st_mtim = st->st_ctim = g_started;
  if (ino == kRootIno) {
    st->st_ino = kRootIno;
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return true;
  }
  if (ino == kMemIno) {
    st->st_ino = kMemIno;
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    st->st_size = kMemSize;
    st->st_blksize = 4096;
    return true;
  }
  return false;
}

void Init(void*, fuse_conn_info* conn) {
  // As taskfs: its request size, no readahead, no splice.
  conn->max_read = g_max_request;
  conn->max_write = g_max_request;
  conn->max_readahead = 0;
  conn->want &=
      ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  if (g_splice && (conn->capable & FUSE_CAP_SPLICE_READ) != 0) {
    conn->want |= FUSE_CAP_SPLICE_READ;
  }
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  if (parent != kRootIno || std::strcmp(name, kMemName) != 0) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  Attr(kMemIno, &e.attr);
  e.ino = kMemIno;
  e.attr_timeout = kCacheSeconds;
  e.entry_timeout = kCacheSeconds;
  fuse_reply_entry(req, &e);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st;
  if (!Attr(ino, &st)) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_reply_attr(req, &st, kCacheSeconds);
}

// Accepts truncate (O_TRUNC) and time changes and changes nothing, as taskfs.
void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat*, int,
             fuse_file_info* fi) {
  GetAttr(req, ino, fi);
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
             fuse_file_info*) {
  if (ino != kRootIno) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  struct Entry {
    const char* name;
    fuse_ino_t ino;
    mode_t type;
  };
  const Entry entries[] = {{".", kRootIno, S_IFDIR},
                           {"..", kRootIno, S_IFDIR},
                           {kMemName, kMemIno, S_IFREG}};
  char buf[512];
  const std::size_t room = size < sizeof buf ? size : sizeof buf;
  std::size_t used = 0;
  for (off_t i = off; i < 3; ++i) {
    struct stat st;
    std::memset(&st, 0, sizeof st);
    st.st_ino = entries[i].ino;
    st.st_mode = entries[i].type;
    const std::size_t need = fuse_add_direntry(req, buf + used, room - used,
                                               entries[i].name, &st, i + 1);
    if (need > room - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf, used);
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino != kMemIno) {
    fuse_reply_err(req, ino == kRootIno ? EISDIR : ENOENT);
    return;
  }
  fi->direct_io = 1;
  fi->keep_cache = 0;
  fuse_reply_open(req, fi);
}

void Read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info*) {
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  if (off >= kMemSize) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  std::size_t n = size < kMaxRequest ? size : kMaxRequest;
  if (static_cast<std::uint64_t>(kMemSize - off) < n) {
    n = static_cast<std::size_t>(kMemSize - off);
  }
  fuse_reply_buf(req, g_store != nullptr ? StoreAt(off, n) : kZeros, n);
}

// -o land: reads a request, a write's bytes landing in the store.
ssize_t LandingRead(int fd, void* buf, size_t len) {
  constexpr std::size_t kHeaders =
      sizeof(fuse_in_header) + sizeof(fuse_write_in);
  // Request-sized slots, at least as many as 2 GiB of store has (4,096 of
  // 512 KiB), so concurrent requests land apart.
  static std::atomic<std::size_t> next{0};
  const std::size_t slots = g_store_size / g_max_request;
  char* land = g_store + next.fetch_add(1) % slots * g_max_request;
  iovec iov[2] = {{buf, kHeaders}, {land, len - kHeaders}};
  const ssize_t n = ::readv(fd, iov, 2);
  if (n > static_cast<ssize_t>(kHeaders)) {
    fuse_in_header in;
    std::memcpy(&in, buf, sizeof in);
    if (in.opcode != FUSE_WRITE) {
      std::memcpy(static_cast<char*>(buf) + kHeaders, land,
                  static_cast<std::size_t>(n) - kHeaders);
    }
  }
  return n;
}

void Write(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off,
           fuse_file_info*) {
  if (g_land) {  // the bytes are in the store already
    fuse_reply_write(req, size);
    return;
  }
  if (g_store != nullptr && off >= 0) {
    for (std::size_t done = 0; done < size; done += kMaxRequest) {
      const std::size_t n =
          size - done < kMaxRequest ? size - done : kMaxRequest;
      std::memcpy(StoreAt(off + static_cast<off_t>(done), n), buf + done, n);
    }
  }
  fuse_reply_write(req, size);
}

// -o splice: the data may be in a pipe; one read(2) moves it to its place.
void WriteBuf(fuse_req_t req, fuse_ino_t, fuse_bufvec* in, off_t off,
              fuse_file_info*) {
  static thread_local char* discard =
      static_cast<char*>(std::aligned_alloc(4096, kMaxRequest));
  const std::size_t size = fuse_buf_size(in);
  std::size_t done = 0;
  while (done < size) {
    const std::size_t n = size - done < kMaxRequest ? size - done : kMaxRequest;
    char* to = g_store != nullptr && off >= 0
                   ? StoreAt(off + static_cast<off_t>(done), n)
                   : discard;
    fuse_bufvec out = FUSE_BUFVEC_INIT(n);
    out.buf[0].mem = to;
    const ssize_t got =
        fuse_buf_copy(&out, in, static_cast<fuse_buf_copy_flags>(0));
    if (got <= 0) {
      fuse_reply_err(req, got < 0 ? static_cast<int>(-got) : EIO);
      return;
    }
    done += static_cast<std::size_t>(got);
  }
  fuse_reply_write(req, size);
}

void Fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  fuse_reply_err(req, 0);
}

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof ops);
  ops.init = Init;
  ops.lookup = Lookup;
  ops.getattr = GetAttr;
  ops.setattr = SetAttr;
  ops.readdir = ReadDir;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  if (g_splice) ops.write_buf = WriteBuf;
  ops.fsync = Fsync;
  return ops;
}

// -o store_mib=N, parsed before libfuse sees the arguments.
struct CeilingOptions {
  unsigned store_mib = 0;
  int splice = 0;
  int land = 0;
};
const fuse_opt kCeilingOpts[] = {
    {"store_mib=%u", offsetof(CeilingOptions, store_mib), 0},
    {"splice", offsetof(CeilingOptions, splice), 1},
    {"land", offsetof(CeilingOptions, land), 1},
    FUSE_OPT_END,
};

struct ArgsDeleter {
  void operator()(fuse_args* args) const { fuse_opt_free_args(args); }
};
struct SessionDeleter {
  void operator()(fuse_session* se) const { fuse_session_destroy(se); }
};

}  // namespace

int main(int argc, char** argv) {
  fuse_args args = FUSE_ARGS_INIT(argc, argv);
  std::unique_ptr<fuse_args, ArgsDeleter> args_owner(&args);
  CeilingOptions ceiling;
  if (fuse_opt_parse(&args, &ceiling, kCeilingOpts, nullptr) != 0) return 1;
  fuse_cmdline_opts opts;
  std::memset(&opts, 0, sizeof opts);
  if (fuse_parse_cmdline(&args, &opts) != 0) return 1;
  std::unique_ptr<char, decltype(&std::free)> mountpoint(opts.mountpoint,
                                                         &std::free);
  if (opts.show_help || mountpoint == nullptr) {
    std::printf("usage: %s MOUNTPOINT [options]\n", argv[0]);
    fuse_cmdline_help();
    return mountpoint == nullptr && !opts.show_help ? 1 : 0;
  }
  if (opts.show_version) {
    std::printf("fuse_ceiling (libfuse %s)\n", fuse_pkgversion());
    return 0;
  }
  // taskfs always mounts with default_permissions: the same kernel checks.
  for (const char* extra : {"-odefault_permissions", "-osubtype=ceiling",
                            "-ofsname=fuse_ceiling"}) {
    if (fuse_opt_add_arg(&args, extra) != 0) return 1;
  }
  // The same request size as taskfs with 4 KiB task pages.
  const taskfs::fs::RequestLimits limits =
      taskfs::fs::RequestLimitsForThisHost(4096);
  g_max_request = limits.max_bytes;
  const std::string max_read = "-omax_read=" + std::to_string(limits.max_bytes);
  if (fuse_opt_add_arg(&args, max_read.c_str()) != 0) return 1;
  clock_gettime(CLOCK_REALTIME, &g_started);
  g_splice = ceiling.splice != 0;
  if (ceiling.land != 0 && ceiling.store_mib < 64) {
    std::fprintf(stderr,
                 "fuse_ceiling: -o land needs -o store_mib=64 or more\n");
    return 1;
  }
  g_land = ceiling.land != 0;
  if (ceiling.store_mib != 0) {
    g_store_size = std::size_t{ceiling.store_mib} * kMaxRequest;
    void* store = mmap(nullptr, g_store_size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (store == MAP_FAILED) {
      std::fprintf(stderr, "fuse_ceiling: store of %u MiB: %s\n",
                   ceiling.store_mib, std::strerror(errno));
      return 1;
    }
    g_store = static_cast<char*>(store);
    std::memset(g_store, 0x5a, g_store_size);  // resident, as written pages
  }

  static const fuse_lowlevel_ops ops = MakeOperations();
  std::unique_ptr<fuse_session, SessionDeleter> session(
      fuse_session_new(&args, &ops, sizeof ops, nullptr));
  if (session == nullptr) return 1;
  if (fuse_set_signal_handlers(session.get()) != 0) return 1;
  if (fuse_session_mount(session.get(), mountpoint.get()) != 0) {
    fuse_remove_signal_handlers(session.get());
    return 1;
  }
  if (taskfs::fs::UseRequestLimits(session.get(), limits,
                                   g_land ? LandingRead : nullptr) != 0) {
    fuse_session_unmount(session.get());
    fuse_remove_signal_handlers(session.get());
    return 1;
  }
  fuse_daemonize(opts.foreground);

  int result;
  if (opts.singlethread) {
    result = fuse_session_loop(session.get());
  } else {
    fuse_loop_config* config = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(config, opts.clone_fd);
    if (opts.max_idle_threads <= 100000) {
      fuse_loop_cfg_set_idle_threads(config, opts.max_idle_threads);
    }
    if (opts.max_threads >= 1 && opts.max_threads <= 100000) {
      fuse_loop_cfg_set_max_threads(config, opts.max_threads);
    }
    result = fuse_session_loop_mt(session.get(), config);
    fuse_loop_cfg_destroy(config);
  }
  fuse_session_unmount(session.get());
  fuse_remove_signal_handlers(session.get());
  return result < 0 ? 1 : 0;
}
