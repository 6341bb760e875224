#include "fs/taskfs_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string_view>
#include <vector>

#include "fs/ctl_command.h"
#include "fs/errno_map.h"
#include "fs/ioctl_handler.h"
#include "fs/taskfs_ioctl.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {

// An open file of a task (or of host_page_size, with a null task).
struct OpenFile {
  std::shared_ptr<vm::Task> task;
  NodeKind kind = NodeKind::kMem;
  int flags = 0;
  std::mutex mu;
  std::string text;  // guarded by mu: ctl's result line, maps/status snapshot
  std::size_t ctl_cursor = 0;  // guarded by mu: what reads of ctl have taken
  std::string ctl_pending;     // guarded by mu: a cut line a write kept
};

namespace {

using vm::KernReturn;

constexpr fuse_ino_t kRootIno = FUSE_ROOT_ID;
constexpr fuse_ino_t kHostPageSizeIno = 2;
constexpr double kCacheSeconds = 1.0;
// A chown changes the owner of all five paths of a task at once, and the
// kernel checks permissions against cached attributes: so task attributes
// are not cached, and every check sees the owner and modes of now.
constexpr double kTaskAttrSeconds = 0.0;
// The longest ctl line worth keeping across a split write; no valid command
// comes near it.
constexpr std::size_t kMaxCtlLine = 4096;
// The kernel's largest write request (Init sets it).
constexpr std::size_t kMaxWrite = 1u << 20;
constexpr const char* kFileNames[kNodeKinds] = {nullptr, "mem", "ctl", "maps",
                                                "status"};
// SPEC §4's modes.
constexpr mode_t kDefaultModes[kNodeKinds] = {0700, 0600, 0600, 0400, 0444};
// The readdir offsets of the root's fixed entries; task t comes at id + 3.
constexpr off_t kRootFixedEntries = 3;

// What an inode number names.
struct Where {
  bool root = false;
  bool host_page_size = false;
  std::uint64_t id = 0;  // task id, for task paths
  NodeKind kind = NodeKind::kDir;
};

Where Decode(fuse_ino_t ino) {
  Where w;
  if (ino == kRootIno) {
    w.root = true;
  } else if (ino == kHostPageSizeIno) {
    w.host_page_size = true;
  } else {
    w.id = ino / 8;
    w.kind = static_cast<NodeKind>(ino % 8);
  }
  return w;
}

bool ValidTaskPath(const Where& w) {
  return w.id != 0 && static_cast<unsigned>(w.kind) < kNodeKinds;
}

fuse_ino_t TaskIno(std::uint64_t id, NodeKind kind) {
  return static_cast<fuse_ino_t>(id * 8 + static_cast<unsigned>(kind));
}

TaskFs& Fs(fuse_req_t req) {
  return *static_cast<TaskFs*>(fuse_req_userdata(req));
}

OpenFile* File(fuse_file_info* fi) {
  return fi == nullptr ? nullptr : reinterpret_cast<OpenFile*>(fi->fh);
}

std::string HostPageSizeText(vm::VmSystem& system) {
  return std::to_string(system.page_size()) + "\n";
}

void FillRootAttr(TaskFs& fs, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = kRootIno;
  st->st_mode = S_IFDIR | 01777;
  st->st_nlink = 2 + fs.TaskCount();
  st->st_uid = fs.daemon_uid();
  st->st_gid = fs.daemon_gid();
  st->st_atim = st->st_mtim = st->st_ctim = fs.mounted_at();
}

void FillHostPageSizeAttr(TaskFs& fs, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = kHostPageSizeIno;
  st->st_mode = S_IFREG | 0444;
  st->st_nlink = 1;
  st->st_size = static_cast<off_t>(HostPageSizeText(fs.system()).size());
  st->st_uid = fs.daemon_uid();
  st->st_gid = fs.daemon_gid();
  st->st_atim = st->st_mtim = st->st_ctim = fs.mounted_at();
}

void FillTaskAttr(TaskFs& fs, const TaskFs::TaskNode& node, NodeKind kind,
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

// Attributes of ino: 0, or ENOENT for a task that is gone.
int Attr(TaskFs& fs, fuse_ino_t ino, struct stat* st) {
  const Where w = Decode(ino);
  if (w.root) {
    FillRootAttr(fs, st);
    return 0;
  }
  if (w.host_page_size) {
    FillHostPageSizeAttr(fs, st);
    return 0;
  }
  TaskFs::TaskNode node;
  if (!ValidTaskPath(w) || !fs.FindNode(w.id, &node)) return ENOENT;
  FillTaskAttr(fs, node, w.kind, st);
  return 0;
}

void ReplyEntry(fuse_req_t req, TaskFs& fs, fuse_ino_t ino) {
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  const int error = Attr(fs, ino, &e.attr);
  if (error != 0) {
    fuse_reply_err(req, error);
    return;
  }
  e.ino = ino;
  e.attr_timeout = ino <= kHostPageSizeIno ? kCacheSeconds : kTaskAttrSeconds;
  e.entry_timeout = kCacheSeconds;
  fuse_reply_entry(req, &e);
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

// Does the class of (uid, gid) hold `want` bits in mode?
bool ModeAllows(fuse_req_t req, const TaskFs::TaskNode& node, uid_t uid,
                gid_t gid, mode_t mode, mode_t want) {
  if (uid == node.uid) return ((mode >> 6) & want) == want;
  bool in_group = gid == node.gid;
  if (!in_group) {
    gid_t groups[64];
    const int n = fuse_req_getgroups(req, 64, groups);
    for (int i = 0; i < std::min(n, 64); ++i) {
      in_group = in_group || groups[i] == node.gid;
    }
  }
  if (in_group) return ((mode >> 3) & want) == want;
  return (mode & want) == want;
}

// The check a path walk to OTHER/mem and an open of it would make: search
// on the task directory, read (and write) on mem.
KernReturn MayAccess(TaskFs& fs, fuse_req_t req, uid_t uid, gid_t gid,
                     vm::Task& other, bool want_write) {
  TaskFs::TaskNode node;
  if (!fs.FindNode(other.id(), &node)) return vm::KERN_INVALID_TASK;
  if (uid == 0) return vm::KERN_SUCCESS;
  const mode_t want = want_write ? 06 : 04;
  const unsigned dir = static_cast<unsigned>(NodeKind::kDir);
  const unsigned mem = static_cast<unsigned>(NodeKind::kMem);
  if (!ModeAllows(req, node, uid, gid, node.modes[dir], 01) ||
      !ModeAllows(req, node, uid, gid, node.modes[mem], want)) {
    return vm::KERN_PROTECTION_FAILURE;
  }
  return vm::KERN_SUCCESS;
}

ExecContext MakeContext(TaskFs& fs, fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  const uid_t uid = ctx->uid;
  const gid_t gid = ctx->gid;
  ExecContext context;
  context.system = &fs.system();
  context.may_access = [&fs, req, uid, gid](vm::Task& other, bool write) {
    return MayAccess(fs, req, uid, gid, other, write);
  };
  context.on_task_created = [&fs, uid,
                             gid](const std::shared_ptr<vm::Task>& task) {
    fs.AddTask(task, uid, gid);
  };
  return context;
}

void ReplyText(fuse_req_t req, std::string_view text, off_t off, size_t size) {
  if (off < 0 || static_cast<std::size_t>(off) >= text.size()) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  const std::string_view part =
      text.substr(static_cast<std::size_t>(off), size);
  fuse_reply_buf(req, part.data(), part.size());
}

std::string ProtString(vm::vm_prot_t prot) {
  std::string s = "---";
  if (prot & vm::VM_PROT_READ) s[0] = 'r';
  if (prot & vm::VM_PROT_WRITE) s[1] = 'w';
  if (prot & vm::VM_PROT_EXECUTE) s[2] = 'x';
  return s;
}

const char* InheritanceName(vm::vm_inherit_t inheritance) {
  switch (inheritance) {
    case vm::VM_INHERIT_SHARE:
      return "share";
    case vm::VM_INHERIT_COPY:
      return "copy";
    case vm::VM_INHERIT_NONE:
      return "none";
    default:
      return "?";
  }
}

KernReturn MapsText(vm::Task& task, std::string* out) {
  const vm::KernResult<std::vector<vm::RegionInfo>> regions =
      vm::vm_region_list(task);
  if (!regions.ok()) return regions.code();
  out->clear();
  char line[96];
  for (const vm::RegionInfo& r : regions.value()) {
    std::snprintf(line, sizeof line, "%016llx-%016llx %s/%s %s\n",
                  static_cast<unsigned long long>(r.start),
                  static_cast<unsigned long long>(r.start + r.size),
                  ProtString(r.protection).c_str(),
                  ProtString(r.max_protection).c_str(),
                  InheritanceName(r.inheritance));
    out->append(line);
  }
  return vm::KERN_SUCCESS;
}

KernReturn StatusText(TaskFs& fs, vm::Task& task, std::string* out) {
  const vm::KernResult<vm::TaskStatistics> result = vm::task_statistics(task);
  if (!result.ok()) return result.code();
  const vm::TaskStatistics& stats = result.value();
  TaskFs::TaskNode node;
  if (!fs.FindNode(task.id(), &node)) return vm::KERN_INVALID_TASK;
  const vm::VmSystem& system = fs.system();
  *out = "name: " + task.name() + "\n" + "id: " + std::to_string(task.id()) +
         "\n" + "owner: " + std::to_string(node.uid) + ":" +
         std::to_string(node.gid) + "\n" +
         "page_size: " + std::to_string(system.page_size()) + "\n" +
         "address_bits: " + std::to_string(system.address_bits()) + "\n" +
         "regions: " + std::to_string(stats.regions) + "\n" +
         "virtual_bytes: " + std::to_string(stats.virtual_bytes) + "\n" +
         "resident_bytes: " + std::to_string(stats.resident_bytes) + "\n" +
         "shared_bytes: " + std::to_string(stats.shared_bytes) + "\n";
  return vm::KERN_SUCCESS;
}

// --- handlers --------------------------------------------------------------

void Init(void* userdata, fuse_conn_info* conn) {
  (void)userdata;
  // 1 MiB requests (the kernel's maximum), as SPEC §5 promises.
  conn->max_write = kMaxWrite;
  conn->max_readahead = 0;
  // Writes arrive whole in the request buffer; no splice games.
  conn->want &=
      ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  TaskFs& fs = Fs(req);
  const Where p = Decode(parent);
  const std::string_view n = name;
  if (p.root) {
    if (n == "host_page_size") return ReplyEntry(req, fs, kHostPageSizeIno);
    TaskFs::TaskNode node;
    if (!fs.FindNodeByName(std::string(n), &node)) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    return ReplyEntry(req, fs, TaskIno(node.task->id(), NodeKind::kDir));
  }
  if (ValidTaskPath(p) && p.kind == NodeKind::kDir) {
    for (unsigned k = 1; k < kNodeKinds; ++k) {
      if (n == kFileNames[k]) {
        return ReplyEntry(req, fs, TaskIno(p.id, static_cast<NodeKind>(k)));
      }
    }
  }
  fuse_reply_err(req, ENOENT);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  TaskFs& fs = Fs(req);
  struct stat st;
  const int error = Attr(fs, ino, &st);
  if (error != 0) {
    fuse_reply_err(req, error);
    return;
  }
  fuse_reply_attr(req, &st,
                  ino <= kHostPageSizeIno ? kCacheSeconds : kTaskAttrSeconds);
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
             fuse_file_info*) {
  TaskFs& fs = Fs(req);
  const Where w = Decode(ino);
  const uid_t caller = fuse_req_ctx(req)->uid;
  const int kTimes = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
                     FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW |
                     FUSE_SET_ATTR_CTIME;
  TaskFs::TaskNode node;
  if (w.root || w.host_page_size) {
    // Only the times may be "set", and they stay as they are.
    if ((to_set & ~kTimes) != 0) {
      fuse_reply_err(req, EPERM);
      return;
    }
  } else if (!ValidTaskPath(w) || !fs.FindNode(w.id, &node)) {
    fuse_reply_err(req, ENOENT);
    return;
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
    if (error != 0) {
      fuse_reply_err(req, error);
      return;
    }
    // truncate and O_TRUNC change nothing: mem's size is the address space.
    const unsigned k = static_cast<unsigned>(w.kind);
    const bool alive = fs.UpdateNode(w.id, [&](TaskFs::TaskNode& n) {
      if (to_set & FUSE_SET_ATTR_MODE) n.modes[k] = attr->st_mode & 07777;
      if (to_set & FUSE_SET_ATTR_UID) n.uid = attr->st_uid;
      if (to_set & FUSE_SET_ATTR_GID) n.gid = attr->st_gid;
    });
    if (!alive) {
      fuse_reply_err(req, ENOENT);
      return;
    }
  }
  GetAttr(req, ino, nullptr);
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
             fuse_file_info*) {
  TaskFs& fs = Fs(req);
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
    const std::size_t need =
        fuse_add_direntry(req, buf.data() + used, size - used, name, &st, next);
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
    const std::vector<TaskFs::TaskNode> nodes =
        room ? fs.NodesAfter(after, size / 24 + 1)
             : std::vector<TaskFs::TaskNode>();
    for (const TaskFs::TaskNode& n : nodes) {
      const std::uint64_t id = n.task->id();
      if (!add(n.task->name().c_str(), TaskIno(id, NodeKind::kDir), S_IFDIR,
               static_cast<off_t>(id) + kRootFixedEntries)) {
        break;
      }
    }
  } else if (ValidTaskPath(w) && w.kind == NodeKind::kDir) {
    TaskFs::TaskNode node;
    if (!fs.FindNode(w.id, &node)) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    bool room = true;
    if (off < 1) room = add(".", ino, S_IFDIR, 1);
    if (room && off < 2) room = add("..", kRootIno, S_IFDIR, 2);
    for (unsigned k = 1; room && k < kNodeKinds; ++k) {
      if (off < static_cast<off_t>(k + 2)) {
        room = add(kFileNames[k], TaskIno(w.id, static_cast<NodeKind>(k)),
                   S_IFREG, static_cast<off_t>(k + 2));
      }
    }
  } else {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void MkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t) {
  TaskFs& fs = Fs(req);
  if (parent != kRootIno) {
    fuse_reply_err(req, EPERM);
    return;
  }
  if (!vm::VmSystem::ValidTaskName(name)) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  vm::KernResult<std::shared_ptr<vm::Task>> created =
      vm::task_create(fs.system(), name);
  const KernReturn kr = created.code();
  if (kr != vm::KERN_SUCCESS) {
    if (fs.log().should_log(spdlog::level::debug)) {
      fs.log().debug("mkdir {}: {}", name, vm::KernReturnName(kr));
    }
    fuse_reply_err(req, ErrnoFromKern(kr));
    return;
  }
  const std::shared_ptr<vm::Task>& task = created.value();
  const fuse_ctx* ctx = fuse_req_ctx(req);
  fs.AddTask(task, ctx->uid, ctx->gid);
  ReplyEntry(req, fs, TaskIno(task->id(), NodeKind::kDir));
}

void RmDir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  TaskFs& fs = Fs(req);
  TaskFs::TaskNode node;
  if (parent != kRootIno) {
    fuse_reply_err(req, EPERM);
    return;
  }
  if (!fs.FindNodeByName(name, &node)) {
    fuse_reply_err(
        req, std::string_view(name) == "host_page_size" ? ENOTDIR : ENOENT);
    return;
  }
  const uid_t caller = fuse_req_ctx(req)->uid;
  if (caller != 0 && caller != node.uid) {
    fuse_reply_err(req, EPERM);
    return;
  }
  const KernReturn kr = vm::task_terminate(fs.system(), *node.task);
  fs.RemoveNode(node.task->id());
  if (kr != vm::KERN_SUCCESS) {
    // Someone else removed it first.
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_reply_err(req, 0);
}

void Refuse(fuse_req_t req) { fuse_reply_err(req, EPERM); }

void Unlink(fuse_req_t req, fuse_ino_t, const char*) { Refuse(req); }
void MkNod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) {
  Refuse(req);
}
void SymLink(fuse_req_t req, const char*, fuse_ino_t, const char*) {
  Refuse(req);
}
void Link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { Refuse(req); }
void Rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*,
            unsigned int) {
  Refuse(req);
}
void Create(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) {
  Refuse(req);
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  TaskFs& fs = Fs(req);
  const Where w = Decode(ino);
  if (w.host_page_size) {
    fi->fh = 0;
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
    return;
  }
  TaskFs::TaskNode node;
  if (w.root || !ValidTaskPath(w) || !fs.FindNode(w.id, &node)) {
    fuse_reply_err(req, w.root ? EISDIR : ENOENT);
    return;
  }
  if (w.kind == NodeKind::kDir) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  auto file = std::make_unique<OpenFile>();
  file->task = node.task;
  file->kind = w.kind;
  file->flags = fi->flags;
  // No page cache: every read and write is one request to the core, and the
  // generated files are fresh on each read from offset 0.
  fi->direct_io = 1;
  fi->keep_cache = 0;
  OpenFile* const raw = file.get();
  fi->fh = reinterpret_cast<std::uint64_t>(raw);
  fs.AdoptFile(std::move(file));
  // An interrupted open gets no release.
  if (fuse_reply_open(req, fi) != 0) fs.ForgetFile(raw);
}

void Release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  if (OpenFile* file = File(fi)) Fs(req).ForgetFile(file);
  fuse_reply_err(req, 0);
}

