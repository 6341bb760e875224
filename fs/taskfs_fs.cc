#include "fs/taskfs_fs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fs/access.h"
#include "fs/attributes.h"
#include "fs/core_file.h"
#include "fs/ctl_command.h"
#include "fs/ctl_stream.h"
#include "fs/directory.h"
#include "fs/dispatch.h"
#include "fs/errno_map.h"
#include "fs/failure_report.h"
#include "fs/generated_files.h"
#include "fs/inode.h"
#include "fs/ioctl_handler.h"
#include "fs/render.h"
#include "vmcore/pinned_pages.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {

// The handlers' way to the state TaskFs keeps private.
struct Handlers {
  static NodeTable& Nodes(TaskFs& fs) { return fs.nodes_; }
  static OpenFileTable& Files(TaskFs& fs) { return fs.files_; }
  static const timespec& MountedAt(const TaskFs& fs) { return fs.mounted_at_; }
};

namespace {

using vm::KernReturn;

static_assert(kRootIno == FUSE_ROOT_ID);

NodeTable& Nodes(TaskFs& fs) { return Handlers::Nodes(fs); }
OpenFileTable& Files(TaskFs& fs) { return Handlers::Files(fs); }

Attributes Attrs(TaskFs& fs) {
  return Attributes(fs.system(), Nodes(fs), fs.daemon_uid(), fs.daemon_gid(),
                    Handlers::MountedAt(fs));
}
Directory Names(TaskFs& fs) { return Directory(fs.system(), Nodes(fs)); }
FailureReport Report(TaskFs& fs) { return FailureReport(fs.log(), Nodes(fs)); }
// The report of a request's failure, which becomes its calling thread's
// last failure on the file (TASKFS_IOC_LAST_REASON).
FailureReport Report(Reply& r) {
  return FailureReport(r.fs().log(), Nodes(r.fs()), r.ctx()->pid);
}

OpenFile* File(fuse_file_info* fi) {
  return fi == nullptr ? nullptr : reinterpret_cast<OpenFile*>(fi->fh);
}

// The rights of a file opened by req: its caller's identity, with the
// groups and capabilities where they can ever matter (a mem or ctl file,
// whose ctl commands and ioctls reach other tasks).
Credentials OpenerOf(fuse_req_t req, NodeKind kind) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  if (kind == NodeKind::kMem || kind == NodeKind::kCtl) {
    return ReadCredentials(ctx->pid, ctx->uid, ctx->gid);
  }
  return Credentials{ctx->uid, ctx->gid, {}, false, false, false};
}

// What a ctl command or an ioctl on file may do beyond its own task: what
// the file's opener may do, whoever sends the request. The context refers
// to fs and file: use it only while the request runs.
ExecContext OpenerContext(TaskFs& fs, const OpenFile& file) {
  ExecContext context;
  context.system = &fs.system();
  context.may_access = [&fs, &file](vm::Task& other, bool write) {
    return OpenerMayAccess(file.opener, Nodes(fs), other, write);
  };
  context.on_task_created = [&fs,
                             &file](const std::shared_ptr<vm::Task>& task) {
    fs.AddTask(task, file.opener.uid, file.opener.gid);
  };
  context.on_source_failure =
      [&fs, &file](vm::Task& source, const MapCopyArgs& args, KernReturn kr) {
        Report(fs).Source(file, source, args, kr);
      };
  context.on_remap_source_failure =
      [&fs, &file](vm::Task& source, const RemapArgs& args, KernReturn kr) {
        Report(fs).Source(file, source, args, kr);
      };
  return context;
}

Replied ReplyEntry(Reply& r, fuse_ino_t ino) {
  fuse_entry_param e;
  const int error = Attrs(r.fs()).Entry(ino, &e);
  return error != 0 ? r.Err(error) : r.Entry(e);
}

Replied ReplyText(Reply& r, std::string_view text) {
  return text.empty() ? r.Buf(nullptr, 0) : r.Buf(text.data(), text.size());
}

// --- handlers --------------------------------------------------------------

// Not a request: no reply.
void Init(void* userdata, fuse_conn_info* conn) {
  // Page-multiple requests from any buffer (docs/reference.md §5): the mount's
  // max_read is the same, and fs/fuse_channel.h sets max_pages.
  const std::uint32_t max_request =
      static_cast<TaskFs*>(userdata)->max_request();
  conn->max_read = max_request;  // libfuse wants it equal to the mount's
  conn->max_write = max_request;
  conn->max_readahead = 0;
  // Writes arrive whole in the request buffer; no splice games.
  conn->want &=
      ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
}

