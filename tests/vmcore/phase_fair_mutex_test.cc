// PhaseFairMutex: what each mode excludes, mutual exclusion under contention
// (run under ThreadSanitizer too), and that neither readers nor writers
// starve.
#include "vmcore/phase_fair_mutex.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "tests/vmcore/lock_probe.h"

namespace taskfs::vm {
namespace {

using Clock = std::chrono::steady_clock;

// Generous: a fair lock passes these in milliseconds.
constexpr std::chrono::seconds kDeadline{10};

TEST(PhaseFairMutexTest, ExclusiveExcludesAllSharedExcludesWriters) {
  PhaseFairMutex mu;
  EXPECT_EQ(Probe(mu), Held::kNot);
  {
    std::unique_lock lock(mu);
    EXPECT_EQ(Probe(mu), Held::kExclusive);
  }
  EXPECT_EQ(Probe(mu), Held::kNot);
  {
    std::shared_lock a(mu);
    std::shared_lock b(mu);
    EXPECT_EQ(Probe(mu), Held::kShared);
  }
  EXPECT_EQ(Probe(mu), Held::kNot);
  // Taken by try_lock, released as any lock.
  ASSERT_TRUE(mu.try_lock());
  EXPECT_EQ(Probe(mu), Held::kExclusive);
  mu.unlock();
  ASSERT_TRUE(mu.try_lock_shared());
  EXPECT_EQ(Probe(mu), Held::kShared);
  mu.unlock_shared();
  EXPECT_EQ(Probe(mu), Held::kNot);
}

// Once a writer waits for the readers in, a new reader is refused; when the
// readers leave the writer goes in, and readers again after it.
TEST(PhaseFairMutexTest, AWaitingWriterHoldsBackNewReaders) {
  PhaseFairMutex mu;
  mu.lock_shared();
  std::atomic<bool> writer_in{false};
  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    mu.lock();
    writer_in.store(true);
    while (!writer_done.load()) std::this_thread::yield();
    mu.unlock();
  });
  const auto deadline = Clock::now() + kDeadline;
  bool refused = false;
  while (!refused && Clock::now() < deadline) {
    refused = !mu.try_lock_shared();
    if (!refused) mu.unlock_shared();
  }
  EXPECT_TRUE(refused) << "a new reader still got in " << kDeadline.count()
                       << " s after a writer came";
  EXPECT_FALSE(writer_in.load());
  mu.unlock_shared();
  while (!writer_in.load() && Clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_TRUE(writer_in.load());
  EXPECT_FALSE(mu.try_lock_shared());
  writer_done.store(true);
  writer.join();
  EXPECT_TRUE(mu.try_lock_shared());
  mu.unlock_shared();
}

// A try_lock that finds readers in, or a writer ahead, fails and leaves the
// lock as it was.
TEST(PhaseFairMutexTest, FailedTryLockChangesNothing) {
  PhaseFairMutex mu;
  mu.lock_shared();
  EXPECT_FALSE(mu.try_lock());
  EXPECT_TRUE(mu.try_lock_shared());  // no writer left behind
  mu.unlock_shared();
  mu.unlock_shared();
  mu.lock();
  EXPECT_FALSE(mu.try_lock());
  mu.unlock();
  EXPECT_EQ(Probe(mu), Held::kNot);
}

// Writers keep two counters equal, readers check that they are; a reader
// counts how many readers are in at once, a writer that none is.
TEST(PhaseFairMutexTest, MutualExclusionUnderContention) {
  PhaseFairMutex mu;
  std::uint64_t a = 0, b = 0;  // guarded by mu
  std::atomic<int> readers_in{0};
  std::atomic<int> max_readers_in{0};
  std::atomic<int> broken{0};
  constexpr int kThreads = 6;
  constexpr int kRounds = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        if ((i + t) % 4 == 0) {
          std::unique_lock lock(mu);
          if (readers_in.load() != 0) broken.fetch_add(1);
          ++a;
          ++b;
        } else {
          std::shared_lock lock(mu);
          const int in = readers_in.fetch_add(1) + 1;
          int seen = max_readers_in.load();
          while (in > seen && !max_readers_in.compare_exchange_weak(seen, in)) {
          }
          if (a != b) broken.fetch_add(1);
          readers_in.fetch_sub(1);
        }
        if (i % 64 == 0) {
          // The try variants in the same mix.
          if (mu.try_lock()) {
            ++a;
            ++b;
            mu.unlock();
          }
          if (mu.try_lock_shared()) {
            if (a != b) broken.fetch_add(1);
            mu.unlock_shared();
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(broken.load(), 0);
  EXPECT_EQ(a, b);
  EXPECT_GE(a, std::uint64_t{kThreads} * kRounds / 4);
}

// Runs hammer() in a loop on four threads and counts how many times one more
// thread gets through `calls` calls of call(); true if it did within
// kDeadline. The hammers stop either way.
template <typename Hammer, typename Call>
bool GetsThrough(Hammer hammer, Call call, int calls) {
  std::atomic<bool> stop{false};
  std::atomic<int> started{0};
  std::vector<std::thread> hammers;
  for (int i = 0; i < 4; ++i) {
    hammers.emplace_back([&] {
      hammer();
      started.fetch_add(1);
      while (!stop.load()) hammer();
    });
  }
  const auto deadline = Clock::now() + kDeadline;
  while (started.load() < 4 && Clock::now() < deadline) {
    std::this_thread::yield();
  }
  std::atomic<int> done{0};
  std::thread caller([&] {
    for (int i = 0; i < calls && !stop.load(); ++i) {
      call();
      done.fetch_add(1);
    }
  });
  while (done.load() < calls && Clock::now() < deadline) {
    std::this_thread::yield();
  }
  const bool through = done.load() == calls;
  stop.store(true);
  for (std::thread& thread : hammers) thread.join();
  caller.join();
  return through;
}

// Work inside the lock long enough that the hammers' critical sections
// overlap, as 1 MiB copies under a task lock do.
void Busy(std::atomic<std::uint64_t>& sink) {
  std::uint64_t x = sink.load(std::memory_order_relaxed);
  for (int i = 0; i < 20000; ++i) x = x * 6364136223846793005u + 1;
  sink.store(x, std::memory_order_relaxed);
}

// glibc's default rwlock (std::shared_mutex) lets new readers pass a waiting
// writer: this writer does not get in.
TEST(PhaseFairMutexTest, AWriterGetsInWhileReadersOverlap) {
  PhaseFairMutex mu;
  std::atomic<std::uint64_t> sink{1};
  EXPECT_TRUE(GetsThrough(
      [&] {
        std::shared_lock lock(mu);
        Busy(sink);
      },
      [&] { std::unique_lock lock(mu); }, 200));
}

// Each read waits for one writer at most. Under a writer-preferring lock,
// where a reader waits while any writer waits, these reads do not get in.
TEST(PhaseFairMutexTest, AReaderGetsInWhileWritersQueue) {
  PhaseFairMutex mu;
  std::atomic<std::uint64_t> sink{1};
  EXPECT_TRUE(GetsThrough(
      [&] {
        std::unique_lock lock(mu);
        Busy(sink);
      },
      [&] { std::shared_lock lock(mu); }, 5000));
}

}  // namespace
}  // namespace taskfs::vm
