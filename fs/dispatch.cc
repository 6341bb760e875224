#include "fs/dispatch.h"

#include <cerrno>
#include <exception>
#include <new>

#include "fs/errno_map.h"
#include "fs/taskfs_fs.h"

namespace taskfs::fs {

void Reply::ReplyMissing() noexcept {
  fs_.log().error("a request was left without a reply; sending EIO");
  sent_ = true;
  fuse_reply_err(req_, EIO);
}

Replied Reply::Refused() {
  fs_.log().error("a second reply to one request was refused");
  return Replied(-EALREADY);
}

void Reply::FailFromException(const char* op) noexcept {
  int error = EIO;
  try {
    throw;
  } catch (const std::bad_alloc&) {
    error = ErrnoFromKern(vm::KERN_RESOURCE_SHORTAGE);
    if (fs_.log().should_log(spdlog::level::debug)) {
      fs_.log().debug("{}: out of memory: KERN_RESOURCE_SHORTAGE", op);
    }
  } catch (const std::exception& e) {
    fs_.log().warn("{}: unexpected exception: {}", op, e.what());
  } catch (...) {
    fs_.log().warn("{}: unexpected exception", op);
  }
  if (sent_) {
    fs_.log().warn("{}: the exception came after the reply", op);
    return;
  }
  sent_ = true;
  fuse_reply_err(req_, error);
}

}  // namespace taskfs::fs
