// Fuzz target: sequences of Mach calls on the VM core, each run next to the
// reference model of the differential test (tests/vmcore/reference_model.h).
// Any difference in a result code, an address returned, a byte read, a region
// list, a statistic or the system's live pages is a crash: the target prints
// the calls so far and the difference, then aborts.
//
// Input: one byte choosing the configuration, then calls. A small address
// space (2^24) and a small memory limit keep the limits, the top edge and
// wrap-around within a mutation's reach.
//
//   config byte: bits 0-1 page size (4, 16, 64 or 4 KiB);
//                bits 2-7 n: no memory limit for n = 63, else a limit of
//                n + 1 half pages, so limits that are not a whole number of
//                pages occur too.
//   each call:   an opcode byte (modulo the number of calls), then its
//                operands, each decoded by one of the Next* functions below.
//
// Every call of the model's is covered: vm_allocate (fixed and anywhere),
// vm_deallocate, vm_protect, vm_inherit, vm_read (into a buffer and pinned),
// vm_write, vm_fill, vm_copy, vm_map_copy, vm_region, vm_region_list,
// vm_find_data, vm_find_hole, task_statistics, task_create, task_fork and
// task_terminate.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_input.h"
#include "tests/vmcore/reference_model.h"
#include "tests/vmcore/take_result.h"
#include "vmcore/kern_return.h"
#include "vmcore/pinned_pages.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_types.h"
#include "vmcore/vm_user.h"

namespace taskfs::fuzz {
namespace {

using vm::KernReturn;
using vm::PinnedPages;
using vm::RegionInfo;
using vm::Task;
using vm::TaskStatistics;
using vm::vm_address_t;
using vm::vm_inherit_t;
using vm::vm_prot_t;
using vm::vm_size_t;
using vm::reference::Bytes;
using vm::reference::Hex;
using vm::reference::InheritName;
using vm::reference::Model;
using vm::reference::ProtName;
using vm::reference::RegionsText;
using vm::reference::StatsText;

constexpr unsigned kAddressBits = 24;
constexpr std::uint64_t kMaxTasks = 4;
constexpr std::size_t kPinSlots = 2;
// Calls per input, so that a long input cannot run for long.
constexpr std::size_t kMaxCalls = 300;
// Calls between whole-state checks.
constexpr std::size_t kCheckEvery = 16;
// Reads up to this many pages go to a buffer, larger ones are pinned.
constexpr std::uint64_t kMaxBufferPages = 16;
// Contents are compared in the low kWindowPages pages, where nearly all
// addresses land, and at the top edge.
constexpr std::uint64_t kWindowPages = 64;
constexpr std::size_t kShownCalls = 40;

enum Call : std::uint8_t {
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
  kCheckTask,
  kPin,
  kCheckPin,
  kFork,
  kCreate,
  kTerminate,
  kCallCount,
};

// Task names "t0" to "t7", so that names collide; a few bytes give names the
// core must refuse.
std::string NameFor(std::uint8_t b) {
  if (b >= 0xf8) {
    static const std::string kBad[] = {"",
                                       ".hidden",
                                       "a/b",
                                       "sp ace",
                                       "host_page_size",
                                       "t\x80",
                                       std::string(65, 'n'),
                                       std::string(64, 'n')};
    return kBad[b - 0xf8];
  }
  return "t" + std::to_string(b % 8);
}

class Harness {
 public:
  explicit Harness(const vm::VmConfig& config)
      : config_(config),
        limit_(std::uint64_t{1} << config.address_bits),
        system_(std::make_unique<vm::VmSystem>(config)),
        model_(std::make_unique<Model>(config, kPinSlots)) {}

  // Pins go first: they hold pages of the system's allocator.
  ~Harness() {
    for (PinnedPages& pin : pins_) pin.Release();
    tasks_.clear();
    model_.reset();
    system_.reset();
  }

  void Run(FuzzInput& in) {
    Create("t0");
    for (std::size_t call = 1; call <= kMaxCalls && !in.empty(); ++call) {
      Step(in);
      if (call % kCheckEvery == 0) CheckEverything();
    }
    CheckEverything();
  }

