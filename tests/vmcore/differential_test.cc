// Seeded randomized differential test of the Mach facade (vm_user.h).
//
// The reference model (reference_model.h) runs every call next to the core:
// one std::map entry per allocated page holding that page's attributes and
// bytes, and each call of SPEC §1, §2 and §6 written as a walk over pages in
// ascending order. Where the two agree on every result code, every byte read,
// every region list and every statistic, none of the core's cleverness has
// changed what a caller sees.
//
// Every run is determined by one seed, printed at the start and with every
// failure: TASKFS_SEED=<seed> replays a run exactly. Without it the seed comes
// from std::random_device, so each run explores new sequences.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/vmcore/reference_model.h"
#include "tests/vmcore/take_result.h"
#include "vmcore/kern_return.h"
#include "vmcore/pinned_pages.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_types.h"
#include "vmcore/vm_user.h"

namespace taskfs::vm {
namespace {

using reference::Bytes;
using reference::Hex;
using reference::InheritName;
using reference::Model;
using reference::ProtName;
using reference::RegionsText;
using reference::SameStats;
using reference::StatsText;

std::uint64_t RunSeed() {
  static const std::uint64_t seed = [] {
    const char* env = std::getenv("TASKFS_SEED");
    if (env != nullptr && *env != '\0') {
      return static_cast<std::uint64_t>(std::strtoull(env, nullptr, 0));
    }
    std::random_device device;
    return (std::uint64_t{device()} << 32) | device();
  }();
  return seed;
}

// Own generator arithmetic (not std::uniform_int_distribution, whose output
// differs between standard libraries), so a seed replays anywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}

  std::uint64_t Next() { return engine_(); }
  // In [0, n), n > 0; the modulo bias does not matter for a test.
  std::uint64_t Below(std::uint64_t n) { return engine_() % n; }
  bool Percent(std::uint64_t p) { return Below(100) < p; }

 private:
  std::mt19937_64 engine_;
};

// --- crash notes -------------------------------------------------------------

// A crash inside the core ends the process before gtest can report anything,
// so the harness keeps a note of the call under way (seed, episode, op) and a
// signal handler writes it to stderr, then hands the signal on to whatever
// handled it before (the default action, or a sanitizer's reporter).
char crash_note[1024];
constexpr int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
struct sigaction previous_actions[std::size(kCrashSignals)];

void HandleCrash(int signal) {
  static constexpr char kHeader[] =
      "\n[ differential ] crashed in the core during: ";
  (void)!write(STDERR_FILENO, kHeader, sizeof kHeader - 1);
  (void)!write(STDERR_FILENO, crash_note,
               strnlen(crash_note, sizeof crash_note));
  (void)!write(STDERR_FILENO, "\n", 1);
  for (std::size_t i = 0; i < std::size(kCrashSignals); ++i) {
    // Returning re-runs the faulting instruction (or, for abort(), raises
    // again), now under the previous handler.
    if (kCrashSignals[i] == signal) {
      sigaction(signal, &previous_actions[i], nullptr);
    }
  }
}

// Installs HandleCrash for its lifetime.
class CrashNotes {
 public:
  CrashNotes() {
    struct sigaction action = {};
    action.sa_handler = HandleCrash;
    sigemptyset(&action.sa_mask);
    for (std::size_t i = 0; i < std::size(kCrashSignals); ++i) {
      sigaction(kCrashSignals[i], &action, &previous_actions[i]);
    }
  }
  ~CrashNotes() {
    for (std::size_t i = 0; i < std::size(kCrashSignals); ++i) {
      sigaction(kCrashSignals[i], &previous_actions[i], nullptr);
    }
  }
  CrashNotes(const CrashNotes&) = delete;
  CrashNotes& operator=(const CrashNotes&) = delete;