// Inode numbers are computed (fs/inode.h): there is no lookup count to drop.
Replied Forget(Reply& r, fuse_ino_t, uint64_t) { return r.None(); }
Replied ForgetMulti(Reply& r, size_t, fuse_forget_data*) { return r.None(); }

Replied Lookup(Reply& r, fuse_ino_t parent, const char* name) {
  Ino ino = 0;
  const int error = Names(r.fs()).Lookup(parent, name, &ino);
  return error != 0 ? r.Err(error) : ReplyEntry(r, ino);
}

Replied GetAttr(Reply& r, fuse_ino_t ino, fuse_file_info*) {
  struct stat st;
  const int error = Attrs(r.fs()).Get(ino, &st, /*last=*/true);
  return error != 0 ? r.Err(error) : r.Attr(st, Attributes::Seconds(ino));
}

Replied SetAttr(Reply& r, fuse_ino_t ino, struct stat* attr, int to_set,
                fuse_file_info*) {
  const int error = Attrs(r.fs()).Set(ino, r.ctx()->uid, *attr, to_set);
  return error != 0 ? r.Err(error) : GetAttr(r, ino, nullptr);
}

Replied ReadDir(Reply& r, fuse_ino_t ino, size_t size, off_t off,
                fuse_file_info*) {
  std::vector<char> buf(size);
  std::size_t used = 0;
  // Adds one entry; false when the buffer is full.
  const int error =
      Names(r.fs()).List(ino, off, size, [&](const DirEntry& entry) {
        struct stat st;
        std::memset(&st, 0, sizeof st);
        st.st_ino = entry.ino;
        st.st_mode = entry.type;
        const std::size_t need =
            fuse_add_direntry(r.req(), buf.data() + used, size - used,
                              entry.name, &st, entry.next);
        if (need > size - used) return false;
        used += need;
        return true;
      });
  return error != 0 ? r.Err(error) : r.Buf(buf.data(), used);
}

Replied MkDir(Reply& r, fuse_ino_t parent, const char* name, mode_t) {
  TaskFs& fs = r.fs();
  if (parent != kRootIno) return r.Err(EPERM);
  if (!vm::VmSystem::ValidTaskName(name)) return r.Err(EINVAL);
  vm::KernResult<std::shared_ptr<vm::Task>> created =
      vm::task_create(fs.system(), name);
  if (!created.ok()) {
    Report(fs).Untracked("mkdir", name, created.code());
    return r.Err(ErrnoFromKern(created.code()));
  }
  const std::shared_ptr<vm::Task>& task = created.value();
  fs.AddTask(task, r.ctx()->uid, r.ctx()->gid);
  return ReplyEntry(r, TaskIno(task->id(), NodeKind::kDir));
}

Replied RmDir(Reply& r, fuse_ino_t parent, const char* name) {
  TaskFs& fs = r.fs();
  TaskNode node;
  if (parent != kRootIno) return r.Err(EPERM);
  if (!Names(fs).FindTask(name, &node)) {
    return r.Err(std::string_view(name) == "host_page_size" ? ENOTDIR : ENOENT);
  }
  const uid_t caller = r.ctx()->uid;
  if (caller != 0 && caller != node.uid) return r.Err(EPERM);
  const KernReturn kr = vm::task_terminate(fs.system(), *node.task);
  Nodes(fs).Remove(node.task->id());
  // Failure: someone else removed it first.
  return r.Err(kr == vm::KERN_SUCCESS ? 0 : ENOENT);
}

Replied Unlink(Reply& r, fuse_ino_t, const char*) { return r.Err(EPERM); }
Replied MkNod(Reply& r, fuse_ino_t, const char*, mode_t, dev_t) {
  return r.Err(EPERM);
}
Replied SymLink(Reply& r, const char*, fuse_ino_t, const char*) {
  return r.Err(EPERM);
}
Replied Link(Reply& r, fuse_ino_t, fuse_ino_t, const char*) {
  return r.Err(EPERM);
}
Replied Rename(Reply& r, fuse_ino_t, const char*, fuse_ino_t, const char*,
               unsigned int) {
  return r.Err(EPERM);
}
Replied Create(Reply& r, fuse_ino_t, const char*, mode_t, fuse_file_info*) {
  return r.Err(EPERM);
}

