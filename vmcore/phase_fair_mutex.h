// A reader-writer lock under which neither readers nor writers starve.
#ifndef TASKFS_VMCORE_PHASE_FAIR_MUTEX_H_
#define TASKFS_VMCORE_PHASE_FAIR_MUTEX_H_

#include <atomic>
#include <cstdint>

#if defined(__SANITIZE_THREAD__)
#define TASKFS_TSAN_MUTEX 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TASKFS_TSAN_MUTEX 1
#endif
#endif
#ifdef TASKFS_TSAN_MUTEX
#include <sanitizer/tsan_interface.h>
#endif

namespace taskfs::vm {

// The task and object locks (lock_order.h). glibc's rwlock, under
// std::shared_mutex, prefers readers: while readers overlap, a writer waits
// for ever (vm_allocate on a task four threads vm_read in a loop did not
// return in 30 s). A writer-preferring lock turns that around. This one is
// phase-fair (Brandenburg and Anderson's PF-T lock, "Spin-Based
// Reader-Writer Synchronization for Multiprocessor Real-Time Systems", 2010):
// a writer waits only for the readers already in and for the writers ahead of
// it (writers go in arrival order); a reader waits at most for one writer,
// because when that writer leaves, every reader that waited for it goes in
// before the next writer. Threads that wait sleep in the kernel
// (std::atomic::wait, a futex), after a short spin.
//
// Uncontended, lock_shared is one atomic add and unlock_shared one atomic add
// and a load, as cheap as glibc's rwlock; lock and unlock take two atomic
// adds each. 16 bytes.
//
// Meets the standard's SharedMutex requirements (std::unique_lock and
// std::shared_lock work with it). Not recursive in either mode: a thread
// holding it shared that takes it shared again can wait behind a writer that
// waits for it. At most 2^24 threads may hold it shared at once.
class PhaseFairMutex {
 public:
  PhaseFairMutex() { Annotate(kCreate, 0); }
  ~PhaseFairMutex() { Annotate(kDestroy, 0); }
  PhaseFairMutex(const PhaseFairMutex&) = delete;
  PhaseFairMutex& operator=(const PhaseFairMutex&) = delete;

  void lock_shared() {
    Annotate(kPreLock, kRead);
    // Counted in at once; waits only if a writer is present, and then for
    // exactly that writer (its phase bit), not for any that follows.
    const std::uint32_t writer =
        rin_.fetch_add(kReader, std::memory_order_acquire) & kWriterBits;
    if (writer != 0) WaitForPhaseChange(writer);
    Annotate(kPostLock, kRead);
  }

