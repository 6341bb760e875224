// Multi-threaded stress of the Mach facade (vm_user.h), run normally and
// under ThreadSanitizer (which must report nothing).
//
// The unit tests check each call alone; here many threads call at once and
// the checks are about what concurrency may not break: every call is atomic
// on its task (no torn multi-page write, no half-taken fork snapshot), pinned
// reads and forks stay snapshots, opposite cross-task copies neither deadlock
// nor mix contents, and the memory limit holds. Every page written carries a
// self-describing pattern, so any byte out of place is caught when read back.
//
// TASKFS_STRESS_SCALE=<factor> multiplies the iteration counts (e.g. 20 for a
// long soak). A run that does not finish within its deadline aborts naming
// the scenario, so a deadlock fails instead of hanging CI.
#include <gtest/gtest.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/vmcore/random_ops.h"
#include "tests/vmcore/take_result.h"
#include "vmcore/kern_return.h"
#include "vmcore/pinned_pages.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_types.h"
#include "vmcore/vm_user.h"

namespace taskfs::vm {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kWords = kPage / sizeof(std::uint64_t);
// What Pages::Tag returns for a page that is not one whole pattern.
constexpr std::uint64_t kTorn = ~std::uint64_t{0};

// --- run control -------------------------------------------------------------

double Scale() {
  const char* env = std::getenv("TASKFS_STRESS_SCALE");
  if (env == nullptr) return 1.0;
  const double scale = std::strtod(env, nullptr);
  return scale > 0 ? scale : 1.0;
}

// The base iteration counts are sized for a sanitizer build, where these
// loops run 10-40 times slower; a plain build affords more in the same time.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr double kBuildFactor = 1;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
constexpr double kBuildFactor = 1;
#else
constexpr double kBuildFactor = 5;
#endif
#else
constexpr double kBuildFactor = 5;
#endif

int Iterations(int base) {
  return std::max(1, static_cast<int>(base * kBuildFactor * Scale()));
}

std::string Hex(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof(text), "%#llx",
                static_cast<unsigned long long>(value));
  return text;
}

std::string Mismatch(KernReturn got, KernReturn want) {
  return "got " + std::string(KernReturnName(got)) + ", want " +
         std::string(KernReturnName(want));
}

// Failures seen by worker threads. A broken invariant tends to fail on every
// later iteration too, so only the first messages are kept, and every thread
// is asked to stop. They are turned into test failures on the main thread
// once the workers are joined.
class Failures {
 public:
  void Add(std::string message) {
    stop_.store(true);
    std::lock_guard lock(mu_);
    if (messages_.size() < kKept) {
      messages_.push_back(std::move(message));
    } else {
      ++dropped_;
    }
  }
  bool stop() const { return stop_.load(); }

  void Report() {
    std::lock_guard lock(mu_);
    for (const std::string& message : messages_) ADD_FAILURE() << message;
    if (dropped_ > 0) ADD_FAILURE() << dropped_ << " more failures not shown";
  }

 private:
  static constexpr std::size_t kKept = 10;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> messages_;  // guarded by mu_
  int dropped_ = 0;                    // guarded by mu_
};

// Records a failure built by describe() unless ok; returns ok. The text is
// built only on failure, keeping the hot loops cheap.
template <typename Describe>
bool Check(Failures& failures, bool ok, Describe&& describe) {
  if (!ok) failures.Add(std::string(describe()));
  return ok;
}

template <typename Describe>
bool CheckKr(Failures& failures, KernReturn got, KernReturn want,
             Describe&& describe) {
  return Check(failures, got == want, [&] {
    return std::string(describe()) + ": " + Mismatch(got, want);
  });
}

// Runs every body on its own thread and joins them. If they have not all
// finished by the deadline the process aborts, naming the scenario: the
// likely cause is a deadlock in the core, and a hung test would only be
// killed much later by the CI timeout with no hint of where.
void RunConcurrently(const char* scenario,
                     std::vector<std::function<void()>> bodies) {
  std::mutex mu;
  std::condition_variable finished;
  std::size_t running = bodies.size();
  std::vector<std::thread> threads;
  threads.reserve(bodies.size());
  for (std::function<void()>& body : bodies) {
    threads.emplace_back([&mu, &finished, &running, body = std::move(body)] {
      body();
      std::lock_guard lock(mu);
      if (--running == 0) finished.notify_all();
    });
  }
  const auto deadline = std::chrono::duration<double>(300.0 * Scale());
  {
    std::unique_lock lock(mu);
    if (!finished.wait_for(lock, deadline,
                           [&running] { return running == 0; })) {
      std::fprintf(stderr,
                   "%s: %zu threads still running after %.0f s; deadlock in "
                   "the VM core?\n",
                   scenario, running, deadline.count());
      std::abort();
    }
  }
  for (std::thread& thread : threads) thread.join();
}

// Called once per iteration by threads that contend for the same locks. The
// core's locks are fair (PhaseFairMutex), but a waiter that sleeps takes a
// while to wake, and a thread that locks again at once, where nobody is
// queued yet, runs on meanwhile; yielding makes the interleavings finer.
void YieldBetweenCalls() { std::this_thread::yield(); }

// Counts down as worker threads leave (however they leave), so that the
// threads looping "while the workers run" stop with them.
class Countdown {
 public:
  explicit Countdown(int count) : left_(count) {}
  void Leave() { left_.fetch_sub(1); }
  bool done() const { return left_.load() <= 0; }

 private:
  std::atomic<int> left_;
};

// --- page patterns -----------------------------------------------------------

std::uint64_t Mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

// A buffer of pages holding self-describing patterns: word 0 of a page is its
// tag and every other word is derived from the tag, so a page mixing two
// writes, or copied from the wrong place, does not decode. Tag 0 is the zero
// page (unwritten memory).
class Pages {
 public:
  explicit Pages(std::uint64_t count) : words_(count * kWords) {}

  std::uint64_t count() const { return words_.size() / kWords; }
  vm_size_t bytes() const { return words_.size() * sizeof(std::uint64_t); }
  void* data() { return words_.data(); }
  const void* data() const { return words_.data(); }
  std::span<std::byte> span() {
    return std::as_writable_bytes(std::span(words_));
  }

  void Set(std::uint64_t page, std::uint64_t tag) {
    std::uint64_t* words = &words_[page * kWords];
    if (tag == 0) {
      std::fill(words, words + kWords, 0);
      return;
    }
    const std::uint64_t key = Mix(tag);
    words[0] = tag;
    for (std::uint64_t i = 1; i < kWords; ++i) words[i] = key + i;
  }

  // The page's tag, or kTorn if it is not one whole pattern.
  std::uint64_t Tag(std::uint64_t page) const {
    const std::uint64_t* words = &words_[page * kWords];
    const std::uint64_t tag = words[0];
    if (tag == 0) {
      return std::all_of(words, words + kWords,
                         [](std::uint64_t w) { return w == 0; })
                 ? 0
                 : kTorn;
    }
    const std::uint64_t key = Mix(tag);
    for (std::uint64_t i = 1; i < kWords; ++i) {
      if (words[i] != key + i) return kTorn;
    }
    return tag;
  }

 private:
  std::vector<std::uint64_t> words_;
};

// A generation pattern: all pages of one write carry the same generation,
// each also its own index in the range (a page landing at the wrong place
// shows) and the marker of its writer (another writer's bytes show).
std::uint64_t GenTag(std::uint64_t marker, std::uint64_t gen,
                     std::uint64_t index) {
  return marker << 56 | gen << 16 | index;
}
std::uint64_t MarkerOf(std::uint64_t tag) { return tag >> 56; }
std::uint64_t GenOf(std::uint64_t tag) {
  return (tag >> 16) & ((std::uint64_t{1} << 40) - 1);
}
std::uint64_t IndexOf(std::uint64_t tag) { return tag & 0xffff; }

void FillGeneration(Pages* pages, std::uint64_t marker, std::uint64_t gen) {
  for (std::uint64_t i = 0; i < pages->count(); ++i) {
    pages->Set(i, GenTag(marker, gen, i));
  }
}

std::string DescribeTags(const Pages& pages) {
  std::string text;
  for (std::uint64_t i = 0; i < pages.count(); ++i) {
    text += i == 0 ? "[" : " ";
    text += Hex(pages.Tag(i));
  }
  return text + "]";
}

// The one generation every page of `pages` shows as marker's pattern for
// its index; nullopt if a page is torn, foreign, misplaced, or the pages
// disagree (the signature of a non-atomic write, copy or fork).
std::optional<std::uint64_t> OneGeneration(const Pages& pages,
                                           std::uint64_t marker) {
  std::optional<std::uint64_t> gen;
  for (std::uint64_t i = 0; i < pages.count(); ++i) {
    const std::uint64_t tag = pages.Tag(i);
    if (tag == kTorn || MarkerOf(tag) != marker || IndexOf(tag) != i) {
      return std::nullopt;
    }
    if (gen.has_value() && *gen != GenOf(tag)) return std::nullopt;
    gen = GenOf(tag);
  }
  return gen;
}

// Copies a pinned view out; false if its size or iovecs do not add up to
// exactly the range that was read.
bool CopyPinned(const PinnedPages& pinned, Pages* out) {
  std::size_t total = 0;
  for (const iovec& v : pinned.iov()) {
    if (v.iov_len == 0 || v.iov_len % kPage != 0) return false;
    total += v.iov_len;
  }
  if (total != out->bytes() || pinned.size() != out->bytes()) return false;
  pinned.CopyTo(out->data());
  return true;
}

// Reads with the buffer vm_read, or with the pinning one and a copy out, as
// `pinned` says; a malformed pinned view is KERN_FAILURE.
KernReturn ReadPages(Task& task, vm_address_t address, bool pinned,
                     Pages* out) {
  if (!pinned) return vm_read(task, address, out->span());
  PinnedPages view;
  const KernReturn kr = vm_read_pinned(task, address, out->bytes(), &view);
  if (kr != KERN_SUCCESS) return kr;
  return CopyPinned(view, out) ? KERN_SUCCESS : KERN_FAILURE;
}

VmConfig Config(std::uint64_t limit_pages) {
  VmConfig config;
  config.page_size = kPage;
  config.address_bits = 32;
  config.page_limit = limit_pages * kPage;
  config.max_tasks = 512;
  return config;
}

KernReturn AllocateAt(Task& task, vm_address_t address, std::uint64_t pages) {
  return vm_allocate(task, &address, pages * kPage, false);
}

KernReturn WriteGeneration(Task& task, vm_address_t address,
                           std::uint64_t pages, std::uint64_t marker,
                           std::uint64_t gen) {
  Pages data(pages);
  FillGeneration(&data, marker, gen);
  return vm_write(task, address, data.data(), data.bytes());
}

// --- 1. owners of disjoint pages of one task ---------------------------------

// Five threads write (vm_write and vm_load), read (both ways), snapshot and
// vm_copy only their own pages of one task, while an admin thread changes the
// map elsewhere in the same task (allocate, deallocate, protect, inherit) and
// reads its attributes and statistics. Each owner keeps a model of its pages;
// the map is changed by the admin alone, so its regions are known exactly at
// every moment. At the end every page holds exactly its owner's last write.
class VmStressOwnersTest : public ::testing::Test {
 protected:
  static constexpr int kOwners = 5;
  static constexpr std::uint64_t kOwnPages = 24;
  static constexpr std::uint64_t kOwned = kOwners * kOwnPages;
  static constexpr std::uint64_t kHalf = kOwned / 2;
  static constexpr vm_address_t kBase = 0x1000000;
  static constexpr vm_address_t kScratch = 0x2000000;
  static constexpr std::uint64_t kScratchPages = 16;
  const int iterations_ = Iterations(5000);

  void SetUp() override {
    ASSERT_EQ(Take(task_create(system_, "owners"), &task_), KERN_SUCCESS);
    // The owned pages span two objects: the first half gets other attributes
    // before the second half is allocated, so the second cannot extend the
    // first's object. Owner 2's pages, and its copies, cross from one object
    // to the other, so its writes lock two objects at once.
    ASSERT_EQ(AllocateAt(*task_, kBase, kHalf), KERN_SUCCESS);
    ASSERT_EQ(vm_inherit(*task_, kBase, kHalf * kPage, VM_INHERIT_SHARE),
              KERN_SUCCESS);
    ASSERT_EQ(AllocateAt(*task_, kBase + kHalf * kPage, kOwned - kHalf),
              KERN_SUCCESS);
  }