  static void Set(const std::string& note) {
    std::snprintf(crash_note, sizeof crash_note, "%s", note.c_str());
  }
};

// --- the harness -------------------------------------------------------------

// Most addresses fall in [0, kWindowPages) pages, where anywhere-allocations
// land too, so calls collide with each other's regions all the time.
constexpr std::uint64_t kWindowPages = 64;
// Most sizes are 0..kMaxOpPages pages.
constexpr std::uint64_t kMaxOpPages = 8;
// Reads up to this many pages use the buffer variant of vm_read, larger ones
// (which only huge allocations let succeed) the pinned variant.
constexpr std::uint64_t kMaxBufferPages = 16;
constexpr std::size_t kPinSlots = 2;
constexpr std::uint64_t kMaxTasks = 5;
// Ops between checks of every task's regions and statistics and the
// system's live pages, and between reads of every readable byte.
constexpr std::uint64_t kCheckEvery = 50;
constexpr std::uint64_t kCheckContentsEvery = 100;
constexpr std::size_t kRecentOps = 40;  // ops shown with a divergence

struct RunConfig {
  const char* label;
  std::uint64_t page_size;
  unsigned address_bits;
  bool memory_limited;  // a random small memory limit per episode
  std::uint64_t ops;
  std::uint64_t salt;  // gives each test its own stream under one seed
};

enum class Op {
  kAllocateFixed,
  kAllocateAnywhere,
  kDeallocate,
  kProtect,
  kInherit,
  kRead,
  kWrite,
  kFill,
  kCopy,
  kMapCopy,
  kRegion,
  kFindData,
  kFindHole,
  kStatistics,
  kPin,
  kCheckPin,
  kFork,
  kCreate,
  kTerminate,
};

struct OpKind {
  Op op;
  std::uint64_t weight;
  const char* name;
};

constexpr OpKind kOpKinds[] = {
    {Op::kAllocateFixed, 10, "vm_allocate(fixed)"},
    {Op::kAllocateAnywhere, 5, "vm_allocate(anywhere)"},
    {Op::kDeallocate, 7, "vm_deallocate"},
    {Op::kProtect, 8, "vm_protect"},
    {Op::kInherit, 5, "vm_inherit"},
    {Op::kRead, 13, "vm_read"},
    {Op::kWrite, 13, "vm_write"},
    {Op::kFill, 4, "vm_fill"},
    {Op::kCopy, 8, "vm_copy"},
    {Op::kMapCopy, 8, "vm_map_copy"},
    {Op::kRegion, 3, "vm_region"},
    {Op::kFindData, 2, "vm_find_data"},
    {Op::kFindHole, 2, "vm_find_hole"},
    {Op::kStatistics, 2, "list+statistics"},
    {Op::kPin, 2, "vm_read(pinned)"},
    {Op::kCheckPin, 2, "check pinned"},
    {Op::kFork, 3, "task_fork"},
    {Op::kCreate, 1, "task_create"},
    {Op::kTerminate, 2, "task_terminate"},
};
constexpr std::size_t kOpKindCount = std::size(kOpKinds);

// Runs random calls against the core and the model in episodes, each on a
// fresh VmSystem, and stops at the first divergence, which it reports with
// ADD_FAILURE naming the seed, the episode, the op and both results.
class DifferentialRun {
 public:
  DifferentialRun(const RunConfig& config, std::uint64_t seed)
      : config_(config), seed_(seed), rng_(seed ^ config.salt) {}
  ~DifferentialRun() { EndEpisode(); }
  DifferentialRun(const DifferentialRun&) = delete;
  DifferentialRun& operator=(const DifferentialRun&) = delete;

  void Run() {
    const auto start = std::chrono::steady_clock::now();
    while (ops_run_ < config_.ops && !diverged_) RunEpisode();
    const std::chrono::duration<double> elapsed =
        std::chrono::steady_clock::now() - start;
    std::printf("[ differential ] %s: %" PRIu64 " ops in %" PRIu64
                " episodes, %.2f s; results per call:\n",
                config_.label, ops_run_, episode_, elapsed.count());
    for (std::size_t i = 0; i < kOpKindCount; ++i) {
      std::string line;
      for (const auto& [kr, count] : results_[i]) {
        line += ' ';
        line += KernReturnName(kr).substr(5);
        line += ' ';
        line += std::to_string(100 * count / calls_[i]);
        line += '%';
      }
      std::printf("[ differential ]   %-22s %6" PRIu64 "%s\n", kOpKinds[i].name,
                  calls_[i], line.c_str());
    }
    std::fflush(stdout);
  }

  std::uint64_t ops_run() const { return ops_run_; }

 private:
  void RunEpisode() {
    ++episode_;
    VmConfig vm;
    vm.page_size = config_.page_size;
    vm.address_bits = config_.address_bits;
    vm.max_tasks = kMaxTasks;
    vm.page_limit =
        config_.memory_limited ? (16 + rng_.Below(48)) * config_.page_size : 0;
    ASSERT_EQ(VmSystem::ValidateConfig(vm), "");
    vm_config_ = vm;
    limit_ = std::uint64_t{1} << vm.address_bits;
    system_ = std::make_unique<VmSystem>(vm);
    model_ = std::make_unique<Model>(vm, kPinSlots);
    recent_.clear();
    next_name_ = 0;
    episode_op_ = 0;
    CreateTask("t" + std::to_string(next_name_++));
    const std::uint64_t length = 200 + rng_.Below(1300);
    for (std::uint64_t i = 0;
         i < length && ops_run_ < config_.ops && !diverged_; ++i) {
      ++ops_run_;
      ++episode_op_;
      Step();
      if (!diverged_ && episode_op_ % kCheckEvery == 0) CheckEverything();
      if (!diverged_ && episode_op_ % kCheckContentsEvery == 0) {
        CheckContents(/*everything=*/false);
      }
    }
    if (!diverged_) {
      CheckEverything();
      CheckContents(/*everything=*/true);
    }
    EndEpisode();
  }