// The generated files and host_page_size are read-only for everyone: an
// open for writing is refused (docs/reference.md §4), for root too, whom the
// kernel's default_permissions lets past their modes.
bool ReadOnlyFile(const Where& w) {
  return w.host_page_size || w.kind == NodeKind::kMaps ||
         w.kind == NodeKind::kStatus || w.kind == NodeKind::kErrors ||
         w.kind == NodeKind::kCore;
}

// A core file's snapshot, taken at open (docs/reference.md §10), and the
// charge for its layout; an errno, with the reason in the errors file, if
// the task is gone or the memory limit refuses either.
int OpenCore(TaskFs& fs, OpenFile& file) {
  vm::KernResult<std::shared_ptr<const CoreFile>> core =
      CoreFile::Take(*file.task);
  KernReturn kr = core.code();
  if (core.ok()) {
    const CoreLayout& layout = core.value()->layout;
    const std::size_t bytes = sizeof(CoreFile) + layout.header.capacity() +
                              layout.segments.capacity() * sizeof(CoreSegment);
    if (file.account.TryCharge(bytes, /*use_reserve=*/false)) {
      file.core = std::move(core).value();
      file.core_charge = bytes;
      return 0;
    }
    kr = vm::KERN_RESOURCE_SHORTAGE;
  }
  Report(fs).Task(file, {"open", kr, "core snapshot"},
                  [] { return std::string("open core"); });
  return ErrnoFromKern(kr);
}

Replied Open(Reply& r, fuse_ino_t ino, fuse_file_info* fi) {
  TaskFs& fs = r.fs();
  const Where w = Decode(ino);
  if (w.root ||
      (!w.host_page_size && ValidTaskPath(w) && w.kind == NodeKind::kDir)) {
    return r.Err(EISDIR);
  }
  if (!w.host_page_size && !ValidTaskPath(w)) return r.Err(ENOENT);
  if (ReadOnlyFile(w) && (fi->flags & O_ACCMODE) != O_RDONLY) {
    return r.Err(EACCES);
  }
  if (w.host_page_size) {
    fi->fh = 0;
    fi->keep_cache = 1;
    return r.Open(*fi);
  }
  TaskNode node;
  if (!Nodes(fs).Pin(w.id, &node)) return r.Err(ENOENT);
  NodePin pin(Nodes(fs), w.id);
  // No page cache: every read and write is one request to the core, and the
  // generated files are fresh on each read from offset 0.
  fi->direct_io = 1;
  fi->keep_cache = 0;
  // The file's rights are its opener's, fixed now (fs/access.h).
  auto made =
      std::make_unique<OpenFile>(node.task, node.errors, w.kind, fi->flags,
                                 OpenerOf(r.req(), w.kind), std::move(pin));
  if (w.kind == NodeKind::kCore) {
    const int error = OpenCore(fs, *made);
    if (error != 0) return r.Err(error);
  }
  OpenFile* const file = Files(fs).Adopt(std::move(made));
  fi->fh = reinterpret_cast<std::uint64_t>(file);
  const Replied done = r.Open(*fi);
  // An interrupted open gets no release.
  if (done.result() != 0) Files(fs).Forget(file);
  return done;
}

Replied Release(Reply& r, fuse_ino_t, fuse_file_info* fi) {
  if (OpenFile* file = File(fi)) Files(r.fs()).Forget(file);
  return r.Err(0);
}

Replied ReadMem(Reply& r, OpenFile& file, size_t size, off_t off) {
  const std::uint64_t address = static_cast<std::uint64_t>(off);
  if (size == 0 || address >= r.fs().system().address_limit()) {
    return r.Buf(nullptr, 0);  // end of file
  }
  // One per thread, so the hot path allocates nothing once warm.
  thread_local vm::PinnedPages pinned;
  const KernReturn kr = vm::vm_read_pinned(*file.task, address, size, &pinned);
  if (kr != vm::KERN_SUCCESS) {
    Report(r).Task(file, {"read", kr, address, size}, [&] {
      return fmt::format("pread {:#x} {:#x}", address, size);
    });
    return r.Err(ErrnoFromKern(kr));
  }
  // The pins keep the snapshot alive until the reply has been written.
  const std::vector<iovec>& iov = pinned.iov();
  const Replied done =
      iov.size() == 1 ? r.Buf(static_cast<const char*>(iov[0].iov_base),
                              iov[0].iov_len)  // no iovec array to allocate
                      : r.Iov(iov.data(), static_cast<int>(iov.size()));
  pinned.Release();
  return done;
}