  // The admin's scratch pages: the admin alone changes the map, so it knows
  // the exact result of every call and the exact region list.
  struct ScratchPage {
    bool allocated = false;
    vm_prot_t protection = VM_PROT_DEFAULT;
    vm_inherit_t inheritance = VM_INHERIT_COPY;
    std::uint64_t tag = 0;
  };

  // Owner t's pages: writes, copies and reads of them checked against its
  // model.
  void Owner(int t) {
    std::mt19937_64 rng(1000 + t);
    std::vector<std::uint64_t>& model = models_[t];
    const vm_address_t first = kBase + t * kOwnPages * kPage;
    auto tag = [t](std::uint64_t page, int i) {
      return std::uint64_t{1} << 60 | std::uint64_t(t) << 48 | page << 32 |
             std::uint64_t(i);
    };
    // Checks got (pages [p, p + n)) against the model.
    auto expect_model = [&](const Pages& got, std::uint64_t p, int i,
                            const char* how) {
      for (std::uint64_t k = 0; k < got.count(); ++k) {
        if (!Check(failures_, got.Tag(k) == model[p + k], [&] {
              return "owner " + std::to_string(t) + " iteration " +
                     std::to_string(i) + ": " + how + " of page " +
                     std::to_string(p + k) + " shows " + Hex(got.Tag(k)) +
                     ", last written " + Hex(model[p + k]);
            })) {
          return;
        }
      }
    };
    for (int i = 0; i < iterations_ && !failures_.stop(); ++i) {
      const auto run = random_ops::RandomPageRun(rng, kOwnPages);
      const std::uint64_t n = run.count, p = run.first;
      const vm_address_t at = first + p * kPage;
      auto where = [&](const char* call) {
        return "owner " + std::to_string(t) + " iteration " +
               std::to_string(i) + ": " + call;
      };
      switch (rng() % 7) {
        case 0:
        case 1: {
          Pages data(n);
          for (std::uint64_t k = 0; k < n; ++k) data.Set(k, tag(p + k, i));
          if (CheckKr(failures_,
                      vm_write(*task_, at, data.data(), data.bytes()),
                      KERN_SUCCESS, [&] { return where("vm_write"); })) {
            for (std::uint64_t k = 0; k < n; ++k) model[p + k] = tag(p + k, i);
          }
          break;
        }
        case 2:
        case 3: {
          const bool pinned = rng() % 2 == 0;
          Pages got(n);
          if (CheckKr(failures_, ReadPages(*task_, at, pinned, &got),
                      KERN_SUCCESS, [&] { return where("vm_read"); })) {
            expect_model(got, p, i, pinned ? "pinned vm_read" : "vm_read");
          }
          break;
        }
        case 4: {
          // Overlap is allowed and must act as if the source were read
          // whole first.
          const std::uint64_t q = random_ops::RandomRunStart(rng, kOwnPages, n);
          if (CheckKr(failures_,
                      vm_copy(*task_, at, n * kPage, first + q * kPage),
                      KERN_SUCCESS, [&] { return where("vm_copy"); })) {
            const std::vector<std::uint64_t> moved(model.begin() + p,
                                                   model.begin() + p + n);
            std::copy(moved.begin(), moved.end(), model.begin() + q);
          }
          break;
        }
        case 5: {
          // A pinned view taken before a write keeps the old bytes.
          PinnedPages before;
          if (!CheckKr(failures_,
                       vm_read_pinned(*task_, at, n * kPage, &before),
                       KERN_SUCCESS, [&] { return where("pinned vm_read"); })) {
            break;
          }
          Pages data(n);
          for (std::uint64_t k = 0; k < n; ++k) data.Set(k, tag(p + k, i));
          if (!CheckKr(failures_,
                       vm_write(*task_, at, data.data(), data.bytes()),
                       KERN_SUCCESS, [&] { return where("vm_write"); })) {
            break;
          }
          Pages old(n);
          if (Check(failures_, CopyPinned(before, &old),
                    [&] { return where("malformed pinned view"); })) {
            expect_model(old, p, i, "snapshot pinned before a write");
          }
          for (std::uint64_t k = 0; k < n; ++k) model[p + k] = tag(p + k, i);
          Pages now(n);
          if (CheckKr(failures_, ReadPages(*task_, at, false, &now),
                      KERN_SUCCESS, [&] { return where("vm_read"); })) {
            expect_model(now, p, i, "vm_read after a pinned write");
          }
          break;
        }
        case 6: {
          // vm_load in two pieces split at an unaligned offset: the first
          // piece changes part of a page, which copies the rest of the page
          // over first when the page is shared (after a vm_copy) or pinned.
          Pages data(n);
          for (std::uint64_t k = 0; k < n; ++k) data.Set(k, tag(p + k, i));
          const vm_size_t split = 1 + rng() % (data.bytes() - 1);
          const auto* bytes = static_cast<const std::byte*>(data.data());
          if (CheckKr(failures_, vm_load(*task_, at, bytes, split),
                      KERN_SUCCESS, [&] { return where("vm_load"); }) &&
              CheckKr(failures_,
                      vm_load(*task_, at + split, bytes + split,
                              data.bytes() - split),
                      KERN_SUCCESS, [&] { return where("vm_load"); })) {
            for (std::uint64_t k = 0; k < n; ++k) model[p + k] = tag(p + k, i);
          }
          break;
        }
      }
    }
    if (!failures_.stop()) {
      Pages all(kOwnPages);
      if (CheckKr(
              failures_, ReadPages(*task_, first, true, &all), KERN_SUCCESS,
              [&] { return "owner " + std::to_string(t) + ": final read"; })) {
        expect_model(all, 0, iterations_, "final pinned vm_read");
      }
    }
    owners_left_.Leave();
  }

  // The admin: changes the map beside the owned pages and checks its
  // attributes, regions and statistics.
  void Admin() {
    std::mt19937_64 rng(7);
    std::vector<ScratchPage> scratch(kScratchPages);
    constexpr vm_prot_t kProts[] = {VM_PROT_NONE, VM_PROT_READ, VM_PROT_WRITE,
                                    VM_PROT_DEFAULT, VM_PROT_ALL};
    // The code of the lowest page of [p, p + n) lacking `needed`.
    auto access = [&](std::uint64_t p, std::uint64_t n, vm_prot_t needed) {
      for (std::uint64_t k = p; k < p + n; ++k) {
        if (!scratch[k].allocated) return KERN_INVALID_ADDRESS;
        if ((scratch[k].protection & needed) != needed) {
          return KERN_PROTECTION_FAILURE;
        }
      }
      return KERN_SUCCESS;
    };
    auto expected_regions = [&] {
      std::vector<RegionInfo> regions = owned_regions_;
      for (std::uint64_t k = 0; k < kScratchPages; ++k) {
        const ScratchPage& page = scratch[k];
        if (!page.allocated) continue;
        const vm_address_t address = kScratch + k * kPage;
        RegionInfo& last = regions.back();
        if (last.start + last.size == address &&
            last.protection == page.protection &&
            last.inheritance == page.inheritance) {
          last.size += kPage;
        } else {
          regions.push_back(
              {address, kPage, page.protection, VM_PROT_ALL, page.inheritance});
        }
      }
      return regions;
    };
    // A few rounds at least, even if the owners finish first.
    constexpr int kMinRounds = 50;
    int round = 0;
    for (; (round < kMinRounds || !owners_left_.done()) && !failures_.stop();
         ++round) {
      const auto run = random_ops::RandomPageRun(rng, kScratchPages);
      const std::uint64_t n = run.count, p = run.first;
      const vm_address_t at = kScratch + p * kPage;
      auto where = [&](const char* call) {
        return "admin round " + std::to_string(round) + ": " + call;
      };
      bool any_allocated = false;
      bool all_allocated = true;
      for (std::uint64_t k = p; k < p + n; ++k) {
        any_allocated |= scratch[k].allocated;
        all_allocated &= scratch[k].allocated;
      }
      switch (rng() % 9) {
        case 0: {
          const KernReturn want = any_allocated ? KERN_NO_SPACE : KERN_SUCCESS;
          if (CheckKr(failures_, AllocateAt(*task_, at, n), want,
                      [&] { return where("vm_allocate"); }) &&
              want == KERN_SUCCESS) {
            for (std::uint64_t k = p; k < p + n; ++k) scratch[k] = {true};
          }
          break;
        }
        case 1:
          if (CheckKr(failures_, vm_deallocate(*task_, at, n * kPage),
                      KERN_SUCCESS, [&] { return where("vm_deallocate"); })) {
            for (std::uint64_t k = p; k < p + n; ++k) scratch[k] = {};
          }
          break;
        case 2: {
          const vm_prot_t prot = kProts[rng() % std::size(kProts)];
          const KernReturn want =
              all_allocated ? KERN_SUCCESS : KERN_INVALID_ADDRESS;
          if (CheckKr(failures_, vm_protect(*task_, at, n * kPage, false, prot),
                      want, [&] { return where("vm_protect"); }) &&
              want == KERN_SUCCESS) {
            for (std::uint64_t k = p; k < p + n; ++k) {
              scratch[k].protection = prot;
            }
          }
          break;
        }
        case 3: {
          const vm_inherit_t inheritance =
              rng() % 2 == 0 ? VM_INHERIT_COPY : VM_INHERIT_NONE;
          const KernReturn want =
              all_allocated ? KERN_SUCCESS : KERN_INVALID_ADDRESS;
          if (CheckKr(failures_, vm_inherit(*task_, at, n * kPage, inheritance),
                      want, [&] { return where("vm_inherit"); }) &&
              want == KERN_SUCCESS) {
            for (std::uint64_t k = p; k < p + n; ++k) {
              scratch[k].inheritance = inheritance;
            }
          }
          break;
        }
        case 4: {
          Pages data(n);
          for (std::uint64_t k = 0; k < n; ++k) {
            data.Set(k, std::uint64_t{2} << 60 | (p + k) << 32 |
                            std::uint64_t(round));
          }
          const KernReturn want = access(p, n, VM_PROT_WRITE);
          if (CheckKr(failures_,
                      vm_write(*task_, at, data.data(), data.bytes()), want,
                      [&] { return where("vm_write"); }) &&
              want == KERN_SUCCESS) {
            for (std::uint64_t k = 0; k < n; ++k) {
              scratch[p + k].tag = data.Tag(k);
            }
          }
          break;
        }
        case 5: {
          Pages got(n);
          const KernReturn want = access(p, n, VM_PROT_READ);
          if (CheckKr(failures_, ReadPages(*task_, at, rng() % 2 == 0, &got),
                      want, [&] { return where("vm_read"); }) &&
              want == KERN_SUCCESS) {
            for (std::uint64_t k = 0; k < n; ++k) {
              if (!Check(failures_, got.Tag(k) == scratch[p + k].tag, [&] {
                    return where("vm_read") + " of scratch page " +
                           std::to_string(p + k) + " shows " + Hex(got.Tag(k)) +
                           ", want " + Hex(scratch[p + k].tag);
                  })) {
                break;
              }
            }
          }
          break;
        }
        case 6: {
          // Nothing lies below the owned pages, so "anywhere" is address 0.
          vm_address_t address = 12345;
          if (CheckKr(failures_, vm_allocate(*task_, &address, n * kPage, true),
                      KERN_SUCCESS,
                      [&] { return where("vm_allocate anywhere"); })) {
            Check(failures_, address == 0, [&] {
              return where("vm_allocate anywhere") + " chose " + Hex(address);
            });
            CheckKr(failures_, vm_deallocate(*task_, address, n * kPage),
                    KERN_SUCCESS, [&] { return where("vm_deallocate"); });
          }
          break;
        }
        case 7: {
          std::vector<RegionInfo> regions;
          if (CheckKr(failures_, Take(vm_region_list(*task_), &regions),
                      KERN_SUCCESS, [&] { return where("vm_region_list"); })) {
            Check(failures_, regions == expected_regions(), [&] {
              return where("vm_region_list") + " differs from the model (" +
                     std::to_string(regions.size()) + " regions)";
            });
          }
          vm_address_t address = kBase + rng() % (kOwned * kPage);
          RegionInfo info;
          if (CheckKr(failures_, vm_region(*task_, &address, &info),
                      KERN_SUCCESS, [&] { return where("vm_region"); })) {
            Check(failures_,
                  info == owned_regions_[0] || info == owned_regions_[1], [&] {
                    return where("vm_region") + " of the owned pages gave " +
                           Hex(info.start) + "+" + Hex(info.size);
                  });
          }
          break;
        }
        case 8: {
          TaskStatistics stats;
          if (!CheckKr(failures_, Take(task_statistics(*task_), &stats),
                       KERN_SUCCESS,
                       [&] { return where("task_statistics"); })) {
            break;
          }
          std::uint64_t allocated = kOwned;
          for (const ScratchPage& page : scratch) allocated += page.allocated;
          Check(failures_,
                stats.regions == expected_regions().size() &&
                    stats.virtual_bytes == allocated * kPage &&
                    stats.resident_bytes <= stats.virtual_bytes &&
                    stats.resident_bytes % kPage == 0 &&
                    stats.shared_bytes <= stats.resident_bytes,
                [&] {
                  return where("task_statistics") + ": regions " +
                         std::to_string(stats.regions) + " virtual " +
                         Hex(stats.virtual_bytes) + " resident " +
                         Hex(stats.resident_bytes) + " shared " +
                         Hex(stats.shared_bytes);
                });
          break;
        }
      }
    }
    admin_rounds_ = round;
  }