 private:
  std::uint64_t page() const { return config_.page_size; }

  // --- operands ---

  std::size_t NextTask(FuzzInput& in) { return in.Byte() % tasks_.size(); }

  // An address: selector byte, kind in the top three bits, n in the low five.
  vm_address_t NextAddress(FuzzInput& in, std::size_t t) {
    const std::uint8_t s = in.Byte();
    const std::uint64_t n = s & 31;
    switch (s >> 5) {
      case 0:
        return n * page();  // the window, where anywhere-allocations land
      case 1:
        return (32 + n) * page();
      case 2:
        return n * page() + Unaligned(in);
      case 3:
        return AllocatedPage(t, in.Byte()) * page();
      case 4:
        return limit_ - n * page();  // the top edge
      case 5:
        return limit_ + n * page();  // past it
      case 6:
        return 0 - (n + 1) * page();  // near 2^64
      default:
        return in.U64();
    }
  }

  vm_size_t NextSize(FuzzInput& in) {
    const std::uint8_t s = in.Byte();
    const std::uint64_t n = s & 31;
    switch (s >> 5) {
      case 0:
      case 1:
        return (n & 15) * page();
      case 2:
        return n * page() + Unaligned(in);
      case 3:
        return n * 8 * page();
      case 4:
        return limit_ - n * page();  // about the whole space
      case 5:
        return limit_ + n * page();
      case 6:
        return 0 - n * page();  // wraps any address
      default:
        return in.U64();
    }
  }

  // An offset in (0, page_size): odd, so never aligned.
  std::uint64_t Unaligned(FuzzInput& in) {
    return (in.Byte() * (page() / 256)) | 1;
  }

  // The k-th allocated page of task t (modulo their number), or page k.
  std::uint64_t AllocatedPage(std::size_t t, std::uint8_t k) {
    std::uint64_t total = 0;
    const auto runs = model_->Runs(t, vm::VM_PROT_NONE);
    for (const auto& [first, end] : runs) total += end - first;
    if (total == 0) return k;
    std::uint64_t index = k % total;
    for (const auto& [first, end] : runs) {
      if (index < end - first) return first + index;
      index -= end - first;
    }
    return k;
  }

  static vm_prot_t NextProt(FuzzInput& in) {
    const std::uint8_t b = in.Byte();
    if (b < 0xf0) return b & vm::VM_PROT_ALL;
    return (b & vm::VM_PROT_ALL) | (8u << (b & 15));  // bits outside ALL
  }

  static vm_inherit_t NextInheritance(FuzzInput& in) {
    const std::uint8_t b = in.Byte();
    if (b < 0xf0) return b % 3;
    return b == 0xff ? 0xffffffffu : b;
  }

  // Bytes for a write: a pattern from a seed byte, different on every page.
  static Bytes PatternBytes(std::uint64_t size, std::uint8_t seed) {
    Bytes bytes(size);
    std::uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
    for (std::uint64_t i = 0; i < size; i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::memcpy(bytes.data() + i, &x, std::min<std::uint64_t>(8, size - i));
    }
    return bytes;
  }

  // A buffer for writes too large to make up: zeros, as large as the whole
  // address space, so that a write the model says must fail cannot read past
  // it if the core lets it through.
  const std::uint8_t* BigZeros() {
    static const Bytes zeros(std::uint64_t{1} << kAddressBits, 0);
    return zeros.data();
  }

  std::string TaskName(std::size_t t) const {
    return model_->name(t) + (model_->alive(t) ? "" : "(terminated)");
  }

  // --- calls ---