  // Pins go first: they hold pages of the system's allocator.
  void EndEpisode() {
    for (PinnedPages& pin : pins_) pin.Release();
    tasks_.clear();
    model_.reset();
    system_.reset();
  }

  void Step() {
    std::uint64_t total = 0;
    for (const OpKind& kind : kOpKinds) total += kind.weight;
    std::uint64_t pick = rng_.Below(total);
    std::size_t index = 0;
    while (pick >= kOpKinds[index].weight) pick -= kOpKinds[index++].weight;
    const KernReturn kr = RunOp(kOpKinds[index].op);
    ++calls_[index];
    ++results_[index][kr];
  }

  // Returns the core's result.
  KernReturn RunOp(Op op) {
    switch (op) {
      case Op::kAllocateFixed:
        return OpAllocate(false);
      case Op::kAllocateAnywhere:
        return OpAllocate(true);
      case Op::kDeallocate:
        return OpDeallocate();
      case Op::kProtect:
        return OpProtect();
      case Op::kInherit:
        return OpInherit();
      case Op::kRead:
        return OpRead();
      case Op::kWrite:
        return OpWrite();
      case Op::kFill:
        return OpFill();
      case Op::kCopy:
        return OpCopy();
      case Op::kMapCopy:
        return OpMapCopy();
      case Op::kRegion:
        return OpRegion();
      case Op::kFindData:
        return OpFind(false);
      case Op::kFindHole:
        return OpFind(true);
      case Op::kStatistics:
        return CheckTask(PickTask());
      case Op::kPin:
        return OpPin();
      case Op::kCheckPin:
        return OpCheckPin();
      case Op::kFork:
        return OpFork();
      case Op::kCreate:
        return OpCreate();
      case Op::kTerminate:
        return OpTerminate();
    }
    return KERN_FAILURE;
  }

  // --- random arguments ---

  std::uint64_t page_size() const { return config_.page_size; }

  // Mostly a live task; now and then any task, terminated ones included.
  std::size_t PickTask() {
    std::vector<std::size_t> live;
    for (std::size_t t = 0; t < tasks_.size(); ++t) {
      if (model_->alive(t)) live.push_back(t);
    }
    if (live.empty() || rng_.Percent(3)) return rng_.Below(tasks_.size());
    return live[rng_.Below(live.size())];
  }

  vm_address_t RandomAddress() {
    const std::uint64_t r = rng_.Below(100);
    vm_address_t address;
    if (r < 80) {
      address = rng_.Below(kWindowPages) * page_size();
    } else if (r < 88) {
      address = limit_ - rng_.Below(12) * page_size();  // the top edge
    } else if (r < 91) {
      address = limit_ + rng_.Below(4) * page_size();  // past it
    } else if (r < 95) {
      address = 0 - (1 + rng_.Below(8)) * page_size();  // near 2^64
    } else {
      address = rng_.Next();
    }
    if (rng_.Percent(8)) address += 1 + rng_.Below(page_size() - 1);
    return address;
  }

  vm_size_t RandomSize() {
    const std::uint64_t r = rng_.Below(100);
    vm_size_t size;
    if (r < 86) {
      size = rng_.Below(kMaxOpPages + 1) * page_size();
    } else if (r < 91) {
      size = rng_.Below(kWindowPages + 1) * page_size();
    } else if (r < 95) {
      size = 0 - rng_.Below(8) * page_size();  // wraps any address
    } else if (r < 97) {
      // The whole space, give or take a page: rarely fits, costly when it does.
      size = limit_ + page_size() - rng_.Below(3) * page_size();
    } else {
      size = rng_.Next();
    }
    if (rng_.Percent(8)) size += 1 + rng_.Below(page_size() - 1);
    return size;
  }

  // Random arguments fail most calls early, so a good share of calls aim at
  // allocated pages whose protection includes `needed`, to get past the
  // checks and change state, and some at any allocated pages, to meet
  // protection failures.
  void PickRange(std::size_t t, vm_prot_t needed, vm_address_t* address,
                 vm_size_t* size) {
    const std::uint64_t r = rng_.Below(100);
    const auto runs = model_->Runs(t, r < 15 ? VM_PROT_NONE : needed);
    if (runs.empty() || r >= 55) {
      *address = RandomAddress();
      *size = RandomSize();
      return;
    }
    const auto [first, end] = runs[rng_.Below(runs.size())];
    const std::uint64_t page = first + rng_.Below(end - first);
    *address = page * page_size();
    *size = (1 + rng_.Below(std::min(end - page, kMaxOpPages))) * page_size();
  }