  VmSystem system_{Config(0)};
  std::shared_ptr<Task> task_;
  // The regions of the owned pages, as SetUp makes them.
  static std::vector<RegionInfo> OwnedRegions() {
    return {
        {kBase, kHalf * kPage, VM_PROT_DEFAULT, VM_PROT_ALL, VM_INHERIT_SHARE},
        {kBase + kHalf * kPage, (kOwned - kHalf) * kPage, VM_PROT_DEFAULT,
         VM_PROT_ALL, VM_INHERIT_COPY}};
  }
  const std::vector<RegionInfo> owned_regions_ = OwnedRegions();
  Failures failures_;
  Countdown owners_left_{kOwners};
  // models[t][p]: the tag owner t last put at its page p. Each owner touches
  // only its own model; the main thread reads them after the join.
  std::vector<std::vector<std::uint64_t>> models_ =
      std::vector<std::vector<std::uint64_t>>(
          kOwners, std::vector<std::uint64_t>(kOwnPages, 0));
  int admin_rounds_ = 0;
};

TEST_F(VmStressOwnersTest, DisjointPagesKeepTheirLastWrites) {
  std::vector<std::function<void()>> bodies;
  for (int t = 0; t < kOwners; ++t) {
    bodies.push_back([this, t] { Owner(t); });
  }
  bodies.push_back([this] { Admin(); });
  RunConcurrently("OwnersOfDisjointPagesKeepTheirLastWrites",
                  std::move(bodies));
  failures_.Report();
  EXPECT_GT(admin_rounds_, 0);

  // The whole owned range, read in one call each way, is every owner's last
  // write.
  for (const bool pinned : {false, true}) {
    Pages all(kOwned);
    ASSERT_EQ(ReadPages(*task_, kBase, pinned, &all), KERN_SUCCESS);
    for (std::uint64_t page = 0; page < kOwned; ++page) {
      ASSERT_EQ(all.Tag(page), models_[page / kOwnPages][page % kOwnPages])
          << "page " << page << (pinned ? " (pinned read)" : "");
    }
  }
  TaskStatistics stats;
  ASSERT_EQ(Take(task_statistics(*task_), &stats), KERN_SUCCESS);
  EXPECT_LE(stats.resident_bytes, system_.pages().live_pages() * kPage);
  // Nothing leaked: pins released, copies dropped.
  ASSERT_EQ(task_terminate(system_, *task_), KERN_SUCCESS);
  EXPECT_EQ(system_.pages().live_pages(), 0u);
}

// --- 2. atomicity of one multi-page operation -------------------------------

// A writer rewrites a 12-page range again and again, each time as one call
// that gives all pages the same generation: vm_write, vm_copy from a staging
// area of the same task, or vm_map_copy from a staging task. The range
// crosses a page-table chunk boundary and two objects. Readers must always
// see one generation throughout, never older than one already completed,
// never going back, and a pinned view must keep its generation while newer
// ones are written. A third thread changes the map beside the range.
TEST(VmStressTest, MultiPageWritesAreNeverSeenTorn) {
  constexpr std::uint64_t kMarker = 5;
  constexpr std::uint64_t kRangePages = 12;
  constexpr vm_address_t kBase = 0x1000000;
  // Region A: 516 pages made rwx; region B: the 8 pages after it, a new
  // object because its attributes differ from A's. The range is A's pages
  // 510..515 (crossing the page-table chunk boundary at 512) and B's first 6.
  constexpr std::uint64_t kPagesA = 516;
  constexpr vm_address_t kRange = kBase + 510 * kPage;
  constexpr vm_address_t kStage = 0x3000000;
  const int generations = Iterations(4000);

  VmSystem system(Config(0));
  std::shared_ptr<Task> task, stage;
  ASSERT_EQ(Take(task_create(system, "torn"), &task), KERN_SUCCESS);
  ASSERT_EQ(Take(task_create(system, "stage"), &stage), KERN_SUCCESS);
  ASSERT_EQ(AllocateAt(*task, kBase, kPagesA), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(*task, kBase, kPagesA * kPage, false, VM_PROT_ALL),
            KERN_SUCCESS);
  ASSERT_EQ(AllocateAt(*task, kBase + kPagesA * kPage, 8), KERN_SUCCESS);
  ASSERT_EQ(AllocateAt(*task, kStage, kRangePages), KERN_SUCCESS);
  ASSERT_EQ(AllocateAt(*stage, kStage, kRangePages), KERN_SUCCESS);
  ASSERT_EQ(WriteGeneration(*task, kRange, kRangePages, kMarker, 0),
            KERN_SUCCESS);

  Failures failures;
  std::atomic<std::uint64_t> started{0};    // generation being written
  std::atomic<std::uint64_t> completed{0};  // last generation written
  std::atomic<bool> writer_done{false};

  auto writer = [&] {
    for (std::uint64_t gen = 1;
         gen <= static_cast<std::uint64_t>(generations) && !failures.stop();
         ++gen) {
      YieldBetweenCalls();
      auto where = [&](const char* call) {
        return "writer generation " + std::to_string(gen) + ": " + call;
      };
      // Every 16th generation, a pinned view of the previous one must
      // survive the write.
      PinnedPages before;
      if (gen % 16 == 0) {
        CheckKr(failures,
                vm_read_pinned(*task, kRange, kRangePages * kPage, &before),
                KERN_SUCCESS, [&] { return where("pinned vm_read"); });
      }
      KernReturn kr = KERN_SUCCESS;
      switch (gen % 3) {
        case 0:
          started.store(gen);
          kr = WriteGeneration(*task, kRange, kRangePages, kMarker, gen);
          break;
        case 1:
          kr = WriteGeneration(*task, kStage, kRangePages, kMarker, gen);
          started.store(gen);
          if (kr == KERN_SUCCESS) {
            kr = vm_copy(*task, kStage, kRangePages * kPage, kRange);
          }
          break;
        case 2:
          kr = WriteGeneration(*stage, kStage, kRangePages, kMarker, gen);
          started.store(gen);
          if (kr == KERN_SUCCESS) {
            kr = vm_map_copy(*task, kRange, *stage, kStage, kRangePages * kPage,
                             false, false);
          }
          break;
      }
      if (!CheckKr(failures, kr, KERN_SUCCESS,
                   [&] { return where("rewrite"); })) {
        break;
      }
      completed.store(gen);
      if (gen % 16 == 0) {
        Pages old(kRangePages);
        if (Check(failures, CopyPinned(before, &old),
                  [&] { return where("malformed pinned view"); })) {
          Check(failures, OneGeneration(old, kMarker) == gen - 1, [&] {
            return where("view pinned before the write") + " now shows " +
                   DescribeTags(old);
          });
        }
      }
    }
    writer_done.store(true);
  };

  auto reader = [&](int r) {
    std::uint64_t last = 0;
    int reads = 0;
    // A view held across several reads; it must not change meanwhile.
    PinnedPages held;
    std::uint64_t held_gen = 0;
    for (; !writer_done.load() && !failures.stop(); ++reads) {
      YieldBetweenCalls();
      auto where = [&](const char* what) {
        return "reader " + std::to_string(r) + " read " +
               std::to_string(reads) + ": " + what;
      };
      const std::uint64_t low = completed.load();
      Pages got(kRangePages);
      const bool pinned = reads % 2 == r;
      if (!CheckKr(failures, ReadPages(*task, kRange, pinned, &got),
                   KERN_SUCCESS, [&] { return where("vm_read"); })) {
        break;
      }
      const std::uint64_t high = started.load();
      const std::optional<std::uint64_t> gen = OneGeneration(got, kMarker);
      if (!Check(failures, gen.has_value(), [&] {
            return where(pinned ? "torn pinned read " : "torn read ") +
                   DescribeTags(got);
          })) {
        break;
      }
      Check(failures, *gen >= low && *gen <= high && *gen >= last, [&] {
        return where("generation ") + std::to_string(*gen) + " outside [" +
               std::to_string(std::max(low, last)) + ", " +
               std::to_string(high) + "]";
      });
      last = *gen;
      if (held.size() == 0 && reads % 8 == 0) {
        if (!CheckKr(failures,
                     vm_read_pinned(*task, kRange, kRangePages * kPage, &held),
                     KERN_SUCCESS, [&] { return where("pinned vm_read"); })) {
          break;
        }
        Pages view(kRangePages);
        if (!Check(failures, CopyPinned(held, &view),
                   [&] { return where("malformed pinned view"); })) {
          break;
        }
        const std::optional<std::uint64_t> pinned_gen =
            OneGeneration(view, kMarker);
        if (!Check(failures, pinned_gen.has_value(), [&] {
              return where("torn pinned read ") + DescribeTags(view);
            })) {
          break;
        }
        held_gen = *pinned_gen;
      } else if (held.size() != 0 && *gen > held_gen + 2) {
        Pages view(kRangePages);
        if (Check(failures, CopyPinned(held, &view),
                  [&] { return where("malformed pinned view"); })) {
          Check(failures, OneGeneration(view, kMarker) == held_gen, [&] {
            return where("view pinned at generation ") +
                   std::to_string(held_gen) + " now shows " +
                   DescribeTags(view);
          });
        }
        held.Release();
      }
    }
  };

  // Map changes beside the range take the task lock exclusive between the
  // reads and writes, and split and merge entries of the range's object A.
  auto churner = [&] {
    for (int round = 0; !writer_done.load() && !failures.stop(); ++round) {
      YieldBetweenCalls();
      const vm_prot_t prot = round % 2 == 0 ? VM_PROT_DEFAULT : VM_PROT_ALL;
      const vm_address_t at = kBase + (round % 8) * 32 * kPage;
      CheckKr(failures, vm_protect(*task, at, 64 * kPage, false, prot),
              KERN_SUCCESS, [] { return std::string("churner vm_protect"); });
      TaskStatistics stats;
      CheckKr(failures, Take(task_statistics(*task), &stats), KERN_SUCCESS,
              [] { return std::string("churner task_statistics"); });
    }
  };

  RunConcurrently(
      "MultiPageWritesAreNeverSeenTorn",
      {writer, [&reader] { reader(0); }, [&reader] { reader(1); }, churner});
  failures.Report();

  Pages final_pages(kRangePages);
  ASSERT_EQ(ReadPages(*task, kRange, false, &final_pages), KERN_SUCCESS);
  EXPECT_EQ(OneGeneration(final_pages, kMarker),
            static_cast<std::uint64_t>(generations))
      << DescribeTags(final_pages);
  ASSERT_EQ(task_terminate(system, *task), KERN_SUCCESS);
  ASSERT_EQ(task_terminate(system, *stage), KERN_SUCCESS);
  EXPECT_EQ(system.pages().live_pages(), 0u);
}

// --- 3. two tasks, and forks -------------------------------------------------