  void Step(FuzzInput& in) {
    switch (static_cast<Call>(in.Byte() % kCallCount)) {
      case kAllocateFixed:
        return Allocate(in, false);
      case kAllocateAnywhere:
        return Allocate(in, true);
      case kDeallocate:
        return Deallocate(in);
      case kProtect:
        return Protect(in);
      case kInherit:
        return Inherit(in);
      case kRead:
        return Read(in);
      case kWrite:
        return Write(in);
      case kFill:
        return Fill(in);
      case kCopy:
        return Copy(in);
      case kMapCopy:
        return MapCopy(in);
      case kRegion:
        return Region(in);
      case kFindData:
        return Find(in, false);
      case kFindHole:
        return Find(in, true);
      case kCheckTask:
        return CheckTask(NextTask(in));
      case kPin:
        return Pin(in);
      case kCheckPin:
        return CheckPin(in);
      case kFork:
        return Fork(in);
      case kCreate:
        return Create(NameFor(in.Byte()));
      case kTerminate:
        return Terminate(in);
      case kCallCount:
        break;
    }
  }

  void Allocate(FuzzInput& in, bool anywhere) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    Begin("vm_allocate(" + TaskName(t) + ", " + Hex(address) + ", " +
          Hex(size) + (anywhere ? ", anywhere)" : ", fixed)"));
    vm_address_t core_address = address;
    vm_address_t model_address = address;
    const KernReturn core =
        vm::vm_allocate(*tasks_[t], &core_address, size, anywhere);
    const KernReturn model =
        model_->Allocate(t, &model_address, size, anywhere);
    if (SameCode(core, model) && core == vm::KERN_SUCCESS &&
        core_address != model_address) {
      Diverge("address: core " + Hex(core_address) + ", model " +
              Hex(model_address));
    }
    CompareRegions(t);
  }

  void Deallocate(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    Begin("vm_deallocate(" + TaskName(t) + ", " + Hex(address) + ", " +
          Hex(size) + ")");
    SameCode(vm::vm_deallocate(*tasks_[t], address, size),
             model_->Deallocate(t, address, size));
    CompareRegions(t);
  }

  void Protect(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    const bool set_maximum = (in.Byte() & 1) != 0;
    const vm_prot_t prot = NextProt(in);
    Begin("vm_protect(" + TaskName(t) + ", " + Hex(address) + ", " + Hex(size) +
          (set_maximum ? ", max " : ", ") + ProtName(prot) + ")");
    SameCode(vm::vm_protect(*tasks_[t], address, size, set_maximum, prot),
             model_->Protect(t, address, size, set_maximum, prot));
    CompareRegions(t);
  }

  void Inherit(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    const vm_inherit_t inheritance = NextInheritance(in);
    Begin("vm_inherit(" + TaskName(t) + ", " + Hex(address) + ", " + Hex(size) +
          ", " + InheritName(inheritance) + ")");
    SameCode(vm::vm_inherit(*tasks_[t], address, size, inheritance),
             model_->Inherit(t, address, size, inheritance));
    CompareRegions(t);
  }

  void Read(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    ReadAndCompare(t, address, NextSize(in));
  }

  void ReadAndCompare(std::size_t t, vm_address_t address, vm_size_t size) {
    const bool buffered = size <= kMaxBufferPages * page();
    Begin("vm_read(" + TaskName(t) + ", " + Hex(address) + ", " + Hex(size) +
          ")" + (buffered ? "" : " (pinned variant)"));
    Bytes core_bytes;
    KernReturn core;
    if (buffered) {
      // Poisoned, so bytes the core fails to fill cannot pass for zeros.
      core_bytes.assign(size, 0xa5);
      core = vm::vm_read(
          *tasks_[t], address,
          std::as_writable_bytes(std::span(core_bytes.data(), size)));
    } else {
      PinnedPages pinned;
      core = vm::vm_read_pinned(*tasks_[t], address, size, &pinned);
      core_bytes.resize(pinned.size());
      pinned.CopyTo(core_bytes.data());
    }
    Bytes model_bytes;
    const KernReturn model = model_->Read(t, address, size, &model_bytes);
    if (SameCode(core, model) && core == vm::KERN_SUCCESS) {
      CompareBytes(core_bytes, model_bytes);
    }
  }

