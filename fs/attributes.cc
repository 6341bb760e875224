#include "fs/attributes.h"

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "fs/render.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {

void Attributes::FillRoot(struct stat* st) const {
  std::memset(st, 0, sizeof *st);
  st->st_ino = kRootIno;
  st->st_mode = S_IFDIR | 01777;
  st->st_nlink = 2 + nodes_.Count();
  st->st_uid = uid_;
  st->st_gid = gid_;
  st->st_atim = st->st_mtim = st->st_ctim = mounted_at_;
}

void Attributes::FillHostPageSize(struct stat* st) const {
  std::memset(st, 0, sizeof *st);
  st->st_ino = kHostPageSizeIno;
  st->st_mode = S_IFREG | 0444;
  st->st_nlink = 1;
  st->st_size =
      static_cast<off_t>(RenderHostPageSize(system_.page_size()).size());
  st->st_uid = uid_;
  st->st_gid = gid_;
  st->st_atim = st->st_mtim = st->st_ctim = mounted_at_;
}

void Attributes::FillTask(const TaskNode& node, NodeKind kind,
                          struct stat* st) const {
  std::memset(st, 0, sizeof *st);
  const unsigned k = static_cast<unsigned>(kind);
  st->st_ino = TaskIno(node.task->id(), kind);
  st->st_mode = (kind == NodeKind::kDir ? S_IFDIR : S_IFREG) | node.modes[k];
  st->st_nlink = kind == NodeKind::kDir ? 2 : 1;
  st->st_uid = node.uid;
  st->st_gid = node.gid;
  // mem's size is the address space; errors' is every line it ever held, so
  // tail -f sees it grow (docs/reference.md §7.3); maps and status are
  // generated on read.
  st->st_size =
      kind == NodeKind::kMem      ? static_cast<off_t>(system_.address_limit())
      : kind == NodeKind::kErrors ? static_cast<off_t>(node.errors->size())
                                  : 0;
  st->st_blksize = static_cast<blksize_t>(system_.page_size());
  // mem's blocks are the task's resident memory, so du and ls -s mean
  // something (docs/reference.md §5). A task being removed has none.
  if (kind == NodeKind::kMem) {
    const vm::KernResult<vm::TaskStatistics> stats =
        vm::task_statistics(*node.task);
    if (stats.ok()) {
      st->st_blocks = static_cast<blkcnt_t>(stats.value().resident_bytes / 512);
    }
  }
  // mem, maps and status show the task's memory and map: they were last
  // modified when those last changed (docs/reference.md §5); errors when its
  // last line was added.
  st->st_atim = node.created;
  st->st_mtim = st->st_ctim = kind == NodeKind::kMem ||
                                      kind == NodeKind::kMaps ||
                                      kind == NodeKind::kStatus
                                  ? node.task->changed()
                                  : node.created;
  if (kind == NodeKind::kErrors && node.errors->last_seq() != 0) {
    st->st_mtim = st->st_ctim = node.errors->changed();
  }
}

int Attributes::Get(Ino ino, struct stat* st, bool last) const {
  const Where w = Decode(ino);
  if (w.root) {
    FillRoot(st);
    return 0;
  }
  if (w.host_page_size) {
    FillHostPageSize(st);
    return 0;
  }
  TaskNode node;
  if (!ValidTaskPath(w) ||
      !(last ? nodes_.FindLast(w.id, &node) : nodes_.Find(w.id, &node))) {
    return ENOENT;
  }
  FillTask(node, w.kind, st);
  return 0;
}

int Attributes::Entry(Ino ino, fuse_entry_param* e) const {
  std::memset(e, 0, sizeof *e);
  const int error = Get(ino, &e->attr);
  if (error != 0) return error;
  e->ino = ino;
  e->attr_timeout = Seconds(ino);
  e->entry_timeout = kCacheSeconds;
  return 0;
}

double Attributes::Seconds(Ino ino) {
  return ino <= kHostPageSizeIno ? kCacheSeconds : kTaskAttrSeconds;
}

int Attributes::Set(Ino ino, uid_t caller, const struct stat& attr,
                    int to_set) {
  constexpr int kTimes = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
                         FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW |
                         FUSE_SET_ATTR_CTIME;
  const Where w = Decode(ino);
  if (w.root || w.host_page_size) {
    // Only the times may be "set", and they stay as they are.
    return (to_set & ~kTimes) != 0 ? EPERM : 0;
  }
  TaskNode node;
  if (!ValidTaskPath(w) || !nodes_.Find(w.id, &node)) return ENOENT;
  const bool is_owner = caller == 0 || caller == node.uid;
  if ((to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) && caller != 0) {
    return EPERM;
  }
  if ((to_set & FUSE_SET_ATTR_MODE) && !is_owner) return EPERM;
  if ((to_set & FUSE_SET_ATTR_SIZE) && w.kind != NodeKind::kMem &&
      w.kind != NodeKind::kCtl) {
    return w.kind == NodeKind::kDir ? EISDIR : EPERM;
  }
  // truncate and O_TRUNC change nothing: mem's size is the address space.
  const unsigned k = static_cast<unsigned>(w.kind);
  const bool alive = nodes_.Update(w.id, [&](TaskNode& n) {
    if (to_set & FUSE_SET_ATTR_MODE) n.modes[k] = attr.st_mode & 07777;
    if (to_set & FUSE_SET_ATTR_UID) n.uid = attr.st_uid;
    if (to_set & FUSE_SET_ATTR_GID) n.gid = attr.st_gid;
  });
  return alive ? 0 : ENOENT;
}

void Attributes::FileSystem(struct statvfs* st) const {
  const std::uint64_t page = system_.page_size();
  // Blocks of the limit, and the used ones (VmSystem::MeasureUsedBytes).
  const std::uint64_t used = system_.MeasureUsedBytes();
  const std::uint64_t limit = system_.budget().limit() / page;
  const std::uint64_t live = (used + page - 1) / page;
  std::memset(st, 0, sizeof *st);
  st->f_bsize = page;
  st->f_frsize = page;
  st->f_blocks = limit;
  st->f_bfree = limit > live ? limit - live : 0;
  st->f_bavail = st->f_bfree;
  st->f_files = system_.config().max_tasks;
  const std::uint64_t tasks = nodes_.Count();
  st->f_ffree = st->f_files > tasks ? st->f_files - tasks : 0;
  st->f_favail = st->f_ffree;
  st->f_namemax = 64;
}

}  // namespace taskfs::fs