// Tasks A and B copy from each other at the same time in opposite
// directions (A -> B and B -> A, into existing memory and into new
// regions), while each task's source range is being rewritten: the copies
// must not deadlock and each must land whole, one generation of the source.
// Meanwhile a block is moved back and forth between them (dst_alloc +
// src_destroy) by two threads racing in opposite directions: it must always
// be in exactly one task, with its contents and attributes.
TEST(VmStressTest, OppositeMapCopiesBetweenTwoTasks) {
  constexpr std::uint64_t kPages = 4;
  constexpr vm_address_t kOut = 0x1000000;
  constexpr vm_address_t kIn = 0x2000000;
  constexpr vm_address_t kFresh = 0x3000000;
  constexpr vm_address_t kBlock = 0x4000000;
  constexpr std::uint64_t kBlockPages = 3;
  constexpr std::uint64_t kBlockMarker = 9;
  const int copies = Iterations(8000);

  VmSystem system(Config(0));
  std::shared_ptr<Task> tasks[2];
  ASSERT_EQ(Take(task_create(system, "a"), &tasks[0]), KERN_SUCCESS);
  ASSERT_EQ(Take(task_create(system, "b"), &tasks[1]), KERN_SUCCESS);
  for (int s = 0; s < 2; ++s) {
    ASSERT_EQ(AllocateAt(*tasks[s], kOut, kPages), KERN_SUCCESS);
    ASSERT_EQ(AllocateAt(*tasks[s], kIn, kPages), KERN_SUCCESS);
    ASSERT_EQ(WriteGeneration(*tasks[s], kOut, kPages, 10 + s, 0),
              KERN_SUCCESS);
  }
  // The block's attributes differ from the defaults so that a move that
  // lost them would show.
  ASSERT_EQ(AllocateAt(*tasks[0], kBlock, kBlockPages), KERN_SUCCESS);
  ASSERT_EQ(WriteGeneration(*tasks[0], kBlock, kBlockPages, kBlockMarker, 7),
            KERN_SUCCESS);
  ASSERT_EQ(
      vm_protect(*tasks[0], kBlock, kBlockPages * kPage, false, VM_PROT_ALL),
      KERN_SUCCESS);
  ASSERT_EQ(
      vm_inherit(*tasks[0], kBlock, kBlockPages * kPage, VM_INHERIT_SHARE),
      KERN_SUCCESS);
  const RegionInfo block_region = {kBlock, kBlockPages * kPage, VM_PROT_ALL,
                                   VM_PROT_ALL, VM_INHERIT_SHARE};

  Failures failures;
  Countdown copiers_left(2);
  std::atomic<std::uint64_t> started[2] = {0, 0};
  std::atomic<std::uint64_t> completed[2] = {0, 0};
  int moves[2] = {0, 0};

  auto writer = [&](int s) {
    for (std::uint64_t gen = 1; !copiers_left.done() && !failures.stop();
         ++gen) {
      YieldBetweenCalls();
      started[s].store(gen);
      if (!CheckKr(
              failures, WriteGeneration(*tasks[s], kOut, kPages, 10 + s, gen),
              KERN_SUCCESS,
              [&] { return "writer " + std::to_string(s) + ": vm_write"; })) {
        break;
      }
      completed[s].store(gen);
    }
  };

  // Copies task s's source into the other task, then reads the copy back:
  // only this thread writes the destination, so it must still be the copy.
  auto copier = [&](int s) {
    Task& src = *tasks[s];
    Task& dst = *tasks[1 - s];
    for (int i = 0; i < copies && !failures.stop(); ++i) {
      YieldBetweenCalls();
      auto where = [&](const char* call) {
        return "copier " + std::to_string(s) + " iteration " +
               std::to_string(i) + ": " + call;
      };
      const bool fresh = i % 4 == 3;
      const vm_address_t dest = fresh ? kFresh : kIn;
      const std::uint64_t low = completed[s].load();
      if (!CheckKr(
              failures,
              vm_map_copy(dst, dest, src, kOut, kPages * kPage, fresh, false),
              KERN_SUCCESS, [&] { return where("vm_map_copy"); })) {
        break;
      }
      const std::uint64_t high = started[s].load();
      Pages got(kPages);
      if (!CheckKr(failures, ReadPages(dst, dest, i % 2 == 0, &got),
                   KERN_SUCCESS, [&] { return where("vm_read"); })) {
        break;
      }
      const std::optional<std::uint64_t> gen = OneGeneration(got, 10 + s);
      Check(failures, gen.has_value() && *gen >= low && *gen <= high, [&] {
        return where("copy") + std::string(" is ") + DescribeTags(got) +
               ", want one generation in [" + std::to_string(low) + ", " +
               std::to_string(high) + "]";
      });
      if (fresh) {
        CheckKr(failures, vm_deallocate(dst, kFresh, kPages * kPage),
                KERN_SUCCESS, [&] { return where("vm_deallocate"); });
      }
    }
    copiers_left.Leave();
  };

  // Moves the block from task s to the other one whenever it is in s.
  auto mover = [&](int s) {
    Task& src = *tasks[s];
    Task& dst = *tasks[1 - s];
    for (int i = 0; !copiers_left.done() && !failures.stop(); ++i) {
      YieldBetweenCalls();
      auto where = [&](const char* call) {
        return "mover " + std::to_string(s) + " iteration " +
               std::to_string(i) + ": " + call;
      };
      const KernReturn kr = vm_map_copy(dst, kBlock, src, kBlock,
                                        kBlockPages * kPage, true, true);
      if (kr == KERN_INVALID_ADDRESS) continue;  // the block is in dst
      if (!CheckKr(failures, kr, KERN_SUCCESS,
                   [&] { return where("vm_map_copy move"); })) {
        break;
      }
      ++moves[s];
      // The other mover may already have taken it back.
      Pages got(kBlockPages);
      const KernReturn read = ReadPages(dst, kBlock, i % 2 == 0, &got);
      if (read == KERN_INVALID_ADDRESS) continue;
      if (CheckKr(failures, read, KERN_SUCCESS,
                  [&] { return where("vm_read"); })) {
        Check(failures, OneGeneration(got, kBlockMarker) == 7u, [&] {
          return where("moved block") + std::string(" is ") + DescribeTags(got);
        });
      }
    }
  };

  RunConcurrently("OppositeMapCopiesBetweenTwoTasks",
                  {[&] { writer(0); }, [&] { writer(1); }, [&] { copier(0); },
                   [&] { copier(1); }, [&] { mover(0); }, [&] { mover(1); }});
  failures.Report();

  // Moves alternate (each needs the block where the other left it), so the
  // counts say where it is now.
  ASSERT_TRUE(moves[0] == moves[1] || moves[0] == moves[1] + 1)
      << moves[0] << " moves A->B, " << moves[1] << " B->A";
  Task& holder = *tasks[moves[0] == moves[1] ? 0 : 1];
  Task& other = *tasks[moves[0] == moves[1] ? 1 : 0];
  Pages block(kBlockPages);
  ASSERT_EQ(ReadPages(holder, kBlock, true, &block), KERN_SUCCESS);
  EXPECT_EQ(OneGeneration(block, kBlockMarker), 7u) << DescribeTags(block);
  vm_address_t address = kBlock;
  RegionInfo info;
  ASSERT_EQ(vm_region(holder, &address, &info), KERN_SUCCESS);
  EXPECT_EQ(info, block_region);
  EXPECT_EQ(ReadPages(other, kBlock, false, &block), KERN_INVALID_ADDRESS);
  for (int s = 0; s < 2; ++s) {
    Pages in(kPages);
    ASSERT_EQ(ReadPages(*tasks[s], kIn, false, &in), KERN_SUCCESS);
    EXPECT_TRUE(OneGeneration(in, 10 + (1 - s)).has_value())
        << DescribeTags(in);
    ASSERT_EQ(task_terminate(system, *tasks[s]), KERN_SUCCESS);
  }
  EXPECT_EQ(system.pages().live_pages(), 0u);
}

// Two threads fork a task (and sometimes a fork of it) while two others
// write to it. A child is one snapshot of the parent: its copy regions show
// the parent at a single moment (never half of a write, never a cut that
// the writers' order rules out) and then never change with the parent, nor
// the parent with the child. Share regions stay one memory for parent and
// all children; none regions are absent. Children are terminated (the
// oldest as new ones come, the rest at the end) while the writers still run.
class VmStressForksTest : public ::testing::Test {
 protected:
  // copy: whole-range generations
  static constexpr vm_address_t kC = 0x1000000;
  static constexpr vm_address_t kC2 = 0x1100000;  // copy: one page per write
  static constexpr vm_address_t kS = 0x1200000;   // share
  static constexpr vm_address_t kX = 0x1300000;   // none
  static constexpr std::uint64_t kCPages = 8;
  static constexpr std::uint64_t kC2Pages = 6;
  static constexpr std::uint64_t kSPages = 8;
  static constexpr std::uint64_t kCMarker = 20;
  static constexpr std::uint64_t kC2Marker = 21;
  static constexpr std::uint64_t kSMarker = 22;
  // Writer 1 writes share pages [0, 4); forker f writes share page 4 + f.
  static constexpr std::uint64_t kSWritten = 4;
  static constexpr int kForkers = 2;
  // Children alive at once per forker; older ones are terminated.
  static constexpr std::size_t kLiveChildren = 12;
  const int forks_ = Iterations(800);

  void SetUp() override {
    ASSERT_EQ(Take(task_create(system_, "parent"), &parent_), KERN_SUCCESS);
    ASSERT_EQ(AllocateAt(*parent_, kC, kCPages), KERN_SUCCESS);
    ASSERT_EQ(AllocateAt(*parent_, kC2, kC2Pages), KERN_SUCCESS);
    ASSERT_EQ(AllocateAt(*parent_, kS, kSPages), KERN_SUCCESS);
    ASSERT_EQ(AllocateAt(*parent_, kX, 2), KERN_SUCCESS);
    ASSERT_EQ(vm_inherit(*parent_, kS, kSPages * kPage, VM_INHERIT_SHARE),
              KERN_SUCCESS);
    ASSERT_EQ(vm_inherit(*parent_, kX, 2 * kPage, VM_INHERIT_NONE),
              KERN_SUCCESS);
    ASSERT_EQ(WriteGeneration(*parent_, kC, kCPages, kCMarker, 0),
              KERN_SUCCESS);
    ASSERT_EQ(WriteGeneration(*parent_, kC2, kC2Pages, kC2Marker, 0),
              KERN_SUCCESS);
    ASSERT_EQ(WriteGeneration(*parent_, kS, kSWritten, kSMarker, 0),
              KERN_SUCCESS);
  }

  // Writer 1: generations of C, then of S's written pages.
  void Writer1() {
    std::uint64_t gen = 1;
    for (; !forkers_left_.done() && !failures_.stop(); ++gen) {
      YieldBetweenCalls();
      c_started_.store(gen);
      if (!CheckKr(failures_,
                   WriteGeneration(*parent_, kC, kCPages, kCMarker, gen),
                   KERN_SUCCESS, [] { return std::string("writer 1: C"); })) {
        break;
      }
      c_completed_.store(gen);
      s_started_.store(gen);
      if (!CheckKr(failures_,
                   WriteGeneration(*parent_, kS, kSWritten, kSMarker, gen),
                   KERN_SUCCESS, [] { return std::string("writer 1: S"); })) {
        break;
      }
      s_completed_.store(gen);
    }
    final_gen_ = gen - 1;
  }

  // Writer 2: one page of C2 a write.
  void Writer2() {
    std::uint64_t w = 1;
    for (; !forkers_left_.done() && !failures_.stop(); ++w) {
      YieldBetweenCalls();
      Pages data(1);
      const std::uint64_t page = (w - 1) % kC2Pages;
      data.Set(0, GenTag(kC2Marker, (w - 1) / kC2Pages + 1, page));
      c2_started_.store(w);
      if (!CheckKr(failures_,
                   vm_write(*parent_, kC2 + page * kPage, data.data(), kPage),
                   KERN_SUCCESS, [] { return std::string("writer 2: C2"); })) {
        break;
      }
      c2_completed_.store(w);
    }
    final_writes_ = w - 1;
  }

  // What C2 holds after writer 2's first `writes` writes.
  static std::uint64_t C2After(std::uint64_t writes, std::uint64_t page) {
    const std::uint64_t seq =
        writes > page ? (writes - page - 1) / kC2Pages + 1 : 0;
    return GenTag(kC2Marker, seq, page);
  }

  // A child and what its private (copy) pages must keep holding.
  struct Child {
    std::shared_ptr<Task> task;
    std::vector<std::uint64_t> c;   // tags of C
    std::vector<std::uint64_t> c2;  // tags of C2
  };