void ReadMem(fuse_req_t req, TaskFs& fs, vm::Task& task, size_t size,
             off_t off) {
  const std::uint64_t address = static_cast<std::uint64_t>(off);
  if (size == 0 || address >= fs.system().address_limit()) {
    fuse_reply_buf(req, nullptr, 0);  // end of file
    return;
  }
  // One per thread, so the hot path allocates nothing once warm.
  thread_local vm::PinnedPages pinned;
  const KernReturn kr = vm::vm_read_pinned(task, address, size, &pinned);
  if (kr != vm::KERN_SUCCESS) {
    LogFailure(fs, "read", task, address, size, kr);
    fuse_reply_err(req, ErrnoFromKern(kr));
    return;
  }
  // The pins keep the snapshot alive until the reply has been written.
  const std::vector<iovec>& iov = pinned.iov();
  if (iov.size() == 1) {
    fuse_reply_buf(req, static_cast<const char*>(iov[0].iov_base),
                   iov[0].iov_len);  // no iovec array to allocate
  } else {
    fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size()));
  }
  pinned.Release();
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
          fuse_file_info* fi) {
  TaskFs& fs = Fs(req);
  OpenFile* file = File(fi);
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  if (file == nullptr) {
    if (ino != kHostPageSizeIno) {
      fuse_reply_err(req, EBADF);
      return;
    }
    ReplyText(req, HostPageSizeText(fs.system()), off, size);
    return;
  }
  if (file->kind == NodeKind::kMem) {
    ReadMem(req, fs, *file->task, size, off);
    return;
  }
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
                 ? MapsText(*file->task, &file->text)
                 : StatusText(fs, *file->task, &file->text);
        if (kr != vm::KERN_SUCCESS) file->text.clear();
      }
      text = file->text;
    }
  }
  if (kr != vm::KERN_SUCCESS) {
    fuse_reply_err(req, ErrnoFromKern(kr));
    return;
  }
  ReplyText(req, text, off, size);
}

