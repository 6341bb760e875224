#include "fs/taskfs_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "fs/access.h"
#include "fs/ctl_command.h"
#include "fs/dispatch.h"
#include "fs/errno_map.h"
#include "fs/inode.h"
#include "fs/ioctl_handler.h"
#include "fs/line_assembler.h"
#include "fs/render.h"
#include "taskfs/ioctl.h"
#include "vmcore/failure_reason.h"
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

constexpr double kCacheSeconds = 1.0;
// A chown changes the owner of all five paths of a task at once, and the
// kernel checks permissions against cached attributes: so task attributes
// are not cached, and every check sees the owner and modes of now.
constexpr double kTaskAttrSeconds = 0.0;
// The readdir offsets of the root's fixed entries; task t comes at id + 3.
constexpr off_t kRootFixedEntries = 3;

NodeTable& Nodes(TaskFs& fs) { return Handlers::Nodes(fs); }
OpenFileTable& Files(TaskFs& fs) { return Handlers::Files(fs); }

OpenFile* File(fuse_file_info* fi) {
  return fi == nullptr ? nullptr : reinterpret_cast<OpenFile*>(fi->fh);
}

bool FindNodeByName(TaskFs& fs, const std::string& name, TaskNode* out) {
  std::shared_ptr<vm::Task> task = fs.system().FindTask(name);
  return task != nullptr && Nodes(fs).Find(task->id(), out);
}

void FillRootAttr(TaskFs& fs, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = kRootIno;
  st->st_mode = S_IFDIR | 01777;
  st->st_nlink = 2 + fs.TaskCount();
  st->st_uid = fs.daemon_uid();
  st->st_gid = fs.daemon_gid();
  st->st_atim = st->st_mtim = st->st_ctim = Handlers::MountedAt(fs);
}

void FillHostPageSizeAttr(TaskFs& fs, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = kHostPageSizeIno;
  st->st_mode = S_IFREG | 0444;
  st->st_nlink = 1;
  st->st_size =
      static_cast<off_t>(RenderHostPageSize(fs.system().page_size()).size());
  st->st_uid = fs.daemon_uid();
  st->st_gid = fs.daemon_gid();
  st->st_atim = st->st_mtim = st->st_ctim = Handlers::MountedAt(fs);
}

void FillTaskAttr(TaskFs& fs, const TaskNode& node, NodeKind kind,
                  struct stat* st) {
  std::memset(st, 0, sizeof *st);
  const unsigned k = static_cast<unsigned>(kind);
  st->st_ino = TaskIno(node.task->id(), kind);
  st->st_mode = (kind == NodeKind::kDir ? S_IFDIR : S_IFREG) | node.modes[k];
  st->st_nlink = kind == NodeKind::kDir ? 2 : 1;
  st->st_uid = node.uid;
  st->st_gid = node.gid;
  // mem's size is the address space; the text files are generated on read.
  st->st_size = kind == NodeKind::kMem
                    ? static_cast<off_t>(fs.system().address_limit())
                    : 0;
  st->st_blksize = static_cast<blksize_t>(fs.system().page_size());
  st->st_atim = st->st_mtim = st->st_ctim = node.created;
}

// Attributes of ino: 0, or ENOENT for a task that is gone. With last, a
// removed task whose files are still open has the attributes it last had
// (fstat of such a file, SPEC §5); a path walk (lookup) does not find it.
int Attr(TaskFs& fs, fuse_ino_t ino, struct stat* st, bool last = false) {
  const Where w = Decode(ino);
  if (w.root) {
    FillRootAttr(fs, st);
    return 0;
  }
  if (w.host_page_size) {
    FillHostPageSizeAttr(fs, st);
    return 0;
  }
  TaskNode node;
  if (!ValidTaskPath(w) || !(last ? Nodes(fs).FindLast(w.id, &node)
                                  : Nodes(fs).Find(w.id, &node))) {
    return ENOENT;
  }
  FillTaskAttr(fs, node, w.kind, st);
  return 0;
}

double AttrSeconds(fuse_ino_t ino) {
  return ino <= kHostPageSizeIno ? kCacheSeconds : kTaskAttrSeconds;
}