  // Forker f: forks the parent (or its own last child) and checks each
  // child against the writers' windows, then keeps checking it.
  void Forker(int f) {
    std::vector<Child> children;
    std::uint64_t s_tag = 0;  // last tag this forker put in share page 4 + f
    const vm_address_t s_mine = kS + (kSWritten + f) * kPage;
    auto read_tags = [&](Task& task, vm_address_t address, std::uint64_t n,
                         std::vector<std::uint64_t>* tags) {
      Pages got(n);
      const KernReturn kr =
          ReadPages(task, address, tags->size() % 2 == 0, &got);
      tags->clear();
      for (std::uint64_t k = 0; k < n; ++k) tags->push_back(got.Tag(k));
      return kr;
    };
    // Checks that a child still holds its snapshot and sees the share page
    // as this forker last wrote it.
    auto verify_child = [&](const Child& child, const char* when) {
      auto where = [&](const char* what) {
        return "forker " + std::to_string(f) + " " + when + ", child " +
               child.task->name() + ": " + what;
      };
      std::vector<std::uint64_t> tags;
      if (CheckKr(failures_, read_tags(*child.task, kC, kCPages, &tags),
                  KERN_SUCCESS, [&] { return where("vm_read C"); })) {
        Check(failures_, tags == child.c,
              [&] { return where("C changed since the fork"); });
      }
      if (CheckKr(failures_, read_tags(*child.task, kC2, kC2Pages, &tags),
                  KERN_SUCCESS, [&] { return where("vm_read C2"); })) {
        Check(failures_, tags == child.c2,
              [&] { return where("C2 changed since the fork"); });
      }
      if (CheckKr(failures_, read_tags(*child.task, s_mine, 1, &tags),
                  KERN_SUCCESS, [&] { return where("vm_read S"); })) {
        Check(failures_, tags[0] == s_tag, [&] {
          return where("shared page shows ") + Hex(tags[0]) + ", want " +
                 Hex(s_tag);
        });
      }
    };
    // Verifies and terminates the oldest child. This happens while the
    // writers write the share pages it covers.
    auto retire_oldest = [&](const char* when) {
      const Child& child = children.front();
      verify_child(child, when);
      CheckKr(failures_, task_terminate(system_, *child.task), KERN_SUCCESS,
              [&] { return "task_terminate " + child.task->name(); });
      Pages got(1);
      CheckKr(
          failures_, ReadPages(*child.task, kS, false, &got), KERN_INVALID_TASK,
          [&] { return "vm_read after task_terminate " + child.task->name(); });
      children.erase(children.begin());
    };

    for (int i = 0; i < forks_ && !failures_.stop(); ++i) {
      // Every fourth fork is of this forker's last child rather than of the
      // parent: only this thread writes that child, so it must be copied
      // exactly.
      const bool grandchild = i % 4 == 3 && !children.empty();
      Task& source = grandchild ? *children.back().task : *parent_;
      const std::string name = (grandchild ? "g" : "c") + std::to_string(f) +
                               "-" + std::to_string(i);
      auto where = [&](const char* what) {
        return "forker " + std::to_string(f) + " fork " + name + ": " + what;
      };
      const std::uint64_t c_low = c_completed_.load();
      const std::uint64_t c2_low = c2_completed_.load();
      Child child;
      if (!CheckKr(failures_,
                   Take(task_fork(system_, source, name), &child.task),
                   KERN_SUCCESS, [&] { return where("task_fork"); })) {
        break;
      }
      const std::uint64_t c_high = c_started_.load();
      const std::uint64_t c2_high = c2_started_.load();

      if (!CheckKr(failures_, read_tags(*child.task, kC, kCPages, &child.c),
                   KERN_SUCCESS, [&] { return where("vm_read C"); }) ||
          !CheckKr(failures_, read_tags(*child.task, kC2, kC2Pages, &child.c2),
                   KERN_SUCCESS, [&] { return where("vm_read C2"); })) {
        break;
      }
      if (grandchild) {
        const Child& from = children.back();
        Check(failures_, child.c == from.c && child.c2 == from.c2, [&] {
          return where("differs from the task it was forked from");
        });
      } else {
        // C: one whole generation of writer 1, one it had begun by the end
        // of the fork and not one it had completed before it began.
        Pages c(kCPages);
        for (std::uint64_t k = 0; k < kCPages; ++k) c.Set(k, child.c[k]);
        const std::optional<std::uint64_t> gen = OneGeneration(c, kCMarker);
        Check(failures_, gen.has_value() && *gen >= c_low && *gen <= c_high,
              [&] {
                return where("C is ") + DescribeTags(c) +
                       ", want one generation in [" + std::to_string(c_low) +
                       ", " + std::to_string(c_high) + "]";
              });
        // C2: the state after some number of writer 2's writes, a number
        // inside the fork's window.
        bool cut_found = false;
        for (std::uint64_t writes = c2_low; writes <= c2_high && !cut_found;
             ++writes) {
          cut_found = true;
          for (std::uint64_t k = 0; k < kC2Pages; ++k) {
            cut_found &= child.c2[k] == C2After(writes, k);
          }
        }
        Check(failures_, cut_found, [&] {
          std::string tags;
          for (std::uint64_t tag : child.c2) {
            tags += ' ';
            tags += Hex(tag);
          }
          return where("C2 is no single moment of writer 2:") + tags +
                 ", writes in [" + std::to_string(c2_low) + ", " +
                 std::to_string(c2_high) + "]";
        });
      }

      std::vector<RegionInfo> regions;
      if (CheckKr(failures_, Take(vm_region_list(*child.task), &regions),
                  KERN_SUCCESS, [&] { return where("vm_region_list"); })) {
        Check(failures_, regions == child_regions_,
              [&] { return where("regions differ from the inheritance"); });
      }
      Pages none(1);
      CheckKr(failures_, ReadPages(*child.task, kX, false, &none),
              KERN_INVALID_ADDRESS, [&] { return where("none region"); });

      // A write to the child's copy is the child's alone: the parent's C
      // still shows only writer 1's generations.
      Pages mine(2);
      mine.Set(0, GenTag(40 + f, i, 0));
      mine.Set(1, GenTag(40 + f, i, 1));
      if (CheckKr(failures_,
                  vm_write(*child.task, kC, mine.data(), mine.bytes()),
                  KERN_SUCCESS, [&] { return where("vm_write C"); })) {
        child.c[0] = mine.Tag(0);
        child.c[1] = mine.Tag(1);
      }
      Pages parent_c(kCPages);
      if (CheckKr(failures_, ReadPages(*parent_, kC, i % 2 == 0, &parent_c),
                  KERN_SUCCESS, [&] { return where("vm_read parent C"); })) {
        Check(failures_, OneGeneration(parent_c, kCMarker).has_value(),
              [&] { return where("parent C is ") + DescribeTags(parent_c); });
      }

      // A write to the child's share page is the parent's (and every other
      // child's) too; the parent's writes to S show in the child.
      Pages shared(1);
      s_tag = GenTag(30 + f, i, kSWritten + f);
      shared.Set(0, s_tag);
      CheckKr(failures_, vm_write(*child.task, s_mine, shared.data(), kPage),
              KERN_SUCCESS, [&] { return where("vm_write S"); });
      Pages seen(1);
      if (CheckKr(failures_, ReadPages(*parent_, s_mine, false, &seen),
                  KERN_SUCCESS, [&] { return where("vm_read parent S"); })) {
        Check(failures_, seen.Tag(0) == s_tag, [&] {
          return where("parent's share page shows ") + Hex(seen.Tag(0)) +
                 ", want " + Hex(s_tag);
        });
      }
      const std::uint64_t s_low = s_completed_.load();
      Pages s(kSWritten);
      if (CheckKr(failures_, ReadPages(*child.task, kS, true, &s), KERN_SUCCESS,
                  [&] { return where("vm_read S"); })) {
        const std::optional<std::uint64_t> gen = OneGeneration(s, kSMarker);
        const std::uint64_t s_high = s_started_.load();
        Check(failures_, gen.has_value() && *gen >= s_low && *gen <= s_high,
              [&] {
                return where("child's S is ") + DescribeTags(s) +
                       ", want the parent's, a generation in [" +
                       std::to_string(s_low) + ", " + std::to_string(s_high) +
                       "]";
              });
      }
      children.push_back(std::move(child));
      if (children.size() > kLiveChildren) retire_oldest("midway");
    }
    while (!children.empty()) retire_oldest("at the end");
    forkers_left_.Leave();
  }

  VmSystem system_{Config(0)};
  std::shared_ptr<Task> parent_;
  // The regions of every child: C and C2 copied, S shared, X not inherited.
  static std::vector<RegionInfo> ChildRegions() {
    return {
        {kC, kCPages * kPage, VM_PROT_DEFAULT, VM_PROT_ALL, VM_INHERIT_COPY},
        {kC2, kC2Pages * kPage, VM_PROT_DEFAULT, VM_PROT_ALL, VM_INHERIT_COPY},
        {kS, kSPages * kPage, VM_PROT_DEFAULT, VM_PROT_ALL, VM_INHERIT_SHARE}};
  }
  const std::vector<RegionInfo> child_regions_ = ChildRegions();
  Failures failures_;
  Countdown forkers_left_{kForkers};
  // Writer 1: generation g is written to C (one call), then to S[0, 4).
  std::atomic<std::uint64_t> c_started_{0}, c_completed_{0};
  std::atomic<std::uint64_t> s_started_{0}, s_completed_{0};
  // Writer 2: its w-th write (from 1) puts sequence (w - 1) / 6 + 1 into page
  // (w - 1) % 6 of C2.
  std::atomic<std::uint64_t> c2_started_{0}, c2_completed_{0};
  std::uint64_t final_gen_ = 0, final_writes_ = 0;
};

TEST_F(VmStressForksTest, ForksSeeConsistentSnapshots) {
  std::vector<std::function<void()>> bodies = {[this] { Writer1(); },
                                               [this] { Writer2(); }};
  for (int f = 0; f < kForkers; ++f) {
    bodies.push_back([this, f] { Forker(f); });
  }
  RunConcurrently("ForksSeeConsistentSnapshots", std::move(bodies));
  failures_.Report();

  // The parent holds exactly the writers' last writes and the forkers' last
  // share-page writes.
  Pages c(kCPages), c2(kC2Pages), s(kSPages);
  ASSERT_EQ(ReadPages(*parent_, kC, false, &c), KERN_SUCCESS);
  EXPECT_EQ(OneGeneration(c, kCMarker), final_gen_) << DescribeTags(c);
  ASSERT_EQ(ReadPages(*parent_, kC2, true, &c2), KERN_SUCCESS);
  for (std::uint64_t k = 0; k < kC2Pages; ++k) {
    EXPECT_EQ(c2.Tag(k), C2After(final_writes_, k)) << "C2 page " << k;
  }
  ASSERT_EQ(ReadPages(*parent_, kS, false, &s), KERN_SUCCESS);
  for (std::uint64_t k = 0; k < kSWritten; ++k) {
    EXPECT_EQ(s.Tag(k), GenTag(kSMarker, final_gen_, k)) << "S page " << k;
  }
  for (int f = 0; f < kForkers; ++f) {
    EXPECT_EQ(s.Tag(kSWritten + f), GenTag(30 + f, forks_ - 1, kSWritten + f))
        << "S page of forker " << f;
  }
  EXPECT_EQ(system_.Tasks().size(), 1u);
  ASSERT_EQ(task_terminate(system_, *parent_), KERN_SUCCESS);
  EXPECT_EQ(system_.pages().live_pages(), 0u);
}

// --- 4. the memory limit under concurrent writers ----------------------------