// Runs the ctl commands of text, one per line, in order until one fails.
// Returns 0 or the errno of the failing command; *result gets the result
// line of the last command run, *ran whether any ran.
int RunCtl(fuse_req_t req, TaskFs& fs, OpenFile& file, std::string_view text,
           std::string* result, bool* ran) {
  ExecContext context = MakeContext(fs, req);
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ParseResult parsed;
    if (line.size() > kMaxCtlLine) {
      parsed.error = "line too long";
    } else if (line.find('\0') != std::string_view::npos) {
      parsed.error = "unexpected byte 0x00 in command";
    } else {
      parsed = ParseCommand(line, Grammar::kCtl);
    }
    if (!parsed.ok) {
      if (fs.log().should_log(spdlog::level::debug)) {
        fs.log().debug("ctl {}: {}: KERN_INVALID_ARGUMENT", file.task->name(),
                       parsed.error);
      }
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
      return ErrnoFromKern(kr);
    }
  }
  return 0;
}

void StoreCtlResult(OpenFile& file, const std::string& result) {
  std::lock_guard lock(file.mu);
  file.text = result + "\n";
  file.ctl_cursor = 0;
}

// A ctl write. Its complete lines run at once. A write that holds a newline
// but ends inside a line keeps that cut line, and the next write on the same
// open file continues it: tools that write a script in fixed-size chunks
// (cat, dd, stdio), and the kernel, which splits a write(2) larger than one
// request, cut lines anywhere, and no command may run cut in two. A write
// without any newline (`printf 'allocate 0 4K'`) is a whole command and runs
// at once, after a kept piece if there is one.
void WriteCtl(fuse_req_t req, TaskFs& fs, OpenFile& file,
              std::string_view buf) {
  std::string joined;
  {
    std::lock_guard lock(file.mu);
    if (!file.ctl_pending.empty()) {
      joined = std::move(file.ctl_pending);
      file.ctl_pending.clear();
      joined.append(buf);
    }
  }
  std::string_view text = joined.empty() ? buf : std::string_view(joined);
  std::string pending;
  if (buf.find('\n') != std::string_view::npos && text.back() != '\n') {
    const std::size_t keep = text.rfind('\n') + 1;
    // A cut line already too long to be a command runs now, and fails.
    if (text.size() - keep <= kMaxCtlLine) {
      pending = std::string(text.substr(keep));
      text = text.substr(0, keep);
    }
  }
  std::string result;
  bool ran = false;
  const int error = RunCtl(req, fs, file, text, &result, &ran);
  if (ran) StoreCtlResult(file, result);
  if (error != 0) {
    fuse_reply_err(req, error);
    return;
  }
  if (!pending.empty()) {
    std::lock_guard lock(file.mu);
    file.ctl_pending = std::move(pending);
  }
  fuse_reply_write(req, buf.size());
}

