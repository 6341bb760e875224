#include "vmcore/heap_trimmer.h"

#include <malloc.h>
#include <pthread.h>
#include <sched.h>

namespace taskfs::vm {

void HeapTrimmer::TrimMallocHeap() { malloc_trim(0); }

HeapTrimmer::~HeapTrimmer() {
  if (!started_.load(std::memory_order_acquire)) return;
  stop_.store(true, std::memory_order_release);
  requested_.fetch_add(1, std::memory_order_acq_rel);
  requested_.notify_one();
  thread_.join();
}

void HeapTrimmer::Rest() noexcept {
  if (!started_.load(std::memory_order_acquire)) return;
  Wait();
  stop_.store(true, std::memory_order_release);
  requested_.fetch_add(1, std::memory_order_acq_rel);
  requested_.notify_one();
  thread_.join();
  // The stop's own count is served: Wait must not wait for it.
  served_.store(requested_.load(std::memory_order_acquire),
                std::memory_order_release);
  stop_.store(false, std::memory_order_release);
  started_.store(false, std::memory_order_release);
  starting_.clear(std::memory_order_release);
}

void HeapTrimmer::Request() noexcept {
  // Set before the request counts: the thread that sees the count sees it.
  trim_wanted_.store(true, std::memory_order_release);
  Kick();
}

void HeapTrimmer::RequestAfter() noexcept { Kick(); }

void HeapTrimmer::Kick() noexcept {
  requested_.fetch_add(1, std::memory_order_acq_rel);
  if (!starting_.test_and_set(std::memory_order_acq_rel)) {
    try {
      thread_ = std::thread([this] { Run(); });
      started_.store(true, std::memory_order_release);
    } catch (...) {
      // No thread: every request counts as served from now on.
      served_.store(~std::uint64_t{0}, std::memory_order_release);
      served_.notify_all();
    }
    return;
  }
  requested_.notify_one();
}

void HeapTrimmer::Wait() const noexcept {
  const std::uint64_t target = requested_.load(std::memory_order_acquire);
  std::uint64_t served = served_.load(std::memory_order_acquire);
  while (served < target) {
    served_.wait(served, std::memory_order_acquire);
    served = served_.load(std::memory_order_acquire);
  }
}

void HeapTrimmer::Run() noexcept {
  // Batch scheduling: the trim does not preempt the thread that asked.
  sched_param param{};
  pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
  // Requests served before this thread (a Rest) are not waited for.
  std::uint64_t seen = served_.load(std::memory_order_acquire);
  for (;;) {
    requested_.wait(seen, std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    seen = requested_.load(std::memory_order_acquire);
    if (trim_wanted_.exchange(false, std::memory_order_acq_rel)) {
      trim_();
      trims_.fetch_add(1, std::memory_order_acq_rel);
    }
    if (after_ != nullptr) after_(after_arg_);
    served_.store(seen, std::memory_order_release);
    served_.notify_all();
  }
}

}  // namespace taskfs::vm
