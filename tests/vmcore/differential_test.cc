// Seeded randomized differential test of the Mach facade (vm_user.h).
//
// The reference model (reference_model.h) runs every call next to the core:
// one std::map entry per allocated page holding that page's attributes and
// bytes, and each call of docs/reference.md §1, §2 and §6 written as a walk
// over pages in ascending order. Where the two agree on every result code,
// every byte read, every region list and every statistic, none of the core's
// cleverness has changed what a caller sees.
//
// Every run is determined by one seed, printed at the start and with every
// failure: TASKFS_SEED=<seed> replays a run exactly. Without it the seed comes
// from std::random_device, so each run explores new sequences.
#include <gtest/gtest.h>
#include <sys/uio.h>
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
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/vmcore/random_ops.h"
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

using random_ops::kChunkPages;  // a radix leaf
using random_ops::kLevelPages;  // the level above
using random_ops::kMaxBufferPages;
using random_ops::kPinSlots;
using random_ops::Rng;
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

using Op = random_ops::VmOp;

struct OpKind {
  Op op;
  std::uint64_t weight;
  const char* name;
};

// vm_remap: a call of the random mix here only, past VmOp's calls, so that
// the fuzz input's opcodes keep their meaning.
constexpr Op kRemap = static_cast<Op>(random_ops::kVmOpCount);

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
    {kRemap, 6, "vm_remap"},
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
  DifferentialRun(const RunConfig& config, std::uint64_t seed,
                  Flavor flavor = Flavor::kClassic)
      : config_(config),
        flavor_(flavor),
        seed_(seed),
        rng_(seed ^ config.salt) {}
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
    vm.flavor = flavor_;
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
    if (op == kRemap) return OpRemap();
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

  random_ops::OperandSpace space() const { return {page_size(), limit_}; }

  vm_address_t RandomAddress() {
    return random_ops::RandomAddress(rng_, space(), kWindowPages);
  }

  vm_size_t RandomSize() {
    return random_ops::RandomSize(rng_, space(), kMaxOpPages, kWindowPages);
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
    // The XNU flavor takes any byte range: most of these ranges start and
    // end inside a page.
    if (flavor_ == Flavor::kXnu && rng_.Percent(70)) {
      const std::uint64_t front = rng_.Below(page_size());
      *address += front;
      *size -= front + rng_.Below(*size - front);
    }
  }

  // The start of a hole in t, or a random address.
  vm_address_t PickHole(std::size_t t) {
    vm_address_t hole = RandomAddress();
    if (model_->alive(t) && rng_.Percent(50)) {
      model_->FindHole(t, rng_.Below(kWindowPages) * page_size(), &hole);
    }
    return hole;
  }

  vm_prot_t RandomProt() { return random_ops::RandomProt(rng_); }

  vm_inherit_t RandomInheritance() {
    return random_ops::RandomInheritance(rng_);
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
    // Kept between calls: the checks read thousands of ranges, and a fresh
    // buffer for each costs more than the read.
    Bytes& core_bytes = core_bytes_;
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
    Bytes& model_bytes = model_bytes_;
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

  // Share and copy, within one task or across two, fixed or anywhere: the
  // model maps the source's pages (share) or copies of them (copy), and the
  // checks that follow compare what writes through either side show.
  KernReturn OpRemap() {
    const std::size_t dst = PickTask();
    const std::size_t src = rng_.Percent(30) ? dst : PickTask();
    vm_address_t source;
    vm_size_t size;
    PickRange(src, VM_PROT_NONE, &source, &size);
    const bool anywhere = rng_.Percent(40);
    const bool copy = rng_.Percent(50);
    const vm_address_t target = anywhere ? RandomAddress() : PickHole(dst);
    const vm_inherit_t inheritance = RandomInheritance();
    const std::string op = "vm_remap(dst " + TaskName(dst) + " at " +
                           (anywhere ? std::string("anywhere") : Hex(target)) +
                           ", src " + TaskName(src) + " at " + Hex(source) +
                           ", " + Hex(size) + (copy ? ", copy" : ", share") +
                           ", " + InheritName(inheritance) + ")";
    Begin(op);
    vm_address_t core_target = target, model_target = target;
    vm_prot_t core_cur = 0, core_max = 0, model_cur = 0, model_max = 0;
    const KernReturn core =
        vm_remap(*tasks_[dst], &core_target, size, anywhere, *tasks_[src],
                 source, copy, &core_cur, &core_max, inheritance);
    const KernReturn model =
        model_->Remap(dst, &model_target, size, anywhere, src, source, copy,
                      &model_cur, &model_max, inheritance);
    if (SameCode(op, core, model) && core == KERN_SUCCESS &&
        (core_target != model_target || core_cur != model_cur ||
         core_max != model_max)) {
      Diverge(op, "core at " + Hex(core_target) + " " + ProtName(core_cur) +
                      "/" + ProtName(core_max) + ", model at " +
                      Hex(model_target) + " " + ProtName(model_cur) + "/" +
                      ProtName(model_max));
    }
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
            << " max_tasks=" << vm_config_.max_tasks
            << " flavor=" << FlavorName(vm_config_.flavor) << "\n"
            << "  last calls of the episode, oldest first:\n";
    for (const std::string& line : recent_) message << "    " << line << "\n";
    ADD_FAILURE() << message.str();
  }

  const RunConfig config_;
  const Flavor flavor_;
  const std::uint64_t seed_;
  Rng rng_;

  VmConfig vm_config_;
  std::uint64_t limit_ = 0;  // 2^address_bits of the episode
  std::unique_ptr<VmSystem> system_;
  std::unique_ptr<Model> model_;
  std::vector<std::shared_ptr<Task>> tasks_;  // numbered as the model's
  std::array<PinnedPages, kPinSlots> pins_;
  Bytes big_zeros_;
  Bytes core_bytes_;
  Bytes model_bytes_;

  std::uint64_t next_name_ = 0;
  std::uint64_t episode_ = 0;
  std::uint64_t episode_op_ = 0;
  std::uint64_t ops_run_ = 0;
  bool diverged_ = false;
  std::deque<std::string> recent_;
  std::array<std::uint64_t, kOpKindCount> calls_ = {};
  std::array<std::map<KernReturn, std::uint64_t>, kOpKindCount> results_;
};

