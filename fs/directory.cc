#include "fs/directory.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <vector>

namespace taskfs::fs {

bool Directory::FindTask(std::string_view name, TaskNode* out) const {
  const std::shared_ptr<vm::Task> task = system_.FindTask(name);
  return task != nullptr && nodes_.Find(task->id(), out);
}

int Directory::Lookup(Ino parent, std::string_view name, Ino* ino) const {
  const Where p = Decode(parent);
  if (p.root) {
    if (name == "host_page_size") {
      *ino = kHostPageSizeIno;
      return 0;
    }
    TaskNode node;
    if (!FindTask(name, &node)) return ENOENT;
    *ino = TaskIno(node.task->id(), NodeKind::kDir);
    return 0;
  }
  TaskNode node;
  if (ValidTaskPath(p) && p.kind == NodeKind::kDir &&
      nodes_.Find(p.id, &node)) {
    for (unsigned k = 1; k < kNodeKinds; ++k) {
      const NodeKind kind = static_cast<NodeKind>(k);
      if (name == FileName(kind)) {
        *ino = TaskIno(p.id, kind);
        return 0;
      }
    }
  }
  return ENOENT;
}

int Directory::List(Ino ino, off_t off, std::size_t room,
                    const std::function<bool(const DirEntry&)>& add) const {
  const Where w = Decode(ino);
  if (w.root) {
    bool more = true;
    if (off < 1) more = add({".", kRootIno, S_IFDIR, 1});
    if (more && off < 2) more = add({"..", kRootIno, S_IFDIR, 2});
    if (more && off < 3) {
      more = add({"host_page_size", kHostPageSizeIno, S_IFREG, 3});
    }
    const std::uint64_t after =
        off <= kRootFixedEntries
            ? 0
            : static_cast<std::uint64_t>(off - kRootFixedEntries);
    // A directory entry takes at least 24 bytes: no more nodes can fit.
    const std::vector<TaskNode> nodes =
        more ? nodes_.NodesAfter(after, room / 24 + 1)
             : std::vector<TaskNode>();
    for (const TaskNode& n : nodes) {
      const std::uint64_t id = n.task->id();
      if (!add({n.task->name().c_str(), TaskIno(id, NodeKind::kDir), S_IFDIR,
                static_cast<off_t>(id) + kRootFixedEntries})) {
        break;
      }
    }
    return 0;
  }
  if (!ValidTaskPath(w) || w.kind != NodeKind::kDir) return ENOTDIR;
  TaskNode node;
  if (!nodes_.Find(w.id, &node)) return ENOENT;
  bool more = true;
  if (off < 1) more = add({".", ino, S_IFDIR, 1});
  if (more && off < 2) more = add({"..", kRootIno, S_IFDIR, 2});
  for (unsigned k = 1; more && k < kNodeKinds; ++k) {
    if (off < static_cast<off_t>(k + 2)) {
      const NodeKind kind = static_cast<NodeKind>(k);
      more = add({FileName(kind).data(), TaskIno(w.id, kind), S_IFREG,
                  static_cast<off_t>(k + 2)});
    }
  }
  return 0;
}

}  // namespace taskfs::fs