// A read of the core: the header's bytes, zeros for padding and never-written
// pages, and the snapshot's pages themselves, with no copy but the reply's.
Replied ReadCore(Reply& r, OpenFile& file, size_t size, off_t off) {
  static const char kZeros[64 * 1024] = {};
  // Held until the reply is written: the reader has its bytes as soon as
  // the kernel has the reply, so the file's release can come in while this
  // thread is still in writev, and the reply points at the header's bytes.
  const std::shared_ptr<const CoreFile> held = file.core;
  const CoreFile& core = *held;
  const std::vector<CorePiece> pieces =
      CorePieces(core.layout, static_cast<std::uint64_t>(off), size);
  if (pieces.empty()) return r.Buf(nullptr, 0);  // end of file
  const std::uint64_t mask = core.snapshot->geometry().page_size() - 1;
  std::vector<std::unique_ptr<vm::PinnedPages>> pins;
  std::vector<iovec> iov;
  for (const CorePiece& piece : pieces) {
    if (piece.kind == CorePiece::kHeader) {
      iov.push_back(
          {const_cast<char*>(core.layout.header.data()) + piece.offset,
           piece.size});
      continue;
    }
    if (piece.kind == CorePiece::kZeros) {
      for (std::uint64_t done = 0; done < piece.size;) {
        const std::uint64_t n =
            std::min<std::uint64_t>(sizeof kZeros, piece.size - done);
        iov.push_back({const_cast<char*>(kZeros), n});
        done += n;
      }
      continue;
    }
    // The pages that hold the piece, pinned, then trimmed to it.
    const CoreSegment& segment = *piece.segment;
    const vm::vm_address_t address =
        segment.address + (piece.offset - segment.offset);
    const vm::vm_address_t first = address & ~mask;
    const vm::vm_address_t last = (address + piece.size + mask) & ~mask;
    pins.push_back(std::make_unique<vm::PinnedPages>());
    const KernReturn kr = vm::vm_read_pinned(*core.snapshot, first,
                                             last - first, pins.back().get());
    if (kr != vm::KERN_SUCCESS) {
      Report(r.fs()).Task(file, {"read", kr, address, piece.size}, [&] {
        return fmt::format("pread core {:#x} {:#x}", piece.offset, piece.size);
      });
      return r.Err(ErrnoFromKern(kr));
    }
    std::uint64_t skip = address - first;
    std::uint64_t left = piece.size;
    for (const iovec& v : pins.back()->iov()) {
      if (left == 0) break;
      if (skip >= v.iov_len) {
        skip -= v.iov_len;
        continue;
      }
      const std::uint64_t n = std::min<std::uint64_t>(v.iov_len - skip, left);
      iov.push_back({static_cast<char*>(v.iov_base) + skip, n});
      left -= n;
      skip = 0;
    }
  }
  return iov.size() == 1
             ? r.Buf(static_cast<const char*>(iov[0].iov_base), iov[0].iov_len)
             : r.Iov(iov.data(), static_cast<int>(iov.size()));
}

Replied Read(Reply& r, fuse_ino_t ino, size_t size, off_t off,
             fuse_file_info* fi) {
  TaskFs& fs = r.fs();
  OpenFile* file = File(fi);
  if (off < 0) return r.Err(EINVAL);
  if (file == nullptr) {
    if (ino != kHostPageSizeIno) return r.Err(EBADF);
    const std::string text = RenderHostPageSize(fs.system().page_size());
    return ReplyText(r, TextPart(text, off, size));
  }
  switch (file->kind) {
    case NodeKind::kMem:
      return ReadMem(r, *file, size, off);
    case NodeKind::kCtl:
      return ReplyText(r, CtlStream::Read(*file, size));
    case NodeKind::kCore:
      return ReadCore(r, *file, size, off);
    default: {
      std::string part;
      const KernReturn kr = ReadGenerated(Nodes(fs), *file, off, size, &part);
      return kr != vm::KERN_SUCCESS ? r.Err(ErrnoFromKern(kr))
                                    : ReplyText(r, part);
    }
  }
}

