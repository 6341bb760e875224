// The one wrapper every low-level FUSE request handler runs in.
//
// A handler has the libfuse signature with `Reply&` in place of fuse_req_t
// and returns the Replied that one call on the Reply made:
//
//   Replied GetAttr(Reply& r, fuse_ino_t ino, fuse_file_info* fi) {
//     ...decode, one call...
//     return r.Attr(st, timeout);
//   }
//   ops.getattr = Dispatch<"getattr", GetAttr>::Call;
//
// Exactly one reply, by construction: only a Reply makes a Replied, and
// Replied is [[nodiscard]], so a path without a reply, or a reply whose
// result is dropped, does not compile (-Werror). A second reply on the same
// Reply is refused at run time and logged; libfuse never sees it. An
// exception leaving a handler stops in the wrapper: std::bad_alloc becomes
// ENOSPC (KERN_RESOURCE_SHORTAGE), anything else EIO and a warning, and it
// is the request's reply unless one was sent already. None reaches libfuse.
//
// The wrapper costs a stack object of two pointers and a flag: no heap, no
// lock. Rule for handlers: never hold a lock across a Reply call.
// init and destroy are not requests and do not go through here.
#ifndef TASKFS_FS_DISPATCH_H_
#define TASKFS_FS_DISPATCH_H_

#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>

namespace taskfs::fs {

class TaskFs;

// Proof that a request got its reply.
class [[nodiscard]] Replied {
 public:
  // What the fuse_reply_* call returned: 0, or a negative errno (-ENOENT:
  // the request was interrupted and the reply dropped). A refused second
  // reply gives -EALREADY.
  int result() const { return result_; }

 private:
  friend class Reply;
  explicit Replied(int result) : result_(result) {}
  int result_;
};

// The reply to one request. Each sending call may be made once.
class Reply {
 public:
  Reply(fuse_req_t req, TaskFs& fs) : req_(req), fs_(fs) {}
  // Sends EIO, logged as an error, if no reply was sent: a handler cannot
  // get here without one, so this is a last defence.
  ~Reply() {
    if (!sent_) ReplyMissing();
  }
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;

  // The request, for libfuse calls that are not replies
  // (fuse_req_ctx, fuse_add_direntry). Do not use it
  // after a reply: libfuse frees it.
  fuse_req_t req() const { return req_; }
  const fuse_ctx* ctx() const { return fuse_req_ctx(req_); }
  TaskFs& fs() const { return fs_; }
  bool sent() const { return sent_; }

  // error: 0 for success where the reply carries no data, else positive.
  Replied Err(int error) {
    return Claim() ? Replied(fuse_reply_err(req_, error)) : Refused();
  }
  Replied Entry(const fuse_entry_param& e) {
    return Claim() ? Replied(fuse_reply_entry(req_, &e)) : Refused();
  }
  Replied Attr(const struct stat& st, double timeout) {
    return Claim() ? Replied(fuse_reply_attr(req_, &st, timeout)) : Refused();
  }
  // A negative result: the open was interrupted and gets no release.
  Replied Open(const fuse_file_info& fi) {
    return Claim() ? Replied(fuse_reply_open(req_, &fi)) : Refused();
  }
  Replied Buf(const char* data, std::size_t size) {
    return Claim() ? Replied(fuse_reply_buf(req_, data, size)) : Refused();
  }
  Replied Iov(const iovec* iov, int count) {
    return Claim() ? Replied(fuse_reply_iov(req_, iov, count)) : Refused();
  }
  Replied Write(std::size_t count) {
    return Claim() ? Replied(fuse_reply_write(req_, count)) : Refused();
  }
  Replied Statfs(const struct statvfs& st) {
    return Claim() ? Replied(fuse_reply_statfs(req_, &st)) : Refused();
  }
  Replied Lseek(off_t off) {
    return Claim() ? Replied(fuse_reply_lseek(req_, off)) : Refused();
  }
  Replied Ioctl(int result, const void* buf, std::size_t size) {
    return Claim() ? Replied(fuse_reply_ioctl(req_, result, buf, size))
                   : Refused();
  }
  // For forget: the request has no reply, but libfuse must free it.
  Replied None() {
    if (!Claim()) return Refused();
    fuse_reply_none(req_);
    return Replied(0);
  }

  // Called by Dispatch inside a catch block: maps the exception being
  // handled to the reply, or logs it if the reply has gone already.
  void FailFromException(const char* op) noexcept;

 private:
  // True the first time: the caller may send.
  bool Claim() {
    if (sent_) return false;
    sent_ = true;
    return true;
  }
  Replied Refused();
  void ReplyMissing() noexcept;

  const fuse_req_t req_;
  TaskFs& fs_;
  bool sent_ = false;
};

// The name of an operation, for the log, as a template argument.
template <std::size_t N>
struct OpName {
  constexpr OpName(const char (&name)[N]) { std::copy_n(name, N, text); }
  char text[N];
};

template <OpName kName, auto kHandler>
struct Dispatch;

// Call has the libfuse signature of the handler's operation.
template <OpName kName, typename... Args, Replied (*kHandler)(Reply&, Args...)>
struct Dispatch<kName, kHandler> {
  static void Call(fuse_req_t req, Args... args) noexcept {
    Reply reply(req, *static_cast<TaskFs*>(fuse_req_userdata(req)));
    try {
      static_cast<void>(kHandler(reply, args...));
    } catch (...) {
      reply.FailFromException(kName.text);
    }
  }
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_DISPATCH_H_
