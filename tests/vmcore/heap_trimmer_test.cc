// The thread that gives the heap back.
#include "vmcore/heap_trimmer.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace taskfs::vm {
namespace {

std::atomic<int> trims_run{0};
std::atomic<bool> hold_trim{false};

// A trim that counts, and waits while a test holds it.
void CountingTrim() {
  while (hold_trim.load()) std::this_thread::yield();
  ++trims_run;
}

TEST(HeapTrimmerTest, NothingRunsUntilAsked) {
  trims_run = 0;
  {
    HeapTrimmer trimmer(&CountingTrim);
    trimmer.Wait();
    EXPECT_EQ(trimmer.trims(), 0u);
  }
  EXPECT_EQ(trims_run.load(), 0);
}

TEST(HeapTrimmerTest, ARequestIsServedByOneTrim) {
  trims_run = 0;
  HeapTrimmer trimmer(&CountingTrim);
  trimmer.Request();
  trimmer.Wait();
  EXPECT_EQ(trimmer.trims(), 1u);
  EXPECT_EQ(trims_run.load(), 1);
  trimmer.Request();
  trimmer.Wait();
  EXPECT_EQ(trimmer.trims(), 2u);
}

// Requests made while a trim runs are served together by the next.
TEST(HeapTrimmerTest, RequestsDuringATrimAreServedByOneMore) {
  trims_run = 0;
  hold_trim = true;
  HeapTrimmer trimmer(&CountingTrim);
  trimmer.Request();
  std::vector<std::thread> askers;
  for (int i = 0; i < 4; ++i) {
    askers.emplace_back([&] {
      for (int n = 0; n < 100; ++n) trimmer.Request();
    });
  }
  for (auto& t : askers) t.join();
  hold_trim = false;
  trimmer.Wait();
  EXPECT_GE(trimmer.trims(), 1u);
  EXPECT_LE(trimmer.trims(), 3u);
  EXPECT_EQ(trims_run.load(), static_cast<int>(trimmer.trims()));
}

// The real trim runs and returns.
TEST(HeapTrimmerTest, MallocTrimRuns) {
  HeapTrimmer trimmer;
  std::vector<std::vector<char>> blocks;
  for (int i = 0; i < 1024; ++i) blocks.emplace_back(4096, 'x');
  blocks.clear();
  trimmer.Request();
  trimmer.Wait();
  EXPECT_EQ(trimmer.trims(), 1u);
}

std::atomic<int> afters_run{0};
void CountAfter(void* arg) {
  ++afters_run;
  *static_cast<int*>(arg) = trims_run.load();
}

// The after hook runs after each trim, and alone when asked alone.
TEST(HeapTrimmerTest, AfterRunsAfterTrimsAndAlone) {
  trims_run = 0;
  afters_run = 0;
  int trims_seen = -1;
  HeapTrimmer trimmer(&CountingTrim, &CountAfter, &trims_seen);
  trimmer.Request();
  trimmer.Wait();
  EXPECT_EQ(trimmer.trims(), 1u);
  EXPECT_EQ(afters_run.load(), 1);
  EXPECT_EQ(trims_seen, 1);  // after the trim
  trimmer.RequestAfter();
  trimmer.Wait();
  EXPECT_EQ(trimmer.trims(), 1u);
  EXPECT_EQ(trims_run.load(), 1);
  EXPECT_EQ(afters_run.load(), 2);
}

// Destroyed with a trim under way: it waits for it.
TEST(HeapTrimmerTest, DestroyedWhileTrimming) {
  trims_run = 0;
  hold_trim = true;
  std::thread release;
  {
    HeapTrimmer trimmer(&CountingTrim);
    trimmer.Request();
    release = std::thread([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      hold_trim = false;
    });
  }
  EXPECT_LE(trims_run.load(), 1);
  release.join();
}

// Rest, before a fork: every request is served, the thread ends, and the
// next request starts one in whichever process goes on, so a forked child's
// requests are served and its Wait returns (fork copies no thread).
TEST(HeapTrimmerTest, RestEndsTheThreadAndAForkedChildStartsItsOwn) {
  trims_run = 0;
  HeapTrimmer trimmer(&CountingTrim);
  trimmer.Request();
  trimmer.Rest();
  EXPECT_EQ(trimmer.trims(), 1u);
  trimmer.Wait();  // nothing left to wait for
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    trimmer.Request();
    trimmer.Wait();
    _exit(trimmer.trims() == 2 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  trimmer.Request();
  trimmer.Wait();
  EXPECT_EQ(trimmer.trims(), 2u);
}

}  // namespace
}  // namespace taskfs::vm