Replied Write(Reply& r, fuse_ino_t, const char* buf, size_t size, off_t off,
              fuse_file_info* fi) {
  TaskFs& fs = r.fs();
  OpenFile* file = File(fi);
  if (file == nullptr || off < 0) {
    return r.Err(file == nullptr ? EBADF : EINVAL);
  }
  KernReturn kr = vm::KERN_SUCCESS;
  if (file->kind == NodeKind::kCtl) {
    ExecContext context = OpenerContext(fs, *file);
    kr = CtlStream(*file, context, Report(r)).Write({buf, size});
  } else if (file->kind == NodeKind::kMem) {
    const std::uint64_t address = static_cast<std::uint64_t>(off);
    kr = vm::vm_write(*file->task, address, buf, size);
    if (kr != vm::KERN_SUCCESS) {
      Report(r).Task(*file, {"write", kr, address, size}, [&] {
        return fmt::format("pwrite {:#x} {:#x}", address, size);
      });
    }
  } else {
    return r.Err(EBADF);
  }
  return kr != vm::KERN_SUCCESS ? r.Err(ErrnoFromKern(kr)) : r.Write(size);
}

// close(2) of a ctl file runs a cut line the last write kept, and reports
// its error.
Replied Flush(Reply& r, fuse_ino_t, fuse_file_info* fi) {
  OpenFile* file = File(fi);
  if (file == nullptr || file->kind != NodeKind::kCtl) return r.Err(0);
  ExecContext context = OpenerContext(r.fs(), *file);
  return r.Err(ErrnoFromKern(CtlStream(*file, context, Report(r)).Flush()));
}

Replied Fsync(Reply& r, fuse_ino_t, int, fuse_file_info*) { return r.Err(0); }

// TASKFS_IOC_LAST_REASON on a mem or ctl file: the caller's last failure
// on it, taken (LastFailures::Take). Never fails but for want of room.
Replied LastReason(Reply& r, OpenFile& file, size_t out_bufsz) {
  if (out_bufsz < sizeof(taskfs_last_reason)) return r.Err(EINVAL);
  const LastFailure last = file.last_failures.Take(r.ctx()->pid);
  taskfs_last_reason out;
  std::memset(&out, 0, sizeof out);
  out.seq = last.seq;
  std::memcpy(out.line, last.line.data(),
              std::min(last.line.size(), sizeof out.line - 1));
  return r.Ioctl(0, &out, sizeof out);
}

Replied Ioctl(Reply& r, fuse_ino_t, unsigned int cmd, void*, fuse_file_info* fi,
              unsigned flags, const void* in_buf, size_t in_bufsz,
              size_t out_bufsz) {
  TaskFs& fs = r.fs();
  OpenFile* file = File(fi);
  if ((flags & FUSE_IOCTL_DIR) || file == nullptr) return r.Err(ENOTTY);
  if (cmd == TASKFS_IOC_LAST_REASON &&
      (file->kind == NodeKind::kMem || file->kind == NodeKind::kCtl)) {
    return LastReason(r, *file, out_bufsz);
  }
  if (file->kind != NodeKind::kMem) return r.Err(ENOTTY);
  IoctlRequest request(cmd, in_buf, in_bufsz);
  if (request.command() == nullptr) return r.Err(ENOTTY);
  if (request.command()->changes_memory &&
      (file->flags & O_ACCMODE) == O_RDONLY) {
    return r.Err(EBADF);
  }
  if (request.command()->reads_memory &&
      (file->flags & O_ACCMODE) == O_WRONLY) {
    return r.Err(EBADF);
  }
  ExecContext context = OpenerContext(fs, *file);
  alignas(8) unsigned char out[sizeof(IoctlArg)];
  std::size_t out_size = 0;
  IoctlTarget target{*file->task, context, nullptr};
  target.on_part_failure = [&r, file](KernReturn part, std::uint64_t address,
                                      std::uint64_t size,
                                      std::string_view operation) {
    Report(r).Task(*file, {"ioctl", part, address, size},
                   [operation] { return std::string(operation); });
  };
  const KernReturn kr =
      request.Run(target, out, std::min(out_bufsz, sizeof out), &out_size);
  if (kr != vm::KERN_SUCCESS) {
    Report(r).Task(*file, {"ioctl", kr, cmd, in_bufsz},
                   [&] { return request.Describe(); });
    return r.Err(ErrnoFromKern(kr));
  }
  return r.Ioctl(0, out_size != 0 ? out : nullptr, out_size);
}