  bool try_lock_shared() {
    Annotate(kPreLock, kRead | kTry);
    std::uint32_t in = rin_.load(std::memory_order_relaxed);
    while ((in & kWriterBits) == 0) {
      if (rin_.compare_exchange_weak(in, in + kReader,
                                     std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
        Annotate(kPostLock, kRead | kTry);
        return true;
      }
    }
    Annotate(kPostLock, kRead | kTry | kTryFailed);
    return false;
  }

  void unlock_shared() {
    Annotate(kPreUnlock, kRead);
    // seq_cst on both sides (here and in lock) so that either this load sees
    // the present writer, which is then woken, or that writer's load of rout_
    // sees this reader gone.
    rout_.fetch_add(kReader, std::memory_order_seq_cst);
    if ((rin_.load(std::memory_order_seq_cst) & kPresent) != 0) {
      rout_.notify_all();
    }
    Annotate(kPostUnlock, kRead);
  }

  void lock() {
    Annotate(kPreLock, 0);
    const std::uint32_t ticket = win_.fetch_add(1, std::memory_order_relaxed);
    WaitUntil(wout_, ticket);
    // Blocks new readers; the readers counted in before this are the ones to
    // wait for. rin_'s writer bits are 0 here: the previous writer cleared
    // them before letting this one through.
    const std::uint32_t readers_in =
        rin_.fetch_add(kPresent | (ticket & kPhase), std::memory_order_seq_cst);
    WaitUntil(rout_, readers_in);
    Annotate(kPostLock, 0);
  }

  bool try_lock() {
    Annotate(kPreLock, kTry);
    std::uint32_t ticket = wout_.load(std::memory_order_acquire);
    if (rin_.load(std::memory_order_relaxed) !=
            rout_.load(std::memory_order_relaxed) ||
        !win_.compare_exchange_strong(ticket, ticket + 1,
                                      std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
      Annotate(kPostLock, kTry | kTryFailed);
      return false;
    }
    // Next in line among writers; in if no reader came in meanwhile, else
    // out again as unlock leaves.
    const std::uint32_t readers_in =
        rin_.fetch_add(kPresent | (ticket & kPhase), std::memory_order_seq_cst);
    if (rout_.load(std::memory_order_seq_cst) != readers_in) {
      Leave();
      Annotate(kPostLock, kTry | kTryFailed);
      return false;
    }
    Annotate(kPostLock, kTry);
    return true;
  }

  void unlock() {
    Annotate(kPreUnlock, 0);
    Leave();
    Annotate(kPostUnlock, 0);
  }

 private:
  // rin_: readers counted in (in units of kReader), and the present writer's
  // bits. rout_: readers gone (units of kReader, low bits always 0). Both wrap;
  // only their equality and rin_'s low bits matter. win_/wout_: writer
  // tickets handed out and finished.
  static constexpr std::uint32_t kReader = 0x100;
  static constexpr std::uint32_t kPresent = 0x2;  // a writer holds or waits
  static constexpr std::uint32_t kPhase = 0x1;    // that writer's ticket & 1
  static constexpr std::uint32_t kWriterBits = kPresent | kPhase;

  // A reader that came in under writer bits `writer` waits until they
  // change: to 0 when the writer leaves, or to the next writer's bits (the
  // other phase) if it came in at once; either way this reader's phase has
  // begun, and the next writer counted it in.
  void WaitForPhaseChange(std::uint32_t writer) {
    std::uint32_t in = rin_.load(std::memory_order_acquire);
    while ((in & kWriterBits) == writer) {
      rin_.wait(in, std::memory_order_acquire);
      in = rin_.load(std::memory_order_acquire);
    }
  }

  // Waits until word holds value. seq_cst: lock's load of rout_ after its
  // add to rin_ pairs with unlock_shared's load of rin_ after its add to
  // rout_.
  static void WaitUntil(const std::atomic<std::uint32_t>& word,
                        std::uint32_t value) {
    for (std::uint32_t now = word.load(std::memory_order_seq_cst); now != value;
         now = word.load(std::memory_order_seq_cst)) {
      word.wait(now, std::memory_order_seq_cst);
    }
  }

  // A writer leaves: lets the readers that waited for it in, then the next
  // writer, which will wait for those readers.
  void Leave() {
    rin_.fetch_and(~kWriterBits, std::memory_order_release);
    rin_.notify_all();
    wout_.fetch_add(1, std::memory_order_release);
    wout_.notify_all();
  }

  // ThreadSanitizer does not know this is a lock unless told: with the
  // annotations it checks the lock order (detect_deadlocks) and misuse.
  enum Event {
    kCreate,
    kDestroy,
    kPreLock,
    kPostLock,
    kPreUnlock,
    kPostUnlock
  };
#ifdef TASKFS_TSAN_MUTEX
  static constexpr unsigned kRead = __tsan_mutex_read_lock;
  static constexpr unsigned kTry = __tsan_mutex_try_lock;
  static constexpr unsigned kTryFailed = __tsan_mutex_try_lock_failed;
  void Annotate(Event event, unsigned flags) {
    switch (event) {
      case kCreate:
        __tsan_mutex_create(this, __tsan_mutex_not_static);
        break;
      case kDestroy:
        __tsan_mutex_destroy(this, __tsan_mutex_not_static);
        break;
      case kPreLock:
        __tsan_mutex_pre_lock(this, flags);
        break;
      case kPostLock:
        __tsan_mutex_post_lock(this, flags, 0);
        break;
      case kPreUnlock:
        __tsan_mutex_pre_unlock(this, flags);
        break;
      case kPostUnlock:
        __tsan_mutex_post_unlock(this, flags);
        break;
    }
  }
#else
  static constexpr unsigned kRead = 0;
  static constexpr unsigned kTry = 0;
  static constexpr unsigned kTryFailed = 0;
  static void Annotate(Event, unsigned) {}
#endif

  std::atomic<std::uint32_t> rin_{0};
  std::atomic<std::uint32_t> rout_{0};
  std::atomic<std::uint32_t> win_{0};
  std::atomic<std::uint32_t> wout_{0};
};

}  // namespace taskfs::vm

#undef TASKFS_TSAN_MUTEX

#endif  // TASKFS_VMCORE_PHASE_FAIR_MUTEX_H_