  // The start of a hole in t, or a random address.
  vm_address_t PickHole(std::size_t t) {
    vm_address_t hole = RandomAddress();
    if (model_->alive(t) && rng_.Percent(50)) {
      model_->FindHole(t, rng_.Below(kWindowPages) * page_size(), &hole);
    }
    return hole;
  }

  vm_prot_t RandomProt() {
    if (rng_.Percent(5)) {
      return static_cast<vm_prot_t>(rng_.Below(8) | (8u << rng_.Below(29)));
    }
    // Readable and writable most often, so reads and writes keep working.
    static constexpr vm_prot_t kProts[] = {3, 3, 3, 7, 7, 1, 5, 0, 2, 4, 6};
    return kProts[rng_.Below(std::size(kProts))];
  }

  vm_inherit_t RandomInheritance() {
    const std::uint64_t r = rng_.Below(100);
    if (r < 45) return VM_INHERIT_SHARE;
    if (r < 80) return VM_INHERIT_COPY;
    if (r < 95) return VM_INHERIT_NONE;
    return static_cast<vm_inherit_t>(3 + rng_.Below(0xfffffff0));
  }

  std::string RandomName() {
    const std::uint64_t r = rng_.Below(100);
    if (r < 6 && !tasks_.empty()) {
      return model_->name(rng_.Below(tasks_.size()));  // live or freed
    }
    if (r < 10) {
      static const std::string kBad[] = {
          "",       ".hidden",        "a/b",
          "sp ace", "host_page_size", std::string(65, 'n')};
      return kBad[rng_.Below(std::size(kBad))];
    }
    return "t" + std::to_string(next_name_++);
  }

  Bytes RandomBytes(std::uint64_t size) {
    Bytes bytes(size);
    for (std::uint64_t i = 0; i < size; i += 8) {
      const std::uint64_t word = rng_.Next();
      std::memcpy(bytes.data() + i, &word,
                  std::min<std::uint64_t>(8, size - i));
    }
    return bytes;
  }

  // A buffer for writes too large to fill randomly: zeros, as large as the
  // whole address space, so that a write the model says must fail cannot
  // read past it if the core lets it through.
  const std::uint8_t* BigZeros() {
    if (big_zeros_.size() < limit_) big_zeros_.assign(limit_, 0);
    return big_zeros_.data();
  }

  std::string TaskName(std::size_t t) const {
    return model_->name(t) + (model_->alive(t) ? "" : "(terminated)");
  }

  // --- the ops: each describes itself, calls the core and the model, and
  // compares ---

  // Called before each call into the core, for the crash note.
  void Begin(const std::string& op) {
    CrashNotes::Set("seed=" + std::to_string(seed_) + " " + config_.label +
                    ", episode " + std::to_string(episode_) + ", op #" +
                    std::to_string(episode_op_) + ": " + op);
  }

  KernReturn OpAllocate(bool anywhere) {
    const std::size_t t = PickTask();
    const vm_address_t address = anywhere ? RandomAddress() : PickHole(t);
    const vm_size_t size = RandomSize();
    const std::string op = "vm_allocate(" + TaskName(t) + ", " + Hex(address) +
                           ", " + Hex(size) +
                           (anywhere ? ", anywhere)" : ", fixed)");
    Begin(op);
    vm_address_t core_address = address;
    vm_address_t model_address = address;
    const KernReturn core =
        vm_allocate(*tasks_[t], &core_address, size, anywhere);
    const KernReturn model =
        model_->Allocate(t, &model_address, size, anywhere);
    if (SameCode(op, core, model) && core == KERN_SUCCESS &&
        core_address != model_address) {
      Diverge(op, "address: core " + Hex(core_address) + ", model " +
                      Hex(model_address));
    }
    CompareRegions(op, t);
    return core;
  }

  KernReturn OpDeallocate() {
    const std::size_t t = PickTask();
    vm_address_t address;
    vm_size_t size;
    PickRange(t, VM_PROT_NONE, &address, &size);
    const std::string op = "vm_deallocate(" + TaskName(t) + ", " +
                           Hex(address) + ", " + Hex(size) + ")";
    Begin(op);
    const KernReturn core = vm_deallocate(*tasks_[t], address, size);
    SameCode(op, core, model_->Deallocate(t, address, size));
    CompareRegions(op, t);
    return core;
  }