// Four threads in two tasks write, snapshot, copy and free their own pages
// under a memory limit of half what they could use together, while a
// monitor samples the resident pages. The limit is never exceeded; a write
// that succeeds is read back at once; a refused write (KERN_RESOURCE_SHORTAGE)
// changes nothing.
class VmStressMemoryLimitTest : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kLimitPages = 48;
  static constexpr int kWriters = 4;
  static constexpr std::uint64_t kOwnPages = 24;
  static constexpr vm_address_t kBase = 0x1000000;
  const int iterations_ = Iterations(3000);

  // Writer t owns kOwnPages pages of task t % 2, 1 MiB apart.
  static vm_address_t FirstPage(int t) { return kBase + (t / 2) * 0x100000; }

  void SetUp() override {
    ASSERT_EQ(system_.config().page_limit, kLimitPages * kPage);
    ASSERT_EQ(Take(task_create(system_, "limited-a"), &tasks_[0]),
              KERN_SUCCESS);
    ASSERT_EQ(Take(task_create(system_, "limited-b"), &tasks_[1]),
              KERN_SUCCESS);
    for (int t = 0; t < kWriters; ++t) {
      ASSERT_EQ(AllocateAt(*tasks_[t % 2], FirstPage(t), kOwnPages),
                KERN_SUCCESS);
    }
  }

  // Writer t: writes, snapshots, copies and frees its own pages, each
  // write read back or, refused, shown to have changed nothing.
  void Writer(int t) {
    std::mt19937_64 rng(2000 + t);
    Task& task = *tasks_[t % 2];
    std::vector<std::uint64_t>& model = models_[t];
    const vm_address_t first = FirstPage(t);
    // Writes [p, p + n) and checks it is all written or all as before.
    auto write = [&](std::uint64_t p, std::uint64_t n, int i, bool pinned) {
      auto where = [&](const char* what) {
        return "writer " + std::to_string(t) + " iteration " +
               std::to_string(i) + ": " + what;
      };
      Pages data(n);
      for (std::uint64_t k = 0; k < n; ++k) {
        data.Set(k, std::uint64_t{3} << 60 | std::uint64_t(t) << 48 |
                        (p + k) << 32 | std::uint64_t(i));
      }
      const KernReturn kr =
          vm_write(task, first + p * kPage, data.data(), data.bytes());
      if (kr == KERN_SUCCESS) {
        ++written_;
        for (std::uint64_t k = 0; k < n; ++k) model[p + k] = data.Tag(k);
      } else if (kr == KERN_RESOURCE_SHORTAGE) {
        ++refused_;
      } else {
        CheckKr(failures_, kr, KERN_SUCCESS, [&] { return where("vm_write"); });
        return;
      }
      Pages got(n);
      if (CheckKr(failures_, ReadPages(task, first + p * kPage, pinned, &got),
                  KERN_SUCCESS, [&] { return where("vm_read"); })) {
        for (std::uint64_t k = 0; k < n; ++k) {
          if (!Check(failures_, got.Tag(k) == model[p + k], [&] {
                return where(kr == KERN_SUCCESS ? "written page "
                                                : "page of a refused write ") +
                       std::to_string(p + k) + " shows " + Hex(got.Tag(k)) +
                       ", want " + Hex(model[p + k]);
              })) {
            break;
          }
        }
      }
    };
    for (int i = 0; i < iterations_ && !failures_.stop(); ++i) {
      const auto run = random_ops::RandomPageRun(rng, kOwnPages);
      const std::uint64_t n = run.count, p = run.first;
      const vm_address_t at = first + p * kPage;
      switch (rng() % 6) {
        case 0:
        case 1:
          write(p, n, i, rng() % 2 == 0);
          break;
        case 2: {
          // A pinned view makes the next write copy its pages, which costs
          // memory too and must obey the same limit.
          PinnedPages view;
          if (!CheckKr(failures_, vm_read_pinned(task, at, n * kPage, &view),
                       KERN_SUCCESS, [&] { return "writer pinned vm_read"; })) {
            break;
          }
          const std::vector<std::uint64_t> before(model.begin() + p,
                                                  model.begin() + p + n);
          write(p, n, i, false);
          Pages old(n);
          if (Check(failures_, CopyPinned(view, &old),
                    [] { return std::string("malformed pinned view"); })) {
            for (std::uint64_t k = 0; k < n; ++k) {
              Check(failures_, old.Tag(k) == before[k], [&] {
                return "writer " + std::to_string(t) +
                       ": pinned view changed under a write";
              });
            }
          }
          break;
        }
        case 3: {
          // Freeing memory makes room for the next writes, here or in the
          // other task.
          if (CheckKr(failures_, vm_deallocate(task, at, n * kPage),
                      KERN_SUCCESS,
                      [] { return std::string("vm_deallocate"); }) &&
              CheckKr(failures_, AllocateAt(task, at, n), KERN_SUCCESS,
                      [] { return std::string("vm_allocate"); })) {
            std::fill(model.begin() + p, model.begin() + p + n, 0);
          }
          break;
        }
        case 4: {
          // A virtual copy needs no memory even at the limit.
          const std::uint64_t q = random_ops::RandomRunStart(rng, kOwnPages, n);
          if (CheckKr(failures_,
                      vm_copy(task, at, n * kPage, first + q * kPage),
                      KERN_SUCCESS, [] { return std::string("vm_copy"); })) {
            const std::vector<std::uint64_t> moved(model.begin() + p,
                                                   model.begin() + p + n);
            std::copy(moved.begin(), moved.end(), model.begin() + q);
          }
          break;
        }
        case 5: {
          Pages got(kOwnPages);
          if (CheckKr(failures_, ReadPages(task, first, true, &got),
                      KERN_SUCCESS, [] { return std::string("vm_read"); })) {
            for (std::uint64_t k = 0; k < kOwnPages; ++k) {
              if (!Check(failures_, got.Tag(k) == model[k], [&] {
                    return "writer " + std::to_string(t) + " page " +
                           std::to_string(k) + " shows " + Hex(got.Tag(k)) +
                           ", want " + Hex(model[k]);
                  })) {
                break;
              }
            }
          }
          break;
        }
      }
    }
    writers_left_.Leave();
  }

  // Samples the live and resident pages until the writers are done.
  void Monitor() {
    while (!writers_left_.done() && !failures_.stop()) {
      YieldBetweenCalls();
      const std::uint64_t live = system_.pages().live_pages();
      peak_ = std::max(peak_, live);
      Check(failures_, live <= kLimitPages, [&] {
        return "live pages " + std::to_string(live) + " above the limit";
      });
      for (const std::shared_ptr<Task>& task : tasks_) {
        TaskStatistics stats;
        if (CheckKr(failures_, Take(task_statistics(*task), &stats),
                    KERN_SUCCESS,
                    [] { return std::string("monitor task_statistics"); })) {
          Check(failures_, stats.resident_bytes <= kLimitPages * kPage, [&] {
            return task->name() + " resident " + Hex(stats.resident_bytes) +
                   " above the limit";
          });
        }
      }
    }
  }

  VmSystem system_{Config(kLimitPages)};
  std::shared_ptr<Task> tasks_[2];
  Failures failures_;
  Countdown writers_left_{kWriters};
  std::atomic<int> written_{0}, refused_{0};
  std::vector<std::vector<std::uint64_t>> models_ =
      std::vector<std::vector<std::uint64_t>>(
          kWriters, std::vector<std::uint64_t>(kOwnPages, 0));
  std::uint64_t peak_ = 0;
};

TEST_F(VmStressMemoryLimitTest, HoldsUnderConcurrentWriters) {
  std::vector<std::function<void()>> bodies;
  for (int t = 0; t < kWriters; ++t) {
    bodies.push_back([this, t] { Writer(t); });
  }
  bodies.push_back([this] { Monitor(); });
  RunConcurrently("MemoryLimitHoldsUnderConcurrentWriters", std::move(bodies));
  failures_.Report();

  // Both outcomes happened, or the limit was not exercised.
  EXPECT_GT(written_.load(), 0);
  EXPECT_GT(refused_.load(), 0);
  EXPECT_LE(peak_, kLimitPages);
  EXPECT_LE(system_.pages().live_pages(), kLimitPages);
  for (int t = 0; t < kWriters; ++t) {
    Pages got(kOwnPages);
    ASSERT_EQ(ReadPages(*tasks_[t % 2], FirstPage(t), false, &got),
              KERN_SUCCESS);
    for (std::uint64_t k = 0; k < kOwnPages; ++k) {
      EXPECT_EQ(got.Tag(k), models_[t][k]) << "writer " << t << " page " << k;
    }
  }
  for (const std::shared_ptr<Task>& task : tasks_) {
    ASSERT_EQ(task_terminate(system_, *task), KERN_SUCCESS);
  }
  EXPECT_EQ(system_.pages().live_pages(), 0u);
}

// --- 5. copies and forks of a sparse GiB under its writers ------------------