Replied ReplyEntry(Reply& r, fuse_ino_t ino) {
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  const int error = Attr(r.fs(), ino, &e.attr);
  if (error != 0) return r.Err(error);
  e.ino = ino;
  e.attr_timeout = AttrSeconds(ino);
  e.entry_timeout = kCacheSeconds;
  return r.Entry(e);
}

// One debug line per failed operation, with the Mach code; KERN_FAILURE is
// unexpected and logged as a warning.
void LogFailure(TaskFs& fs, std::string_view op, const vm::Task& task,
                std::uint64_t address, std::uint64_t size, KernReturn kr) {
  const auto level =
      kr == vm::KERN_FAILURE ? spdlog::level::warn : spdlog::level::debug;
  if (!fs.log().should_log(level)) return;
  fs.log().log(level, "{} {} 0x{:x}+0x{:x}: {}", op, task.name(), address, size,
               vm::KernReturnName(kr));
}

// Records a failed operation of a task in its errors file (SPEC §7), before
// the reply: the uid of the file's opener (whose rights the request used),
// the operation (fmt's format and its arguments, formatted here), the code
// and the reason the core (or the handler, through vm::SetFailureReason)
// gave for it. A record that cannot be made for want of memory is dropped:
// the reply stays the operation's own.
template <typename... Args>
void RecordFailure(const OpenFile& file, ErrorLog& log, KernReturn kr,
                   fmt::format_string<Args...> operation,
                   Args&&... args) noexcept {
  try {
    log.Record(file.opener.uid,
               fmt::format(operation, std::forward<Args>(args)...), kr,
               vm::LastFailureReason());
  } catch (const std::bad_alloc&) {
  }
}

