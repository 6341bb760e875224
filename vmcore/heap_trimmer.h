// Gives the heap's free memory back to the system, on a thread of its own.
#ifndef TASKFS_VMCORE_HEAP_TRIMMER_H_
#define TASKFS_VMCORE_HEAP_TRIMMER_H_

#include <atomic>
#include <cstdint>
#include <thread>

namespace taskfs::vm {

// Metadata lives in malloc's heap, and what is freed there stays resident
// in malloc's free lists until malloc is told to give it back; written
// pages come from their own mmaps (page_allocator.h) and cannot reuse it.
// A HeapTrimmer runs a trim (by default glibc's malloc_trim(0), which also
// gives back the free whole pages inside the heap) when asked, on its own
// thread, so the asker holds whatever locks it holds for no longer.
//
// After each trim, and for each RequestAfter, the thread runs an "after"
// hook if one is given: the budget measures there what the heap still holds
// (MemoryBudget::ChargeHeapOverhang).
//
// Thread-safety: all methods are thread-safe. Request and RequestAfter never
// block and take no lock, so they may be called from any release path.
class HeapTrimmer {
 public:
  using Trim = void (*)();
  using After = void (*)(void* arg);
  // glibc's malloc_trim(0).
  static void TrimMallocHeap();

  explicit HeapTrimmer(Trim trim = &TrimMallocHeap, After after = nullptr,
                       void* after_arg = nullptr)
      : trim_(trim), after_(after), after_arg_(after_arg) {}
  ~HeapTrimmer();  // waits for a trim under way, then stops the thread
  HeapTrimmer(const HeapTrimmer&) = delete;
  HeapTrimmer& operator=(const HeapTrimmer&) = delete;

  // Asks for one trim after this call. Requests that come while a trim
  // runs are served by one more. The thread starts at the first request;
  // if it cannot be started, the request is dropped (the memory stays
  // resident, nothing else goes wrong).
  void Request() noexcept;
  // Asks for the after hook alone, without a trim (served like Request).
  void RequestAfter() noexcept;
  // Waits until every request made before this call has been served (or
  // dropped).
  void Wait() const noexcept;
  // Serves every request made so far, then ends the thread and joins it;
  // the next request starts one again. For a process about to fork (a
  // daemon going to the background), whose child would else believe a
  // thread runs that fork did not copy. Only the owner calls it, with no
  // request under way.
  void Rest() noexcept;
  // Trims run so far.
  std::uint64_t trims() const { return trims_.load(std::memory_order_acquire); }

 private:
  void Kick() noexcept;
  void Run() noexcept;

  const Trim trim_;
  const After after_;
  void* const after_arg_;
  std::atomic<bool> trim_wanted_{false};  // set by Request before it counts
  // requested_ counts requests; served_ is the count the last finished
  // trim started after (64 bits never wrap; all ones once requests are
  // dropped); trims_ counts trims.
  std::atomic<std::uint64_t> requested_{0};
  std::atomic<std::uint64_t> served_{0};
  std::atomic<std::uint64_t> trims_{0};
  std::atomic<bool> stop_{false};                 // set by the destructor
  std::atomic_flag starting_ = ATOMIC_FLAG_INIT;  // set by the first Request
  std::atomic<bool> started_{false};              // thread_ is set
  std::thread thread_;  // written once, by the Request that set starting_
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_HEAP_TRIMMER_H_