// Four writers own two blocks each of a region of a GiB and a bit (the
// second radix level, 262,144 pages, and four chunks more) of which nothing
// else is written: block A of writer w lies across the chunk boundary at
// page 512 * (w + 1), block B across or next to the level boundary at page
// 262,144. Each writer writes generation g to its A (one call), then to its
// B, for g = 1, 2, .... Meanwhile a copier vm_copies the region, whole or
// from a page or a chunk in, onto a scratch region of the same task; a
// mapper vm_map_copies it into a second task, onto memory there or as new
// memory that it frees again; a forker forks the task, now and then its own
// last child, and terminates the children (the oldest as new ones come, the
// rest at the end); and two readers read the blocks. The copier, the mapper
// and the forker each write a page of their own marker into what they made.
//
// A copy or a fork is one moment of the region: each block in it is one
// whole generation of its owner at its place (never torn, never another
// block's, never what was written into a copy), no older than the last one
// completed before the call began and no newer than the last one begun
// before it ended, and of a writer's two blocks A's generation is B's or
// one more; the pages next to the blocks are zeros. After it the copy keeps
// what it showed and what its maker wrote into it, whatever the writers do,
// and the writers' blocks never show what was written into a copy. At the
// end every block holds its writer's last generation, the scratch region
// and the second task's copy what was last put there, and once every task
// is terminated no page and no charged byte is left.
class VmStressSparseGiBTest : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kChunk = 512;
  static constexpr std::uint64_t kLevel = 512 * kChunk;
  static constexpr std::uint64_t kRegionPages = kLevel + 4 * kChunk;
  static constexpr std::uint64_t kBlockPages = 4;
  static constexpr int kWriters = 4;
  static constexpr int kBlocks = 2 * kWriters;
  // Block b is writer b / 2's, its A when b is even; where it starts in the
  // region, in pages.
  static constexpr std::uint64_t kBlockAt[kBlocks] = {
      1 * kChunk - 2, kLevel - 2,               // across a chunk, the level
      2 * kChunk - 2, kLevel + kChunk - 2,      // across the next chunk
      3 * kChunk - 2, kLevel - kChunk - 2,      // across the chunk before
      4 * kChunk - 2, kLevel + 2 * kChunk - 2,  // and the one after that
  };
  static constexpr vm_address_t kRegion = vm_address_t{1} << 32;
  static constexpr vm_address_t kScratch = vm_address_t{2}
                                           << 32;  // the copier's
  static constexpr vm_address_t kPeerCopy = vm_address_t{1}
                                            << 32;  // the mapper's
  static constexpr vm_address_t kPeerFresh = vm_address_t{3} << 32;
  // Where a copy of the region starts: on its first page (all chunks
  // aligned alike), a page in (every chunk cut), a chunk in (aligned, one
  // chunk on).
  static constexpr std::uint64_t kShifts[] = {0, 1, kChunk};
  static constexpr std::uint64_t kCopierMarker = 60, kMapperMarker = 61;
  static constexpr std::uint64_t kChildMarker = 62;
  static constexpr std::size_t kLiveChildren = 4;
  const int copies_ = Iterations(300);
  const int forks_ = Iterations(200);
  static std::uint64_t Marker(int b) { return std::uint64_t{10} + b; }

  static VmConfig SparseConfig() {
    VmConfig config = Config(0);
    config.address_bits = 36;
    return config;
  }

  void SetUp() override {
    ASSERT_EQ(Take(task_create(system_, "main"), &main_task_), KERN_SUCCESS);
    ASSERT_EQ(Take(task_create(system_, "peer"), &peer_), KERN_SUCCESS);
    ASSERT_EQ(AllocateAt(*main_task_, kRegion, kRegionPages), KERN_SUCCESS);
    ASSERT_EQ(AllocateAt(*main_task_, kScratch, kRegionPages), KERN_SUCCESS);
    ASSERT_EQ(AllocateAt(*peer_, kPeerCopy, kRegionPages), KERN_SUCCESS);
    for (int b = 0; b < kBlocks; ++b) {
      ASSERT_EQ(WriteGeneration(*main_task_, kRegion + kBlockAt[b] * kPage,
                                kBlockPages, Marker(b), 0),
                KERN_SUCCESS);
    }
  }

  // The generation bounds of a call over the region: low before it, high
  // after it.
  struct Window {
    std::uint64_t low[kBlocks];
    std::uint64_t high[kBlocks];
  };
  using Tags = std::map<std::uint64_t, std::uint64_t>;  // page -> tag

  void Writer(int w) {
    std::uint64_t gen = 1;
    for (; !makers_left_.done() && !failures_.stop(); ++gen) {
      YieldBetweenCalls();
      for (int b = 2 * w; b < 2 * w + 2; ++b) {
        started_[b].store(gen);
        if (!CheckKr(failures_,
                     WriteGeneration(*main_task_, kRegion + kBlockAt[b] * kPage,
                                     kBlockPages, Marker(b), gen),
                     KERN_SUCCESS,
                     [&] { return "writer " + std::to_string(w); })) {
          final_gen_[w] = gen - 1;
          return;
        }
        completed_[b].store(gen);
      }
    }
    final_gen_[w] = gen - 1;
  }

  void OpenWindow(Window* window) {
    for (int b = 0; b < kBlocks; ++b) window->low[b] = completed_[b].load();
  }

  void CloseWindow(Window* window) {
    for (int b = 0; b < kBlocks; ++b) window->high[b] = started_[b].load();
  }

  // The tags of a copy of the region made from its page `shift` on, at
  // base: the blocks that lie in it and the page either side of each. A
  // copy's pages hold only these (and what its maker writes), everything
  // else being unwritten.
  KernReturn ReadCopy(Task& task, vm_address_t base, std::uint64_t shift,
                      bool pinned, Tags* tags) {
    tags->clear();
    for (int b = 0; b < kBlocks; ++b) {
      if (kBlockAt[b] < shift + 1) continue;
      const std::uint64_t first = kBlockAt[b] - shift - 1;
      Pages got(kBlockPages + 2);
      const KernReturn kr = ReadPages(task, base + first * kPage, pinned, &got);
      if (kr != KERN_SUCCESS) return kr;
      for (std::uint64_t k = 0; k < got.count(); ++k) {
        (*tags)[first + k] = got.Tag(k);
      }
    }
    return KERN_SUCCESS;
  }

  // Checks a copy's tags (ReadCopy) against the window of the call that
  // made it.
  bool CheckCopy(const Tags& tags, std::uint64_t shift, const Window& window,
                 const std::string& what) {
    std::optional<std::uint64_t> gens[kBlocks];
    for (int b = 0; b < kBlocks; ++b) {
      if (kBlockAt[b] < shift + 1) continue;
      const std::uint64_t first = kBlockAt[b] - shift;
      Pages block(kBlockPages);
      for (std::uint64_t k = 0; k < kBlockPages; ++k) {
        block.Set(k, tags.at(first + k));
      }
      gens[b] = OneGeneration(block, Marker(b));
      const bool zeros_around =
          tags.at(first - 1) == 0 && tags.at(first + kBlockPages) == 0;
      if (!Check(failures_,
                 zeros_around && gens[b].has_value() &&
                     *gens[b] >= window.low[b] && *gens[b] <= window.high[b],
                 [&] {
                   return what + ": block " + std::to_string(b) + " is " +
                          Hex(tags.at(first - 1)) + " " + DescribeTags(block) +
                          " " + Hex(tags.at(first + kBlockPages)) +
                          ", want zeros around one generation in [" +
                          std::to_string(window.low[b]) + ", " +
                          std::to_string(window.high[b]) + "]";
                 })) {
        return false;
      }
    }
    for (int w = 0; w < kWriters; ++w) {
      const auto& a = gens[2 * w];
      const auto& b = gens[2 * w + 1];
      if (!a || !b) continue;
      if (!Check(failures_, *a == *b || *a == *b + 1, [&] {
            return what + ": writer " + std::to_string(w) + "'s A is " +
                   std::to_string(*a) + " and B " + std::to_string(*b) +
                   ", no one moment of its writes";
          })) {
        return false;
      }
    }
    return true;
  }

  // A copy of the region from page `shift` on replaces what the range held
  // before: its tags afterwards, given the tags it held (model) and what
  // the copy showed (tags).
  static void CopiedOver(Tags* model, const Tags& tags, std::uint64_t shift) {
    model->erase(model->begin(), model->lower_bound(kRegionPages - shift));
    for (const auto& [page, tag] : tags) {
      if (tag != 0) (*model)[page] = tag;
    }
  }

  // Whether the pages of a copy (and those next to its blocks) still hold
  // its model's tags.
  bool Holds(Task& task, vm_address_t base, const Tags& model,
             const std::string& what) {
    Tags seen;
    if (!CheckKr(failures_, ReadCopy(task, base, 0, false, &seen), KERN_SUCCESS,
                 [&] { return what + ": vm_read"; })) {
      return false;
    }
    for (const auto& [page, tag] : model) {
      Pages got(1);
      if (!CheckKr(failures_, ReadPages(task, base + page * kPage, true, &got),
                   KERN_SUCCESS, [&] { return what + ": vm_read"; })) {
        return false;
      }
      seen[page] = got.Tag(0);
    }
    for (const auto& shown : seen) {
      const auto it = model.find(shown.first);
      const std::uint64_t want = it == model.end() ? 0 : it->second;
      if (!Check(failures_, shown.second == want, [&] {
            return what + ": page " + std::to_string(shown.first) + " shows " +
                   Hex(shown.second) + ", want " + Hex(want);
          })) {
        return false;
      }
    }
    return true;
  }

  // The writers' blocks show only their writers' generations.
  bool RegionIsClean(const std::string& what) {
    for (int b = 0; b < kBlocks; ++b) {
      Pages got(kBlockPages);
      if (!CheckKr(failures_,
                   ReadPages(*main_task_, kRegion + kBlockAt[b] * kPage, false,
                             &got),
                   KERN_SUCCESS, [&] { return what + ": vm_read"; })) {
        return false;
      }
      if (!Check(failures_, OneGeneration(got, Marker(b)).has_value(), [&] {
            return what + ": the writers' block " + std::to_string(b) + " is " +
                   DescribeTags(got);
          })) {
        return false;
      }
    }
    return true;
  }

  void Copier() {
    for (int i = 0; i < copies_ && !failures_.stop(); ++i) {
      YieldBetweenCalls();
      const std::uint64_t shift = kShifts[i % std::size(kShifts)];
      const std::string what = "copier " + std::to_string(i) + " (from page " +
                               std::to_string(shift) + ")";
      Window window;
      OpenWindow(&window);
      if (!CheckKr(failures_,
                   vm_copy(*main_task_, kRegion + shift * kPage,
                           (kRegionPages - shift) * kPage, kScratch),
                   KERN_SUCCESS, [&] { return what + ": vm_copy"; })) {
        break;
      }
      CloseWindow(&window);
      Tags tags;
      if (!CheckKr(failures_,
                   ReadCopy(*main_task_, kScratch, shift, i % 2 == 0, &tags),
                   KERN_SUCCESS, [&] { return what + ": vm_read"; }) ||
          !CheckCopy(tags, shift, window, what)) {
        break;
      }
      CopiedOver(&scratch_, tags, shift);
      // A page of the copy written: a block's first page, or its second
      // (block 0 lies before a copy from a chunk in).
      const std::uint64_t page =
          kBlockAt[1 + i % (kBlocks - 1)] - shift + i % 2;
      Pages mine(1);
      mine.Set(0, GenTag(kCopierMarker, i, page));
      if (!CheckKr(failures_,
                   vm_write(*main_task_, kScratch + page * kPage, mine.data(),
                            kPage),
                   KERN_SUCCESS, [&] { return what + ": vm_write"; })) {
        break;
      }
      scratch_[page] = mine.Tag(0);
      if (!Holds(*main_task_, kScratch, scratch_, what) ||
          !RegionIsClean(what + ", after writing the copy")) {
        break;
      }
    }
    makers_left_.Leave();
  }

  void Mapper() {
    for (int i = 0; i < copies_ && !failures_.stop(); ++i) {
      YieldBetweenCalls();
      const std::uint64_t shift = kShifts[(i / 2) % std::size(kShifts)];
      const bool fresh = i % 2 == 1;
      const vm_address_t dest = fresh ? kPeerFresh : kPeerCopy;
      const std::string what = "mapper " + std::to_string(i) + " (from page " +
                               std::to_string(shift) +
                               (fresh ? ", new memory)" : ")");
      Window window;
      OpenWindow(&window);
      if (!CheckKr(
              failures_,
              vm_map_copy(*peer_, dest, *main_task_, kRegion + shift * kPage,
                          (kRegionPages - shift) * kPage, fresh, false),
              KERN_SUCCESS, [&] { return what + ": vm_map_copy"; })) {
        break;
      }
      CloseWindow(&window);
      Tags tags;
      if (!CheckKr(failures_, ReadCopy(*peer_, dest, shift, i % 4 < 2, &tags),
                   KERN_SUCCESS, [&] { return what + ": vm_read"; }) ||
          !CheckCopy(tags, shift, window, what)) {
        break;
      }
      Tags fresh_model;
      Tags& model = fresh ? fresh_model : peer_copy_;
      CopiedOver(&model, tags, shift);
      const std::uint64_t page = kBlockAt[1 + (i + 3) % (kBlocks - 1)] - shift;
      Pages mine(1);
      mine.Set(0, GenTag(kMapperMarker, i, page));
      if (!CheckKr(failures_,
                   vm_write(*peer_, dest + page * kPage, mine.data(), kPage),
                   KERN_SUCCESS, [&] { return what + ": vm_write"; })) {
        break;
      }
      model[page] = mine.Tag(0);
      if (!Holds(*peer_, dest, model, what) ||
          !RegionIsClean(what + ", after writing the copy")) {
        break;
      }
      if (fresh &&
          !CheckKr(failures_,
                   vm_deallocate(*peer_, dest, (kRegionPages - shift) * kPage),
                   KERN_SUCCESS, [&] { return what + ": vm_deallocate"; })) {
        break;
      }
    }
    makers_left_.Leave();
  }

  void Forker() {
    struct Child {
      std::shared_ptr<Task> task;
      Tags region;  // what its copy of the region holds
    };
    std::vector<Child> children;
    auto retire_oldest = [&](const std::string& when) {
      Child& child = children.front();
      const std::string what = "child " + child.task->name() + " " + when;
      Holds(*child.task, kRegion, child.region, what);
      CheckKr(failures_, task_terminate(system_, *child.task), KERN_SUCCESS,
              [&] { return what + ": task_terminate"; });
      Pages got(1);
      CheckKr(failures_, ReadPages(*child.task, kRegion, false, &got),
              KERN_INVALID_TASK,
              [&] { return what + ": vm_read after task_terminate"; });
      children.erase(children.begin());
    };
    for (int i = 0; i < forks_ && !failures_.stop(); ++i) {
      YieldBetweenCalls();
      const bool grandchild = i % 4 == 3 && !children.empty();
      std::string name(grandchild ? "g" : "c");
      name.append(std::to_string(i));
      const std::string what = "fork " + name;
      Window window;
      OpenWindow(&window);
      Child child;
      if (!CheckKr(
              failures_,
              Take(task_fork(system_,
                             grandchild ? *children.back().task : *main_task_,
                             name),
                   &child.task),
              KERN_SUCCESS, [&] { return what + ": task_fork"; })) {
        break;
      }
      CloseWindow(&window);
      Tags tags;
      if (!CheckKr(failures_,
                   ReadCopy(*child.task, kRegion, 0, i % 2 == 0, &tags),
                   KERN_SUCCESS, [&] { return what + ": vm_read"; })) {
        break;
      }
      if (grandchild) {
        // Of a child only this thread writes: exactly its copy.
        child.region = children.back().region;
        if (!Holds(*child.task, kRegion, child.region, what)) break;
      } else {
        if (!CheckCopy(tags, 0, window, what)) break;
        CopiedOver(&child.region, tags, 0);
      }
      const std::uint64_t page = kBlockAt[i % kBlocks] + 1;
      Pages mine(1);
      mine.Set(0, GenTag(kChildMarker, i, page));
      if (!CheckKr(
              failures_,
              vm_write(*child.task, kRegion + page * kPage, mine.data(), kPage),
              KERN_SUCCESS, [&] { return what + ": vm_write"; })) {
        break;
      }
      child.region[page] = mine.Tag(0);
      if (!Holds(*child.task, kRegion, child.region, what) ||
          !RegionIsClean(what + ", after writing the child")) {
        break;
      }
      children.push_back(std::move(child));
      if (children.size() > kLiveChildren) retire_oldest("midway");
    }
    while (!children.empty()) retire_oldest("at the end");
    makers_left_.Leave();
  }

  void Reader(int r) {
    std::mt19937_64 rng(77 + r);
    for (int i = 0; !makers_left_.done() && !failures_.stop(); ++i) {
      reads_.fetch_add(1);
      YieldBetweenCalls();
      const int b = static_cast<int>(rng() % kBlocks);
      const bool pinned = rng() % 2 == 0;
      const std::uint64_t low = completed_[b].load();
      const vm_address_t at = kRegion + kBlockAt[b] * kPage;
      PinnedPages view;
      Pages got(kBlockPages);
      const KernReturn kr =
          pinned ? vm_read_pinned(*main_task_, at, got.bytes(), &view)
                 : vm_read(*main_task_, at, got.span());
      const std::uint64_t high = started_[b].load();
      auto where = [&] {
        return "reader " + std::to_string(r) + " iteration " +
               std::to_string(i) + ", block " + std::to_string(b);
      };
      if (!CheckKr(failures_, kr, KERN_SUCCESS, where)) break;
      if (pinned && !Check(failures_, CopyPinned(view, &got), where)) break;
      const std::optional<std::uint64_t> gen = OneGeneration(got, Marker(b));
      if (!Check(failures_, gen.has_value() && *gen >= low && *gen <= high,
                 [&] {
                   return where() + " is " + DescribeTags(got) +
                          ", want one generation in [" + std::to_string(low) +
                          ", " + std::to_string(high) + "]";
                 })) {
        break;
      }
      if (pinned) {
        // The pinned view keeps its bytes while the writer goes on.
        YieldBetweenCalls();
        Pages again(kBlockPages);
        if (!Check(failures_,
                   CopyPinned(view, &again) &&
                       OneGeneration(again, Marker(b)) == gen,
                   [&] { return where() + ": the pinned view changed"; })) {
          break;
        }
      }
    }
  }

  VmSystem system_{SparseConfig()};
  std::shared_ptr<Task> main_task_, peer_;
  Failures failures_;
  Countdown makers_left_{3};
  std::atomic<std::uint64_t> started_[kBlocks] = {};
  std::atomic<std::uint64_t> completed_[kBlocks] = {};
  std::uint64_t final_gen_[kWriters] = {};
  Tags scratch_;    // the copier's model of its scratch region
  Tags peer_copy_;  // the mapper's model of the second task's copy
  std::atomic<std::uint64_t> reads_{0};
};