// A vm_map_copy from another task that failed once that task was found (a
// copy-from line or the ioctl) goes into the source's errors file too.
// Its caller may hold no right on the source, so the line is the daemon's
// own account of the call, with nothing the caller chose but numbers: the
// ranges and the id of the task copied into.
void RecordForSource(TaskFs& fs, const OpenFile& file, vm::Task& source,
                     const MapCopyArgs& a, KernReturn kr) noexcept {
  TaskNode node;
  if (&source == file.task.get() || !Nodes(fs).Find(source.id(), &node)) {
    return;
  }
  RecordFailure(file, *node.errors, kr,
                "vm_map_copy {:#x} {:#x} into task id {} at {:#x}{}{}", a.src,
                a.size, file.task->id(), a.dst, a.dst_alloc ? " alloc" : "",
                a.src_destroy ? " destroy" : "");
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
// to file: use it only while the request runs.
ExecContext MakeContext(TaskFs& fs, const OpenFile& file) {
  const Credentials& opener = file.opener;
  ExecContext context;
  context.system = &fs.system();
  context.may_access = [&fs, &opener](vm::Task& other, bool write) {
    TaskNode node;
    if (!Nodes(fs).Find(other.id(), &node)) {
      vm::SetFailureReason(fmt::format("task {} is gone", other.name()));
      return vm::KERN_INVALID_TASK;
    }
    if (!opener.known) {
      vm::SetFailureReason(fmt::format(
          "the groups and capabilities of uid {}, who opened this file, could "
          "not be read when it was opened",
          opener.uid));
      return vm::KERN_PROTECTION_FAILURE;
    }
    const KernReturn kr = MayAccess(opener.caller(), node, write);
    if (kr != vm::KERN_SUCCESS) {
      vm::SetFailureReason(fmt::format(
          "uid {} may not {} task {}'s mem (directory {:04o}, mem {:04o}, "
          "owner {}:{})",
          opener.uid, write ? "read and write" : "read", other.name(),
          node.modes[static_cast<unsigned>(NodeKind::kDir)],
          node.modes[static_cast<unsigned>(NodeKind::kMem)], node.uid,
          node.gid));
    }
    return kr;
  };
  context.on_task_created = [&fs,
                             &opener](const std::shared_ptr<vm::Task>& task) {
    fs.AddTask(task, opener.uid, opener.gid);
  };
  context.on_source_failure = [&fs, &file](vm::Task& source,
                                           const MapCopyArgs& args,
                                           KernReturn kr) {
    RecordForSource(fs, file, source, args, kr);
  };
  return context;
}

Replied ReplyText(Reply& r, std::string_view text, off_t off, size_t size) {
  if (off < 0 || static_cast<std::size_t>(off) >= text.size()) {
    return r.Buf(nullptr, 0);
  }
  const std::string_view part =
      text.substr(static_cast<std::size_t>(off), size);
  return r.Buf(part.data(), part.size());
}

// A maps snapshot: the list of regions and then its text are as large as
// the map, so both are charged to the open file while they are made (the
// text's line is 58 bytes; the list's vector may be twice its size).
KernReturn MapsText(vm::Task& task, vm::MemoryAccount& account,
                    std::string* out) {
  constexpr std::uint64_t kPerRegion = 2 * sizeof(vm::RegionInfo) + 64;
  const vm::KernResult<std::vector<vm::RegionInfo>> regions =
      vm::vm_region_list(task, &account, kPerRegion);
  if (!regions.ok()) return regions.code();
  const std::uint64_t charged = regions.value().size() * kPerRegion;
  try {
    *out = RenderMaps(regions.value());
  } catch (...) {
    account.Release(charged);
    throw;
  }
  account.Release(charged);
  return vm::KERN_SUCCESS;
}

KernReturn StatusText(TaskFs& fs, vm::Task& task, std::string* out) {
  const vm::KernResult<vm::TaskStatistics> result = vm::task_statistics(task);
  if (!result.ok()) return result.code();
  const vm::TaskStatistics& stats = result.value();
  TaskNode node;
  if (!Nodes(fs).Find(task.id(), &node)) return vm::KERN_INVALID_TASK;
  const vm::VmSystem& system = fs.system();
  StatusFacts facts;
  facts.name = task.name();
  facts.id = task.id();
  facts.uid = node.uid;
  facts.gid = node.gid;
  facts.page_size = system.page_size();
  facts.address_bits = system.address_bits();
  *out = RenderStatus(facts, stats);
  return vm::KERN_SUCCESS;
}

KernReturn ErrorsText(TaskFs& fs, const OpenFile& file, std::string* out) {
  TaskNode node;
  if (!Nodes(fs).Find(file.task->id(), &node)) return vm::KERN_INVALID_TASK;
  *out = file.errors->Text();
  return vm::KERN_SUCCESS;
}

// --- handlers --------------------------------------------------------------

// Not a request: no reply.
void Init(void* userdata, fuse_conn_info* conn) {
  // Page-multiple requests from any buffer (SPEC §5): the mount's max_read
  // is the same, and fs/fuse_channel.h sets max_pages.
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
  const Where p = Decode(parent);
  const std::string_view n = name;
  if (p.root) {
    if (n == "host_page_size") return ReplyEntry(r, kHostPageSizeIno);
    TaskNode node;
    if (!FindNodeByName(r.fs(), std::string(n), &node)) return r.Err(ENOENT);
    return ReplyEntry(r, TaskIno(node.task->id(), NodeKind::kDir));
  }
  TaskNode node;
  if (ValidTaskPath(p) && p.kind == NodeKind::kDir &&
      Nodes(r.fs()).Find(p.id, &node)) {
    for (unsigned k = 1; k < kNodeKinds; ++k) {
      const NodeKind kind = static_cast<NodeKind>(k);
      if (n == FileName(kind)) return ReplyEntry(r, TaskIno(p.id, kind));
    }
  }
  return r.Err(ENOENT);
}

Replied GetAttr(Reply& r, fuse_ino_t ino, fuse_file_info*) {
  struct stat st;
  const int error = Attr(r.fs(), ino, &st, /*last=*/true);
  if (error != 0) return r.Err(error);
  return r.Attr(st, AttrSeconds(ino));
}

Replied SetAttr(Reply& r, fuse_ino_t ino, struct stat* attr, int to_set,
                fuse_file_info*) {
  const Where w = Decode(ino);
  const uid_t caller = r.ctx()->uid;
  const int kTimes = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
                     FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW |
                     FUSE_SET_ATTR_CTIME;
  TaskNode node;
  if (w.root || w.host_page_size) {
    // Only the times may be "set", and they stay as they are.
    if ((to_set & ~kTimes) != 0) return r.Err(EPERM);
  } else if (!ValidTaskPath(w) || !Nodes(r.fs()).Find(w.id, &node)) {
    return r.Err(ENOENT);
  } else {
    const bool is_owner = caller == 0 || caller == node.uid;
    int error = 0;
    if ((to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) && caller != 0) {
      error = EPERM;
    } else if ((to_set & FUSE_SET_ATTR_MODE) && !is_owner) {
      error = EPERM;
    } else if ((to_set & FUSE_SET_ATTR_SIZE) && w.kind != NodeKind::kMem &&
               w.kind != NodeKind::kCtl) {
      error = w.kind == NodeKind::kDir ? EISDIR : EPERM;
    }
    if (error != 0) return r.Err(error);
    // truncate and O_TRUNC change nothing: mem's size is the address space.
    const unsigned k = static_cast<unsigned>(w.kind);
    const bool alive = Nodes(r.fs()).Update(w.id, [&](TaskNode& n) {
      if (to_set & FUSE_SET_ATTR_MODE) n.modes[k] = attr->st_mode & 07777;
      if (to_set & FUSE_SET_ATTR_UID) n.uid = attr->st_uid;
      if (to_set & FUSE_SET_ATTR_GID) n.gid = attr->st_gid;
    });
    if (!alive) return r.Err(ENOENT);
  }
  return GetAttr(r, ino, nullptr);
}

Replied ReadDir(Reply& r, fuse_ino_t ino, size_t size, off_t off,
                fuse_file_info*) {
  TaskFs& fs = r.fs();
  const Where w = Decode(ino);
  std::vector<char> buf(size);
  std::size_t used = 0;
  // Adds one entry; false when the buffer is full.
  auto add = [&](const char* name, fuse_ino_t entry_ino, mode_t type,
                 off_t next) {
    struct stat st;
    std::memset(&st, 0, sizeof st);
    st.st_ino = entry_ino;
    st.st_mode = type;
    const std::size_t need = fuse_add_direntry(r.req(), buf.data() + used,
                                               size - used, name, &st, next);
    if (need > size - used) return false;
    used += need;
    return true;
  };
  if (w.root) {
    bool room = true;
    if (off < 1) room = add(".", kRootIno, S_IFDIR, 1);
    if (room && off < 2) room = add("..", kRootIno, S_IFDIR, 2);
    if (room && off < 3) {
      room = add("host_page_size", kHostPageSizeIno, S_IFREG, 3);
    }
    const std::uint64_t after =
        off <= kRootFixedEntries
            ? 0
            : static_cast<std::uint64_t>(off - kRootFixedEntries);
    // A directory entry takes at least 24 bytes: no more nodes can fit.
    const std::vector<TaskNode> nodes =
        room ? Nodes(fs).NodesAfter(after, size / 24 + 1)
             : std::vector<TaskNode>();
    for (const TaskNode& n : nodes) {
      const std::uint64_t id = n.task->id();
      if (!add(n.task->name().c_str(), TaskIno(id, NodeKind::kDir), S_IFDIR,
               static_cast<off_t>(id) + kRootFixedEntries)) {
        break;
      }
    }
  } else if (ValidTaskPath(w) && w.kind == NodeKind::kDir) {
    TaskNode node;
    if (!Nodes(fs).Find(w.id, &node)) return r.Err(ENOENT);
    bool room = true;
    if (off < 1) room = add(".", ino, S_IFDIR, 1);
    if (room && off < 2) room = add("..", kRootIno, S_IFDIR, 2);
    for (unsigned k = 1; room && k < kNodeKinds; ++k) {
      if (off < static_cast<off_t>(k + 2)) {
        const NodeKind kind = static_cast<NodeKind>(k);
        room = add(FileName(kind).data(), TaskIno(w.id, kind), S_IFREG,
                   static_cast<off_t>(k + 2));
      }
    }
  } else {
    return r.Err(ENOTDIR);
  }
  return r.Buf(buf.data(), used);
}

Replied MkDir(Reply& r, fuse_ino_t parent, const char* name, mode_t) {
  TaskFs& fs = r.fs();
  if (parent != kRootIno) return r.Err(EPERM);
  if (!vm::VmSystem::ValidTaskName(name)) return r.Err(EINVAL);
  vm::KernResult<std::shared_ptr<vm::Task>> created =
      vm::task_create(fs.system(), name);
  const KernReturn kr = created.code();
  if (kr != vm::KERN_SUCCESS) {
    if (fs.log().should_log(spdlog::level::debug)) {
      fs.log().debug("mkdir {}: {}", name, vm::KernReturnName(kr));
    }
    return r.Err(ErrnoFromKern(kr));
  }
  const std::shared_ptr<vm::Task>& task = created.value();
  const fuse_ctx* ctx = r.ctx();
  fs.AddTask(task, ctx->uid, ctx->gid);
  return ReplyEntry(r, TaskIno(task->id(), NodeKind::kDir));
}

Replied RmDir(Reply& r, fuse_ino_t parent, const char* name) {
  TaskFs& fs = r.fs();
  TaskNode node;
  if (parent != kRootIno) return r.Err(EPERM);
  if (!FindNodeByName(fs, name, &node)) {
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
// open for writing is refused (SPEC §4), for root too, whom the kernel's
// default_permissions lets past their modes.
bool ReadOnlyFile(const Where& w) {
  return w.host_page_size || w.kind == NodeKind::kMaps ||
         w.kind == NodeKind::kStatus || w.kind == NodeKind::kErrors;
}

Replied Open(Reply& r, fuse_ino_t ino, fuse_file_info* fi) {
  TaskFs& fs = r.fs();
  const Where w = Decode(ino);
  if (w.root || (!w.host_page_size && ValidTaskPath(w) &&
                 w.kind == NodeKind::kDir)) {
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
  OpenFile* const file = Files(fs).Adopt(std::make_unique<OpenFile>(
      node.task, node.errors, w.kind, fi->flags, OpenerOf(r.req(), w.kind),
      std::move(pin)));
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
  vm::Task& task = *file.task;
  TaskFs& fs = r.fs();
  const std::uint64_t address = static_cast<std::uint64_t>(off);
  if (size == 0 || address >= fs.system().address_limit()) {
    return r.Buf(nullptr, 0);  // end of file
  }
  // One per thread, so the hot path allocates nothing once warm.
  thread_local vm::PinnedPages pinned;
  const KernReturn kr = vm::vm_read_pinned(task, address, size, &pinned);
  if (kr != vm::KERN_SUCCESS) {
    LogFailure(fs, "read", task, address, size, kr);
    RecordFailure(file, *file.errors, kr, "pread {:#x} {:#x}", address, size);
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

Replied Read(Reply& r, fuse_ino_t ino, size_t size, off_t off,
             fuse_file_info* fi) {
  TaskFs& fs = r.fs();
  OpenFile* file = File(fi);
  if (off < 0) return r.Err(EINVAL);
  if (file == nullptr) {
    if (ino != kHostPageSizeIno) return r.Err(EBADF);
    return ReplyText(r, RenderHostPageSize(fs.system().page_size()), off, size);
  }
  if (file->kind == NodeKind::kMem) return ReadMem(r, *file, size, off);
  std::string text;
  KernReturn kr = vm::KERN_SUCCESS;
  {
    std::lock_guard lock(file->mu);
    if (file->kind == NodeKind::kCtl) {
      // The file position has moved past what was written: ctl's result
      // line is read from its own cursor, reset by each write, so that
      // `exec 3<>ctl; echo ... >&3; read r <&3` works.
      text = std::string_view(file->text).substr(file->ctl_cursor, size);
      file->ctl_cursor += text.size();
      off = 0;
    } else {
      if (off == 0 || file->text.empty()) {
        // A read from the start takes a fresh snapshot; later offsets of
        // the same open file continue it, so a reader sees one text.
        kr = file->kind == NodeKind::kMaps
                 ? MapsText(*file->task, file->account, &file->text)
             : file->kind == NodeKind::kStatus
                 ? StatusText(fs, *file->task, &file->text)
                 : ErrorsText(fs, *file, &file->text);
        if (kr != vm::KERN_SUCCESS) {
          file->text.clear();
        } else if (!file->ChargeText()) {
          kr = vm::KERN_RESOURCE_SHORTAGE;
        }
      } else if (TaskNode node; !Nodes(fs).Find(file->task->id(), &node)) {
        // The rest of a snapshot is I/O on the task too: ESRCH once it is
        // removed (SPEC §4).
        kr = vm::KERN_INVALID_TASK;
      }
      // Only the part this read returns: a snapshot can be large.
      const std::string_view all = file->text;
      const std::size_t from = std::min<std::size_t>(static_cast<std::size_t>(off), all.size());
      text = all.substr(from, size);
      off = 0;
    }
  }
  if (kr != vm::KERN_SUCCESS) return r.Err(ErrnoFromKern(kr));
  return ReplyText(r, text, off, size);
}

// Runs the ctl commands of lines in order until one fails. Returns 0 or the
// errno of the failing command; *result gets the result line of the last
// command run, *ran whether any ran.
int RunCtl(Reply& r, OpenFile& file, Lines lines, std::string* result,
           bool* ran) {
  TaskFs& fs = r.fs();
  ExecContext context = MakeContext(fs, file);
  Line line;
  while (lines.Next(&line)) {
    ParseResult parsed;
    if (line.status != Line::Status::kOk) {
      parsed.error = std::string(line.error());
    } else {
      parsed = ParseCommand(line.text, Grammar::kCtl);
    }
    const std::string_view written =
        line.text.substr(0, ErrorLog::kMaxField + 1);
    if (!parsed.ok) {
      if (fs.log().should_log(spdlog::level::debug)) {
        fs.log().debug("ctl {}: {}: KERN_INVALID_ARGUMENT", file.task->name(),
                       parsed.error);
      }
      vm::SetFailureReason(parsed.error);
      RecordFailure(file, *file.errors, vm::KERN_INVALID_ARGUMENT, "ctl {}",
                    written);
      *result = "error KERN_INVALID_ARGUMENT";
      *ran = true;
      return EINVAL;
    }
    if (parsed.empty) continue;
    const KernReturn kr =
        ExecuteCommand(parsed.command, *file.task, context, result);
    *ran = true;
    if (kr != vm::KERN_SUCCESS) {
      LogFailure(fs, "ctl", *file.task, parsed.command.address,
                 parsed.command.size, kr);
      RecordFailure(file, *file.errors, kr, "ctl {}", written);
      return ErrnoFromKern(kr);
    }
  }
  return 0;
}

void StoreCtlResult(OpenFile& file, const std::string& result) {
  std::lock_guard lock(file.mu);
  file.text = result;
  file.text.push_back('\n');
  file.ctl_cursor = 0;
  // A result line is short: kCtlLineBytes of the file's charge covers it.
}

// A ctl write: the lines it completes run now (fs/line_assembler.h). The
// assembler is taken out of the file while they run, and goes back only if
// they all succeed: a failing write drops the cut line it kept.
Replied WriteCtl(Reply& r, OpenFile& file, std::string_view buf) {
  LineAssembler lines(kMaxCtlLine);
  {
    std::lock_guard lock(file.mu);
    std::swap(lines, file.ctl_lines);
  }
  std::string result;
  bool ran = false;
  const int error =
      RunCtl(r, file, lines.Feed(buf), &result, &ran);
  if (ran) StoreCtlResult(file, result);
  if (error != 0) return r.Err(error);
  if (!lines.pending().empty()) {
    std::lock_guard lock(file.mu);
    file.ctl_lines = std::move(lines);
  }
  return r.Write(buf.size());
}

// close(2) of a ctl file runs a cut line the last write kept, and reports
// its error.
Replied Flush(Reply& r, fuse_ino_t, fuse_file_info* fi) {
  OpenFile* file = File(fi);
  LineAssembler lines(kMaxCtlLine);
  if (file != nullptr && file->kind == NodeKind::kCtl) {
    std::lock_guard lock(file->mu);
    std::swap(lines, file->ctl_lines);
  }
  int error = 0;
  if (!lines.pending().empty()) {
    std::string result;
    bool ran = false;
    error = RunCtl(r, *file, lines.Finish(), &result, &ran);
    if (ran) StoreCtlResult(*file, result);
  }
  return r.Err(error);
}

Replied Write(Reply& r, fuse_ino_t, const char* buf, size_t size, off_t off,
              fuse_file_info* fi) {
  TaskFs& fs = r.fs();
  OpenFile* file = File(fi);
  if (file == nullptr || off < 0) {
    return r.Err(file == nullptr ? EBADF : EINVAL);
  }
  if (file->kind == NodeKind::kCtl) {
    return WriteCtl(r, *file, std::string_view(buf, size));
  }
  if (file->kind != NodeKind::kMem) return r.Err(EBADF);
  const std::uint64_t address = static_cast<std::uint64_t>(off);
  const KernReturn kr = vm::vm_write(*file->task, address, buf, size);
  if (kr != vm::KERN_SUCCESS) {
    LogFailure(fs, "write", *file->task, address, size, kr);
    RecordFailure(*file, *file->errors, kr, "pwrite {:#x} {:#x}", address,
                  size);
    return r.Err(ErrnoFromKern(kr));
  }
  return r.Write(size);
}

Replied Fsync(Reply& r, fuse_ino_t, int, fuse_file_info*) { return r.Err(0); }

Replied Ioctl(Reply& r, fuse_ino_t, unsigned int cmd, void*, fuse_file_info* fi,
              unsigned flags, const void* in_buf, size_t in_bufsz,
              size_t out_bufsz) {
  TaskFs& fs = r.fs();
  OpenFile* file = File(fi);
  if ((flags & FUSE_IOCTL_DIR) || file == nullptr ||
      file->kind != NodeKind::kMem) {
    return r.Err(ENOTTY);
  }
  if (IoctlChangesMemory(cmd) && (file->flags & O_ACCMODE) == O_RDONLY) {
    return r.Err(EBADF);
  }
  // Only VM_MAP_COPY reaches another task, with the opener's rights.
  ExecContext context =
      cmd == TASKFS_IOC_VM_MAP_COPY ? MakeContext(fs, *file) : ExecContext{};
  context.system = &fs.system();
  alignas(8) unsigned char out[64];
  const IoctlResult result =
      HandleIoctl(cmd, in_buf, in_bufsz, out, std::min(out_bufsz, sizeof out),
                  *file->task, context);
  if (result.error != 0) {
    const KernReturn kr = KernFromErrno(result.error);
    // ENOTTY (not one of ours) is no Mach failure of the task.
    if (result.error != ENOTTY) {
      LogFailure(fs, "ioctl", *file->task, cmd, in_bufsz, kr);
      try {
        RecordFailure(*file, *file->errors, kr, "{}",
                      IoctlOperation(cmd, in_buf, in_bufsz));
      } catch (const std::bad_alloc&) {
        // No record, as RecordFailure itself drops it: the reply is the
        // ioctl's own.
      }
    }
    return r.Err(result.error);
  }
  return r.Ioctl(0, result.out_size != 0 ? out : nullptr, result.out_size);
}

Replied Lseek(Reply& r, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) {
  TaskFs& fs = r.fs();
  OpenFile* file = File(fi);
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return r.Err(EINVAL);
  if (off < 0) return r.Err(ENXIO);
  if (file == nullptr || file->kind != NodeKind::kMem) {
    // The generated files have no holes and report size 0.
    return r.Err(ENXIO);
  }
  const std::uint64_t from = static_cast<std::uint64_t>(off);
  if (from >= fs.system().address_limit()) return r.Err(ENXIO);
  const vm::KernResult<vm::vm_address_t> found =
      whence == SEEK_DATA ? vm::vm_find_data(*file->task, from)
                          : vm::vm_find_hole(*file->task, from);
  if (found.code() == vm::KERN_NO_SPACE) return r.Err(ENXIO);
  if (!found.ok()) return r.Err(ErrnoFromKern(found.code()));
  return r.Lseek(static_cast<off_t>(found.value()));
}

Replied StatFs(Reply& r, fuse_ino_t) {
  TaskFs& fs = r.fs();
  vm::VmSystem& system = fs.system();
  // Blocks of the limit, and the used ones (VmSystem::MeasureUsedBytes).
  const std::uint64_t used = system.MeasureUsedBytes();
  const std::uint64_t limit = system.budget().limit() / system.page_size();
  const std::uint64_t live =
      (used + system.page_size() - 1) / system.page_size();
  struct statvfs st;
  std::memset(&st, 0, sizeof st);
  st.f_bsize = system.page_size();
  st.f_frsize = system.page_size();
  st.f_blocks = limit;
  st.f_bfree = limit > live ? limit - live : 0;
  st.f_bavail = st.f_bfree;
  st.f_files = system.config().max_tasks;
  const std::uint64_t tasks = fs.TaskCount();
  st.f_ffree = st.f_files > tasks ? st.f_files - tasks : 0;
  st.f_favail = st.f_ffree;
  st.f_namemax = 64;
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