  KernReturn OpProtect() {
    const std::size_t t = PickTask();
    vm_address_t address;
    vm_size_t size;
    PickRange(t, VM_PROT_NONE, &address, &size);
    const bool set_maximum = rng_.Percent(20);
    const vm_prot_t prot = RandomProt();
    const std::string op = "vm_protect(" + TaskName(t) + ", " + Hex(address) +
                           ", " + Hex(size) + (set_maximum ? ", max " : ", ") +
                           ProtName(prot) + ")";
    Begin(op);
    const KernReturn core =
        vm_protect(*tasks_[t], address, size, set_maximum, prot);
    SameCode(op, core, model_->Protect(t, address, size, set_maximum, prot));
    CompareRegions(op, t);
    return core;
  }

  KernReturn OpInherit() {
    const std::size_t t = PickTask();
    vm_address_t address;
    vm_size_t size;
    PickRange(t, VM_PROT_NONE, &address, &size);
    const vm_inherit_t inheritance = RandomInheritance();
    const std::string op = "vm_inherit(" + TaskName(t) + ", " + Hex(address) +
                           ", " + Hex(size) + ", " + InheritName(inheritance) +
                           ")";
    Begin(op);
    const KernReturn core = vm_inherit(*tasks_[t], address, size, inheritance);
    SameCode(op, core, model_->Inherit(t, address, size, inheritance));
    CompareRegions(op, t);
    return core;
  }

  KernReturn OpRead() {
    const std::size_t t = PickTask();
    vm_address_t address;
    vm_size_t size;
    PickRange(t, VM_PROT_READ, &address, &size);
    return ReadAndCompare(t, address, size);
  }

  KernReturn ReadAndCompare(std::size_t t, vm_address_t address,
                            vm_size_t size) {
    const bool buffered = size <= kMaxBufferPages * page_size();
    const std::string op = "vm_read(" + TaskName(t) + ", " + Hex(address) +
                           ", " + Hex(size) + ")" +
                           (buffered ? "" : " (pinned variant)");
    Begin(op);
    Bytes core_bytes;
    KernReturn core;
    if (buffered) {
      // Poisoned, so bytes the core fails to fill cannot pass for zeros.
      core_bytes.assign(size, 0xa5);
      core =
          vm_read(*tasks_[t], address,
                  std::as_writable_bytes(std::span(core_bytes.data(), size)));
    } else {
      PinnedPages pinned;
      core = vm_read_pinned(*tasks_[t], address, size, &pinned);
      core_bytes.resize(pinned.size());
      pinned.CopyTo(core_bytes.data());
    }
    Bytes model_bytes;
    const KernReturn model = model_->Read(t, address, size, &model_bytes);
    if (SameCode(op, core, model) && core == KERN_SUCCESS) {
      CompareBytes(op, core_bytes, model_bytes);
    }
    return core;
  }

  KernReturn OpWrite() {
    const std::size_t t = PickTask();
    vm_address_t address;
    vm_size_t size;
    PickRange(t, VM_PROT_WRITE, &address, &size);
    Bytes random;
    const std::uint8_t* data;
    if (size <= kMaxBufferPages * page_size()) {
      random = RandomBytes(size);
      data = random.data();
    } else {
      data = BigZeros();
    }
    const std::string op = "vm_write(" + TaskName(t) + ", " + Hex(address) +
                           ", " + Hex(size) + ")";
    Begin(op);
    const KernReturn core = vm_write(*tasks_[t], address, data, size);
    SameCode(op, core, model_->Write(t, address, data, size));
    return core;
  }

  KernReturn OpFill() {
    const std::size_t t = PickTask();
    vm_address_t address;
    vm_size_t size;
    PickRange(t, VM_PROT_NONE, &address, &size);
    // Unaligned on purpose, often within one page.
    if (rng_.Percent(50)) address += rng_.Below(page_size());
    if (rng_.Percent(50)) size = rng_.Below(2 * page_size());
    const auto byte = static_cast<std::uint8_t>(1 + rng_.Below(255));
    const std::string op = "vm_fill(" + TaskName(t) + ", " + Hex(address) +
                           ", " + Hex(size) + ", " + Hex(byte) + ")";
    Begin(op);
    const KernReturn core = vm_fill(*tasks_[t], address, size, byte);
    SameCode(op, core, model_->Fill(t, address, size, byte));
    return core;
  }

  KernReturn OpCopy() {
    const std::size_t t = PickTask();
    vm_address_t source;
    vm_size_t size;
    PickRange(t, VM_PROT_READ, &source, &size);
    vm_address_t dest;
    if (rng_.Percent(35)) {
      // Overlapping often: a few pages either side.
      dest = source + rng_.Below(2 * kMaxOpPages + 1) * page_size() -
             kMaxOpPages * page_size();
    } else {
      vm_size_t unused;
      PickRange(t, VM_PROT_WRITE, &dest, &unused);
    }
    const std::string op = "vm_copy(" + TaskName(t) + ", " + Hex(source) +
                           ", " + Hex(size) + ", " + Hex(dest) + ")";
    Begin(op);
    const KernReturn core = vm_copy(*tasks_[t], source, size, dest);
    SameCode(op, core, model_->Copy(t, source, size, dest));
    return core;
  }