// close(2) of a ctl file runs a cut line the last write kept, and reports
// its error.
void Flush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  OpenFile* file = File(fi);
  std::string pending;
  if (file != nullptr && file->kind == NodeKind::kCtl) {
    std::lock_guard lock(file->mu);
    pending.swap(file->ctl_pending);
  }
  int error = 0;
  if (!pending.empty()) {
    std::string result;
    bool ran = false;
    error = RunCtl(req, Fs(req), *file, pending, &result, &ran);
    if (ran) StoreCtlResult(*file, result);
  }
  fuse_reply_err(req, error);
}

void Write(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off,
           fuse_file_info* fi) {
  TaskFs& fs = Fs(req);
  OpenFile* file = File(fi);
  if (file == nullptr || off < 0) {
    fuse_reply_err(req, file == nullptr ? EBADF : EINVAL);
    return;
  }
  if (file->kind == NodeKind::kCtl) {
    WriteCtl(req, fs, *file, std::string_view(buf, size));
    return;
  }
  if (file->kind != NodeKind::kMem) {
    fuse_reply_err(req, EBADF);
    return;
  }
  const std::uint64_t address = static_cast<std::uint64_t>(off);
  const KernReturn kr = vm::vm_write(*file->task, address, buf, size);
  if (kr != vm::KERN_SUCCESS) {
    LogFailure(fs, "write", *file->task, address, size, kr);
    fuse_reply_err(req, ErrnoFromKern(kr));
    return;
  }
  fuse_reply_write(req, size);
}

void Fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  fuse_reply_err(req, 0);
}

void Ioctl(fuse_req_t req, fuse_ino_t, unsigned int cmd, void*,
           fuse_file_info* fi, unsigned flags, const void* in_buf,
           size_t in_bufsz, size_t out_bufsz) {
  TaskFs& fs = Fs(req);
  OpenFile* file = File(fi);
  if ((flags & FUSE_IOCTL_DIR) || file == nullptr ||
      file->kind != NodeKind::kMem) {
    fuse_reply_err(req, ENOTTY);
    return;
  }
  if (IoctlChangesMemory(cmd) && (file->flags & O_ACCMODE) == O_RDONLY) {
    fuse_reply_err(req, EBADF);
    return;
  }
  // Only VM_MAP_COPY reaches another task and needs the caller's identity.
  ExecContext context =
      cmd == TASKFS_IOC_VM_MAP_COPY ? MakeContext(fs, req) : ExecContext{};
  context.system = &fs.system();
  alignas(8) unsigned char out[64];
  const IoctlResult r =
      HandleIoctl(cmd, in_buf, in_bufsz, out, std::min(out_bufsz, sizeof out),
                  *file->task, context);
  if (r.error != 0) {
    if (r.error != ENOTTY) {
      LogFailure(fs, "ioctl", *file->task, cmd, in_bufsz,
                 KernFromErrno(r.error));
    }
    fuse_reply_err(req, r.error);
    return;
  }
  fuse_reply_ioctl(req, 0, r.out_size != 0 ? out : nullptr, r.out_size);
}

