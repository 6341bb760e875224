#include "fs/inode.h"

namespace taskfs::fs {
namespace {

constexpr std::string_view kFileNames[kNodeKinds] = {
    "", "mem", "ctl", "maps", "status", "errors", "core"};

}  // namespace

Where Decode(Ino ino) {
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

Ino TaskIno(std::uint64_t id, NodeKind kind) {
  return id * 8 + static_cast<unsigned>(kind);
}

std::string_view FileName(NodeKind kind) {
  const unsigned k = static_cast<unsigned>(kind);
  return k < kNodeKinds ? kFileNames[k] : std::string_view();
}

}  // namespace taskfs::fs