  void Write(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    const std::uint8_t seed = in.Byte();
    Bytes pattern;
    const std::uint8_t* data;
    if (size <= kMaxBufferPages * page()) {
      pattern = PatternBytes(size, seed);
      data = pattern.data();
    } else {
      data = BigZeros();
    }
    Begin("vm_write(" + TaskName(t) + ", " + Hex(address) + ", " + Hex(size) +
          ", pattern " + Hex(seed) + ")");
    SameCode(vm::vm_write(*tasks_[t], address, data, size),
             model_->Write(t, address, data, size));
  }

  void Fill(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    const std::uint8_t byte = in.Byte();
    Begin("vm_fill(" + TaskName(t) + ", " + Hex(address) + ", " + Hex(size) +
          ", " + Hex(byte) + ")");
    SameCode(vm::vm_fill(*tasks_[t], address, size, byte),
             model_->Fill(t, address, size, byte));
  }

  void Copy(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t source = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    const vm_address_t dest = NextAddress(in, t);
    Begin("vm_copy(" + TaskName(t) + ", " + Hex(source) + ", " + Hex(size) +
          ", " + Hex(dest) + ")");
    SameCode(vm::vm_copy(*tasks_[t], source, size, dest),
             model_->Copy(t, source, size, dest));
  }

  void MapCopy(FuzzInput& in) {
    const std::size_t dst = NextTask(in);
    const vm_address_t dest = NextAddress(in, dst);
    const std::size_t src = NextTask(in);
    const vm_address_t source = NextAddress(in, src);
    const vm_size_t size = NextSize(in);
    const std::uint8_t flags = in.Byte();
    const bool dst_alloc = (flags & 1) != 0;
    const bool src_destroy = (flags & 2) != 0;
    Begin("vm_map_copy(dst " + TaskName(dst) + " at " + Hex(dest) + ", src " +
          TaskName(src) + " at " + Hex(source) + ", " + Hex(size) +
          (dst_alloc ? ", dst_alloc" : "") +
          (src_destroy ? ", src_destroy" : "") + ")");
    SameCode(
        vm::vm_map_copy(*tasks_[dst], dest, *tasks_[src], source, size,
                        dst_alloc, src_destroy),
        model_->MapCopy(dst, dest, src, source, size, dst_alloc, src_destroy));
    CompareRegions(dst);
    CompareRegions(src);
  }

  void Region(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    Begin("vm_region(" + TaskName(t) + ", " + Hex(address) + ")");
    vm_address_t core_address = address;
    vm_address_t model_address = address;
    RegionInfo core_info;
    RegionInfo model_info;
    const KernReturn core =
        vm::vm_region(*tasks_[t], &core_address, &core_info);
    const KernReturn model = model_->Region(t, &model_address, &model_info);
    if (SameCode(core, model) && core == vm::KERN_SUCCESS &&
        (core_address != model_address || !(core_info == model_info))) {
      Diverge("core " + Hex(core_address) + " " + RegionsText({core_info}) +
              ", model " + Hex(model_address) + " " +
              RegionsText({model_info}));
    }
  }

  void Find(FuzzInput& in, bool hole) {
    const std::size_t t = NextTask(in);
    const vm_address_t from = NextAddress(in, t);
    Begin(std::string(hole ? "vm_find_hole(" : "vm_find_data(") + TaskName(t) +
          ", " + Hex(from) + ")");
    vm_address_t core_found = 0;
    vm_address_t model_found = 0;
    const KernReturn core =
        hole ? vm::Take(vm::vm_find_hole(*tasks_[t], from), &core_found)
             : vm::Take(vm::vm_find_data(*tasks_[t], from), &core_found);
    const KernReturn model = hole ? model_->FindHole(t, from, &model_found)
                                  : model_->FindData(t, from, &model_found);
    if (SameCode(core, model) && core == vm::KERN_SUCCESS &&
        core_found != model_found) {
      Diverge("found: core " + Hex(core_found) + ", model " + Hex(model_found));
    }
  }

  void Pin(FuzzInput& in) {
    const std::size_t pin = in.Byte() % kPinSlots;
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    Begin("vm_read(" + TaskName(t) + ", " + Hex(address) + ", " + Hex(size) +
          ") pinned into slot " + std::to_string(pin));
    if (SameCode(vm::vm_read_pinned(*tasks_[t], address, size, &pins_[pin]),
                 model_->ReadPinned(t, address, size, pin))) {
      ComparePin(pin);
    }
  }