void Lseek(fuse_req_t req, fuse_ino_t, off_t off, int whence,
           fuse_file_info* fi) {
  TaskFs& fs = Fs(req);
  OpenFile* file = File(fi);
  if (whence != SEEK_DATA && whence != SEEK_HOLE) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  if (off < 0) {
    fuse_reply_err(req, ENXIO);
    return;
  }
  if (file == nullptr || file->kind != NodeKind::kMem) {
    // The generated files have no holes and report size 0.
    fuse_reply_err(req, ENXIO);
    return;
  }
  const std::uint64_t from = static_cast<std::uint64_t>(off);
  if (from >= fs.system().address_limit()) {
    fuse_reply_err(req, ENXIO);
    return;
  }
  const vm::KernResult<vm::vm_address_t> found =
      whence == SEEK_DATA ? vm::vm_find_data(*file->task, from)
                          : vm::vm_find_hole(*file->task, from);
  const KernReturn kr = found.code();
  if (kr == vm::KERN_NO_SPACE) {
    fuse_reply_err(req, ENXIO);
  } else if (kr != vm::KERN_SUCCESS) {
    fuse_reply_err(req, ErrnoFromKern(kr));
  } else {
    fuse_reply_lseek(req, static_cast<off_t>(found.value()));
  }
}