void RunDifferential(const RunConfig& config,
                     Flavor flavor = Flavor::kClassic) {
  const std::uint64_t seed = RunSeed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  // Flushed at once: a crash in the core would lose buffered output.
  std::printf("[ differential ] %s: seed=%" PRIu64 " (TASKFS_SEED=%" PRIu64
              " replays it)\n",
              config.label, seed, seed);
  std::fflush(stdout);
  CrashNotes crash_notes;
  DifferentialRun run(config, seed, flavor);
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

// The XNU flavor: vm_read, vm_write and vm_copy of byte ranges, against the
// model's byte-range rules.
TEST(VmDifferentialTest, XnuFlavorByteRanges) {
  RunDifferential({"XNU flavor, 4 KiB pages, 24-bit space, memory limit", 4096,
                   24, true, 60000, 0x8e0},
                  Flavor::kXnu);
}

TEST(VmDifferentialTest, LargePages) {
  RunDifferential({"16 KiB pages, 24-bit space, memory limit", 16384, 24, true,
                   30000, 0x1a26e});
}

// --- copy- and fork-heavy sequences ------------------------------------------
//
// The random calls above land in a 64-page window, so their copies are a few
// pages long and their chains of copies a few deep. The sequences below aim
// at what a page table that shares its subtrees between copies must get
// right: chains of a thousand nested copies and forks, copies onto ranges
// that hold copies and onto their own source, writes on both sides
// afterwards, frees and terminations in the middle of a chain, ranges that
// cross or exactly cover a 512-page chunk (a 512-way radix node) or the
// 262,144 pages of the level above, and regions of a GiB with a few pages
// written. After every step they compare every task's regions and
// statistics, the system's live pages, the memory the budget holds beyond
// the pages against what the tasks' metadata_bytes account for, and the
// bytes of sampled pages (both sides of the step's copy, recent writes,
// random ones); every so often, and at the end, every readable byte; and
// once every task is gone, that nothing is held.

// Reads of whole ranges are cut into pieces of at most this many bytes.
constexpr std::uint64_t kPieceBytes = 16 << 20;
constexpr std::size_t kRecentWrites = 32;

// A page of a task, by number (address / page size).
struct PageRef {
  std::size_t task;
  std::uint64_t page;
};

// The core and the model side by side for sequences its caller builds, one
// call at a time. Each call compares the two result codes; Check compares
// the whole state and sampled pages. The first divergence is reported
// (ADD_FAILURE, with the seed and the calls that led to it) and makes
// diverged() true, which ends the caller's sequence. Addresses and sizes are
// in pages.
class PairedVm {
 public:
  PairedVm(std::string label, const VmConfig& config, std::uint64_t seed)
      : label_(std::move(label)),
        config_(config),
        seed_(seed),
        rng_(seed ^ 0x9a1d),
        system_(std::make_unique<VmSystem>(config)),
        model_(std::make_unique<Model>(config, 0)),
        zeros_(config.page_size, 0) {
    start_held_ = Held();
  }
  // The tasks go before the system whose budget they are charged to.
  ~PairedVm() {
    tasks_.clear();
    model_.reset();
    system_.reset();
  }
  PairedVm(const PairedVm&) = delete;
  PairedVm& operator=(const PairedVm&) = delete;

  bool diverged() const { return diverged_; }
  std::uint64_t page_size() const { return config_.page_size; }
  const Model& model() const { return *model_; }
  std::size_t task_count() const { return tasks_.size(); }
  // How many tasks there were when CheckReleased let them go.
  std::size_t released_tasks() const { return released_tasks_; }
  bool alive(std::size_t t) const { return model_->alive(t); }
  std::size_t LiveCount() const { return model_->LiveCount(); }
  std::vector<std::size_t> Live() const {
    std::vector<std::size_t> live;
    for (std::size_t t = 0; t < tasks_.size(); ++t) {
      if (alive(t)) live.push_back(t);
    }
    return live;
  }
  std::uint64_t calls() const { return calls_; }

  // --- calls: each returns the core's code once it is compared ---

  // On success the new task is number task_count() - 1.
  KernReturn Create(const std::string& name) {
    const std::string op = "task_create(\"" + name + "\")";
    Begin(op);
    std::shared_ptr<Task> task;
    const KernReturn core = Take(task_create(*system_, name), &task);
    if (SameCode(op, core, model_->Create(name)) && core == KERN_SUCCESS) {
      tasks_.push_back(std::move(task));
      changed_.push_back(true);
    }
    return core;
  }

  // On success the child is number task_count() - 1.
  KernReturn Fork(std::size_t parent, const std::string& name) {
    const std::string op =
        "task_fork(" + TaskName(parent) + ", \"" + name + "\")";
    Begin(op);
    std::shared_ptr<Task> child;
    const KernReturn core =
        Take(task_fork(*system_, *tasks_[parent], name), &child);
    if (SameCode(op, core, model_->Fork(parent, name)) &&
        core == KERN_SUCCESS) {
      tasks_.push_back(std::move(child));
      changed_.push_back(true);
    }
    return core;
  }

  KernReturn Terminate(std::size_t t) {
    const std::string op = "task_terminate(" + TaskName(t) + ")";
    Begin(op);
    const KernReturn core = task_terminate(*system_, *tasks_[t]);
    SameCode(op, core, model_->Terminate(t));
    changed_[t] = true;
    return core;
  }

  KernReturn Allocate(std::size_t t, std::uint64_t page, std::uint64_t pages) {
    const std::string op =
        "vm_allocate(" + TaskName(t) + ", " + Range(page, pages) + ", fixed)";
    Begin(op);
    vm_address_t core_address = page * page_size();
    vm_address_t model_address = core_address;
    const KernReturn core =
        vm_allocate(*tasks_[t], &core_address, pages * page_size(), false);
    SameCode(op, core,
             model_->Allocate(t, &model_address, pages * page_size(), false));
    changed_[t] = true;
    return core;
  }

  KernReturn Deallocate(std::size_t t, std::uint64_t page,
                        std::uint64_t pages) {
    const std::string op =
        "vm_deallocate(" + TaskName(t) + ", " + Range(page, pages) + ")";
    Begin(op);
    const KernReturn core =
        vm_deallocate(*tasks_[t], page * page_size(), pages * page_size());
    SameCode(op, core,
             model_->Deallocate(t, page * page_size(), pages * page_size()));
    changed_[t] = true;
    return core;
  }

  KernReturn Protect(std::size_t t, std::uint64_t page, std::uint64_t pages,
                     vm_prot_t prot) {
    const std::string op = "vm_protect(" + TaskName(t) + ", " +
                           Range(page, pages) + ", " + ProtName(prot) + ")";
    Begin(op);
    const KernReturn core = vm_protect(*tasks_[t], page * page_size(),
                                       pages * page_size(), false, prot);
    SameCode(op, core,
             model_->Protect(t, page * page_size(), pages * page_size(), false,
                             prot));
    changed_[t] = true;
    return core;
  }

  KernReturn Inherit(std::size_t t, std::uint64_t page, std::uint64_t pages,
                     vm_inherit_t inheritance) {
    const std::string op = "vm_inherit(" + TaskName(t) + ", " +
                           Range(page, pages) + ", " +
                           InheritName(inheritance) + ")";
    Begin(op);
    const KernReturn core = vm_inherit(*tasks_[t], page * page_size(),
                                       pages * page_size(), inheritance);
    SameCode(op, core,
             model_->Inherit(t, page * page_size(), pages * page_size(),
                             inheritance));
    changed_[t] = true;
    return core;
  }

  // Writes bytes no other write has written to every page of the range;
  // remembers the pages for later samples.
  KernReturn Write(std::size_t t, std::uint64_t page, std::uint64_t pages) {
    Bytes data(pages * page_size());
    for (std::uint64_t i = 0; i < data.size(); i += 8) {
      const std::uint64_t word = rng_.Next();
      std::memcpy(data.data() + i, &word, 8);
    }
    const std::string op =
        "vm_write(" + TaskName(t) + ", " + Range(page, pages) + ")";
    Begin(op);
    const KernReturn core =
        vm_write(*tasks_[t], page * page_size(), data.data(), data.size());
    SameCode(op, core,
             model_->Write(t, page * page_size(), data.data(), data.size()));
    if (core == KERN_SUCCESS) {
      for (std::uint64_t i = 0; i < pages && i < 4; ++i) {
        recent_writes_[next_write_++ % kRecentWrites] = {t, page + i};
      }
    }
    return core;
  }

  KernReturn Copy(std::size_t t, std::uint64_t source, std::uint64_t pages,
                  std::uint64_t dest) {
    const std::string op = "vm_copy(" + TaskName(t) + ", " +
                           Range(source, pages) + " to " + Hex(dest) + ")";
    Begin(op);
    const KernReturn core = vm_copy(*tasks_[t], source * page_size(),
                                    pages * page_size(), dest * page_size());
    SameCode(op, core,
             model_->Copy(t, source * page_size(), pages * page_size(),
                          dest * page_size()));
    return core;
  }

  KernReturn MapCopy(std::size_t dst_t, std::uint64_t dest, std::size_t src_t,
                     std::uint64_t source, std::uint64_t pages, bool dst_alloc,
                     bool src_destroy) {
    const std::string op = "vm_map_copy(dst " + TaskName(dst_t) + " page " +
                           Hex(dest) + ", src " + TaskName(src_t) + " " +
                           Range(source, pages) +
                           (dst_alloc ? ", dst_alloc" : "") +
                           (src_destroy ? ", src_destroy" : "") + ")";
    Begin(op);
    const KernReturn core = vm_map_copy(
        *tasks_[dst_t], dest * page_size(), *tasks_[src_t],
        source * page_size(), pages * page_size(), dst_alloc, src_destroy);
    SameCode(
        op, core,
        model_->MapCopy(dst_t, dest * page_size(), src_t, source * page_size(),
                        pages * page_size(), dst_alloc, src_destroy));
    changed_[dst_t] = true;
    changed_[src_t] = true;
    return core;
  }

  // Adds a line to the calls shown with a divergence.
  void Note(const std::string& text) { Log("# " + text); }

  // --- checks ---

  // Every task's regions and statistics, the live pages, the budget, and
  // the given pages with a few of the recently written ones.
  void Check(const std::vector<PageRef>& samples) {
    if (diverged_) return;
    CheckTasks();
    for (const PageRef& ref : samples) {
      if (diverged_) return;
      ComparePage(ref);
    }
    for (int i = 0; i < 4 && next_write_ > 0 && !diverged_; ++i) {
      const std::uint64_t n =
          std::min<std::uint64_t>(next_write_, kRecentWrites);
      const PageRef ref =
          recent_writes_[(next_write_ - 1 - (i == 0 ? 0 : rng_.Below(n))) %
                         kRecentWrites];
      ComparePage(ref);
    }
  }

  // Every readable byte of every live task: its written pages byte for
  // byte, every other allocated page as zeros. Read pinned, so that the
  // zeros of a GiB of unwritten memory are not copied first.
  void CheckContents() {
    const std::uint64_t piece_pages = kPieceBytes / page_size();
    PinnedPages pinned;
    for (std::size_t t = 0; t < tasks_.size() && !diverged_; ++t) {
      if (!alive(t)) continue;
      const std::vector<std::uint64_t> written = model_->WrittenPages(t);
      auto next = written.begin();
      for (const auto& [first, end] : model_->Runs(t, VM_PROT_READ)) {
        for (std::uint64_t page = first; page < end && !diverged_;
             page += piece_pages) {
          const std::uint64_t n = std::min(piece_pages, end - page);
          const std::string op = "vm_read(" + TaskName(t) + ", " +
                                 Range(page, n) + ") of every byte";
          Begin(op);
          const KernReturn kr = vm_read_pinned(*tasks_[t], page * page_size(),
                                               n * page_size(), &pinned);
          if (!SameCode(op, kr, KERN_SUCCESS)) return;
          next = std::lower_bound(next, written.end(), page);
          std::uint64_t i = 0;
          for (const iovec& piece : pinned.iov()) {
            const auto* bytes =
                static_cast<const std::uint8_t*>(piece.iov_base);
            for (std::size_t at = 0; at + page_size() <= piece.iov_len;
                 at += page_size(), ++i) {
              const std::uint8_t* got = bytes + at;
              if (next != written.end() && *next == page + i) {
                ++next;
                Bytes want;
                model_->Read(t, (page + i) * page_size(), page_size(), &want);
                if (std::memcmp(got, want.data(), page_size()) != 0) {
                  return DifferentBytes(op, t, page + i, got, want.data());
                }
              } else if (std::memcmp(got, zeros_.data(), page_size()) != 0) {
                return DifferentBytes(op, t, page + i, got, zeros_.data());
              }
            }
          }
          if (i != n || pinned.size() != n * page_size()) {
            return Diverge(op, "the pinned view holds " +
                                   std::to_string(pinned.size()) + " bytes");
          }
          pinned.Release();
        }
      }
    }
  }

  // Terminates every live task; then no page may be live, nothing held but
  // the records of the tasks still referenced, and once those go, nothing.
  void CheckReleased() {
    for (std::size_t t : Live()) {
      if (!diverged_) Terminate(t);
    }
    if (diverged_) return;
    CheckTasks();
    if (diverged_) return;
    std::uint64_t records = 0;
    for (const std::shared_ptr<Task>& task : tasks_) {
      records += task->account().held();
    }
    if (system_->pages().live_pages() != 0 || Held() != start_held_ + records) {
      Diverge("every task terminated",
              "live pages " + std::to_string(system_->pages().live_pages()) +
                  " (want 0), held beyond pages " + std::to_string(Held()) +
                  " (want " + std::to_string(start_held_ + records) +
                  ", the task records)");
      return;
    }
    released_tasks_ = tasks_.size();
    tasks_.clear();
    if (Held() != start_held_) {
      Diverge("every task released", "held beyond pages " +
                                         std::to_string(Held()) + ", want " +
                                         std::to_string(start_held_));
    }
  }

 private:
  // What the budget holds beyond the live pages and the allocator's own
  // memory: the tasks' metadata.
  std::uint64_t Held() const {
    const MemoryBudget& budget = system_->budget();
    return budget.used() + budget.reserve_used() -
           system_->pages().own_bytes() -
           system_->pages().live_pages() * page_size();
  }

  // The region lists of the tasks whose map a call changed since the last
  // check (the others' cannot have changed, and their statistics count their
  // regions), and every task's statistics; a task terminated before the last
  // check only adds its record.
  void CheckTasks() {
    std::uint64_t model_live = 0;
    const auto model_stats = model_->AllStatistics(&model_live);
    std::uint64_t attributed = 0;
    for (std::size_t t = 0; t < tasks_.size() && !diverged_; ++t) {
      if (!alive(t) && !changed_[t]) {
        attributed += tasks_[t]->account().held();
        continue;
      }
      if (changed_[t]) {
        changed_[t] = false;
        const std::string op = "vm_region_list(" + TaskName(t) + ")";
        Begin(op);
        std::vector<RegionInfo> core_regions;
        std::vector<RegionInfo> model_regions;
        const KernReturn core = Take(vm_region_list(*tasks_[t]), &core_regions);
        if (!SameCode(op, core, model_->RegionList(t, &model_regions))) return;
        if (core == KERN_SUCCESS && core_regions != model_regions) {
          Diverge(op, "core " + RegionsText(core_regions) + "\n  model " +
                          RegionsText(model_regions));
          return;
        }
      }
      const std::string stats_op = "task_statistics(" + TaskName(t) + ")";
      Begin(stats_op);
      TaskStatistics stats;
      const KernReturn kr = Take(task_statistics(*tasks_[t]), &stats);
      if (!SameCode(stats_op, kr, model_stats[t].first)) return;
      if (kr != KERN_SUCCESS) {
        attributed += tasks_[t]->account().held();  // its record alone
        continue;
      }
      if (!SameStats(stats, model_stats[t].second)) {
        Diverge(stats_op, "core " + StatsText(stats) + ", model " +
                              StatsText(model_stats[t].second));
        return;
      }
      attributed += stats.metadata_bytes;
    }
    const std::uint64_t core_live = system_->pages().live_pages();
    if (core_live != model_live) {
      Diverge("live pages of the system", "core " + std::to_string(core_live) +
                                              ", model " +
                                              std::to_string(model_live));
      return;
    }
    // Whatever the budget holds beyond the pages is some task's map and
    // page tables (docs/reference.md §7), counted in that task's
    // metadata_bytes. Memory shared by several tasks counts in each of them, so
    // their sum may be more than what is held; with one task alive, whose
    // memory is counted once, it is exactly what is held.
    const std::uint64_t held = Held() - start_held_;
    if (held > attributed || (LiveCount() == 1 && held != attributed)) {
      Diverge("metadata_bytes of the tasks",
              "the budget holds " + std::to_string(held) +
                  " bytes beyond the pages; the tasks' metadata_bytes (and "
                  "the records of terminated ones) add up to " +
                  std::to_string(attributed) + " with " +
                  std::to_string(LiveCount()) + " live");
    }
  }

  void ComparePage(const PageRef& ref) {
    const std::string op = "vm_read(" + TaskName(ref.task) + ", page " +
                           Hex(ref.page) + ") sampled";
    Begin(op);
    Bytes core(page_size(), 0xa5);
    const KernReturn kr =
        vm_read(*tasks_[ref.task], ref.page * page_size(),
                std::as_writable_bytes(std::span(core.data(), core.size())));
    Bytes want;
    if (SameCode(op, kr,
                 model_->Read(ref.task, ref.page * page_size(), page_size(),
                              &want)) &&
        kr == KERN_SUCCESS &&
        std::memcmp(core.data(), want.data(), page_size()) != 0) {
      DifferentBytes(op, ref.task, ref.page, core.data(), want.data());
    }
  }

  void DifferentBytes(const std::string& op, std::size_t t, std::uint64_t page,
                      const std::uint8_t* core, const std::uint8_t* model) {
    const auto [c, m] = std::mismatch(core, core + page_size(), model);
    Diverge(op, "task " + TaskName(t) + " page " + Hex(page) + ", byte " +
                    Hex(static_cast<std::uint64_t>(c - core)) + ": core " +
                    Hex(*c) + ", model " + Hex(*m) +
                    (std::all_of(model, model + page_size(),
                                 [](std::uint8_t b) { return b == 0; })
                         ? " (the model's page is unwritten)"
                         : ""));
  }

  std::string TaskName(std::size_t t) const {
    return model_->name(t) + (model_->alive(t) ? "" : "(terminated)");
  }

  std::string Range(std::uint64_t page, std::uint64_t pages) const {
    return "pages " + Hex(page) + "+" + Hex(pages);
  }

  void Log(const std::string& line) {
    recent_.push_back(line);
    if (recent_.size() > kRecentOps) recent_.pop_front();
  }

  void Begin(const std::string& op) {
    ++calls_;
    CrashNotes::Set("seed=" + std::to_string(seed_) + " " + label_ +
                    ", call #" + std::to_string(calls_) + ": " + op);
  }

  bool SameCode(const std::string& op, KernReturn core, KernReturn model) {
    Log(op + " -> " + std::string(KernReturnName(core)));
    if (core == model) return true;
    Diverge(op, "result: core " + std::string(KernReturnName(core)) +
                    ", model " + std::string(KernReturnName(model)));
    return false;
  }

  void Diverge(const std::string& op, const std::string& detail) {
    if (diverged_) return;
    diverged_ = true;
    std::ostringstream message;
    message << "core and model diverge: seed=" << seed_
            << " (TASKFS_SEED=" << seed_ << " replays it), " << label_
            << ", call #" << calls_ << "\n  op: " << op << "\n  " << detail
            << "\n  config: page_size=" << config_.page_size
            << " address_bits=" << config_.address_bits
            << "\n  last calls, oldest first:\n";
    for (const std::string& line : recent_) message << "    " << line << "\n";
    ADD_FAILURE() << message.str();
  }

  const std::string label_;
  const VmConfig config_;
  const std::uint64_t seed_;
  Rng rng_;  // the bytes of writes and the choice of samples
  std::unique_ptr<VmSystem> system_;
  std::unique_ptr<Model> model_;
  std::vector<std::shared_ptr<Task>> tasks_;  // numbered as the model's
  std::vector<bool> changed_;  // by task: its map changed since the check
  const Bytes zeros_;
  std::uint64_t start_held_ = 0;
  std::array<PageRef, kRecentWrites> recent_writes_{};
  std::uint64_t next_write_ = 0;
  std::uint64_t calls_ = 0;
  std::size_t released_tasks_ = 0;
  bool diverged_ = false;
  std::deque<std::string> recent_;
};

// One range of every task's layout. The slot is made as the last `pages`
// pages of a region of trim + pages pages whose first trim pages are then
// freed, so that the page indexes of its object start at trim rather than
// 0: where its chunks and radix nodes begin is then not where its address
// says.
struct SlotSpec {
  std::uint64_t page;  // first page
  std::uint64_t pages;
  std::uint64_t trim = 0;
  vm_inherit_t inheritance = VM_INHERIT_COPY;
};

enum class ChainStep {
  kCopy,        // the chain's range to another place in its task (vm_copy)
  kCrossCopy,   // to another task (vm_map_copy onto allocated memory)
  kMoveCopy,    // frees a place, then vm_map_copy dst_alloc into it,
                // sometimes with src_destroy
  kFork,        // forks the chain's task; the chain goes on in the child
  kOverlap,     // onto the chain's own range, shifted
  kWrite,       // pages of the chain's range, of the other side, or both
  kDeallocate,  // part of a slot, often the other side of the last step
  kReallocate,  // a hole of a slot
  kProtect,     // part of a slot read-only, or a whole slot read-write
  kTerminate,   // a task other than the chain's
  kCreate,      // a new task with the layout
  kNewChain,    // a new range, of one of the lengths, somewhere
};

struct ChainConfig {
  const char* label;
  std::uint64_t page_size;
  unsigned address_bits;
  std::uint64_t salt;
  // The run ends when this many copies and forks have been nested along
  // chains (steps that fail or do something else do not count).
  std::uint64_t nested;
  std::vector<SlotSpec> slots;
  std::vector<std::uint64_t> lengths;  // of chain ranges, in pages
  std::size_t max_live;                // tasks alive at once
  std::vector<std::pair<ChainStep, unsigned>> weights;
  std::uint64_t contents_every;  // steps between checks of every byte
};

// Seeded random chains of copies and forks through a layout of slots that
// every task has, each step followed by PairedVm::Check.
class ChainRun {
 public:
  ChainRun(const ChainConfig& config, std::uint64_t seed)
      : config_(config),
        rng_(seed ^ config.salt),
        vm_(config.label, VmConfigOf(config), seed ^ config.salt) {}

  void Run() {
    const auto start = std::chrono::steady_clock::now();
    if (!MakeTask()) return;
    head_ = {0, 0, 0};
    length_ = config_.lengths[0];
    head_.slot = SlotFor(length_);
    head_.offset = OffsetIn(head_.slot, length_);
    vm_.Write(head_.task, Page(head_, 0), 1);
    vm_.Write(head_.task, Page(head_, length_ - 1), 1);
    std::uint64_t total_weight = 0;
    for (const auto& [kind, weight] : config_.weights) total_weight += weight;
    const std::uint64_t max_steps = 20 * config_.nested;
    for (; nested_ < config_.nested && steps_ < max_steps && !vm_.diverged();
         ++steps_) {
      std::uint64_t pick = rng_.Below(total_weight);
      std::size_t i = 0;
      while (pick >= config_.weights[i].second) {
        pick -= config_.weights[i++].second;
      }
      samples_.clear();
      vm_.Note("step " + std::to_string(steps_) + ": " +
               StepName(config_.weights[i].first) + ", chain depth " +
               std::to_string(depth_));
      RunStep(config_.weights[i].first);
      AddRandomSamples();
      vm_.Check(samples_);
      if (config_.contents_every != 0 &&
          (steps_ + 1) % config_.contents_every == 0) {
        vm_.CheckContents();
      }
    }
    vm_.CheckContents();
    vm_.CheckReleased();
    const std::chrono::duration<double> elapsed =
        std::chrono::steady_clock::now() - start;
    std::printf("[ differential ] %s: %" PRIu64 " steps, %" PRIu64
                " nested copies and forks (deepest chain %" PRIu64 "), %" PRIu64
                " forks, %" PRIu64 " terminations, %" PRIu64 " tasks, %" PRIu64
                " calls, %.2f s\n",
                config_.label, steps_, nested_, deepest_, forks_, terminations_,
                static_cast<std::uint64_t>(vm_.released_tasks()), vm_.calls(),
                elapsed.count());
    std::fflush(stdout);
    EXPECT_GE(nested_, config_.nested) << "the chains got stuck";
  }

 private:
  // Where a range lies: a task, one of its slots, an offset in it.
  struct Place {
    std::size_t task;
    std::size_t slot;
    std::uint64_t offset;
  };

  static VmConfig VmConfigOf(const ChainConfig& config) {
    VmConfig vm;
    vm.page_size = config.page_size;
    vm.address_bits = config.address_bits;
    vm.max_tasks = config.max_live + 1;
    return vm;
  }

  static const char* StepName(ChainStep step) {
    // In ChainStep's order.
    static constexpr const char* kNames[] = {"copy",
                                             "copy to another task",
                                             "copy into a freed place",
                                             "fork",
                                             "overlapping copy",
                                             "write",
                                             "deallocate",
                                             "reallocate",
                                             "protect",
                                             "terminate",
                                             "create",
                                             "new chain"};
    static_assert(std::size(kNames) ==
                  static_cast<std::size_t>(ChainStep::kNewChain) + 1);
    return kNames[static_cast<std::size_t>(step)];
  }

  const SlotSpec& Slot(std::size_t slot) const { return config_.slots[slot]; }
  std::uint64_t Page(const Place& place, std::uint64_t i) const {
    return Slot(place.slot).page + place.offset + i;
  }

  // A task with every slot of the layout.
  bool MakeTask() {
    const std::size_t t = vm_.task_count();
    if (vm_.Create("c" + std::to_string(t)) != KERN_SUCCESS) return false;
    for (const SlotSpec& slot : config_.slots) {
      if (vm_.Allocate(t, slot.page - slot.trim, slot.trim + slot.pages) !=
          KERN_SUCCESS) {
        return false;
      }
      if (slot.trim != 0) vm_.Deallocate(t, slot.page - slot.trim, slot.trim);
      if (slot.inheritance != VM_INHERIT_COPY) {
        vm_.Inherit(t, slot.page, slot.pages, slot.inheritance);
      }
    }
    return !vm_.diverged();
  }

  std::size_t RandomLive(std::size_t except = SIZE_MAX) {
    std::vector<std::size_t> live = vm_.Live();
    live.erase(std::remove(live.begin(), live.end(), except), live.end());
    return live.empty() ? SIZE_MAX : live[rng_.Below(live.size())];
  }

  // A slot that holds `pages` pages and is inherited by copy (so that a
  // chain through it goes on after a fork).
  std::size_t SlotFor(std::uint64_t pages) {
    std::vector<std::size_t> fit;
    for (std::size_t s = 0; s < config_.slots.size(); ++s) {
      if (Slot(s).pages >= pages && Slot(s).inheritance == VM_INHERIT_COPY) {
        fit.push_back(s);
      }
    }
    return fit[rng_.Below(fit.size())];
  }

  // An offset for a range of `pages` pages in the slot, most often where a
  // chunk or a radix node of the slot's object begins (or next to it), at
  // an end of the slot, or anywhere.
  std::uint64_t OffsetIn(std::size_t slot, std::uint64_t pages) {
    const SlotSpec& s = Slot(slot);
    const std::uint64_t last = s.pages - pages;
    // Offsets whose object index is a multiple of `unit`.
    auto aligned = [&](std::uint64_t unit) -> std::optional<std::uint64_t> {
      const std::uint64_t first = (unit - s.trim % unit) % unit;
      if (first > last) return std::nullopt;
      return first + unit * rng_.Below((last - first) / unit + 1);
    };
    const std::uint64_t r = rng_.Below(100);
    std::optional<std::uint64_t> offset;
    if (r < 35) {
      offset = aligned(kChunkPages);
    } else if (r < 50) {
      offset = aligned(kChunkPages);
      if (offset && rng_.Percent(50)) {
        *offset = std::min(*offset + 1, last);
      } else if (offset && *offset > 0) {
        --*offset;
      }
    } else if (r < 60) {
      offset = aligned(kLevelPages);
    } else if (r < 70) {
      offset = rng_.Percent(50) ? 0 : last;
    }
    return offset ? *offset : rng_.Below(last + 1);
  }

  // Offsets into a range of n pages worth a look: its ends, the pages
  // either side of its chunk boundaries, and a random one.
  std::vector<std::uint64_t> Interesting(const Place& place, std::uint64_t n) {
    std::vector<std::uint64_t> offsets = {0, n - 1, rng_.Below(n)};
    const std::uint64_t index = Slot(place.slot).trim + place.offset;
    std::uint64_t boundary = (kChunkPages - index % kChunkPages) % kChunkPages;
    for (int k = 0; k < 2 && boundary < n; ++k, boundary += kChunkPages) {
      if (boundary > 0) offsets.push_back(boundary - 1);
      offsets.push_back(boundary);
    }
    return offsets;
  }

  void Sample(const Place& place, std::uint64_t n) {
    for (std::uint64_t i : Interesting(place, n)) {
      samples_.push_back({place.task, Page(place, i)});
    }
  }

  void AddRandomSamples() {
    for (int i = 0; i < 4; ++i) {
      const std::size_t t = RandomLive();
      if (t == SIZE_MAX) return;
      const std::size_t slot = rng_.Below(config_.slots.size());
      Place place{t, slot, 0};
      const std::uint64_t n = Slot(slot).pages;
      const std::vector<std::uint64_t> offsets = Interesting(place, n);
      samples_.push_back({t, Page(place, offsets[rng_.Below(offsets.size())])});
    }
  }

  // A place for the chain's next range: a slot of task t that holds it.
  Place PlaceIn(std::size_t t) {
    const std::size_t slot = SlotFor(length_);
    return {t, slot, OffsetIn(slot, length_)};
  }

  // The chain moves on from head_ to `to` after a copy or fork.
  void Nest(const Place& to) {
    previous_ = head_;
    head_ = to;
    ++nested_;
    deepest_ = std::max(deepest_, ++depth_);
  }

  bool Overlaps(const Place& a, std::uint64_t a_pages, const Place& b,
                std::uint64_t b_pages) const {
    return a.task == b.task && Page(a, 0) < Page(b, 0) + b_pages &&
           Page(b, 0) < Page(a, 0) + a_pages;
  }

  void RunStep(ChainStep step) {
    switch (step) {
      case ChainStep::kCopy: {
        const Place to = PlaceIn(head_.task);
        Sample(head_, length_);
        if (vm_.Copy(head_.task, Page(head_, 0), length_, Page(to, 0)) ==
            KERN_SUCCESS) {
          Nest(to);
        }
        Sample(to, length_);
        return;
      }
      case ChainStep::kCrossCopy: {
        const std::size_t t = RandomLive(head_.task);
        if (t == SIZE_MAX) return RunStep(ChainStep::kCopy);
        const Place to = PlaceIn(t);
        if (vm_.MapCopy(to.task, Page(to, 0), head_.task, Page(head_, 0),
                        length_, false, false) == KERN_SUCCESS) {
          Nest(to);
        }
        Sample(previous_ ? *previous_ : head_, length_);
        Sample(to, length_);
        return;
      }
      case ChainStep::kMoveCopy: {
        const std::size_t t =
            rng_.Percent(30) ? head_.task : RandomLive(head_.task);
        if (t == SIZE_MAX) return RunStep(ChainStep::kCopy);
        const Place to = PlaceIn(t);
        if (Overlaps(to, length_, head_, length_)) return;
        const bool destroy = rng_.Percent(35);
        vm_.Deallocate(to.task, Page(to, 0), length_);
        const Place from = head_;
        if (vm_.MapCopy(to.task, Page(to, 0), head_.task, Page(head_, 0),
                        length_, true, destroy) == KERN_SUCCESS) {
          Nest(to);
          if (destroy) previous_.reset();
        }
        Sample(from, length_);
        Sample(to, length_);
        return;
      }
      case ChainStep::kFork: {
        if (vm_.LiveCount() >= config_.max_live) {
          // Often the task the chain came through: its middle goes.
          std::size_t victim = previous_ && previous_->task != head_.task &&
                                       vm_.alive(previous_->task) &&
                                       rng_.Percent(50)
                                   ? previous_->task
                                   : RandomLive(head_.task);
          if (victim == SIZE_MAX) return;
          if (vm_.Terminate(victim) == KERN_SUCCESS) ++terminations_;
        }
        const std::size_t child = vm_.task_count();
        if (vm_.Fork(head_.task, "c" + std::to_string(child)) == KERN_SUCCESS) {
          ++forks_;
          Nest({child, head_.slot, head_.offset});
          Sample(*previous_, length_);
          Sample(head_, length_);
          // A write on each side, now and then, so that both must copy.
          if (rng_.Percent(50)) WriteSides(true, true);
        }
        return;
      }
      case ChainStep::kOverlap: {
        static constexpr std::int64_t kShifts[] = {
            1, 2, 7, kChunkPages - 1, kChunkPages, kChunkPages + 1};
        std::int64_t shift = kShifts[rng_.Below(std::size(kShifts))];
        if (rng_.Percent(20)) shift = static_cast<std::int64_t>(length_ / 2);
        if (rng_.Percent(50)) shift = -shift;
        const std::int64_t last =
            static_cast<std::int64_t>(Slot(head_.slot).pages - length_);
        const std::int64_t offset =
            std::clamp(static_cast<std::int64_t>(head_.offset) + shift,
                       std::int64_t{0}, last);
        const Place to{head_.task, head_.slot,
                       static_cast<std::uint64_t>(offset)};
        if (vm_.Copy(head_.task, Page(head_, 0), length_, Page(to, 0)) ==
            KERN_SUCCESS) {
          Nest(to);
        }
        Sample(to, length_);
        return;
      }
      case ChainStep::kWrite: {
        const std::uint64_t r = rng_.Below(100);
        if (r < 15) {
          // Anywhere, the small slots too.
          const std::size_t t = RandomLive();
          const std::size_t slot = rng_.Below(config_.slots.size());
          const Place place{t, slot, 0};
          const std::vector<std::uint64_t> offsets =
              Interesting(place, Slot(slot).pages);
          const std::uint64_t i = offsets[rng_.Below(offsets.size())];
          vm_.Write(t, Page(place, i), 1);
          samples_.push_back({t, Page(place, i)});
          return;
        }
        WriteSides(r < 55 || !previous_, r >= 40);
        return;
      }
      case ChainStep::kDeallocate: {
        Place place;
        std::uint64_t n;
        const bool other_side =
            previous_ && vm_.alive(previous_->task) && rng_.Percent(60);
        if (other_side) {
          // The other side of the last step: the middle of the chain.
          place = *previous_;
          n = rng_.Percent(50) ? length_ : 1 + rng_.Below(length_);
          place.offset += rng_.Below(length_ - n + 1);
        } else {
          const std::size_t t = RandomLive();
          const std::size_t slot = rng_.Below(config_.slots.size());
          n = std::min<std::uint64_t>(
              Slot(slot).pages,
              rng_.Percent(30) ? kChunkPages : 1 + rng_.Below(64));
          place = {t, slot, rng_.Below(Slot(slot).pages - n + 1)};
        }
        if (Overlaps(place, n, head_, length_)) return;
        vm_.Deallocate(place.task, Page(place, 0), n);
        if (other_side) previous_.reset();
        Sample(place, n);
        return;
      }
      case ChainStep::kReallocate: {
        const std::size_t t = RandomLive();
        const std::size_t slot = rng_.Below(config_.slots.size());
        const SlotSpec& s = Slot(slot);
        // The first hole of the slot, whole or in part.
        std::uint64_t page = s.page;
        for (const auto& [first, end] : vm_.model().Runs(t, VM_PROT_NONE)) {
          if (end <= page) continue;
          if (first > page) break;
          page = end;
        }
        if (page >= s.page + s.pages) return;
        std::uint64_t hole_end = s.page + s.pages;
        for (const auto& [first, end] : vm_.model().Runs(t, VM_PROT_NONE)) {
          if (first > page) {
            hole_end = std::min(hole_end, first);
            break;
          }
        }
        const std::uint64_t n = rng_.Percent(70)
                                    ? hole_end - page
                                    : 1 + rng_.Below(hole_end - page);
        vm_.Allocate(t, page, n);
        if (s.inheritance != VM_INHERIT_COPY) {
          vm_.Inherit(t, page, n, s.inheritance);
        }
        samples_.push_back({t, page});
        return;
      }
      case ChainStep::kProtect: {
        const std::size_t t = RandomLive();
        const std::size_t slot = rng_.Below(config_.slots.size());
        const SlotSpec& s = Slot(slot);
        if (rng_.Percent(50)) {
          vm_.Protect(t, s.page, s.pages, VM_PROT_DEFAULT);
        } else {
          const std::uint64_t n =
              1 + rng_.Below(std::min<std::uint64_t>(s.pages, 2 * kChunkPages));
          vm_.Protect(t, s.page + rng_.Below(s.pages - n + 1), n, VM_PROT_READ);
        }
        return;
      }
      case ChainStep::kTerminate: {
        const std::size_t t = RandomLive(head_.task);
        if (t == SIZE_MAX) return;
        if (vm_.Terminate(t) == KERN_SUCCESS) ++terminations_;
        if (previous_ && previous_->task == t) previous_.reset();
        return;
      }
      case ChainStep::kCreate:
        if (vm_.LiveCount() < config_.max_live) MakeTask();
        return;
      case ChainStep::kNewChain: {
        length_ = config_.lengths[rng_.Below(config_.lengths.size())];
        const std::size_t t = RandomLive();
        head_ = PlaceIn(t);
        previous_.reset();
        depth_ = 0;
        vm_.Write(head_.task, Page(head_, rng_.Below(length_)), 1);
        return;
      }
    }
  }

  // Writes a page or two of the chain's range (head) and the same pages of
  // the other side of the last step (other), as asked, and samples both.
  void WriteSides(bool head, bool other) {
    const std::vector<std::uint64_t> offsets = Interesting(head_, length_);
    const std::uint64_t i = offsets[rng_.Below(offsets.size())];
    const std::uint64_t n =
        std::min<std::uint64_t>(1 + rng_.Below(2), length_ - i);
    const bool has_other = previous_ && vm_.alive(previous_->task);
    if (head) vm_.Write(head_.task, Page(head_, i), n);
    if (other && has_other) vm_.Write(previous_->task, Page(*previous_, i), n);
    for (std::uint64_t k = i; k < i + n; ++k) {
      samples_.push_back({head_.task, Page(head_, k)});
      if (has_other) samples_.push_back({previous_->task, Page(*previous_, k)});
    }
  }

  const ChainConfig& config_;
  Rng rng_;
  PairedVm vm_;
  Place head_{};                   // the chain's range
  std::optional<Place> previous_;  // where the last copy or fork came from
  std::uint64_t length_ = 1;
  std::uint64_t depth_ = 0;
  std::uint64_t deepest_ = 0;
  std::uint64_t nested_ = 0;
  std::uint64_t steps_ = 0;
  std::uint64_t forks_ = 0;
  std::uint64_t terminations_ = 0;
  std::vector<PageRef> samples_;
};

void RunChains(const ChainConfig& config) {
  const std::uint64_t seed = RunSeed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::printf("[ differential ] %s: seed=%" PRIu64 " (TASKFS_SEED=%" PRIu64
              " replays it)\n",
              config.label, seed, seed);
  std::fflush(stdout);
  CrashNotes crash_notes;
  ChainRun run(config, seed);
  run.Run();
}

// A thousand nested copies of one range of 520 pages (a chunk and a bit:
// it crosses a chunk boundary wherever it lies, and covers a chunk exactly
// when it starts on one) through five slots of one task, whose objects
// start at page indexes 0, 1, 300, 512 and just below the 262,144 of the
// second radix level; with overlapping copies onto the range itself, writes
// on both sides of each copy, frees in the middle of the chain and
// read-only pieces in the way.
TEST(VmCopyDifferentialTest, ThousandNestedCopiesOfOneRangeInOneTask) {
  RunChains({.label = "1,000 nested copies of 520 pages in one task",
             .page_size = 4096,
             .address_bits = 36,
             .salt = 0xc0c1,
             .nested = 1000,
             .slots = {{0x1000, 800, 0},
                       {0x3000, 800, 1},
                       {0x5000, 800, 300},
                       {0x7000, 800, kChunkPages},
                       {0x100000, 800, kLevelPages - 400}},
             .lengths = {520},
             .max_live = 1,
             .weights = {{ChainStep::kCopy, 50},
                         {ChainStep::kOverlap, 14},
                         {ChainStep::kWrite, 22},
                         {ChainStep::kDeallocate, 3},
                         {ChainStep::kReallocate, 6},
                         {ChainStep::kProtect, 2}},
             .contents_every = 250});
}

// A thousand nested forks and copies between tasks: the chain's range goes
// from task to task by vm_map_copy (onto memory, and into freed places as
// new memory, sometimes destroying its source) and by task_fork, with
// writes on both sides after each, tasks in the middle of the chain
// terminated, a `share` slot that every fork keeps in common and a `none`
// slot that none inherits.
TEST(VmCopyDifferentialTest, ThousandNestedForksAndCopiesAcrossTasks) {
  RunChains({.label = "1,000 nested forks and cross-task copies",
             .page_size = 4096,
             .address_bits = 32,
             .salt = 0xf0c2,
             .nested = 1000,
             .slots = {{0x100, 600, 0},
                       {0x1000, 600, 300},
                       {0x2000, 16, 0, VM_INHERIT_SHARE},
                       {0x3000, 4, 0, VM_INHERIT_NONE}},
             .lengths = {520},
             .max_live = 5,
             .weights = {{ChainStep::kFork, 30},
                         {ChainStep::kCrossCopy, 18},
                         {ChainStep::kMoveCopy, 8},
                         {ChainStep::kCopy, 6},
                         {ChainStep::kWrite, 24},
                         {ChainStep::kDeallocate, 4},
                         {ChainStep::kReallocate, 4},
                         {ChainStep::kTerminate, 4},
                         {ChainStep::kCreate, 2}},
             .contents_every = 250});
}

// Chains of every length around a chunk (1, 511, 512, 513 and 1,024 pages),
// started afresh now and then, through three tasks: copies onto ranges
// that hold copies, onto the chain's own range, into freed places, across
// tasks, with forks and terminations among them.
TEST(VmCopyDifferentialTest, CopiesOntoCopiesAndOverlapsOfEveryLength) {
  RunChains(
      {.label = "copies of chunk-sized ranges onto copies",
       .page_size = 4096,
       .address_bits = 32,
       .salt = 0xc0c3,
       .nested = 1000,
       .slots = {{0x1000, 1200, 0}, {0x3000, 1200, 1}, {0x5000, 1200, 511}},
       .lengths = {1, 511, 512, 513, 1024},
       .max_live = 3,
       .weights = {{ChainStep::kCopy, 20},
                   {ChainStep::kCrossCopy, 12},
                   {ChainStep::kMoveCopy, 8},
                   {ChainStep::kOverlap, 14},
                   {ChainStep::kWrite, 22},
                   {ChainStep::kDeallocate, 5},
                   {ChainStep::kReallocate, 6},
                   {ChainStep::kProtect, 3},
                   {ChainStep::kNewChain, 4},
                   {ChainStep::kFork, 3},
                   {ChainStep::kTerminate, 2},
                   {ChainStep::kCreate, 2}},
       .contents_every = 250});
}

// Regions of a GiB (64 KiB pages) with a few pages written, copied whole
// and in halves between tasks and forks; one slot's object starts below
// the second radix level, so its copies cross it.
TEST(VmCopyDifferentialTest, GiBRegionsWithFewWrittenPages) {
  RunChains({.label = "GiB regions, few pages written",
             .page_size = 65536,
             .address_bits = 44,
             .salt = 0x61b5,
             .nested = 80,
             .slots = {{0x100000, 16384 + 64, 0},
                       {0x200000, 16384 + 64, kLevelPages - 9000}},
             .lengths = {16384, 8192 + 3},
             .max_live = 3,
             .weights = {{ChainStep::kCopy, 20},
                         {ChainStep::kCrossCopy, 15},
                         {ChainStep::kFork, 10},
                         {ChainStep::kOverlap, 8},
                         {ChainStep::kWrite, 30},
                         {ChainStep::kDeallocate, 5},
                         {ChainStep::kReallocate, 5},
                         {ChainStep::kTerminate, 3},
                         {ChainStep::kNewChain, 4}},
             .contents_every = 0});
}

// Scripted copies at the two radix levels, 4 KiB pages: regions X and Y of
// a level-2 node (262,144 pages, 1 GiB) and two chunks more, written only
// at the pages either side of the boundaries the copies cut or cover. Every
// copy below either covers a chunk or a node exactly, aligned on both
// sides, or crosses a boundary with the two sides aligned differently;
// then the other side and the same side are written, the region is forked,
// freed in the middle of a node, moved whole into another task as new
// memory and terminated.
TEST(VmCopyDifferentialTest, CopiesThatCoverOrCrossRadixNodes) {
  const std::uint64_t seed = RunSeed();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  CrashNotes crash_notes;
  const auto start = std::chrono::steady_clock::now();
  VmConfig config;
  config.page_size = 4096;
  config.address_bits = 40;
  config.max_tasks = 4;
  PairedVm vm("radix nodes", config, seed);
  constexpr std::uint64_t kL = kLevelPages;
  constexpr std::uint64_t kC = kChunkPages;
  constexpr std::uint64_t kX = 1 * kL;  // page numbers: X at 1 GiB
  constexpr std::uint64_t kY = 4 * kL;  // Y at 4 GiB
  constexpr std::uint64_t kZ = 8 * kL;  // where X moves to, at 8 GiB
  constexpr std::uint64_t kN = kL + 2 * kC;
  // Offsets either side of every boundary the copies cut or cover.
  const std::vector<std::uint64_t> marks = {
      0,          1,      kC - 2,      kC - 1,      kC,       kC + 1,
      2 * kC - 1, 2 * kC, kL - kC - 1, kL - kC,     kL - 600, kL - 2,
      kL - 1,     kL,     kL + 1,      kL + kC - 1, kL + kC,  kN - 1};
  auto samples =
      [&](std::initializer_list<std::pair<std::size_t, std::uint64_t>> bases) {
        std::vector<PageRef> refs;
        for (const auto& [t, base] : bases) {
          for (std::uint64_t m : marks) refs.push_back({t, base + m});
        }
        return refs;
      };
  auto step = [&](const std::string& what, KernReturn kr,
                  std::vector<PageRef> refs) {
    vm.Note(what);
    EXPECT_EQ(kr, KERN_SUCCESS) << what;
    vm.Check(refs);
    return !vm.diverged();
  };
  const std::size_t p = 0, c = 1, q = 2;
  ASSERT_EQ(vm.Create("p"), KERN_SUCCESS);
  ASSERT_EQ(vm.Allocate(p, kX, kN), KERN_SUCCESS);
  ASSERT_EQ(vm.Allocate(p, kY, kN), KERN_SUCCESS);
  for (std::uint64_t m : marks) vm.Write(p, kX + m, 1);
  for (std::uint64_t m : {kC - 1, kL, kN - 1}) vm.Write(p, kY + m, 1);
  const auto both = samples({{p, kX}, {p, kY}});
  if (!step("written", KERN_SUCCESS, both)) return;

  // A whole node, aligned on both sides; then each side written.
  if (!step("X's node onto Y's", vm.Copy(p, kX, kL, kY), both) ||
      !step("Y written after the copy", vm.Write(p, kY + kC - 1, 2), both) ||
      !step("X written after the copy", vm.Write(p, kX + kL - 1, 1), both) ||
      !step("X written again", vm.Write(p, kX + 1, 1), both)) {
    return;
  }
  // A chunk exactly, into the node above: aligned, other node.
  if (!step("X's chunk 1 onto Y's first chunk past the node",
            vm.Copy(p, kX + kC, kC, kY + kL), both) ||
      !step("Y's copied chunk written", vm.Write(p, kY + kL + kC - 1, 1),
            both)) {
    return;
  }
  // Across the level-2 boundary, the sides a page apart.
  if (!step("across the node boundary, shifted by one",
            vm.Copy(p, kX + kL - 600, 1200, kY + kL - 599), both) ||
      !step("a node's worth, off by one page: every chunk cut",
            vm.Copy(p, kY + 1, kL, kX), both) ||
      !step("both sides written", vm.Write(p, kX + kC, 1), both) ||
      !step("both sides written", vm.Write(p, kY + kC + 1, 1), both)) {
    return;
  }
  // Onto its own range: shifted by a chunk (aligned), then by a page.
  if (!step("X's node onto itself a chunk up", vm.Copy(p, kX, kL, kX + kC),
            both) ||
      !step("X's node onto itself a page down", vm.Copy(p, kX + 1, kL, kX),
            both) ||
      !step("the whole of Y, a node and two chunks, onto X",
            vm.Copy(p, kY, kN, kX), both) ||
      !step("X written where it shares with Y", vm.Write(p, kX + kL, 1),
            both)) {
    return;
  }
  vm.CheckContents();
  // Most of Y goes, then a fork: both sides written, the parent's Y freed in
  // the middle of a node.
  if (!step("most of Y freed", vm.Deallocate(p, kY, kL - 2 * kC), both) ||
      !step("fork", vm.Fork(p, "c"), samples({{p, kX}, {c, kX}})) ||
      !step("child written", vm.Write(c, kX + kC - 1, 2),
            samples({{p, kX}, {c, kX}})) ||
      !step("parent written", vm.Write(p, kX + kC, 1),
            samples({{p, kX}, {c, kX}})) ||
      !step("child's Y freed across its node boundary",
            vm.Deallocate(c, kY + kL - 256, 512),
            samples({{p, kY}, {c, kY}})) ||
      !step("parent's Y written", vm.Write(p, kY + kL, 1),
            samples({{p, kY}, {c, kY}}))) {
    return;
  }
  // The child's X moves whole to a new task as new memory at a node
  // boundary; then the child goes.
  if (!step("a third task", vm.Create("q"), {}) ||
      !step("child's X moved into q", vm.MapCopy(q, kZ, c, kX, kN, true, true),
            samples({{q, kZ}, {p, kX}})) ||
      !step("q written", vm.Write(q, kZ + kL, 1),
            samples({{q, kZ}, {p, kX}})) ||
      !step("child terminated", vm.Terminate(c), samples({{q, kZ}, {p, kX}})) ||
      !step("q's node onto p's X a chunk up",
            vm.MapCopy(p, kX + kC, q, kZ, kL, false, false),
            samples({{q, kZ}, {p, kX}})) ||
      !step("p's X written", vm.Write(p, kX + kL + kC - 1, 1),
            samples({{q, kZ}, {p, kX}}))) {
    return;
  }
  vm.CheckContents();
  vm.CheckReleased();
  const std::chrono::duration<double> elapsed =
      std::chrono::steady_clock::now() - start;
  std::printf("[ differential ] radix nodes: %" PRIu64 " calls, %.2f s\n",
              vm.calls(), elapsed.count());
}

}  // namespace
}  // namespace taskfs::vm
