// The dispatch wrapper (fs/dispatch.h): exactly one reply on every path, and
// no exception out. libfuse's reply calls are replaced here by recorders:
// definitions in the executable take precedence over libfuse's.
#include "fs/dispatch.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <memory>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fs/taskfs_fs.h"
#include "vmcore/vm_system.h"

namespace {

struct Sent {
  std::string call;
  long value;
  friend bool operator==(const Sent&, const Sent&) = default;
};

std::vector<Sent> g_sent;
void* g_userdata = nullptr;

}  // namespace

extern "C" {
void* fuse_req_userdata(fuse_req_t) { return g_userdata; }
int fuse_reply_err(fuse_req_t, int err) {
  g_sent.push_back({"err", err});
  return 0;
}
void fuse_reply_none(fuse_req_t) { g_sent.push_back({"none", 0}); }
int fuse_reply_write(fuse_req_t, size_t count) {
  g_sent.push_back({"write", static_cast<long>(count)});
  return 0;
}
int fuse_reply_buf(fuse_req_t, const char*, size_t size) {
  g_sent.push_back({"buf", static_cast<long>(size)});
  return -ENOENT;  // as for an interrupted request
}
}

namespace taskfs::fs {
namespace {

// A request handle is only passed around; it is never looked into here.
fuse_req_t FakeRequest() {
  static char request;
  return reinterpret_cast<fuse_req_t>(&request);
}

class DispatchTest : public ::testing::Test {
 protected:
  DispatchTest()
      : system_(vm::VmConfig{}),
        log_(std::make_shared<spdlog::logger>(
            "dispatch_test",
            std::make_shared<spdlog::sinks::ostream_sink_st>(log_text_))),
        fs_(system_, log_, 1u << 20) {
    log_->set_pattern("%l: %v");
    log_->set_level(spdlog::level::debug);
    g_sent.clear();
    g_userdata = &fs_;
  }
  ~DispatchTest() override { g_userdata = nullptr; }

  std::string Logged() {
    log_->flush();
    return log_text_.str();
  }

  std::ostringstream log_text_;
  vm::VmSystem system_;
  std::shared_ptr<spdlog::logger> log_;
  TaskFs fs_;
};

Replied Replies(Reply& r, int error) { return r.Err(error); }

Replied ThrowsBadAlloc(Reply&, int) { throw std::bad_alloc(); }

Replied ThrowsRuntimeError(Reply&, int) {
  throw std::runtime_error("broken invariant");
}

Replied ThrowsAnInt(Reply&, int) { throw 42; }

Replied ThrowsAfterReplying(Reply& r, int) {
  const Replied done = r.Write(7);
  static_cast<void>(done);
  throw std::runtime_error("late");
}

Replied RepliesTwice(Reply& r, int) {
  const Replied first = r.Err(0);
  const Replied second = r.Write(1);
  EXPECT_EQ(second.result(), -EALREADY);
  EXPECT_TRUE(r.sent());
  return first;
}

Replied PassesTheResultOn(Reply& r, int) {
  const Replied done = r.Buf("abc", 3);
  EXPECT_EQ(done.result(), -ENOENT);
  return done;
}

Replied NoReplyNeeded(Reply& r, fuse_ino_t, uint64_t) { return r.None(); }

TEST_F(DispatchTest, AHandlerReplyIsSentOnce) {
  Dispatch<"test", Replies>::Call(FakeRequest(), ENOENT);
  EXPECT_EQ(g_sent, (std::vector<Sent>{{"err", ENOENT}}));
  EXPECT_EQ(Logged(), "");
}

TEST_F(DispatchTest, BadAllocBecomesEnospc) {
  Dispatch<"test", ThrowsBadAlloc>::Call(FakeRequest(), 0);
  EXPECT_EQ(g_sent, (std::vector<Sent>{{"err", ENOSPC}}));
  EXPECT_EQ(Logged().find("warning"), std::string::npos);
}

TEST_F(DispatchTest, AnyOtherExceptionBecomesEioAndAWarning) {
  Dispatch<"probe", ThrowsRuntimeError>::Call(FakeRequest(), 0);
  EXPECT_EQ(g_sent, (std::vector<Sent>{{"err", EIO}}));
  EXPECT_NE(Logged().find("warning: probe: unexpected exception: "
                          "broken invariant"),
            std::string::npos)
      << Logged();
}

TEST_F(DispatchTest, ANonStandardExceptionBecomesEio) {
  Dispatch<"probe", ThrowsAnInt>::Call(FakeRequest(), 0);
  EXPECT_EQ(g_sent, (std::vector<Sent>{{"err", EIO}}));
  EXPECT_NE(Logged().find("warning: probe: unexpected exception"),
            std::string::npos);
}

TEST_F(DispatchTest, AnExceptionAfterTheReplySendsNothingMore) {
  Dispatch<"probe", ThrowsAfterReplying>::Call(FakeRequest(), 0);
  EXPECT_EQ(g_sent, (std::vector<Sent>{{"write", 7}}));
  EXPECT_NE(Logged().find("the exception came after the reply"),
            std::string::npos);
}

TEST_F(DispatchTest, ASecondReplyIsRefusedAndLogged) {
  Dispatch<"test", RepliesTwice>::Call(FakeRequest(), 0);
  EXPECT_EQ(g_sent, (std::vector<Sent>{{"err", 0}}));
  EXPECT_NE(Logged().find("error: a second reply"), std::string::npos);
}

TEST_F(DispatchTest, TheReplyResultReachesTheHandler) {
  Dispatch<"test", PassesTheResultOn>::Call(FakeRequest(), 0);
  EXPECT_EQ(g_sent, (std::vector<Sent>{{"buf", 3}}));
}

TEST_F(DispatchTest, ForgetRepliesNone) {
  Dispatch<"forget", NoReplyNeeded>::Call(FakeRequest(), 9, 1);
  EXPECT_EQ(g_sent, (std::vector<Sent>{{"none", 0}}));
}

TEST_F(DispatchTest, AReplyLeftUnsentSendsEio) {
  { Reply reply(FakeRequest(), fs_); }
  EXPECT_EQ(g_sent, (std::vector<Sent>{{"err", EIO}}));
  EXPECT_NE(Logged().find("error: a request was left without a reply"),
            std::string::npos);
}

// The daemon's own table, on requests answered without the VM core.
TEST_F(DispatchTest, TheOperationsTableRepliesOnce) {
  const fuse_lowlevel_ops& ops = TaskFs::Operations();
  ops.unlink(FakeRequest(), 1, "x");
  ops.forget(FakeRequest(), 8, 1);
  ops.getattr(FakeRequest(), 6, nullptr);      // task id 0
  ops.getattr(FakeRequest(), 9 * 8, nullptr);  // no task 9
  ops.readdir(FakeRequest(), 9 * 8 + 1, 4096, 0, nullptr);
  ops.lookup(FakeRequest(), 2, "mem");
  ops.fsync(FakeRequest(), 1, 0, nullptr);
  EXPECT_EQ(g_sent, (std::vector<Sent>{{"err", EPERM},
                                       {"none", 0},
                                       {"err", ENOENT},
                                       {"err", ENOENT},
                                       {"err", ENOTDIR},
                                       {"err", ENOENT},
                                       {"err", 0}}));
}

}  // namespace
}  // namespace taskfs::fs