TEST_F(VmStressSparseGiBTest, CopiesAndForksUnderItsWriters) {
  std::vector<std::function<void()>> bodies = {
      [this] { Copier(); }, [this] { Mapper(); }, [this] { Forker(); }};
  for (int w = 0; w < kWriters; ++w) {
    bodies.push_back([this, w] { Writer(w); });
  }
  for (int r = 0; r < 2; ++r) bodies.push_back([this, r] { Reader(r); });
  RunConcurrently("CopiesAndForksOfASparseGiBUnderItsWriters",
                  std::move(bodies));
  failures_.Report();
  if (failures_.stop()) return;
  std::printf(
      "[ stress   ] %d copies, %d map copies, %d forks and %llu "
      "reads while the writers wrote generations %llu, %llu, %llu "
      "and %llu\n",
      copies_, copies_, forks_, static_cast<unsigned long long>(reads_.load()),
      static_cast<unsigned long long>(final_gen_[0]),
      static_cast<unsigned long long>(final_gen_[1]),
      static_cast<unsigned long long>(final_gen_[2]),
      static_cast<unsigned long long>(final_gen_[3]));

  for (int b = 0; b < kBlocks; ++b) {
    Pages got(kBlockPages);
    ASSERT_EQ(
        ReadPages(*main_task_, kRegion + kBlockAt[b] * kPage, b % 2 == 0, &got),
        KERN_SUCCESS);
    EXPECT_EQ(OneGeneration(got, Marker(b)), final_gen_[b / 2])
        << "block " << b << " is " << DescribeTags(got);
  }
  EXPECT_TRUE(Holds(*main_task_, kScratch, scratch_, "the scratch region"));
  EXPECT_TRUE(Holds(*peer_, kPeerCopy, peer_copy_, "the second task's copy"));
  failures_.Report();
  EXPECT_EQ(system_.Tasks().size(), 2u);
  ASSERT_EQ(task_terminate(system_, *main_task_), KERN_SUCCESS);
  ASSERT_EQ(task_terminate(system_, *peer_), KERN_SUCCESS);
  EXPECT_EQ(system_.pages().live_pages(), 0u);
  main_task_.reset();
  peer_.reset();
  EXPECT_EQ(system_.budget().used(), system_.pages().own_bytes())
      << "charged beyond the allocator's own memory once every task is gone";
}

// --- 6. fairness: neither side of a task's or an object's lock starves -----

// How long the few calls of one thread may take in all while other threads
// hammer the same lock. Generous: with the core's fair locks they take
// milliseconds; with glibc's reader-preferring rwlock, vm_allocate under four
// 1 MiB vm_read loops did not return within 30 s.
constexpr std::chrono::seconds kFairnessDeadline{10};

// Loops hammer(i) on `hammers` threads (i = 0, 1, ...) and, once each of them
// has made a call, runs calls() on one more thread. True if calls() returned
// within kFairnessDeadline. The hammers stop either way, so a starved caller
// fails the test (and then gets through) instead of hanging it.
bool CompletesUnderLoad(int hammers, const std::function<void(int)>& hammer,
                        const std::function<void()>& calls,
                        Failures& failures) {
  std::atomic<bool> stop{false};
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < hammers; ++i) {
    threads.emplace_back([&, i] {
      hammer(i);
      started.fetch_add(1);
      while (!stop.load() && !failures.stop()) hammer(i);
    });
  }
  const auto start_deadline =
      std::chrono::steady_clock::now() + kFairnessDeadline;
  while (started.load() < hammers && !failures.stop() &&
         std::chrono::steady_clock::now() < start_deadline) {
    std::this_thread::yield();
  }
  std::mutex mu;
  std::condition_variable finished;
  bool done = false;
  std::thread caller([&] {
    calls();
    std::lock_guard lock(mu);
    done = true;
    finished.notify_all();
  });
  bool in_time;
  {
    std::unique_lock lock(mu);
    in_time = finished.wait_for(lock, kFairnessDeadline, [&] { return done; });
  }
  stop.store(true);
  for (std::thread& thread : threads) thread.join();
  caller.join();
  return in_time;
}

// A task with a 1 MiB region of written pages at kHammered, for the
// fairness scenarios.
class Hammered {
 public:
  static constexpr vm_address_t kHammered = 0x1000000;
  static constexpr vm_size_t kBytes = vm_size_t{1} << 20;

  Hammered() : system_(Config(0)) {
    EXPECT_EQ(Take(task_create(system_, "hammered"), &task_), KERN_SUCCESS);
    EXPECT_EQ(AllocateAt(*task_, kHammered, kBytes / kPage), KERN_SUCCESS);
    EXPECT_EQ(WriteGeneration(*task_, kHammered, kBytes / kPage, 1, 1),
              KERN_SUCCESS);
  }
  ~Hammered() { EXPECT_EQ(task_terminate(system_, *task_), KERN_SUCCESS); }

  Task& task() { return *task_; }

  // One 1 MiB read of the region into *buffer, or pinned (the daemon's read
  // path) and then released.
  void Read(bool pinned, Pages* buffer, Failures& failures) {
    KernReturn kr;
    if (pinned) {
      PinnedPages view;
      kr = vm_read_pinned(*task_, kHammered, kBytes, &view);
    } else {
      kr = vm_read(*task_, kHammered, buffer->span());
    }
    CheckKr(failures, kr, KERN_SUCCESS,
            [] { return "1 MiB vm_read of the hammered region"; });
  }

  // vm_allocate of one page anywhere, vm_protect and vm_deallocate of it:
  // three map changes, each needing the task's lock exclusive.
  void ChangeMap(Failures& failures) {
    vm_address_t at = 0;
    if (!CheckKr(failures, vm_allocate(*task_, &at, kPage, true), KERN_SUCCESS,
                 [] { return "vm_allocate"; })) {
      return;
    }
    CheckKr(failures, vm_protect(*task_, at, kPage, false, VM_PROT_READ),
            KERN_SUCCESS, [] { return "vm_protect"; });
    CheckKr(failures, vm_deallocate(*task_, at, kPage), KERN_SUCCESS,
            [] { return "vm_deallocate"; });
  }

  // A 1 MiB vm_write of the region from data: its object's lock exclusive.
  void Write(const Pages& data, Failures& failures) {
    CheckKr(failures, vm_write(*task_, kHammered, data.data(), data.bytes()),
            KERN_SUCCESS,
            [] { return "1 MiB vm_write of the hammered region"; });
  }

 private:
  VmSystem system_;
  std::shared_ptr<Task> task_;
};

// Six hammers: four read into a buffer and two pinned; four write.
constexpr int kHammers = 6;
constexpr int kCalls = 20;

// Each hammer's or caller's own 1 MiB buffer, reused across its calls (a
// fresh one per call would spend most of the loop outside the core).
std::vector<Pages> Buffers(int count, std::uint64_t gen) {
  std::vector<Pages> buffers;
  for (int i = 0; i < count; ++i) {
    buffers.emplace_back(Hammered::kBytes / kPage);
    FillGeneration(&buffers.back(), 1, gen + i);
  }
  return buffers;
}

// Map changes on a task whose 1 MiB region six threads read in a loop: the
// task's lock lets the changes in.
TEST(VmStressTest, MapChangesCompleteWhileReadersHammerTheTask) {
  Hammered hammered;
  Failures failures;
  std::vector<Pages> buffers = Buffers(kHammers, 2);
  EXPECT_TRUE(CompletesUnderLoad(
      kHammers, [&](int i) { hammered.Read(i >= 4, &buffers[i], failures); },
      [&] {
        for (int n = 0; n < kCalls; ++n) hammered.ChangeMap(failures);
      },
      failures))
      << kCalls << " rounds of vm_allocate, vm_protect and vm_deallocate "
      << "took over " << kFairnessDeadline.count() << " s under " << kHammers
      << " 1 MiB reader loops";
  failures.Report();
}

// The other way round: reads while six threads change the map.
TEST(VmStressTest, ReadsCompleteWhileMapChangesHammerTheTask) {
  Hammered hammered;
  Failures failures;
  std::vector<Pages> buffers = Buffers(1, 2);
  EXPECT_TRUE(CompletesUnderLoad(
      kHammers, [&](int) { hammered.ChangeMap(failures); },
      [&] {
        for (int n = 0; n < kCalls; ++n) {
          hammered.Read(n % 2 == 1, &buffers[0], failures);
        }
      },
      failures))
      << kCalls << " 1 MiB reads took over " << kFairnessDeadline.count()
      << " s under " << kHammers << " map-change loops";
  failures.Report();
}

// Writes of a region six threads read: the object's lock lets them in.
TEST(VmStressTest, WritesCompleteWhileReadersHammerTheRegion) {
  Hammered hammered;
  Failures failures;
  std::vector<Pages> buffers = Buffers(kHammers + 1, 2);
  EXPECT_TRUE(CompletesUnderLoad(
      kHammers, [&](int i) { hammered.Read(i >= 4, &buffers[i], failures); },
      [&] {
        for (int n = 0; n < kCalls; ++n) {
          hammered.Write(buffers[kHammers], failures);
        }
      },
      failures))
      << kCalls << " 1 MiB writes took over " << kFairnessDeadline.count()
      << " s under " << kHammers << " 1 MiB reader loops";
  failures.Report();
}

// Reads of a region six threads write.
TEST(VmStressTest, ReadsCompleteWhileWritersHammerTheRegion) {
  Hammered hammered;
  Failures failures;
  std::vector<Pages> buffers = Buffers(kHammers + 1, 2);
  EXPECT_TRUE(CompletesUnderLoad(
      kHammers, [&](int i) { hammered.Write(buffers[i], failures); },
      [&] {
        for (int n = 0; n < kCalls; ++n) {
          hammered.Read(n % 2 == 1, &buffers[kHammers], failures);
        }
      },
      failures))
      << kCalls << " 1 MiB reads took over " << kFairnessDeadline.count()
      << " s under " << kHammers << " 1 MiB writer loops";
  failures.Report();
}

}  // namespace
}  // namespace taskfs::vm