  KernReturn OpMapCopy() {
    const std::size_t dst = PickTask();
    const std::size_t src = rng_.Percent(25) ? dst : PickTask();
    vm_address_t source;
    vm_size_t size;
    PickRange(src, VM_PROT_READ, &source, &size);
    const bool dst_alloc = rng_.Percent(40);
    const bool src_destroy = rng_.Percent(30);
    vm_address_t dest;
    if (dst_alloc) {
      dest = PickHole(dst);
    } else {
      vm_size_t unused;
      PickRange(dst, VM_PROT_WRITE, &dest, &unused);
    }
    const std::string op = "vm_map_copy(dst " + TaskName(dst) + " at " +
                           Hex(dest) + ", src " + TaskName(src) + " at " +
                           Hex(source) + ", " + Hex(size) +
                           (dst_alloc ? ", dst_alloc" : "") +
                           (src_destroy ? ", src_destroy" : "") + ")";
    Begin(op);
    const KernReturn core = vm_map_copy(*tasks_[dst], dest, *tasks_[src],
                                        source, size, dst_alloc, src_destroy);
    SameCode(
        op, core,
        model_->MapCopy(dst, dest, src, source, size, dst_alloc, src_destroy));
    CompareRegions(op, dst);
    CompareRegions(op, src);
    return core;
  }

  KernReturn OpRegion() {
    const std::size_t t = PickTask();
    const vm_address_t address = RandomAddress();
    const std::string op =
        "vm_region(" + TaskName(t) + ", " + Hex(address) + ")";
    Begin(op);
    vm_address_t core_address = address;
    vm_address_t model_address = address;
    RegionInfo core_info;
    RegionInfo model_info;
    const KernReturn core = vm_region(*tasks_[t], &core_address, &core_info);
    const KernReturn model = model_->Region(t, &model_address, &model_info);
    if (SameCode(op, core, model) && core == KERN_SUCCESS &&
        (core_address != model_address || !(core_info == model_info))) {
      Diverge(op, "core " + Hex(core_address) + " " + RegionsText({core_info}) +
                      ", model " + Hex(model_address) + " " +
                      RegionsText({model_info}));
    }
    return core;
  }

  KernReturn OpFind(bool hole) {
    const std::size_t t = PickTask();
    const vm_address_t from = RandomAddress();
    const std::string op =
        std::string(hole ? "vm_find_hole(" : "vm_find_data(") + TaskName(t) +
        ", " + Hex(from) + ")";
    Begin(op);
    vm_address_t core_found = 0;
    vm_address_t model_found = 0;
    const KernReturn core =
        hole ? Take(vm_find_hole(*tasks_[t], from), &core_found)
             : Take(vm_find_data(*tasks_[t], from), &core_found);
    const KernReturn model = hole ? model_->FindHole(t, from, &model_found)
                                  : model_->FindData(t, from, &model_found);
    if (SameCode(op, core, model) && core == KERN_SUCCESS &&
        core_found != model_found) {
      Diverge(op,
              "found: core " + Hex(core_found) + ", model " + Hex(model_found));
    }
    return core;
  }

  KernReturn OpPin() {
    const std::size_t pin = rng_.Below(kPinSlots);
    const std::size_t t = PickTask();
    vm_address_t address;
    vm_size_t size;
    PickRange(t, VM_PROT_READ, &address, &size);
    const std::string op = "vm_read(" + TaskName(t) + ", " + Hex(address) +
                           ", " + Hex(size) + ") pinned into slot " +
                           std::to_string(pin);
    Begin(op);
    const KernReturn core =
        vm_read_pinned(*tasks_[t], address, size, &pins_[pin]);
    if (SameCode(op, core, model_->ReadPinned(t, address, size, pin))) {
      ComparePin(op, pin);
    }
    return core;
  }

  // Checks that a pinned read still shows the bytes of its moment, then
  // sometimes lets it go.
  KernReturn OpCheckPin() {
    const std::size_t pin = rng_.Below(kPinSlots);
    const bool release = rng_.Percent(50);
    const std::string op = "check pin slot " + std::to_string(pin) +
                           (release ? ", then release it" : "");
    Begin(op);
    ComparePin(op, pin);
    if (release) {
      pins_[pin].Release();
      model_->Unpin(pin);
    }
    return KERN_SUCCESS;
  }

  void ComparePin(const std::string& op, std::size_t pin) {
    Bytes core(pins_[pin].size());
    pins_[pin].CopyTo(core.data());
    CompareBytes(op, core, model_->PinnedBytes(pin));
  }

