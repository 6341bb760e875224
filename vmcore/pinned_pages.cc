#include "vmcore/pinned_pages.h"

#include <cstring>

#include "vmcore/page.h"

namespace taskfs::vm {

void PinnedPages::CopyTo(void* buffer) const {
  auto* out = static_cast<std::byte*>(buffer);
  for (const iovec& v : iov_) {
    std::memcpy(out, v.iov_base, v.iov_len);
    out += v.iov_len;
  }
}

void PinnedPages::Release() {
  for (Page* page : pinned_) page->Unpin();
  pinned_.clear();
  iov_.clear();
  bytes_ = 0;
}

}  // namespace taskfs::vm