  // Checks that a pinned read still shows the bytes of its moment, then
  // perhaps lets it go.
  void CheckPin(FuzzInput& in) {
    const std::uint8_t b = in.Byte();
    const std::size_t pin = b % kPinSlots;
    const bool release = (b & 0x80) != 0;
    Begin("check pin slot " + std::to_string(pin) +
          (release ? ", then release it" : ""));
    ComparePin(pin);
    if (release) {
      pins_[pin].Release();
      model_->Unpin(pin);
    }
  }

  void ComparePin(std::size_t pin) {
    Bytes core(pins_[pin].size());
    pins_[pin].CopyTo(core.data());
    CompareBytes(core, model_->PinnedBytes(pin));
  }

  void Fork(FuzzInput& in) {
    const std::size_t parent = NextTask(in);
    const std::string name = NameFor(in.Byte());
    Begin("task_fork(" + TaskName(parent) + ", \"" + name + "\")");
    std::shared_ptr<Task> child;
    const KernReturn core =
        vm::Take(vm::task_fork(*system_, *tasks_[parent], name), &child);
    if (SameCode(core, model_->Fork(parent, name)) &&
        core == vm::KERN_SUCCESS) {
      tasks_.push_back(std::move(child));
      CompareRegions(tasks_.size() - 1);
    }
  }

  void Create(const std::string& name) {
    Begin("task_create(\"" + name + "\")");
    std::shared_ptr<Task> task;
    const KernReturn core = vm::Take(vm::task_create(*system_, name), &task);
    if (SameCode(core, model_->Create(name)) && core == vm::KERN_SUCCESS) {
      tasks_.push_back(std::move(task));
    }
  }

  void Terminate(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    Begin("task_terminate(" + TaskName(t) + ")");
    SameCode(vm::task_terminate(*system_, *tasks_[t]), model_->Terminate(t));
  }

  // --- whole-state checks ---

  void CompareRegions(std::size_t t) {
    std::vector<RegionInfo> core_regions;
    std::vector<RegionInfo> model_regions;
    const KernReturn core =
        vm::Take(vm::vm_region_list(*tasks_[t]), &core_regions);
    const KernReturn model = model_->RegionList(t, &model_regions);
    if (core != model || core_regions != model_regions) {
      Diverge("afterwards vm_region_list(" + TaskName(t) + ") gives\n  core " +
              std::string(vm::KernReturnName(core)) + " " +
              RegionsText(core_regions) + "\n  model " +
              std::string(vm::KernReturnName(model)) + " " +
              RegionsText(model_regions));
    }
  }

  // vm_region_list and task_statistics of task t.
  void CheckTask(std::size_t t) {
    Begin("vm_region_list(" + TaskName(t) + ")");
    CompareRegions(t);
    Begin("task_statistics(" + TaskName(t) + ")");
    TaskStatistics core_stats;
    TaskStatistics model_stats;
    const KernReturn core =
        vm::Take(vm::task_statistics(*tasks_[t]), &core_stats);
    const KernReturn model = model_->Statistics(t, &model_stats);
    if (SameCode(core, model) && core == vm::KERN_SUCCESS &&
        !vm::reference::SameStats(core_stats, model_stats)) {
      Diverge("core " + StatsText(core_stats) + ", model " +
              StatsText(model_stats));
    }
  }