void StatFs(fuse_req_t req, fuse_ino_t) {
  TaskFs& fs = Fs(req);
  vm::VmSystem& system = fs.system();
  const std::uint64_t limit = system.pages().limit_pages();
  const std::uint64_t live = system.pages().live_pages();
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
  fuse_reply_statfs(req, &st);
}

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof ops);
  ops.init = Init;
  ops.lookup = Lookup;
  ops.getattr = GetAttr;
  ops.setattr = SetAttr;
  ops.readdir = ReadDir;
  ops.mkdir = MkDir;
  ops.rmdir = RmDir;
  ops.unlink = Unlink;
  ops.mknod = MkNod;
  ops.symlink = SymLink;
  ops.link = Link;
  ops.rename = Rename;
  ops.create = Create;
  ops.open = Open;
  ops.release = Release;
  ops.read = Read;
  ops.write = Write;
  ops.fsync = Fsync;
  ops.flush = Flush;
  ops.ioctl = Ioctl;
  ops.lseek = Lseek;
  ops.statfs = StatFs;
  return ops;
}

}  // namespace

TaskFs::TaskFs(vm::VmSystem& system, std::shared_ptr<spdlog::logger> log)
    : system_(system),
      log_(std::move(log)),
      daemon_uid_(::getuid()),
      daemon_gid_(::getgid()) {
  clock_gettime(CLOCK_REALTIME, &mounted_at_);
}

TaskFs::~TaskFs() = default;

void TaskFs::AdoptFile(std::unique_ptr<OpenFile> file) {
  std::lock_guard lock(files_mu_);
  const OpenFile* key = file.get();
  files_.emplace(key, std::move(file));
}

void TaskFs::ForgetFile(OpenFile* file) {
  std::unique_ptr<OpenFile> gone;  // freed after the lock is let go
  std::lock_guard lock(files_mu_);
  if (auto it = files_.find(file); it != files_.end()) {
    gone = std::move(it->second);
    files_.erase(it);
  }
}

const fuse_lowlevel_ops& TaskFs::Operations() {
  static const fuse_lowlevel_ops ops = MakeOperations();
  return ops;
}

void TaskFs::AddTask(const std::shared_ptr<vm::Task>& task, uid_t uid,
                     gid_t gid) {
  TaskNode node;
  node.task = task;
  node.uid = uid;
  node.gid = gid;
  std::copy(std::begin(kDefaultModes), std::end(kDefaultModes),
            node.modes.begin());
  clock_gettime(CLOCK_REALTIME, &node.created);
  std::lock_guard lock(nodes_mu_);
  nodes_[task->id()] = std::move(node);
}

bool TaskFs::FindNode(std::uint64_t id, TaskNode* out) const {
  std::lock_guard lock(nodes_mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return false;
  *out = it->second;
  return true;
}

bool TaskFs::FindNodeByName(const std::string& name, TaskNode* out) const {
  std::shared_ptr<vm::Task> task = system_.FindTask(name);
  return task != nullptr && FindNode(task->id(), out);
}

std::vector<TaskFs::TaskNode> TaskFs::NodesAfter(std::uint64_t after_id,
                                                 std::size_t max) const {
  std::vector<TaskNode> out;
  std::lock_guard lock(nodes_mu_);
  for (auto it = nodes_.upper_bound(after_id);
       it != nodes_.end() && out.size() < max; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::size_t TaskFs::TaskCount() const {
  std::lock_guard lock(nodes_mu_);
  return nodes_.size();
}

void TaskFs::RemoveNode(std::uint64_t id) {
  std::lock_guard lock(nodes_mu_);
  nodes_.erase(id);
}

}  // namespace taskfs::fs
