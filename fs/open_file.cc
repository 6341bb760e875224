#include "fs/open_file.h"

#include <utility>

namespace taskfs::fs {

OpenFile* OpenFileTable::Adopt(std::unique_ptr<OpenFile> file) {
  OpenFile* const raw = file.get();
  std::lock_guard lock(mu_);
  files_.emplace(raw, std::move(file));
  return raw;
}

void OpenFileTable::Forget(const OpenFile* file) {
  std::unique_ptr<OpenFile> gone;  // freed after the lock is let go
  std::lock_guard lock(mu_);
  if (auto it = files_.find(file); it != files_.end()) {
    gone = std::move(it->second);
    files_.erase(it);
  }
}

std::size_t OpenFileTable::Count() const {
  std::lock_guard lock(mu_);
  return files_.size();
}

}  // namespace taskfs::fs