  // Every task's regions and statistics, the system's live pages, the
  // readable bytes of every task in the window and at the top edge, and
  // every pin.
  void CheckEverything() {
    for (std::size_t t = 0; t < tasks_.size(); ++t) CheckTask(t);
    Begin("live pages of the system");
    const std::uint64_t core_live = system_->pages().live_pages();
    const std::uint64_t model_live = model_->LivePages();
    if (core_live != model_live) {
      Diverge("core " + std::to_string(core_live) + ", model " +
              std::to_string(model_live));
    }
    const std::uint64_t total_pages = limit_ / page();
    const std::uint64_t top = total_pages - std::min(kWindowPages, total_pages);
    for (std::size_t t = 0; t < tasks_.size(); ++t) {
      for (const auto& [first, end] : model_->Runs(t, vm::VM_PROT_READ)) {
        for (std::uint64_t p = first; p < end; p += kMaxBufferPages) {
          if (p >= kWindowPages && p < top) {
            p = top - kMaxBufferPages;  // skip to the top edge
            continue;
          }
          const std::uint64_t count = std::min(kMaxBufferPages, end - p);
          ReadAndCompare(t, p * page(), count * page());
        }
      }
    }
    for (std::size_t pin = 0; pin < kPinSlots; ++pin) {
      Begin("final check of pin slot " + std::to_string(pin));
      ComparePin(pin);
    }
  }

  // --- comparison and reporting ---

  void Begin(const std::string& call) {
    calls_.push_back(call);
    if (calls_.size() > kShownCalls) calls_.erase(calls_.begin());
    ++call_number_;
  }

  bool SameCode(KernReturn core, KernReturn model) {
    if (core == model) {
      calls_.back() += " -> " + std::string(vm::KernReturnName(core));
      return true;
    }
    Diverge("result: core " + std::string(vm::KernReturnName(core)) +
            ", model " + std::string(vm::KernReturnName(model)));
    return false;
  }

  void CompareBytes(const Bytes& core, const Bytes& model) {
    if (core.size() != model.size()) {
      Diverge("bytes read: core " + Hex(core.size()) + ", model " +
              Hex(model.size()));
    }
    if (core.empty() ||
        std::memcmp(core.data(), model.data(), core.size()) == 0) {
      return;
    }
    const auto [c, m] = std::mismatch(core.begin(), core.end(), model.begin());
    const auto offset = static_cast<std::uint64_t>(c - core.begin());
    Diverge("byte at offset " + Hex(offset) + " (page " +
            std::to_string(offset / page()) + " of the range): core " +
            Hex(*c) + ", model " + Hex(*m));
  }

  [[noreturn]] void Diverge(const std::string& detail) {
    std::fprintf(stderr,
                 "\ncore and model diverge at call #%zu\n  call: %s\n  %s\n"
                 "  config: page_size=%llu address_bits=%u page_limit=%llu "
                 "max_tasks=%llu\n  calls up to it, oldest first:\n",
                 call_number_, calls_.back().c_str(), detail.c_str(),
                 static_cast<unsigned long long>(config_.page_size),
                 config_.address_bits,
                 static_cast<unsigned long long>(config_.page_limit),
                 static_cast<unsigned long long>(config_.max_tasks));
    for (const std::string& call : calls_) {
      std::fprintf(stderr, "    %s\n", call.c_str());
    }
    std::abort();
  }

  const vm::VmConfig config_;
  const std::uint64_t limit_;  // 2^address_bits
  std::unique_ptr<vm::VmSystem> system_;
  std::unique_ptr<Model> model_;
  std::vector<std::shared_ptr<Task>> tasks_;  // numbered as the model's
  std::array<PinnedPages, kPinSlots> pins_;
  std::vector<std::string> calls_;  // the last kShownCalls, with results
  std::size_t call_number_ = 0;
};

}  // namespace
}  // namespace taskfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  taskfs::fuzz::FuzzInput in(data, size);
  const std::uint8_t config_byte = in.Byte();
  taskfs::vm::VmConfig config;
  constexpr std::uint64_t kPageSizes[] = {4096, 16384, 65536, 4096};
  config.page_size = kPageSizes[config_byte & 3];
  config.address_bits = taskfs::fuzz::kAddressBits;
  const std::uint64_t n = config_byte >> 2;
  config.page_limit = n == 63 ? 0 : (n + 1) * (config.page_size / 2);
  config.max_tasks = taskfs::fuzz::kMaxTasks;
  taskfs::fuzz::Harness harness(config);
  harness.Run(in);
  return 0;
}