  KernReturn OpFork() {
    const std::size_t parent = PickTask();
    const std::string name = RandomName();
    const std::string op =
        "task_fork(" + TaskName(parent) + ", \"" + name + "\")";
    Begin(op);
    std::shared_ptr<Task> child;
    const KernReturn core =
        Take(task_fork(*system_, *tasks_[parent], name), &child);
    if (SameCode(op, core, model_->Fork(parent, name)) &&
        core == KERN_SUCCESS) {
      tasks_.push_back(std::move(child));
      CompareRegions(op, tasks_.size() - 1);
    }
    return core;
  }

  KernReturn OpCreate() { return CreateTask(RandomName()); }

  KernReturn CreateTask(const std::string& name) {
    const std::string op = "task_create(\"" + name + "\")";
    Begin(op);
    std::shared_ptr<Task> task;
    const KernReturn core = Take(task_create(*system_, name), &task);
    if (SameCode(op, core, model_->Create(name)) && core == KERN_SUCCESS) {
      tasks_.push_back(std::move(task));
    }
    return core;
  }

  KernReturn OpTerminate() {
    const std::size_t t = PickTask();
    // Keep one task alive so that the episode goes on doing something.
    if (model_->alive(t) && model_->LiveCount() < 2) return CheckTask(t);
    const std::string op = "task_terminate(" + TaskName(t) + ")";
    Begin(op);
    const KernReturn core = task_terminate(*system_, *tasks_[t]);
    SameCode(op, core, model_->Terminate(t));
    return core;
  }

  // --- whole-state checks ---

  // Compared after every call that may change the map, so that a divergence
  // shows at the call that caused it rather than at the next full check.
  void CompareRegions(const std::string& op, std::size_t t) {
    if (diverged_) return;
    std::vector<RegionInfo> core_regions;
    std::vector<RegionInfo> model_regions;
    const KernReturn core = Take(vm_region_list(*tasks_[t]), &core_regions);
    const KernReturn model = model_->RegionList(t, &model_regions);
    if (core != model || core_regions != model_regions) {
      Diverge(op, "afterwards vm_region_list(" + TaskName(t) + ") gives\n" +
                      "  core " + std::string(KernReturnName(core)) + " " +
                      RegionsText(core_regions) + "\n  model " +
                      std::string(KernReturnName(model)) + " " +
                      RegionsText(model_regions));
    }
  }

  // vm_region_list and task_statistics of task t.
  KernReturn CheckTask(std::size_t t) {
    const std::string op = "vm_region_list(" + TaskName(t) + ")";
    Begin(op);
    std::vector<RegionInfo> core_regions;
    std::vector<RegionInfo> model_regions;
    const KernReturn core = Take(vm_region_list(*tasks_[t]), &core_regions);
    const KernReturn model = model_->RegionList(t, &model_regions);
    if (!SameCode(op, core, model)) return core;
    if (core == KERN_SUCCESS && core_regions != model_regions) {
      Diverge(op, "core " + RegionsText(core_regions) + "\n  model " +
                      RegionsText(model_regions));
      return core;
    }
    const std::string stats_op = "task_statistics(" + TaskName(t) + ")";
    Begin(stats_op);
    TaskStatistics core_stats;
    TaskStatistics model_stats;
    const KernReturn core_kr = Take(task_statistics(*tasks_[t]), &core_stats);
    const KernReturn model_kr = model_->Statistics(t, &model_stats);
    if (SameCode(stats_op, core_kr, model_kr) && core_kr == KERN_SUCCESS &&
        !SameStats(core_stats, model_stats)) {
      Diverge(stats_op, "core " + StatsText(core_stats) + ", model " +
                            StatsText(model_stats));
    }
    return core;
  }

  void CheckEverything() {
    for (std::size_t t = 0; t < tasks_.size() && !diverged_; ++t) {
      CheckTask(t);
    }
    if (diverged_) return;
    const std::uint64_t core_live = system_->pages().live_pages();
    const std::uint64_t model_live = model_->LivePages();
    if (core_live != model_live) {
      Diverge("live pages of the system", "core " + std::to_string(core_live) +
                                              ", model " +
                                              std::to_string(model_live));
    }
  }