Replied Lseek(Reply& r, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) {
  OpenFile* file = File(fi);
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return r.Err(EINVAL);
  if (off < 0) return r.Err(ENXIO);
  if (file != nullptr && file->kind == NodeKind::kCore) {
    const std::optional<std::uint64_t> found =
        file->core->Seek(static_cast<std::uint64_t>(off), whence == SEEK_DATA);
    return found ? r.Lseek(static_cast<off_t>(*found)) : r.Err(ENXIO);
  }
  if (file == nullptr || file->kind != NodeKind::kMem) {
    // The generated files have no holes and report size 0.
    return r.Err(ENXIO);
  }
  const std::uint64_t from = static_cast<std::uint64_t>(off);
  if (from >= r.fs().system().address_limit()) return r.Err(ENXIO);
  const vm::KernResult<vm::vm_address_t> found =
      whence == SEEK_DATA ? vm::vm_find_data(*file->task, from)
                          : vm::vm_find_hole(*file->task, from);
  if (found.code() == vm::KERN_NO_SPACE) return r.Err(ENXIO);
  if (!found.ok()) return r.Err(ErrnoFromKern(found.code()));
  return r.Lseek(static_cast<off_t>(found.value()));
}

Replied StatFs(Reply& r, fuse_ino_t) {
  struct statvfs st;
  Attrs(r.fs()).FileSystem(&st);
  return r.Statfs(st);
}

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof ops);
  ops.init = Init;
  ops.forget = Dispatch<"forget", Forget>::Call;
  ops.forget_multi = Dispatch<"forget_multi", ForgetMulti>::Call;
  ops.lookup = Dispatch<"lookup", Lookup>::Call;
  ops.getattr = Dispatch<"getattr", GetAttr>::Call;
  ops.setattr = Dispatch<"setattr", SetAttr>::Call;
  ops.readdir = Dispatch<"readdir", ReadDir>::Call;
  ops.mkdir = Dispatch<"mkdir", MkDir>::Call;
  ops.rmdir = Dispatch<"rmdir", RmDir>::Call;
  ops.unlink = Dispatch<"unlink", Unlink>::Call;
  ops.mknod = Dispatch<"mknod", MkNod>::Call;
  ops.symlink = Dispatch<"symlink", SymLink>::Call;
  ops.link = Dispatch<"link", Link>::Call;
  ops.rename = Dispatch<"rename", Rename>::Call;
  ops.create = Dispatch<"create", Create>::Call;
  ops.open = Dispatch<"open", Open>::Call;
  ops.release = Dispatch<"release", Release>::Call;
  ops.read = Dispatch<"read", Read>::Call;
  ops.write = Dispatch<"write", Write>::Call;
  ops.fsync = Dispatch<"fsync", Fsync>::Call;
  ops.flush = Dispatch<"flush", Flush>::Call;
  ops.ioctl = Dispatch<"ioctl", Ioctl>::Call;
  ops.lseek = Dispatch<"lseek", Lseek>::Call;
  ops.statfs = Dispatch<"statfs", StatFs>::Call;
  return ops;
}

}  // namespace

TaskFs::TaskFs(vm::VmSystem& system, std::shared_ptr<spdlog::logger> log,
               std::uint32_t max_request)
    : system_(system),
      log_(std::move(log)),
      daemon_uid_(::getuid()),
      daemon_gid_(::getgid()),
      max_request_(max_request) {
  clock_gettime(CLOCK_REALTIME, &mounted_at_);
}

TaskFs::~TaskFs() = default;

const fuse_lowlevel_ops& TaskFs::Operations() {
  static const fuse_lowlevel_ops ops = MakeOperations();
  return ops;
}

void TaskFs::AddTask(const std::shared_ptr<vm::Task>& task, uid_t uid,
                     gid_t gid) {
  try {
    nodes_.Add(task, uid, gid);
  } catch (...) {
    // No node, no task: its name must not stay taken by a task nobody sees.
    vm::task_terminate(system_, *task);
    throw;
  }
}

}  // namespace taskfs::fs
