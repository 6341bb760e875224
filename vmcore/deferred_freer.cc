#include "vmcore/deferred_freer.h"

#include <pthread.h>
#include <sched.h>

namespace taskfs::vm {

bool DeferredFreer::Take(void* thing) noexcept {
  std::unique_lock lock(mu_);
  if (stopping_) return false;
  if (!started_) {
    started_ = true;
    try {
      thread_ = std::thread([this] { Run(); });
      running_ = true;
    } catch (...) {
    }
  }
  if (!running_) return false;
  *hooks_.link(thing) = dead_;
  dead_ = thing;
  lock.unlock();
  work_.notify_one();
  return true;
}

bool DeferredFreer::Drain() noexcept {
  bool any = false;
  std::unique_lock lock(mu_);
  for (;;) {
    if (dead_ != nullptr) {
      FreeOne(lock);
    } else if (busy_ == 0) {
      return any;
    } else {
      idle_.wait(lock);
    }
    any = true;
  }
}

void DeferredFreer::Stop() noexcept {
  // The caller helps with what is waiting; the thread ends once its list is
  // empty, and a free on it that hands over more (a large child) then frees
  // it there (Take refuses).
  Drain();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_.notify_all();
  // Only the owner stops it, once at a time: thread_ changes outside mu_
  // here, and Take reads it no more once stopping_ is set.
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(mu_);
    running_ = false;
  }
  Drain();  // nothing is left unless the thread never ran; cheap either way
}

void DeferredFreer::Rest() noexcept {
  Stop();
  std::lock_guard lock(mu_);
  stopping_ = false;
  started_ = false;
}

bool DeferredFreer::started() const {
  std::lock_guard lock(mu_);
  return started_;
}

bool DeferredFreer::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

void DeferredFreer::Run() noexcept {
  // Batch scheduling: a woken freer does not preempt the thread that handed
  // it the work (the caller it is there to spare).
  sched_param param{};
  pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
  std::unique_lock lock(mu_);
  for (;;) {
    work_.wait(lock, [this] { return dead_ != nullptr || stopping_; });
    if (dead_ == nullptr) return;  // stopping, and nothing left
    FreeOne(lock);
  }
}

void DeferredFreer::FreeOne(std::unique_lock<std::mutex>& lock) noexcept {
  void* thing = dead_;
  dead_ = *hooks_.link(thing);
  ++busy_;
  lock.unlock();
  hooks_.free(thing, *this);
  lock.lock();
  --busy_;
  idle_.notify_all();
}

}  // namespace taskfs::vm
