// The thread that frees, in the background, what would cost its caller too
// long to free: a page table's large dead subtrees (page_table.h).
#ifndef TASKFS_VMCORE_DEFERRED_FREER_H_
#define TASKFS_VMCORE_DEFERRED_FREER_H_

#include <condition_variable>
#include <mutex>
#include <thread>

namespace taskfs::vm {

// What its owner hands over (Take) is dead: nothing else reaches it. The
// freer frees it on a thread of its own, started at the first hand-over, so
// that dropping a GiB of pages costs the caller one reference. Its list is
// intrusive (Hooks::link: a word of the dead thing), so handing over never
// allocates and cannot fail.
//
// Ownership: each VmSystem owns one (VmSystem::freer()), for the nodes of
// its page tables, and its end stops it: drains it and joins the thread
// (Stop) before the pages and the budget that the frees give back to go.
// Several systems in one process each have their own.
//
// Thread-safety: all methods are thread-safe. mu_ is a leaf of
// lock_order.h (level 5): held only to put a thing on the list or take one
// off, never while freeing, and nothing is locked under it. Drain and Stop
// wait for what the thread is freeing, and that free takes
// PageAllocator::mu_ (the pages it drops) and mu_ (a large child it hands
// over; the budget it releases into takes no lock): so they are called
// holding neither. Task and object locks are fine: freeing takes none.
class DeferredFreer {
 public:
  // How the owner's things are freed. link(thing): the word of a dead thing
  // that the waiting list links through. free(thing, freer): frees it, on
  // the freer's thread or on a draining caller's; it may hand freer more
  // (Take), and must take none of the caller's locks (above).
  struct Hooks {
    void** (*link)(void* thing) noexcept;
    void (*free)(void* thing, DeferredFreer& freer) noexcept;
  };

  explicit DeferredFreer(const Hooks& hooks) : hooks_(hooks) {}
  ~DeferredFreer() { Stop(); }
  DeferredFreer(const DeferredFreer&) = delete;
  DeferredFreer& operator=(const DeferredFreer&) = delete;

  // Takes thing to free in the background; false if there is no thread to
  // do it (it could not be started, or the freer is stopped): the caller
  // then frees it itself.
  bool Take(void* thing) noexcept;

  // Frees what is waiting on this thread and waits for what the freer's
  // thread is freeing. True if there was anything.
  bool Drain() noexcept;

  // Frees everything handed over, then ends the thread and joins it. Takes
  // after it return false. Idempotent; the destructor calls it.
  void Stop() noexcept;

  // As Stop, but the next Take starts a thread again: for a process about
  // to fork (a daemon going to the background), whose child would else
  // believe a thread runs that fork did not copy. Only the owner calls it,
  // with no Take or Drain under way.
  void Rest() noexcept;

  // Whether the thread was started, and whether it is still running (not
  // joined): for tests.
  bool started() const;
  bool running() const;

 private:
  void Run() noexcept;
  // Frees the first waiting thing, counted in busy_ meanwhile so that a
  // Drain waits for it. lock holds mu_, and does again on return.
  void FreeOne(std::unique_lock<std::mutex>& lock) noexcept;

  const Hooks hooks_;
  mutable std::mutex mu_;
  std::condition_variable work_;  // something to free, or stopping_
  std::condition_variable idle_;  // a free ended
  void* dead_ = nullptr;          // guarded by mu_: the list, newest first
  int busy_ = 0;                  // guarded by mu_: things being freed
  bool started_ = false;          // guarded by mu_
  bool stopping_ = false;         // guarded by mu_
  bool running_ = false;          // guarded by mu_: thread_ started, not joined
  std::thread thread_;            // started under mu_ (Take); joined by Stop
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_DEFERRED_FREER_H_
