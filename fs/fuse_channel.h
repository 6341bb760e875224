// How requests travel between the kernel and the daemon: the request size
// the kernel may send for mem I/O (docs/reference.md §5), and the /dev/fuse
// read and write hooks (libfuse's custom I/O) that make the kernel keep to it.
//
// The kernel cuts a direct-I/O transfer into requests of at most max_read
// (max_write) bytes that span at most max_pages pages of the caller's
// memory, and it cuts where the pages run out, wherever that falls. A buffer
// that is not page-aligned spans a page more than its size, and each segment
// of a vector up to two more; with 1 MiB requests and libfuse 3.14's
// max_pages (derived from max_write: 256) such a transfer would arrive in
// requests that are not page multiples. So requests fill at most half of
// max_pages, and the INIT reply is given that max_pages: with the kernel's
// default limit of 256 pages, requests of 512 KiB, which any buffer and any
// vector of up to 64 segments a request fills as whole pages. Where the
// administrator has raised fs.fuse.max_pages_limit (Linux 6.13 and later) to
// 512, requests are a whole 1 MiB.
#ifndef TASKFS_FS_FUSE_CHANNEL_H_
#define TASKFS_FS_FUSE_CHANNEL_H_

#include <fuse_lowlevel.h>
#include <sys/types.h>

#include <cstdint>

namespace taskfs::fs {

struct RequestLimits {
  std::uint32_t max_bytes = 0;  // max_read and max_write
  std::uint16_t max_pages = 0;  // the INIT reply's max_pages
};

// The limits for tasks of page_size bytes on a host with host_page_size
// pages whose kernel allows max_pages_limit pages a request (256 unless the
// administrator raised it).
RequestLimits ChooseRequestLimits(std::uint64_t page_size,
                                  std::uint64_t host_page_size,
                                  unsigned max_pages_limit);

// ChooseRequestLimits for this machine: fs.fuse.max_pages_limit, when the
// kernel has it, else 256.
RequestLimits RequestLimitsForThisHost(std::uint64_t page_size);

// How a request is read from /dev/fuse into buf: read(2) unless a caller
// gives its own (bench/fuse_ceiling's -o land).
using RequestReader = ssize_t (*)(int fd, void* buf, size_t len);

// Makes session se, already mounted, read and write /dev/fuse through hooks
// that give the kernel's INIT request the reply max_pages of limits, reading
// requests with reader (null: read(2)). One session a process. Returns 0 or
// a negative errno.
int UseRequestLimits(fuse_session* se, const RequestLimits& limits,
                     RequestReader reader = nullptr);

}  // namespace taskfs::fs

#endif  // TASKFS_FS_FUSE_CHANNEL_H_
