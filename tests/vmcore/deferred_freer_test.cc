// The deferred freer: things freed on its thread, draining, stopping and
// joining at its owner's end, and the page tables' large subtrees that it is
// there for.
#include "vmcore/deferred_freer.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "vmcore/memory_account.h"
#include "vmcore/memory_budget.h"
#include "vmcore/page.h"
#include "vmcore/page_allocator.h"
#include "vmcore/page_table.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_user.h"

namespace taskfs::vm {
namespace {

using namespace std::chrono_literals;

// A thing to free: its link word, the things it holds (handed over when it
// is freed, as a dying node hands over its large children), and where its
// free is recorded.
struct Thing {
  void* link = nullptr;
  std::vector<Thing*> holds;
  std::atomic<int>* freed = nullptr;
  std::atomic<bool>* gate = nullptr;  // if set, the free waits until true
  std::thread::id* freed_on = nullptr;
};

const DeferredFreer::Hooks kThings = {
    [](void* thing) noexcept { return &static_cast<Thing*>(thing)->link; },
    [](void* p, DeferredFreer& freer) noexcept {
      Thing* thing = static_cast<Thing*>(p);
      if (thing->gate != nullptr) {
        while (!thing->gate->load()) std::this_thread::sleep_for(1ms);
      }
      if (thing->freed_on != nullptr) {
        *thing->freed_on = std::this_thread::get_id();
      }
      for (Thing* held : thing->holds) {
        if (!freer.Take(held)) kThings.free(held, freer);
      }
      ++*thing->freed;
      delete thing;
    },
};

Thing* NewThing(std::atomic<int>& freed) {
  Thing* thing = new Thing;
  thing->freed = &freed;
  return thing;
}

// Waits up to 10 s for cond.
template <typename Cond>
bool Eventually(Cond&& cond) {
  for (int i = 0; i < 10000; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return cond();
}

TEST(DeferredFreerTest, StartsItsThreadAtTheFirstHandOver) {
  std::atomic<int> freed{0};
  DeferredFreer freer(kThings);
  EXPECT_FALSE(freer.started());
  EXPECT_FALSE(freer.Drain());  // nothing to do
  ASSERT_TRUE(freer.Take(NewThing(freed)));
  EXPECT_TRUE(freer.started());
  EXPECT_TRUE(freer.running());
  freer.Drain();
  EXPECT_EQ(freed.load(), 1);
}

// Without a drain, what is handed over is freed on the freer's thread.
TEST(DeferredFreerTest, FreesOnItsOwnThread) {
  std::atomic<int> freed{0};
  std::thread::id freed_on;
  DeferredFreer freer(kThings);
  Thing* thing = NewThing(freed);
  thing->freed_on = &freed_on;
  ASSERT_TRUE(freer.Take(thing));
  ASSERT_TRUE(Eventually([&] { return freed.load() == 1; }));
  EXPECT_NE(freed_on, std::this_thread::get_id());
  EXPECT_NE(freed_on, std::thread::id());
}

// Drain returns only once what the thread is freeing is freed, and frees
// what is still waiting itself.
TEST(DeferredFreerTest, DrainWaitsForTheOneBeingFreed) {
  std::atomic<int> freed{0};
  std::atomic<bool> gate{false};
  DeferredFreer freer(kThings);
  Thing* slow = NewThing(freed);
  slow->gate = &gate;
  ASSERT_TRUE(freer.Take(slow));
  std::thread opener([&] {
    std::this_thread::sleep_for(50ms);
    gate = true;
  });
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(freer.Take(NewThing(freed)));
  EXPECT_TRUE(freer.Drain());
  EXPECT_EQ(freed.load(), 101);
  opener.join();
}

// A free may hand over more (a dying node its large children): a drain
// frees those too.
TEST(DeferredFreerTest, FreesWhatAFreeHandsOver) {
  std::atomic<int> freed{0};
  DeferredFreer freer(kThings);
  Thing* root = NewThing(freed);
  for (int i = 0; i < 64; ++i) {
    Thing* child = NewThing(freed);
    for (int j = 0; j < 8; ++j) child->holds.push_back(NewThing(freed));
    root->holds.push_back(child);
  }
  ASSERT_TRUE(freer.Take(root));
  freer.Drain();
  EXPECT_EQ(freed.load(), 1 + 64 + 64 * 8);
}

// Stop frees everything handed over, even what is slow, then joins the
// thread; later hand-overs are refused, so their callers free them.
TEST(DeferredFreerTest, StopFreesEverythingThenJoins) {
  std::atomic<int> freed{0};
  std::atomic<bool> gate{false};
  DeferredFreer freer(kThings);
  Thing* slow = NewThing(freed);
  slow->gate = &gate;
  for (int i = 0; i < 4; ++i) slow->holds.push_back(NewThing(freed));
  ASSERT_TRUE(freer.Take(slow));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(freer.Take(NewThing(freed)));
  std::thread opener([&] {
    std::this_thread::sleep_for(50ms);
    gate = true;
  });
  freer.Stop();
  EXPECT_EQ(freed.load(), 1 + 4 + 10);
  EXPECT_FALSE(freer.running());
  Thing* late = NewThing(freed);
  EXPECT_FALSE(freer.Take(late));
  kThings.free(late, freer);
  EXPECT_EQ(freed.load(), 16);
  freer.Stop();  // again: nothing to do
  opener.join();
}

TEST(DeferredFreerTest, DestructionFreesWhatIsLeft) {
  std::atomic<int> freed{0};
  {
    DeferredFreer freer(kThings);
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(freer.Take(NewThing(freed)));
  }
  EXPECT_EQ(freed.load(), 1000);
}

// Each freer has a thread of its own.
TEST(DeferredFreerTest, TwoFreersTwoThreads) {
  std::atomic<int> freed{0};
  std::thread::id on_a, on_b;
  DeferredFreer a(kThings), b(kThings);
  Thing* for_a = NewThing(freed);
  for_a->freed_on = &on_a;
  Thing* for_b = NewThing(freed);
  for_b->freed_on = &on_b;
  ASSERT_TRUE(a.Take(for_a));
  ASSERT_TRUE(b.Take(for_b));
  ASSERT_TRUE(Eventually([&] { return freed.load() == 2; }));
  EXPECT_NE(on_a, on_b);
}

// --- page tables -------------------------------------------------------------

constexpr std::uint64_t k = PageTable::kFanout;

// A table with more than kInlineLeaves leaves under one node: dropping it
// hands the node to the freer.
void FillLarge(PageTable& t, PageAllocator& pages, MemoryAccount& scratch,
               DeferredFreer& freer, std::uint64_t leaves) {
  for (std::uint64_t i = 0; i < leaves * k; i += 7) {
    PageTable::Undo undo(scratch, freer);
    t.Prepare(i, i + 1, undo);
    undo.Commit();
    Page* page = nullptr;
    ASSERT_TRUE(pages.Allocate(1, &page));
    t.Slot(i) = page;
  }
}

TEST(DeferredFreerTest, FreesALargeSubtreeInTheBackground) {
  MemoryBudget budget(0);
  PageAllocator pages(4096, budget, 0);
  DeferredFreer freer(PageTable::kDeadNodes);
  MemoryAccount scratch(budget);
  {
    PageTable t(budget.shared(), freer);
    FillLarge(t, pages, scratch, freer, 64);
    EXPECT_GT(pages.live_pages(), 0u);
    EXPECT_FALSE(freer.started());  // nothing large has died yet
  }
  EXPECT_TRUE(freer.started());
  ASSERT_TRUE(Eventually([&] { return pages.live_pages() == 0; }));
  freer.Drain();
  EXPECT_EQ(budget.shared().held(), 0u);
}

// Stopping the freer (its owner's end) with subtrees still waiting frees
// them all before the allocator and the budget go: nothing leaks.
TEST(DeferredFreerTest, StoppingWithSubtreesWaitingLeaksNothing) {
  MemoryBudget budget(0);
  PageAllocator pages(4096, budget, 0);
  MemoryAccount scratch(budget);
  {
    DeferredFreer freer(PageTable::kDeadNodes);
    for (int n = 0; n < 8; ++n) {
      PageTable t(budget.shared(), freer);
      FillLarge(t, pages, scratch, freer, 16 + n);
    }
  }  // stopped and joined here
  EXPECT_EQ(pages.live_pages(), 0u);
  EXPECT_EQ(budget.shared().held(), 0u);
}

// --- the system's ------------------------------------------------------------

// The threads of this process.
std::size_t Threads() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/self/task")) {
    ++n;
  }
  return n;
}

VmConfig Config() {
  VmConfig config;
  config.address_bits = 32;
  return config;
}

// Maps a region as large as one node of level 1 spans (1 GiB of 4 KiB
// pages), writes one page in each of leaves of its leaves, and frees the
// region: the node, whole in the range and large, goes to the system's
// freer.
void DropALargeSubtree(VmSystem& system, Task& task, std::uint64_t leaves) {
  const vm_size_t leaf_span = k * system.page_size();
  const vm_size_t size = k * leaf_span;
  vm_address_t at = 0;
  ASSERT_EQ(vm_allocate(task, &at, size, /*anywhere=*/true), KERN_SUCCESS);
  const std::vector<char> data(system.page_size(), 'x');
  for (std::uint64_t i = 0; i < leaves; ++i) {
    ASSERT_EQ(vm_write(task, at + i * leaf_span, data.data(), data.size()),
              KERN_SUCCESS);
  }
  ASSERT_EQ(vm_deallocate(task, at, size), KERN_SUCCESS);
}

// Each system has its own freer: one that drops a large subtree starts its
// own thread, not another system's.
TEST(DeferredFreerTest, EachSystemHasItsOwn) {
  VmSystem a(Config()), b(Config());
  EXPECT_NE(&a.freer(), &b.freer());
  auto task = task_create(a, "t");
  ASSERT_TRUE(task.ok());
  DropALargeSubtree(a, *task.value(), 32);
  EXPECT_TRUE(a.freer().started());
  EXPECT_FALSE(b.freer().started());
  a.freer().Drain();
  EXPECT_EQ(a.pages().live_pages(), 0u);
  EXPECT_EQ(a.budget().shared().held(), 0u);
}

// The system's end drains its freer and joins its thread: no thread of it
// is left behind, however many systems come and go.
TEST(DeferredFreerTest, ASystemJoinsItsFreerAtItsEnd) {
  // A sanitizer's runtime starts a thread of its own at the first
  // pthread_create: counted in before.
  std::thread([] {}).join();
  const std::size_t before = Threads();
  for (int round = 0; round < 4; ++round) {
    auto system = std::make_unique<VmSystem>(Config());
    {
      auto task = task_create(*system, "t");
      ASSERT_TRUE(task.ok());
      DropALargeSubtree(*system, *task.value(), 16);
    }
    ASSERT_TRUE(system->freer().started());
    EXPECT_TRUE(system->freer().running());
    system.reset();  // with work perhaps still waiting
  }
  // A joined thread leaves /proc a moment after its join returns.
  EXPECT_TRUE(Eventually([&] { return Threads() <= before; }))
      << Threads() << " threads, " << before << " before";
}

// Rest, before a fork: the thread ends after its work, and the next Take
// starts one in whichever process goes on, so a forked child's hand-overs
// are freed in the background as before (fork copies no thread).
TEST(DeferredFreerTest, RestEndsTheThreadAndAForkedChildStartsItsOwn) {
  std::atomic<int> freed{0};
  DeferredFreer freer(kThings);
  ASSERT_TRUE(freer.Take(NewThing(freed)));
  freer.Rest();
  EXPECT_EQ(freed.load(), 1);
  EXPECT_FALSE(freer.running());
  EXPECT_FALSE(freer.started());
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Freed on a thread of the child's own, without a Drain.
    std::thread::id freed_on;
    Thing* thing = NewThing(freed);
    thing->freed_on = &freed_on;
    const bool taken = freer.Take(thing);
    const bool done = taken && Eventually([&] { return freed.load() == 2; });
    _exit(done && freed_on != std::this_thread::get_id() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // And in this process too.
  ASSERT_TRUE(freer.Take(NewThing(freed)));
  EXPECT_TRUE(Eventually([&] { return freed.load() == 2; }));
  EXPECT_TRUE(freer.running());
}

}  // namespace
}  // namespace taskfs::vm
