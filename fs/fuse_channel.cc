#include "fs/fuse_channel.h"

#include <linux/fuse.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>

namespace taskfs::fs {
namespace {

constexpr std::uint64_t kMaxRequest = std::uint64_t{1} << 20;
// Before Linux 6.13, and by default after it, the most a request may span.
constexpr unsigned kDefaultMaxPagesLimit = 256;

// The one session's hook state (one session a process).
std::atomic<std::uint16_t> g_max_pages{0};
// The unique of the kernel's INIT request, 0 until it has come.
std::atomic<std::uint64_t> g_init_unique{0};
std::atomic<bool> g_init_answered{false};
RequestReader g_reader = nullptr;  // set before the session runs

ssize_t ReadRequest(int fd, void* buf, size_t len, void*) {
  const ssize_t n =
      g_reader != nullptr ? g_reader(fd, buf, len) : ::read(fd, buf, len);
  // INIT is the first request; after its reply nothing here looks again.
  if (!g_init_answered.load(std::memory_order_relaxed) &&
      n >= static_cast<ssize_t>(sizeof(fuse_in_header))) {
    fuse_in_header header;
    std::memcpy(&header, buf, sizeof header);
    if (header.opcode == FUSE_INIT) {
      g_init_unique.store(header.unique, std::memory_order_relaxed);
    }
  }
  return n;
}

ssize_t WriteReply(int fd, struct iovec* iov, int count, void*) {
  const std::uint64_t init = g_init_unique.load(std::memory_order_relaxed);
  if (init == 0 || g_init_answered.load(std::memory_order_relaxed) ||
      count != 2 || iov[0].iov_len != sizeof(fuse_out_header) ||
      iov[1].iov_len < offsetof(fuse_init_out, max_pages) + sizeof(uint16_t)) {
    return ::writev(fd, iov, count);
  }
  fuse_out_header out;
  std::memcpy(&out, iov[0].iov_base, sizeof out);
  if (out.unique != init || out.error != 0 ||
      iov[1].iov_len > sizeof(fuse_init_out)) {
    return ::writev(fd, iov, count);
  }
  // The INIT reply: libfuse derived max_pages from max_write; give the
  // kernel the one that lets every request be a page multiple.
  g_init_answered.store(true, std::memory_order_relaxed);
  fuse_init_out init_out{};
  std::memcpy(&init_out, iov[1].iov_base, iov[1].iov_len);
  if ((init_out.flags & FUSE_MAX_PAGES) != 0) {
    init_out.max_pages = g_max_pages.load(std::memory_order_relaxed);
  }
  struct iovec patched[2] = {iov[0], {&init_out, iov[1].iov_len}};
  return ::writev(fd, patched, 2);
}

}  // namespace

RequestLimits ChooseRequestLimits(std::uint64_t page_size,
                                  std::uint64_t host_page_size,
                                  unsigned max_pages_limit) {
  // Requests fill at most half of the pages a request may span: the other
  // half is room for the caller's misalignment, one page for a single
  // buffer and up to two for each segment of a vector.
  const std::uint64_t whole_pages = kMaxRequest / host_page_size;
  RequestLimits limits;
  limits.max_pages = static_cast<std::uint16_t>(
      std::min<std::uint64_t>(max_pages_limit, 2 * whole_pages));
  const std::uint64_t bytes = std::min<std::uint64_t>(
      kMaxRequest, limits.max_pages / 2 * host_page_size);
  limits.max_bytes = static_cast<std::uint32_t>(
      std::max(bytes / page_size, std::uint64_t{1}) * page_size);
  return limits;
}

RequestLimits RequestLimitsForThisHost(std::uint64_t page_size) {
  unsigned max_pages_limit = kDefaultMaxPagesLimit;
  std::ifstream in("/proc/sys/fs/fuse/max_pages_limit");
  unsigned value = 0;
  if (in >> value && value > 0) max_pages_limit = value;
  const long host_page = ::sysconf(_SC_PAGESIZE);
  return ChooseRequestLimits(
      page_size, host_page > 0 ? static_cast<std::uint64_t>(host_page) : 4096,
      max_pages_limit);
}

int UseRequestLimits(fuse_session* se, const RequestLimits& limits,
                     RequestReader reader) {
  g_max_pages.store(limits.max_pages, std::memory_order_relaxed);
  g_reader = reader;
  static const fuse_custom_io kIo = {
      .writev = WriteReply,
      .read = ReadRequest,
      .splice_receive = nullptr,
      .splice_send = nullptr,
  };
  return fuse_session_custom_io(se, &kIo, fuse_session_fd(se));
}

}  // namespace taskfs::fs