  // The readable bytes of every live task, and every pin. Unless
  // `everything`, only in the window and at the top edge, where nearly all
  // calls land: a rare huge allocation would otherwise make each check read
  // the whole address space.
  void CheckContents(bool everything) {
    const std::uint64_t total_pages = limit_ / page_size();
    for (std::size_t t = 0; t < tasks_.size() && !diverged_; ++t) {
      for (const auto& [first, end] : model_->Runs(t, VM_PROT_READ)) {
        for (std::uint64_t page = first; page < end && !diverged_;
             page += kMaxBufferPages) {
          if (!everything && page >= 2 * kWindowPages &&
              page < total_pages - kWindowPages) {
            continue;
          }
          const std::uint64_t count = std::min(kMaxBufferPages, end - page);
          ReadAndCompare(t, page * page_size(), count * page_size());
        }
      }
    }
    for (std::size_t pin = 0; pin < kPinSlots && !diverged_; ++pin) {
      ComparePin("final check of pin slot " + std::to_string(pin), pin);
    }
  }

  // --- comparison and reporting ---

  bool SameCode(const std::string& op, KernReturn core, KernReturn model) {
    recent_.push_back(op + " -> " + std::string(KernReturnName(core)));
    if (recent_.size() > kRecentOps) recent_.pop_front();
    if (core == model) return true;
    Diverge(op, "result: core " + std::string(KernReturnName(core)) +
                    ", model " + std::string(KernReturnName(model)));
    return false;
  }

  void CompareBytes(const std::string& op, const Bytes& core,
                    const Bytes& model) {
    if (core.size() != model.size()) {
      Diverge(op, "bytes read: core " + Hex(core.size()) + ", model " +
                      Hex(model.size()));
      return;
    }
    if (core.empty() ||
        std::memcmp(core.data(), model.data(), core.size()) == 0) {
      return;
    }
    auto [c, m] = std::mismatch(core.begin(), core.end(), model.begin());
    const auto offset = static_cast<std::uint64_t>(c - core.begin());
    Diverge(op, "byte at offset " + Hex(offset) + " (page " +
                    std::to_string(offset / page_size()) +
                    " of the range): core " + Hex(*c) + ", model " + Hex(*m));
  }

  void Diverge(const std::string& op, const std::string& detail) {
    if (diverged_) return;
    diverged_ = true;
    std::ostringstream message;
    message << "core and model diverge: seed=" << seed_
            << " (TASKFS_SEED=" << seed_ << " replays it), " << config_.label
            << ", episode " << episode_ << ", op #" << episode_op_
            << " of the episode (#" << ops_run_ << " of the test)\n"
            << "  op: " << op << "\n  " << detail << "\n"
            << "  config: page_size=" << vm_config_.page_size
            << " address_bits=" << vm_config_.address_bits
            << " page_limit=" << vm_config_.page_limit
            << " max_tasks=" << vm_config_.max_tasks << "\n"
            << "  last calls of the episode, oldest first:\n";
    for (const std::string& line : recent_) message << "    " << line << "\n";
    ADD_FAILURE() << message.str();
  }

  const RunConfig config_;
  const std::uint64_t seed_;
  Rng rng_;

  VmConfig vm_config_;
  std::uint64_t limit_ = 0;  // 2^address_bits of the episode
  std::unique_ptr<VmSystem> system_;
  std::unique_ptr<Model> model_;
  std::vector<std::shared_ptr<Task>> tasks_;  // numbered as the model's
  std::array<PinnedPages, kPinSlots> pins_;
  Bytes big_zeros_;

  std::uint64_t next_name_ = 0;
  std::uint64_t episode_ = 0;
  std::uint64_t episode_op_ = 0;
  std::uint64_t ops_run_ = 0;
  bool diverged_ = false;
  std::deque<std::string> recent_;
  std::array<std::uint64_t, kOpKindCount> calls_ = {};
  std::array<std::map<KernReturn, std::uint64_t>, kOpKindCount> results_;
};

void RunDifferential(const RunConfig& config) {
  const std::uint64_t seed = RunSeed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  // Flushed at once: a crash in the core would lose buffered output.
  std::printf("[ differential ] %s: seed=%" PRIu64 " (TASKFS_SEED=%" PRIu64
              " replays it)\n",
              config.label, seed, seed);
  std::fflush(stdout);
  CrashNotes crash_notes;
  DifferentialRun run(config, seed);
  run.Run();
  EXPECT_GE(run.ops_run(), config.ops);
}

// The three tests together run 150,000 calls.

TEST(VmDifferentialTest, SmallPagesWithoutLimit) {
  RunDifferential({"4 KiB pages, 24-bit space, no memory limit", 4096, 24,
                   false, 60000, 0x5ba11});
}

TEST(VmDifferentialTest, SmallPagesUnderAMemoryLimit) {
  RunDifferential({"4 KiB pages, 24-bit space, memory limit", 4096, 24, true,
                   60000, 0x11417});
}

TEST(VmDifferentialTest, LargePages) {
  RunDifferential({"16 KiB pages, 24-bit space, memory limit", 16384, 24, true,
                   30000, 0x1a26e});
}

}  // namespace
}  // namespace taskfs::vm
