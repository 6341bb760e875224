// A pinned, read-only view of a range of task memory: the result of the
// zero-copy vm_read_pinned.
#ifndef TASKFS_VMCORE_PINNED_PAGES_H_
#define TASKFS_VMCORE_PINNED_PAGES_H_

#include <sys/uio.h>

#include <cstddef>
#include <vector>

namespace taskfs::vm {

class Page;

// Holds a reference on every page it shows, so the bytes stay as they were
// when vm_read_pinned returned even while writers change the task (a writer
// that finds a page pinned copies it first). Pages physically adjacent in
// memory are merged into one iovec, so a sequentially written range usually
// needs a handful of entries. Unwritten pages point at the shared zero page.
//
// Not thread-safe; owned by one caller. Reusable: Release() keeps capacity.
class PinnedPages {
 public:
  PinnedPages() = default;
  ~PinnedPages() { Release(); }
  PinnedPages(const PinnedPages&) = delete;
  PinnedPages& operator=(const PinnedPages&) = delete;

  // The bytes, in address order.
  const std::vector<iovec>& iov() const { return iov_; }
  std::size_t size() const { return bytes_; }
  // Copies the bytes out; buffer must hold size() bytes.
  void CopyTo(void* buffer) const;

  // Drops the pins; the view becomes empty.
  void Release();

 private:
  friend class PinnedPagesBuilder;

  std::vector<iovec> iov_;
  std::vector<Page*> pinned_;
  std::size_t bytes_ = 0;
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_PINNED_PAGES_H_
